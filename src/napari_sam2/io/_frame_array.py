"""A read-only array-like over frames that one callable decodes on demand.

Readers whose files hold one 2D image per frame (an image-sequence folder, a DICOM series)
give ``read_frame(k) -> ndarray`` and get numpy-style indexing (ints, slices, Ellipsis,
an integer list on the frame axis), ``shape``, ``dtype``, ``__array__`` and a small cache
of recently read frames. Indexing reads only the frames it needs, so napari, dask and
``VideoSession`` can use the object directly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np


class FramesArrayLike:
    """The array protocol of a lazy (N, ...) stack whose subclass gives ``shape``, ``dtype`` and
    ``frame(k)``: ``ndim``, ``nbytes``, ``len``, numpy indexing (``gather_frames``), ``__array__``."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def frame(self, k: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return gather_frames(key, self.shape, self.dtype, self.frame)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)


class FrameArray(FramesArrayLike):
    """(N, *frame_shape) frames read lazily by ``read_frame``; thread-safe, ``cache_frames`` kept."""

    def __init__(self, n_frames: int, frame_shape: tuple[int, ...], dtype: Any,
                 read_frame: Callable[[int], np.ndarray], *, cache_frames: int = 4, name: str = "frames") -> None:
        self.shape: tuple[int, ...] = (int(n_frames), *(int(n) for n in frame_shape))
        self.dtype = np.dtype(dtype)
        self._read = read_frame
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_frames = cache_frames
        self._lock = threading.Lock()
        self._name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, source={self._name!r})"

    def frame(self, k: int) -> np.ndarray:
        """Frame ``k`` (from the cache when it was read recently)."""
        with self._lock:
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                return hit
            data = np.asarray(self._read(k), dtype=self.dtype).reshape(self.shape[1:])
            data.setflags(write=False)
            if self._cache_frames > 0:
                self._cache[k] = data
                while len(self._cache) > self._cache_frames:
                    self._cache.popitem(last=False)
            return data

    def close(self) -> None:
        with self._lock:
            self._cache.clear()


def split_frame_key(key: Any, ndim: int, n_lead: int = 1) -> tuple[Any, tuple]:
    """Split a numpy index into its part over the ``n_lead`` frame (page-grid) axes and its
    within-frame part (ints and slices only). With ``n_lead`` 1 the first part is one index."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise IndexError("np.newaxis is not supported in indices of a lazily read stack")
    n_ellipsis = sum(k is Ellipsis for k in key)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        pos = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:pos] + (slice(None),) * (ndim - len(key) + 1) + key[pos + 1:]
    if len(key) > ndim:
        raise IndexError(f"too many indices for an array of {ndim} dimensions")
    key = key + (slice(None),) * (ndim - len(key))
    if any(not isinstance(k, (int, np.integer, slice)) for k in key[n_lead:]):
        raise IndexError("only integers and slices can index the image axes of a lazily read stack")
    return (key[0] if n_lead == 1 else key[:n_lead]), key[n_lead:]


def gather_frames(key: Any, shape: tuple[int, ...], dtype: Any, frame: Callable[[int], np.ndarray]) -> np.ndarray:
    """``key`` applied to a (N, ...) stack whose frame ``k`` is ``frame(k)``: each frame needed is
    read once, in ascending order (a video decoder then only runs forward)."""
    frame_key, plane_key = split_frame_key(key, len(shape))
    positions = np.arange(shape[0])[frame_key]
    if np.ndim(positions) == 0:
        return np.array(frame(int(positions))[plane_key])
    plane_shape = np.broadcast_to(np.empty((), np.bool_), shape[1:])[plane_key].shape
    flat = np.asarray(positions).ravel()
    out = np.empty((flat.size, *plane_shape), dtype)
    for k in np.unique(flat):
        out[flat == k] = frame(int(k))[plane_key]
    return out.reshape(np.shape(positions) + plane_shape)
