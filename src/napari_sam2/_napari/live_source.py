"""A growing napari image as an engine :class:`~napari_sam2.engine.stream.FrameStream` (no Qt, no napari).

Acquisition plugins grow an Image layer in one of two ways: they replace ``layer.data`` with a
longer array (numpy, dask), or they write into a zarr array that grows in place. Either way the
layer's data already holds every frame, so :class:`LayerStream` copies none: it is a FrameStream
whose frames are read from the newest data it was given, and :meth:`LayerStream.grow` (called on
the main thread when the layer changed) only records the arrival time of each new frame (8 bytes
a frame) and wakes the tracking thread. Every frame stays readable (nothing is dropped, so a click
on any frame that arrived works), and memory stays flat for any length.

A change the stream cannot follow (the stack got shorter, or its frames changed shape or dtype)
fails the stream with an :class:`~napari_sam2.errors.InputError` naming the fix: the tracking
thread then ends with that message instead of waiting for ever.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..engine.stream import FrameStream
from ..errors import InputError


def live_frame_shape(data: Any, rgb: bool) -> tuple[int, ...]:
    """The frame shape of a stack usable live: (T, Y, X) or (T, Y, X, C) with ``rgb``; else InputError."""
    shape = tuple(int(s) for s in data.shape)
    if len(shape) != (4 if rgb else 3):
        want = "(T, Y, X, C) colour" if rgb else "(T, Y, X)"
        raise InputError(f"Live mode follows a {want} image growing along its first axis; this one has shape "
                         f"{shape}: pick a time-lapse image, or turn Live off to propagate it as a whole.")
    return shape[1:]


class LayerStream(FrameStream):
    """A FrameStream over the (growing) data of an image layer; frames are read in place, never copied."""

    def __init__(self, data: Any, rgb: bool = False, name: str = "image") -> None:
        super().__init__(live_frame_shape(data, rgb), data.dtype)
        self.name = name
        self._data = data

    def frame(self, k: int) -> np.ndarray:
        with self._cond:
            n, data = len(self._times), self._data
        if not 0 <= k < n:
            raise IndexError(f"frame {k} is not in the stream, which has {n} frames so far")
        arr = np.asarray(data[k])
        if arr.shape != self.frame_shape:  # the layer's data was swapped for something else meanwhile
            raise InputError(f"Frame {k} of '{self.name}' now has shape {arr.shape}, not {self.frame_shape}; "
                             "turn Live off and on to start again on the new data.")
        return arr

    def append(self, frame: Any) -> int:  # the layer is the one source of frames
        raise InputError(f"Frames of '{self.name}' come from its layer: grow the layer's data instead.")

    def grow(self, data: Any, when: float | None = None) -> int:
        """Take the layer's current ``data``; returns how many new frames it holds (0: none).

        ``when``: the ``time.perf_counter()`` at which they arrived (default now), for latencies.
        A shorter stack, or frames of another shape or dtype, fail the stream (InputError).
        """
        if self.closed:
            return 0
        shape, n_old = tuple(int(s) for s in data.shape), len(self)
        if shape[1:] != self.frame_shape or np.dtype(data.dtype) != self.dtype:
            self.fail(InputError(
                f"The frames of '{self.name}' changed from shape {self.frame_shape} {self.dtype} to {shape[1:]} "
                f"{np.dtype(data.dtype)} during live tracking; turn Live off and on to start on the new frames."))
            return 0
        if shape[0] < n_old:
            self.fail(InputError(
                f"'{self.name}' got shorter during live tracking ({n_old} -> {shape[0]} frames); turn Live off "
                "and on to start again."))
            return 0
        stamp = time.perf_counter() if when is None else float(when)
        with self._cond:
            self._data = data
            for _ in range(shape[0] - n_old):
                self._times.append(stamp)
            self._cond.notify_all()
        return shape[0] - n_old


class LiveStats:
    """What the panel says about a live run: frames arrived, tracked, behind, skipped, latency."""

    def __init__(self) -> None:
        self.tracked = 0  # results received
        self.last = -1  # the last frame tracked
        self.skipped = 0
        self.latency = 0.0  # seconds, of the last result

    def add(self, result: Any) -> None:
        self.tracked += 1
        self.last = int(result.key[0])
        self.skipped += int(getattr(result, "skipped", 0) or 0)
        self.latency = float(getattr(result, "latency", 0.0) or 0.0)

    def behind(self, arrived: int) -> int:
        return max(int(arrived) - 1 - self.last, 0)

    def text(self, arrived: int) -> str:
        return (f"Live: frame {self.last} tracked ({arrived} arrived): {self.behind(arrived)} behind, "
                f"{self.skipped} skipped, latency {1000 * self.latency:.0f} ms.")
