"""Segment everything and track everything in the widget, without Qt: jobs of a :class:`~.controller.Sam2Controller`.

:class:`EverythingJobs` queues two kinds of job on the controller's :class:`~.runner.JobRunner` (so
they run in its worker thread, one at a time with the other jobs, and Cancel reaches them):

* ``segment(key, settings)``: ``VideoSession.segment_everything`` on the frame shown; every kept
  mask becomes an object (mask prompt) and the frame is written into the output Labels layer.
* ``propagate(key, settings)``: a forward propagation with discovery of new objects every N frames,
  ending of objects absent for K frames and divisions (``engine.discovery``), written like an
  ordinary propagation (one undo step, progress, review list, Follow).

``EverythingNotice`` warnings ("no objects", "max_objects reached") become one widget message each,
never a traceback. The generator is made by ``controller.mask_source_factory(model, generator_settings)``
when set (tests inject stub generators there), else SAM 2's ``MaskGenerator``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..engine.everything import EverythingNotice, MaskFilter
from ..errors import InputError
from . import messages as M
from .progress import ProgressMeter
from .runner import Job

NOTHING_TO_TRACK = "SAM 2: nothing to track yet: press 'Segment everything' or click an object first."
FORWARD_ONLY = ("SAM 2: finding new objects, ending absent ones and divisions run forward: choose 'forward' "
                "under Direction (or turn those options off).")


@dataclass(frozen=True)
class Notice:
    """A message for the panel (an EverythingNotice from the worker)."""

    text: str


@dataclass(frozen=True)
class NewObjects:
    """Objects the session gained from mask prompts (segment everything, discovery, divisions)."""

    obj_ids: tuple[int, ...]


@dataclass
class EverythingSettings:
    """The panel's choices: the mask filter, the generator and the tracking options (0 = off)."""

    min_area: int = 0
    max_area: int | None = None
    drop_border: bool = False
    drop_nested: bool = False
    max_objects: int = 1000
    generator_settings: dict[str, Any] = field(default_factory=dict)  # MaskGenerator keywords
    discover_every: int = 0
    end_after_absent: int = 0
    divisions: bool = False

    @property
    def mask_filter(self) -> MaskFilter:
        return MaskFilter(self.min_area, self.max_area or None, self.drop_border, self.drop_nested,
                          self.max_objects)

    @property
    def tracking(self) -> bool:
        """Whether a propagation needs the track-everything loop (else an ordinary one does)."""
        return bool(self.discover_every or self.end_after_absent or self.divisions)


def default_mask_source(model: Any, generator_settings: dict[str, Any]) -> Any:
    """SAM 2's automatic mask generator with the panel's settings."""
    from ..engine.mask_generator import MaskGenerator

    return MaskGenerator(model, **generator_settings)


def _notices(caught: list) -> Iterator[Notice]:
    for w in caught:
        if issubclass(w.category, EverythingNotice):
            yield Notice(str(w.message))


