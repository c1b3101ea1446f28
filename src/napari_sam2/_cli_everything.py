"""``napari-sam2 segment --everything``: the options of a track-everything run and the ``Everything``
they mean (engine/track_all.py). With ``--everything``, ``--prompts`` is optional."""

from __future__ import annotations

import argparse
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

from .engine.everything import EverythingNotice, MaskFilter
from .engine.track_all import Everything
from .errors import InputError


def add_everything_options(seg: argparse.ArgumentParser) -> None:
    g = seg.add_argument_group("segment everything (docs/everything.md)")
    g.add_argument("--everything", action="store_true",
                   help="segment every object SAM 2's mask generator finds on a frame and track them all "
                        "(--prompts optional)")
    g.add_argument("--everything-frame", type=int, default=0, metavar="F",
                   help="the frame to segment everything on (default: 0)")
    g.add_argument("--discover-every", type=int, default=None, metavar="N",
                   help="look for new objects every N frames while tracking (forward)")
    g.add_argument("--end-after-absent", type=int, default=None, metavar="K",
                   help="stop tracking an object after K frames without it")
    g.add_argument("--divisions", action="store_true",
                   help="an object splitting in two for 3 frames divides into two daughters (lineage in the "
                        "exports)")
    g.add_argument("--min-area", type=int, default=0, metavar="A", help="drop masks under A pixels")
    g.add_argument("--max-area", type=int, default=None, metavar="A", help="drop masks over A pixels")
    g.add_argument("--drop-border", action="store_true", help="drop masks touching the image border")
    g.add_argument("--drop-nested", action="store_true", help="drop masks that contain other masks")
    g.add_argument("--max-objects", type=int, default=1000, metavar="N",
                   help="keep at most N objects per frame (default: %(default)s)")
    g.add_argument("--points-per-side", type=int, default=32, metavar="N",
                   help="the generator's point grid, N x N (default: %(default)s)")
    g.add_argument("--pred-iou-thresh", type=float, default=0.8, metavar="X",
                   help="the generator's predicted-IoU filter (default: %(default)s)")
    g.add_argument("--stability-score-thresh", type=float, default=0.95, metavar="X",
                   help="the generator's stability filter (default: %(default)s)")


#: options that mean nothing without --everything
_NEEDS_EVERYTHING = ("discover_every", "end_after_absent", "divisions", "drop_border", "drop_nested")


def everything_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Everything | None:
    """The run's ``Everything`` (None without ``--everything``); usage errors for options that need it."""
    if not getattr(args, "everything", False):
        given = [f"--{k.replace('_', '-')}" for k in _NEEDS_EVERYTHING if getattr(args, k, None)]
        if given:
            parser.error(f"{', '.join(given)} need --everything.")
        if not args.prompts:
            parser.error("give --prompts (clicks, boxes or labels), or --everything to segment every object.")
        return None
    try:
        return Everything(
            frame=args.everything_frame,
            mask_filter=MaskFilter(min_area=args.min_area, max_area=args.max_area, drop_border=args.drop_border,
                                   drop_nested=args.drop_nested, max_objects=args.max_objects),
            generator_settings={"points_per_side": args.points_per_side, "pred_iou_thresh": args.pred_iou_thresh,
                                "stability_score_thresh": args.stability_score_thresh},
            discover_every=args.discover_every, end_after_absent=args.end_after_absent, divisions=args.divisions,
        )
    except InputError as err:
        parser.error(str(err))


@contextmanager
def everything_notices(console: Any) -> Iterator[None]:
    """Show segment-everything notices ("no objects found", "kept N of M") as the CLI's notes,
    not as Python warnings; other warnings pass as usual."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", EverythingNotice)
        shown = warnings.showwarning

        def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
            if issubclass(category, EverythingNotice):
                console.note(str(message))
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield
