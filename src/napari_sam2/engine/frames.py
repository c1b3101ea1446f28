"""Lazy access to the frames of a stack of any array-like, preprocessed ahead of need.

Nothing reads the whole stack: a frame is read (``data[index]``), mapped to uint8 RGB
with the stack's single intensity range and resized to the model's input when it is
needed, and the next frames in the direction of travel are prepared in a background
thread while the model works on the current one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from .layout import StackLayout
from .preprocess import robust_range, sample_indices, to_rgb, to_uint8, video_input


def as_array_like(frames: Any) -> Any:
    """Accept array-likes as they are; stack a list of frames after checking their shapes."""
    if isinstance(frames, torch.Tensor):  # already in memory: a host view (a copy if on a GPU)
        return frames.detach().cpu().numpy()
    if hasattr(frames, "shape") and hasattr(frames, "__getitem__") and hasattr(frames, "dtype"):
        return frames
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise InputError("The stack has no frames.")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise InputError(f"Frames have inconsistent shapes {sorted(shapes)}; all frames must match.")
        return np.stack([np.asarray(f) for f in frames])
    raise InputError(f"Cannot use an object of type {type(frames).__name__} as an image stack.")


def stack_intensity_range(data: Any, layout: StackLayout, channel: int | None) -> tuple[float, float] | None:
    """One intensity range for the whole stack (None for uint8), from a sparse frame sample."""
    if np.dtype(data.dtype) == np.uint8:
        return None
    picks = []
    outer_sizes = layout.outer_shape
    for i in sample_indices(layout.num_frames, 12):
        outer = tuple(s // 2 for s in outer_sizes)
        f = np.asarray(data[layout.index(outer, i)])
        if layout.rgb and channel is not None:
            f = f[..., channel]
        picks.append(f[:: max(1, f.shape[0] // 256), :: max(1, f.shape[1] // 256)])
    sample = np.stack(picks).astype(np.float64)
    finite = np.isfinite(sample)
    if not finite.any():
        raise InputError("The stack holds no finite values (all NaN or infinite).")
    lo, hi = robust_range(sample[finite])
    if float(sample[finite].min()) == float(sample[finite].max()):
        raise InputError("The stack has constant intensity everywhere; there is nothing to segment.")
    return lo, hi


class FrameSource:
    """Model-ready frames of one sequence (fixed outer index), with background prefetch."""

    def __init__(self, data: Any, layout: StackLayout, outer: tuple[int, ...], image_size: int,
                 intensity_range: tuple[float, float] | None, channel: int | None,
                 executor: ThreadPoolExecutor, max_ahead: int = 3) -> None:
        self.data, self.layout, self.outer = data, layout, outer
        self.image_size = image_size
        self.intensity_range = intensity_range
        self.channel = channel
        self._executor = executor
        self._max_ahead = max_ahead
        self._pending: OrderedDict[int, Future] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def num_frames(self) -> int:
        return self.layout.num_frames

    def rgb8(self, frame: int) -> np.ndarray:
        """(Y, X, 3) uint8 of ``frame`` with the stack's intensity range, before resizing."""
        raw = np.asarray(self.data[self.layout.index(self.outer, frame)])
        rng = self.intensity_range
        if raw.dtype != np.uint8 or rng is not None:
            raw = to_uint8(raw, rng if rng is not None else robust_range(raw))
        return to_rgb(raw, self.channel)

    def _load(self, frame: int) -> torch.Tensor:
        return video_input(self.rgb8(frame), self.image_size)

    def prefetch(self, frames: Sequence[int]) -> None:
        """Start preparing ``frames`` in the background (bounded number kept ahead)."""
        with self._lock:
            for f in frames:
                if 0 <= f < self.num_frames and f not in self._pending:
                    self._pending[f] = self._executor.submit(self._load, f)
            while len(self._pending) > self._max_ahead:
                self._pending.popitem(last=False)[1].cancel()

    def get(self, frame: int) -> torch.Tensor:
        """(3, S, S) float32 normalised input of ``frame``."""
        with self._lock:
            fut = self._pending.pop(frame, None)
        if fut is not None and not fut.cancelled():
            return fut.result()
        return self._load(frame)