def segment_job(session: Any, key: Any, generator: Any, mask_filter: MaskFilter) -> Iterator[Any]:
    """Segment everything on frame ``key``; yields the notices, the new ids and the frame."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EverythingNotice)
        frame = key[0] if len(key) == 1 else key  # the notice names frame 7, not (7,)
        ids = session.segment_everything(frame, generator=generator, mask_filter=mask_filter)
    yield from _notices(caught)
    if ids:
        yield NewObjects(tuple(ids))
        yield session.result(key)
    return ids


def track_job(session: Any, key: Any, stop: Any, cancel: threading.Event, generator: Any,
              settings: EverythingSettings) -> Iterator[Any]:
    """Propagate forward with discovery / ending / divisions; yields each final frame."""
    known = set(session.obj_ids)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EverythingNotice)
        for result in session.propagate(
            "forward", start=key, stop=stop, cancel=cancel, discover_every=settings.discover_every or None,
            generator=generator if settings.discover_every else None,
            mask_filter=settings.mask_filter, end_after_absent=settings.end_after_absent or None,
            divisions=settings.divisions,
        ):
            new = tuple(i for i in result.obj_ids if i not in known)
            if new:
                known.update(new)
                yield NewObjects(new)
            yield result
            if cancel.is_set():
                break
    yield from _notices(caught)


class EverythingJobs:
    """Segment-everything and track-everything jobs of one controller."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.on_changed: Any = None  # called (main thread) when objects appeared or a job ended

    def generator(self, settings: EverythingSettings) -> Any:
        ctrl = self.controller
        factory = getattr(ctrl, "mask_source_factory", None) or default_mask_source
        return factory(ctrl.model, dict(settings.generator_settings))

    # ---- segment everything on one frame -------------------------------------------------------
    def segment(self, key: Any, settings: EverythingSettings) -> bool:
        """Queue segment-everything on frame ``key``; False when refused (a propagation runs)."""
        ctrl = self.controller
        if "propagate" in ctrl.runner.pending or ctrl.propagating:
            ctrl.view.message("info", M.PROPAGATING)
            return False
        try:
            mask_filter = settings.mask_filter
        except InputError as err:
            ctrl.report(err)
            return False
        ctrl.sync()  # the clicked objects first: what they cover is not segmented again

        def spec(job: Job) -> Any:
            if ctrl.session is None:
                return None
            ctrl.view.status(f"Segmenting everything on frame {key[0] if len(key) == 1 else key}...")
            return segment_job, (ctrl.session, tuple(key), self.generator(settings), mask_filter), {}

        ctrl._submit("everything", spec, on_yield=self._apply, on_return=self._segmented)
        return True

    def _segmented(self, ids: Any) -> None:
        if ids:
            self.controller.view.status(f"Segment everything: {len(ids)} new objects; press Propagate to track them.")
        self._changed()

    # ---- track everything ------------------------------------------------------------------------
    def propagate(self, key: Any, settings: EverythingSettings, direction: str = "forward", stop: Any = None,
                  layer_ids: Any = ()) -> bool:
        """Queue a forward propagation with the tracking options; False when refused."""
        ctrl = self.controller
        if "propagate" in ctrl.runner.pending or ctrl.propagating:
            ctrl.view.message("info", M.PROPAGATING)
            return False
        if direction != "forward":
            ctrl.view.message("warning", FORWARD_ONLY)
            return False
        if not ctrl.output_ok(max(set(layer_ids) | ctrl.state.owned_ids, default=0)):
            return False
        ctrl.sync()
        failed: list[bool] = []
        ctrl._submit(
            "propagate",
            lambda job: self._track_spec(tuple(key), stop, settings, job),
            on_yield=self._on_item,
            on_error=lambda err: (failed.append(True), ctrl.report(err)),
            on_done=lambda job: self._done(job, bool(failed)),
        )
        return True

    def _track_spec(self, key: Any, stop: Any, settings: EverythingSettings, job: Job) -> Any:
        ctrl = self.controller
        session = ctrl.session
        if session is None or not list(session.obj_ids):
            ctrl.view.message("warning", NOTHING_TO_TRACK)
            return None
        layout = session.layout
        ctrl.meter = ProgressMeter(layout.count_visits("forward", key[layout.axis], stop))
        ctrl.output.get().begin_group()  # the whole run is one undo step
        ctrl.view.progress(0, ctrl.meter.total, "Starting...", "start")
        generator = self.generator(settings) if settings.discover_every else None
        return track_job, (session, key, stop, job.cancel, generator, settings), {}

    def _on_item(self, item: Any) -> None:
        if isinstance(item, (Notice, NewObjects)):
            self._apply(item)
        else:
            self.controller._on_frame(item)

    def _done(self, job: Job, failed: bool) -> None:
        self.controller._propagate_done(job, failed)
        self._changed()

    # ---- results -------------------------------------------------------------------------------
    def _apply(self, item: Any) -> None:
        ctrl = self.controller
        if isinstance(item, Notice):
            ctrl.view.message("info", f"SAM 2: {item.text}")
        elif isinstance(item, NewObjects):
            for obj_id in item.obj_ids:
                ctrl.tracker.note_mask(obj_id)  # no click of theirs: a prompt sync must not remove them
            ctrl.state.own(item.obj_ids)
        else:
            ctrl._apply(item)

    def _changed(self) -> None:
        if self.on_changed is not None:
            self.on_changed()
