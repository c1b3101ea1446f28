"""Clean-up of the output labels in the widget, without Qt: a job that cleans frame by frame.

The steps are :class:`~napari_sam2.engine.cleanup.Cleanup`'s (the API's and the command line's,
all off by default). Pressing "Clean up" is the user asking for it, so each object's pixels are
replaced by its cleaned mask, on every frame ("all frames") or on the frame shown. Labels of ids
the session does not own (hand-painted, another tool's) are cleaned too: the whole plane is what
the user sees and asked to clean. The planes are computed in the worker (the GUI stays live; Cancel
stops between frames) and written on the main thread as ONE undo step; a frame that does not change
is not written. ``drop_flicker`` needs the neighbouring frames, so on one frame it does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.cleanup import Cleanup
from ..engine.flicker import FlickerFilter
from .objects import frame_keys
from .runner import Job


@dataclass(frozen=True)
class CleanedPlane:
    """The cleaned labels of frame ``key`` and the ids it held before (all cleared, then repainted)."""

    key: tuple[int, ...]
    plane: np.ndarray
    ids: tuple[int, ...]


def _sequences(shape: tuple[int, ...], axis: int, only: tuple[int, ...] | None) -> list[list[tuple[int, ...]]]:
    """Frame keys grouped by sequence along ``axis`` (each in frame order); just ``only`` when given."""
    if only is not None:
        return [[tuple(int(k) for k in only)]]
    groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for key in frame_keys(shape):
        groups.setdefault(key[:axis] + key[axis + 1:], []).append(key)
    return list(groups.values())


def cleanup_job(data: Any, cleanup: Cleanup, axis: int = 0, only: tuple[int, ...] | None = None,
                cancel: threading.Event | None = None) -> Iterator[CleanedPlane]:
    """Yield the frames of ``data`` (..., Y, X) that ``cleanup`` changes (see the module docstring)."""
    flicker = cleanup.drop_flicker and only is None
    for keys in _sequences(tuple(data.shape), axis, only):
        filt = FlickerFilter() if flicker else None
        before: dict[tuple[int, ...], np.ndarray] = {}
        for key in keys:
            if cancel is not None and cancel.is_set():
                return
            plane = np.asarray(data[key])
            cleaned = cleanup.apply(plane) if cleanup.per_frame else plane
            if filt is None:
                yield from _changed(key, plane, cleaned)
                continue
            before[key] = plane
            for done_key, done in filt.push(cleaned, key):
                yield from _changed(done_key, before.pop(done_key), done)
        if filt is not None:
            for done_key, done in filt.finish():
                yield from _changed(done_key, before.pop(done_key), done)


def _changed(key: tuple[int, ...], plane: np.ndarray, cleaned: np.ndarray) -> Iterator[CleanedPlane]:
    if cleaned is plane or np.array_equal(cleaned, plane):
        return
    ids = np.unique(plane)
    yield CleanedPlane(tuple(key), np.asarray(cleaned), tuple(int(i) for i in ids[ids != 0]))


class CleanupJobs:
    """Queues clean-up runs on one controller; counts the frames each run changed."""

    def __init__(self, controller: Any, on_done: Any = None) -> None:
        self.controller = controller
        self.on_done = on_done  # called (main thread) with the number of frames changed
        self.changed = 0

    def run(self, cleanup: Cleanup, axis: int = 0, key: tuple[int, ...] | None = None) -> bool:
        """Clean the output labels (all frames, or frame ``key``; ``axis``: the frame axis of the
        leading ones); False when refused."""
        ctrl = self.controller
        layer = ctrl.view.output(False)
        if layer is None:
            ctrl.view.message("warning", "SAM 2: there are no output labels to clean up yet.")
            return False
        if not cleanup.active:
            ctrl.view.message("info", "SAM 2: every clean-up step is off; set one (e.g. fill holes) first.")
            return False
        group: list[Any] = []
        self.changed = 0

        def spec(job: Job) -> Any:
            writer = ctrl.output.get()
            writer.begin_group()  # the whole clean-up is one undo step
            group.append(writer)
            where = "this frame" if key is not None else "every frame"
            ctrl.view.status(f"Cleaning up {where} ({cleanup.describe()})...")
            return cleanup_job, (layer.data, cleanup, axis, key, job.cancel), {}

        def apply(item: CleanedPlane) -> None:
            writer = ctrl.output.get()
            writer.write_labels(item.key, item.plane.astype(layer.data.dtype, copy=False), item.ids, refresh=False)
            self.changed += 1

        def done(job: Job) -> None:
            for writer in group:
                writer.end_group()
            layer.refresh()
            if self.on_done is not None:
                self.on_done(self.changed, job.cancel.is_set())

        ctrl._submit("cleanup", spec, on_yield=apply, on_done=done)
        return True
