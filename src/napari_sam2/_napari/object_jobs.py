"""The object panel's edits without Qt: clear on this frame, delete, split here, merge into.

Each edit is a job on the controller's :class:`~.runner.JobRunner` (the session is touched in its
worker, one job at a time with propagations and prompt syncs); its results are written into the
output Labels layer as one undo step. Rules, as the engine has them:

* **clear** (object, frame): an empty mask prompt there ("not on this frame", as in SAM 2).
* **delete** (object): removed from the session, erased from every frame of the output labels.
* **split here** (object, frame): its mask there is cut into connected components; the object ends
  there (``VideoSession.end_object``, erased from that frame on), the two largest parts become two
  new objects (mask prompts), and ``session.lineage`` records parent -> daughters on that frame.
* **merge** (keep, other, frame): ``other``'s mask there is added to ``keep``'s (a mask prompt), and
  ``other`` ends from that frame on.

After split and merge, press Propagate to carry the new masks through the following frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.everything import next_ids
from ..errors import InputError
from .everything_jobs import NewObjects
from .objects import frames_with
from .runner import Job

SPLIT_ND = "Split and merge work on (T, Y, X) stacks; this one has more leading axes."


@dataclass(frozen=True)
class Ended:
    """``obj_id`` ends on frame key ``key``: erase it from there on in the output labels."""

    obj_id: int
    key: tuple[int, ...]


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The connected parts (8-connected) of a bool mask, largest first."""
    from scipy import ndimage

    lab, n = ndimage.label(np.asarray(mask, bool), structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    sizes = np.bincount(lab.ravel())[1:]
    return [lab == i + 1 for i in np.argsort(-sizes, kind="stable")]


def _frame_of(session: Any, key: tuple[int, ...]) -> int:
    if session.layout.outer_shape:
        raise InputError(SPLIT_ND)
    return int(key[session.layout.axis])


def _without(session: Any, key: tuple[int, ...], ended: int) -> Any:
    """The frame's result without ``ended`` (a prompt of it on that frame still has an output there)."""
    return session.result(key, [i for i in session.obj_ids if i != ended])


def clear_job(session: Any, key: tuple[int, ...], obj_id: int) -> Iterator[Any]:
    session.add_mask(key, obj_id, np.zeros(session.frame_shape, bool))
    yield session.result(key)


def delete_job(session: Any, obj_id: int) -> None:
    if obj_id in session.obj_ids:
        session.remove_object(obj_id)


def split_job(session: Any, key: tuple[int, ...], obj_id: int) -> Iterator[Any]:
    frame = _frame_of(session, key)
    if obj_id not in session.obj_ids:
        raise InputError(f"There is no object {obj_id} in the session; pick one of the list.")
    parts = components(session.result(key, [obj_id]).masks[0])
    if len(parts) < 2:
        raise InputError(f"Object {obj_id} is in {'one piece' if parts else 'no piece'} on frame {frame}: "
                         "nothing to split; go to a frame where it has two separate parts.")
    daughters = next_ids(session, 2)
    session.lineage.add_division(obj_id, daughters, frame)  # checked first: a refused split changes nothing
    session.end_object(key, obj_id)
    for d, part in zip(daughters, parts[:2]):
        session.add_mask(key, d, part)
    yield NewObjects(tuple(daughters))
    yield Ended(obj_id, tuple(key))
    yield _without(session, key, obj_id)


def merge_job(session: Any, key: tuple[int, ...], keep: int, other: int) -> Iterator[Any]:
    _frame_of(session, key)
    if keep == other:
        raise InputError(f"Pick two different objects to merge (both are {keep}).")
    for obj_id in (keep, other):
        if obj_id not in session.obj_ids:
            raise InputError(f"There is no object {obj_id} in the session; pick one of the list.")
    res = session.result(key, [keep, other])
    if not res.masks[1].any():
        raise InputError(f"Object {other} has no mask on this frame: nothing to merge into {keep}.")
    session.add_mask(key, keep, res.masks[0] | res.masks[1])
    session.end_object(key, other)
    yield Ended(other, tuple(key))
    yield _without(session, key, other)


class ObjectJobs:
    """The object panel's edits, queued on one controller."""

    def __init__(self, controller: Any, everything: Any) -> None:
        self.controller = controller
        self.everything = everything  # its _apply notes new objects; its on_changed refreshes the panel

    def clear(self, key: Any, obj_id: int) -> None:
        ctrl = self.controller
        ctrl.tracker.note_mask(obj_id)
        self._submit("clear", lambda s: (clear_job, (s, tuple(key), int(obj_id)), {}))

    def delete(self, obj_id: int) -> None:
        """Remove the object from the session and erase it everywhere in the output labels."""
        obj_id = int(obj_id)
        ctrl = self.controller

        def removed(_: Any) -> None:
            self._erase(obj_id, None)
            ctrl.state.forget_object(obj_id)
            ctrl.tracker.forget_object(obj_id)
            ctrl.view.lost(ctrl.state.lost_frames())
            ctrl.view.status(f"Object {obj_id} deleted.")

        self._submit("delete", lambda s: (delete_job, (s, obj_id), {}), on_return=removed)

    def split(self, key: Any, obj_id: int) -> None:
        self._submit("split", lambda s: (split_job, (s, tuple(key), int(obj_id)), {}),
                     status=f"Object {obj_id} split; press Propagate to track its daughters.")

    def merge(self, key: Any, keep: int, other: int) -> None:
        self._submit("merge", lambda s: (merge_job, (s, tuple(key), int(keep), int(other)), {}),
                     status=f"Object {other} merged into {keep}; press Propagate to carry it on.")

    # ---- internals -----------------------------------------------------------------------------
    def _submit(self, name: str, make: Any, on_return: Any = None, status: str = "") -> None:
        ctrl = self.controller
        ctrl.sync()
        group: list[Any] = []

        def spec(job: Job) -> Any:
            if ctrl.session is None:
                return None
            writer = ctrl.output.get()
            writer.begin_group()  # the edit is one undo step
            group.append(writer)
            return make(ctrl.session)

        def done(job: Job) -> None:
            for writer in group:
                writer.end_group()
            if status and not job.cancel.is_set() and not failed:
                ctrl.view.status(status)
            self.everything._changed()

        failed: list[bool] = []
        ctrl._submit(name, spec, on_yield=self._apply, on_return=on_return,
                     on_error=lambda err: (failed.append(True), ctrl.report(err)), on_done=done)

    def _apply(self, item: Any) -> None:
        if isinstance(item, Ended):
            self._erase(item.obj_id, item.key)
        else:
            self.everything._apply(item)

    def _erase(self, obj_id: int, since: tuple[int, ...] | None) -> None:
        """Erase ``obj_id`` from the output labels (from frame key ``since`` on, or everywhere)."""
        ctrl = self.controller
        layer = ctrl.view.output(False)
        if layer is None:
            return
        writer = ctrl.output.get()
        for key in frames_with(layer.data, obj_id):
            if since is None or key >= tuple(since):
                writer.erase(key, [obj_id])
