"""Array-like view of DICOM frames that decodes a frame only when it is indexed.

One frame is one frame of a multi-frame file (an ultrasound cine) or one single-frame file of
a series (a CT/MR slice); ``pydicom.pixels.pixel_array(path, index=k)`` decodes just that
frame, reading the file anew each time (no file stays open between reads). A few decoded
frames are kept in a small LRU cache, so napari's repeated reads of the shown frame are free.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._frame_array import FramesArrayLike

_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class PixelRules:
    """How decoded stored values become the values shown (colour, inversion, rescale)."""

    photometric: str
    bits_stored: int
    signed: bool
    palette: Any = None  # the header, for PALETTE COLOR
    rescale: bool = False  # apply per-frame slope/intercept, output float32

    def apply(self, arr: np.ndarray, slope: float, intercept: float) -> np.ndarray:
        if self.photometric == "PALETTE COLOR" and self.palette is not None:
            from pydicom.pixels import apply_color_lut

            return np.asarray(apply_color_lut(arr, self.palette))
        if self.rescale:
            return (arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)
        if self.photometric == "MONOCHROME1":
            bits = self.bits_stored
            low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if self.signed else (0, 2**bits - 1)
            return (high + low - arr.astype(np.int64)).astype(arr.dtype)
        return arr


@dataclass(frozen=True)
class FrameSource:
    """Where one frame lives: a file, the frame index in it, its rescale slope and intercept."""

    path: Path
    index: int
    slope: float = 1.0
    intercept: float = 0.0
    deflated: bool = False  # Deflated Explicit VR: the whole file must be inflated to reach the pixels


class DicomFrames(FramesArrayLike):
    """Read-only (N, Y, X[, C]) array-like over DICOM frames, decoded on demand.

    Exposes ``shape``, ``dtype``, ``ndim``, ``__len__``, ``nbytes``, numpy-style
    ``__getitem__`` (ints, slices, Ellipsis, an integer array on the frame axis) and
    ``__array__``; safe to share between threads and to wrap with ``dask.array.from_array``.
    """

    def __init__(self, sources: list[FrameSource], rules: PixelRules, frame_shape: tuple[int, ...]) -> None:
        self._sources = list(sources)
        self._rules = rules
        self._frame_shape = tuple(int(n) for n in frame_shape)
        self._one_file = len({s.path for s in self._sources}) == 1 and len(self._sources) > 1
        self.dtype: np.dtype | None = None  # known once frame 0 is decoded
        self.shape: tuple[int, ...] = (len(self._sources), *self._frame_shape)
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = 2
        self._closed = False
        first = self._decode(0)  # fail at open (missing codec, no pixel data), and learn the dtype
        self.dtype = first.dtype
        self._cache_size = max(2, min(16, _CACHE_BYTES // max(first.nbytes, 1)))
        self._remember(0, first)

    def __repr__(self) -> str:
        return f"DicomFrames(shape={self.shape}, dtype={self.dtype}, files={len({s.path for s in self._sources})})"

    def close(self) -> None:
        """Drop the cache; indexing afterwards raises ``ValueError``."""
        with self._lock:
            self._closed = True
            self._cache.clear()

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (0 <= i < len), decoded or from the cache."""
        with self._lock:
            if self._closed:
                raise ValueError("the DICOM stack is closed")
            cached = self._cache.get(i)
            if cached is not None:
                self._cache.move_to_end(i)
                return cached
        arr = self._decode(i)  # outside the lock: frames of different files decode in parallel
        with self._lock:
            self._remember(i, arr)
        return arr

    def _remember(self, i: int, arr: np.ndarray) -> None:
        arr.flags.writeable = False  # cached frames are shared: nobody may change them
        self._cache[i] = arr
        self._cache.move_to_end(i)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _decode(self, i: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        src = self._sources[i]
        what = f"frame {src.index} of {src.path.name}" if self._one_file else src.path.name
        try:  # reads only group 0028 and file meta elements: no patient data can reach a warning
            arr = np.asarray(pixel_array(_inflated(src.path) if src.deflated else src.path, index=src.index))
        except AttributeError as exc:
            if "no pixel data" in str(exc).lower() or "Pixel Data" in str(exc):
                raise InputError(
                    f"{src.path.name} holds no pixel data (not an image); choose an image file or series."
                ) from exc
            raise _damaged(what, exc) from exc
        except FileNotFoundError as exc:
            raise InputError(f"{src.path.name} has disappeared since it was opened; open the stack again.") from exc
        except Exception as exc:  # codec failure, truncated file
            raise _damaged(what, exc) from exc
        arr = self._rules.apply(arr, src.slope, src.intercept)
        if arr.shape != self._frame_shape:
            raise InputError(
                f"{what} decodes to shape {arr.shape}, not {self._frame_shape} like the other frames; "
                "export the series again with one image size."
            )
        return arr if self.dtype is None else arr.astype(self.dtype, copy=False)


def _inflated(path: Path) -> Any:
    """The dataset of a deflated file, read whole: pixel data plus the image elements only."""
    import pydicom

    from ._dicom_meta import HEADER_KEYWORDS

    return pydicom.dcmread(path, specific_tags=[*HEADER_KEYWORDS, "PixelData"])


def _damaged(what: str, exc: BaseException) -> InputError:
    return InputError(
        f"Cannot decode {what} ({type(exc).__name__}: {str(exc)[:200]}); the file is truncated or "
        "damaged: copy or export it again."
    )
