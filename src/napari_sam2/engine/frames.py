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
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from .preprocess import robust_range, sample_indices, to_rgb, to_uint8, video_input


@dataclass(frozen=True)
class StackLayout:
    """Which axes of the data are what: leading axes, the propagation axis, Y, X, channels."""

    shape: tuple[int, ...]
    axis: int  # propagation axis (an index into shape)
    rgb: bool  # last axis holds channels

    @property
    def leading(self) -> tuple[int, ...]:
        """Indices of all non-spatial, non-channel axes (propagation axis included)."""
        return tuple(range(len(self.shape) - 2 - int(self.rgb)))

    @property
    def outer_axes(self) -> tuple[int, ...]:
        return tuple(a for a in self.leading if a != self.axis)

    @property
    def outer_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in self.outer_axes)

    @property
    def num_frames(self) -> int:
        return self.shape[self.axis]

    @property
    def frame_shape(self) -> tuple[int, int]:
        y = len(self.shape) - 2 - int(self.rgb)
        return self.shape[y], self.shape[y + 1]

    def index(self, outer: tuple[int, ...], frame: int) -> tuple[int, ...]:
        """The data index of one frame (all leading axes)."""
        idx: list[int] = []
        it = iter(outer)
        for a in self.leading:
            idx.append(frame if a == self.axis else next(it))
        return tuple(idx)

    def split(self, position: int | Sequence[int]) -> tuple[tuple[int, ...], int]:
        """A frame argument (int, or all leading indices) -> (outer index, frame)."""
        if np.ndim(position) == 0:
            if self.outer_axes:
                raise InputError(
                    f"This stack has {len(self.leading)} non-spatial axes; give the frame as a tuple "
                    f"of {len(self.leading)} indices (napari's point coordinates without row, col)."
                )
            return (), _as_index(position)
        pos = tuple(_as_index(p) for p in position)
        if len(pos) != len(self.leading):
            raise InputError(f"Expected {len(self.leading)} leading indices, got {pos}.")
        outer = tuple(pos[a] for a in self.outer_axes)
        for a, v in zip(self.outer_axes, outer):
            if not 0 <= v < self.shape[a]:
                raise InputError(f"Index {v} is outside axis {a} of size {self.shape[a]}.")
        return outer, pos[self.axis]


def _as_index(v: Any) -> int:
    f = float(v)
    if not np.isfinite(f) or abs(f - round(f)) > 1e-6:
        raise InputError(f"Frame index {v!r} is not an integer.")
    return int(round(f))


def guess_layout(data: Any, axis: int, rgb: bool | None, channel: int | None) -> StackLayout:
    """napari's rule: a last axis of 3 or 4 on >= 3-D data is colour, unless told otherwise."""
    shape = tuple(int(s) for s in data.shape)
    if rgb is None:
        rgb = (len(shape) >= 4 and shape[-1] in (3, 4)) or (channel is not None and len(shape) >= 4)
    n_leading = len(shape) - 2 - int(rgb)
    if n_leading < 1:
        raise InputError(
            f"A stack of shape {shape} has no axis to propagate along (need (T, Y, X) or more). "
            "For one 2D image use ImagePredictor."
        )
    if axis < 0:
        axis += n_leading
    if not 0 <= axis < n_leading:
        raise InputError(f"axis={axis} is not one of the stack's non-spatial axes (0..{n_leading - 1}).")
    if any(s == 0 for s in shape):
        raise InputError(f"The stack of shape {shape} is empty.")
    if channel is not None:
        if int(channel) != channel:
            raise InputError(f"channel must be a whole number; got {channel!r}.")
        if not rgb:
            raise InputError(
                f"channel={channel} picks a channel of multichannel frames (Y, X, C), but this stack "
                f"of shape {shape} has no channel axis; leave channel unset."
            )
        if not 0 <= channel < shape[-1]:
            raise InputError(
                f"channel {channel} does not exist: frames have {shape[-1]} channels (0..{shape[-1] - 1})."
            )
    return StackLayout(shape, axis, bool(rgb))


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

    def _load(self, frame: int) -> torch.Tensor:
        raw = np.asarray(self.data[self.layout.index(self.outer, frame)])
        rng = self.intensity_range
        if raw.dtype != np.uint8 or rng is not None:
            raw = to_uint8(raw, rng if rng is not None else robust_range(raw))
        return video_input(to_rgb(raw, self.channel), self.image_size)

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
