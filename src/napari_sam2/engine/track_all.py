"""One "track everything" job, as the API, the CLI and the widget run it.

``Everything`` holds the choices (where to segment everything, the mask filter, the generator's
settings, discovery, ending absent objects, divisions); ``run_everything`` sends a job's prompts
(if any), segments everything on ``frame`` and propagates, with discovery and divisions when
asked. Forward-only features (discovery, ending, divisions) need a forward run: from frame 0
"both" is the same thing; from a later frame, ask for ``direction="forward"``.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import InputError
from .everything import EverythingNotice, MaskFilter
from .layout import StackLayout
from .lineage import Lineage
from .results import FrameResult


@dataclass
class Everything:
    """Settings of a track-everything run (docs/everything.md)."""

    frame: int = 0
    mask_filter: MaskFilter = field(default_factory=MaskFilter)
    generator_settings: dict[str, Any] = field(default_factory=dict)  # MaskGenerator keywords
    discover_every: int | None = None
    end_after_absent: int | None = None
    divisions: bool = False
    division_frames: int = 3
    generator: Any = None  # your own segmenter (``generate(rgb8) -> [{"segmentation": ...}]``); default SAM 2's

    def __post_init__(self) -> None:
        for name in ("discover_every", "end_after_absent"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or value < 1):
                raise InputError(f"{name} must be a whole number >= 1 (or None); got {value!r}.")
        if int(self.division_frames) != self.division_frames or self.division_frames < 1:
            raise InputError(f"division_frames must be a whole number >= 1; got {self.division_frames!r}.")
        if int(self.frame) != self.frame or self.frame < 0:
            raise InputError(f"The segment-everything frame must be a whole number >= 0; got {self.frame!r}.")

    @property
    def forward_only(self) -> bool:
        return bool(self.discover_every or self.end_after_absent or self.divisions)

    def direction(self, asked: str) -> str:
        """The direction the run takes: ``asked``, or forward where forward-only features make it so."""
        if not self.forward_only or asked == "forward":
            return asked
        if self.frame == 0 and asked == "both":
            return "forward"
        raise InputError("Finding new objects, ending absent ones and divisions run forward: use direction "
                         f"'forward' (asked: {asked!r}), or start on frame 0.")

    def check(self, layout: StackLayout) -> None:
        if layout.outer_shape:
            raise InputError("Tracking everything works on (T, Y, X[, C]) stacks; this one has more leading axes "
                             f"({layout.leading_shape}): run each sequence on its own.")
        if not 0 <= int(self.frame) < layout.num_frames:
            raise InputError(f"The segment-everything frame {self.frame} is not on the stack "
                             f"(frames 0..{layout.num_frames - 1}).")

    def count_visits(self, layout: StackLayout, direction: str, start: int | None = None) -> int:
        """Frames the run hands on (progress bars); ``start``: the earliest prompted frame if earlier."""
        first = self.frame if start is None else min(start, self.frame)
        return layout.count_visits(self.direction(direction), first)


def run_everything(session: Any, everything: Everything, direction: str = "forward", prompts: Any = None,
                   cancel: threading.Event | None = None, generator: Any = None,
                   lineage: Lineage | None = None) -> Iterator[FrameResult]:
    """Prompts (optional), then segment everything on ``everything.frame``, then propagate.

    Divisions go to ``lineage`` (default ``session.lineage``). Nothing found anywhere: a notice
    and no frames.
    """
    everything.check(session.layout)
    way = everything.direction(direction)
    generator = everything.generator if generator is None else generator
    if generator is None:
        from .mask_generator import MaskGenerator

        generator = MaskGenerator(session.model, **everything.generator_settings)
    if prompts:
        prompts.apply(session)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EverythingNotice)
        session.segment_everything(everything.frame, generator=generator, mask_filter=everything.mask_filter)
    if not session.obj_ids:
        warnings.warn(EverythingNotice(f"No objects found on frame {everything.frame}: nothing to track (the "
                                       "frame may be blank; lower min_area or the generator's thresholds)."),
                      stacklevel=2)
        return
    if not everything.forward_only:
        yield from session.propagate(way, cancel=cancel)
        return
    yield from session.propagate(
        "forward", cancel=cancel, discover_every=everything.discover_every, generator=generator,
        mask_filter=everything.mask_filter, end_after_absent=everything.end_after_absent,
        divisions=everything.divisions, division_frames=everything.division_frames,
        lineage=session.lineage if lineage is None else lineage)
