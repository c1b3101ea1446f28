"""Mask prompts from a label image (TIFF or .npy), read one frame at a time.

Each nonzero label on a frame becomes a :class:`MaskPrompt` for the object with that
id; frames without labels are skipped. A 2D image prompts frame 0; a (T, Y, X) stack
prompts every frame (also when tifffile reads a 3- or 4-frame stack as planar RGB
samples, as napari's own Labels writer produces); with more axes, ``index`` picks
the outer position (as for CSVs).
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..engine.prompts import MaskPrompt, PromptSet
from ..errors import InputError, PromptError
from .stack import read_stack


class CompressedPlane:
    """One label frame kept zlib-compressed (label images shrink 20-100x); the most recently
    expanded plane is cached, so the masks of one frame cost a single decompression."""

    _last: tuple["CompressedPlane", np.ndarray] | None = None  # the plane object itself: ids get reused
    _lock = threading.Lock()

    def __init__(self, plane: np.ndarray) -> None:
        self.shape = tuple(plane.shape)
        self.dtype = plane.dtype
        self._data = zlib.compress(np.ascontiguousarray(plane).tobytes(), 1)

    def array(self) -> np.ndarray:
        with CompressedPlane._lock:
            last = CompressedPlane._last
            if last is not None and last[0] is self:
                return last[1]
            plane = np.frombuffer(zlib.decompress(self._data), dtype=self.dtype).reshape(self.shape)
            CompressedPlane._last = (self, plane)
            return plane


class LabelMask:
    """The mask ``plane == obj_id``, built only when it is used (``np.asarray(mask)``).

    Keeps mask prompts from a whole label stack (e.g. Cellpose on every frame) at the size of
    the compressed labels instead of frames x labels x Y x X booleans.
    """

    ndim = 2
    dtype = np.dtype(bool)

    def __init__(self, plane: CompressedPlane, obj_id: int) -> None:
        self.plane = plane
        self.obj_id = int(obj_id)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.plane.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        mask = self.plane.array() == self.obj_id
        return mask if dtype is None else mask.astype(dtype)

    def __getattr__(self, name: str) -> Any:  # .sum(), .any(), indexing helpers: act as the array
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self)[key]


def read_label_prompts(path: str | Path, *, index: Sequence[int] | None = None) -> PromptSet:
    """One MaskPrompt per (frame, nonzero label) of the label image at ``path``.

    Frames are read one at a time and kept compressed; each mask is a :class:`LabelMask`
    that becomes a boolean array when the session uses it.
    """
    path = Path(path)
    try:
        stack = read_stack(path)
    except InputError as exc:
        raise PromptError(f"Cannot use {path.name} as mask prompts: {exc}") from None
    with stack:
        data = stack.data
        if stack.dtype.kind not in "biu":
            raise PromptError(
                f"{path.name} holds {stack.dtype} values; mask prompts need an integer "
                "label image (save the Labels layer, not an Image layer)."
            )
        # napari's Labels writer lets tifffile store 3- or 4-frame stacks as planar
        # "RGB" samples (axes CYX); a leading sample axis of a label image is frames.
        if "C" in stack.axes[1:]:
            raise PromptError(f"{path.name} is a colour image; mask prompts need a label image.")
        n_outer = max(stack.ndim - 3, 0)
        if index is None:
            if any(n > 1 for n in stack.shape[:n_outer]):
                raise PromptError(
                    f"{path.name} has shape {stack.shape}; choose the outer position with "
                    f"index=(...) ({n_outer} values)."
                )
            index = (0,) * n_outer
        if len(index) != n_outer:
            raise PromptError(
                f"index={tuple(index)} must give {n_outer} values for {path.name} of shape {stack.shape}."
            )
        outer = tuple(int(i) for i in index)
        if any(not 0 <= i < n for i, n in zip(outer, stack.shape)):
            raise PromptError(f"index={outer} is outside {path.name} of shape {stack.shape}.")
        n_frames = 1 if stack.ndim == 2 else stack.shape[n_outer]
        masks: list[MaskPrompt] = []
        for frame in range(n_frames):
            plane = np.asarray(data[...] if stack.ndim == 2 else data[outer + (frame,)])
            ids = np.unique(plane)
            if ids.size and ids[0] < 0:
                raise PromptError(
                    f"{path.name}, frame {frame}: label {ids[0]} is negative; labels must be 0 or more."
                )
            if not (ids > 0).any():
                continue
            packed = CompressedPlane(plane)
            for obj_id in ids[ids > 0]:
                masks.append(MaskPrompt(frame=frame, obj_id=int(obj_id), mask=LabelMask(packed, int(obj_id))))
    return PromptSet(masks=masks)
