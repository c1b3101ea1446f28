"""Forward tracking that keeps up with a changing population: new objects, leavers, divisions.

``track_everything`` drives ``VideoSession.propagate`` in segments. Every ``discover_every``
frames it runs the mask generator on the frame just tracked; masks no track covers
(``everything.uncovered``) become new objects from that frame on, and tracking resumes there
with them. An object absent for ``end_after_absent`` frames is ended (``Clip.end_object``), so
it costs nothing more. With ``divisions``, an object whose mask splits into two parts that stay
apart for ``division_frames`` frames is ended on the first of them, its two parts become
daughter objects (mask prompts) there, ``lineage`` (default ``session.lineage``) records parent ->
daughters, and tracking
resumes from that frame. Results are handed on ``division_frames - 1`` frames late, so frames
recomputed after a division are never handed on twice: each frame is yielded once, final.
Nothing kept grows with the video (a few results, the split parts of splitting objects).
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from .divisions import Division, DivisionWatch
from .everything import NEW_OBJECT_OVERLAP, EverythingNotice, MaskFilter, MaskSource, frame_rgb8, mask_source, \
    next_ids, uncovered
from .results import FrameResult


def track_everything(
    session: Any,
    direction: str = "forward",
    start: Any = None,
    stop: int | None = None,
    *,
    cancel: threading.Event | None = None,
    discover_every: int | None = None,
    generator: MaskSource | None = None,
    mask_filter: MaskFilter | None = None,
    new_object_overlap: float = NEW_OBJECT_OVERLAP,
    end_after_absent: int | None = None,
    divisions: bool = False,
    division_frames: int = 3,
    lineage: Any = None,
    return_logits: bool = False,
    **settings: Any,
) -> Iterator[FrameResult]:
    """Propagate forward with discovery of new objects, ending of absent ones and divisions.

    ``settings``: ``MaskFilter`` fields and ``MaskGenerator`` settings for discovery, as
    ``segment_everything`` takes them.
    """
    if direction != "forward":
        raise InputError("Finding new objects, ending absent ones and divisions run forward only: "
                         "use direction='forward'.")
    if session.layout.outer_shape:
        raise InputError("Finding new objects works on (T, Y, X[, C]) stacks; propagate each sequence of "
                         "this stack on its own (e.g. one time point's Z stack).")
    for name, value in (("discover_every", discover_every), ("end_after_absent", end_after_absent)):
        if value is not None and (int(value) != value or value < 1):
            raise InputError(f"{name} must be a whole number >= 1 (or None); got {value!r}.")
    if session.live is not None:
        raise InputError("Finding new objects is not available on a live stream yet; propagate it with follow=True.")
    watch = DivisionWatch(division_frames) if divisions else None
    if discover_every:
        generator, mask_filter = mask_source(session.model, generator, mask_filter, settings)
    elif settings:
        raise InputError(f"{', '.join(settings)}: settings of finding new objects; give discover_every=N too.")
    lineage = getattr(session, "lineage", None) if lineage is None else lineage
    run = _Run(session, generator, mask_filter or MaskFilter(), new_object_overlap, end_after_absent, watch, lineage)
    if not session.obj_ids:
        raise InputError("There is nothing to track yet: segment everything on a frame first "
                         "(segment_everything), or add a click, box or mask.")
    first = session.layout.split(session.prompted_frames()[0] if start is None else start)[1]
    last = session.num_frames - 1 if stop is None else int(stop)
    delay = max(division_frames - 1, 0) if divisions else 0
    held: deque[FrameResult] = deque()
    frame = first
    while frame is not None:
        resume = None
        it = session.propagate("forward", frame, last, cancel=cancel, return_logits=return_logits)
        try:
            for res in it:
                while held and held[-1].frame >= res.frame:  # recomputed: the new result replaces it
                    held.pop()
                resume = run.step(res, discover=bool(discover_every) and res.frame != frame
                                  and (res.frame - first) % discover_every == 0)
                if resume is not None:
                    while held and held[-1].frame >= resume:
                        held.pop()
                    break
                held.append(res)
                while len(held) > delay:
                    yield held.popleft()
        finally:
            it.close()
        frame = resume
        if cancel is not None and cancel.is_set():
            break
    yield from held


class _Run:
    """The decisions of one ``track_everything`` run, frame by frame."""

    def __init__(self, session: Any, generator: MaskSource | None, mask_filter: MaskFilter, overlap: float,
                 end_after_absent: int | None, watch: DivisionWatch | None, lineage: Any) -> None:
        self.session, self.generator, self.filter, self.overlap = session, generator, mask_filter, overlap
        self.end_after_absent, self.watch, self.lineage = end_after_absent, watch, lineage
        self.absent_since: dict[int, int] = {}
        self.ended: set[int] = set()

    def step(self, res: FrameResult, discover: bool) -> int | None:
        """Look at a tracked frame; the frame to resume tracking from when objects changed."""
        if self.watch is not None:
            found = self.watch.update(res)
            if found:
                for div in found:
                    self._divide(div)
                resume = min(d.frame for d in found)
                self.watch.rewind(resume)
                self.absent_since = {k: f for k, f in self.absent_since.items() if f < resume}
                return resume
        self._end_absent(res)
        if discover and self._discover(res):
            return res.frame
        return None

    def _divide(self, div: Division) -> None:
        daughters = next_ids(self.session, 2)
        self.session.end_object(div.frame, div.parent)
        self.ended.add(div.parent)
        for obj_id, part in zip(daughters, div.parts):
            self.session.add_mask(div.frame, obj_id, part)
        if self.lineage is not None:
            self.lineage.add_division(div.parent, daughters, div.frame)

    def _end_absent(self, res: FrameResult) -> None:
        if self.end_after_absent is None:
            return
        for i, obj_id in enumerate(res.obj_ids):
            if obj_id in self.ended:
                continue
            if res.present[i] and res.masks[i].any():
                self.absent_since.pop(obj_id, None)
                continue
            since = self.absent_since.setdefault(obj_id, res.frame)
            if res.frame - since + 1 >= self.end_after_absent and res.frame + 1 < self.session.num_frames:
                self.session.end_object(res.frame + 1, obj_id)
                self.ended.add(obj_id)
                self.absent_since.pop(obj_id)
                if self.watch is not None:
                    self.watch.forget(obj_id)

    def _discover(self, res: FrameResult) -> list[int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EverythingNotice)  # a frame with nothing new is the usual case
            masks = self.filter.select(self.generator.generate(frame_rgb8(self.session, res.frame)))
        covered = res.masks[res.present].any(0) if res.present.any() else np.zeros(res.masks.shape[1:], bool)
        new = uncovered(masks, covered, self.overlap)
        ids = next_ids(self.session, len(new))
        for obj_id, m in zip(ids, new):
            self.session.add_mask(res.frame, obj_id, m)
        return ids
