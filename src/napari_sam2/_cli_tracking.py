"""``napari-sam2 segment`` options for clean-up and track exports, and the GEFF / TrackMate outputs of a job.

Clean-up (docs/cleanup.md) runs where the labels are written: each frame through
:meth:`Cleanup.apply` before the labels sink, one-frame flickers in page order on the way into
the writer (:meth:`Cleanup.wrap_writer`). The CTC folder, the GEFF graph and the TrackMate XML are
measured from the written (cleaned) labels and carry the session's lineage (``session.lineage`` when the
session has one: divisions found while tracking).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .engine.cleanup import Cleanup

GEFF_SUFFIXES = (".geff", ".zarr")  # a --geff path that is the graph itself, not a folder for it
TRACKMATE_SUFFIXES = (".xml",)


def _area(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more pixels")
    return value


def add_tracking_options(seg: argparse.ArgumentParser) -> None:
    """The clean-up flags and ``--geff`` of ``segment``."""
    group = seg.add_argument_group("clean-up of the labels (docs/cleanup.md; all off by default)")
    group.add_argument("--fill-holes", type=_area, default=0, metavar="AREA",
                       help="fill holes of at most AREA px in each object")
    group.add_argument("--min-island", type=_area, default=0, metavar="AREA",
                       help="remove pieces of an object smaller than AREA px")
    group.add_argument("--keep-largest", action="store_true", help="keep only the largest piece of each object")
    group.add_argument("--open", dest="open_radius", type=_area, default=0, metavar="R",
                       help="morphological opening of each object with a disk of radius R px")
    group.add_argument("--close", dest="close_radius", type=_area, default=0, metavar="R",
                       help="morphological closing of each object with a disk of radius R px")
    group.add_argument("--drop-flicker", action="store_true",
                       help="remove an object from a frame where it is absent on the frames before and after")
    seg.add_argument("--geff", metavar="TRACKS.geff",
                     help="also export the tracks and divisions as a GEFF graph (napari-geff, motile, "
                          "traccuracy; needs napari-sam2[tracks]); batch mode: a folder")
    seg.add_argument("--trackmate", metavar="TRACKS.xml",
                     help="also export the tracks and divisions as a TrackMate XML file (Fiji); batch mode: a folder")


def cleanup_from_args(args: argparse.Namespace) -> Cleanup:
    """The :class:`Cleanup` of the command line (missing attributes: off, e.g. older saved options)."""
    return Cleanup(
        fill_holes=getattr(args, "fill_holes", 0) or 0,
        min_island=getattr(args, "min_island", 0) or 0,
        keep_largest=bool(getattr(args, "keep_largest", False)),
        open_radius=getattr(args, "open_radius", 0) or 0,
        close_radius=getattr(args, "close_radius", 0) or 0,
        drop_flicker=bool(getattr(args, "drop_flicker", False)),
    )


def track_output_path(path: Path | None, option: str, stem: str, batch: bool,
                      parser: argparse.ArgumentParser) -> Path | None:
    """Where a job writes its ``--geff`` / ``--trackmate`` file: the path itself when it has the format's
    suffix (.geff / .zarr, .xml), else ``<stem>_tracks.<ext>`` in that folder (always so in batch mode)."""
    if path is None:
        return None
    suffixes, ext = (GEFF_SUFFIXES, ".geff") if option == "--geff" else (TRACKMATE_SUFFIXES, ".xml")
    is_file = path.suffix.lower() in suffixes
    if batch and is_file:
        parser.error(f"with several stacks, {option} is a folder (one <name>_tracks{ext} per stack), not {path.name}.")
    return path if is_file else path / f"{stem}_tracks{ext}"


def lineage_of(session: Any) -> Any:
    """The divisions a session recorded (None when it has none)."""
    lineage = getattr(session, "lineage", None)
    return lineage if lineage else None


def prepare_tracking(job: Any, info: Any, args: argparse.Namespace) -> Cleanup:
    """The job's clean-up; refuses, before the model is loaded, a --geff / --trackmate that cannot be written."""
    from .errors import InputError

    cleanup = cleanup_from_args(args)
    for option, path in (("--geff", getattr(job, "geff", None)), ("--trackmate", getattr(job, "trackmate", None))):
        if path is not None and len(info.axes) > 4:
            raise InputError(f"{option} needs (T, Y, X) or (T, Z, Y, X) labels; {job.stack.name} gives {info.axes}.")
    if getattr(job, "geff", None) is not None:
        from .io.geff import require_geff

        require_geff()
    return cleanup


def write_track_outputs(job: Any, temp: Any, frames: Callable[[], Iterable[np.ndarray]], lineage: Any,
                        info: Any) -> list[tuple[Path, Path]]:
    """Write the job's GEFF and TrackMate XML under hidden temporary names; ``(temporary, final)`` pairs
    to publish with the other outputs. ``frames()`` gives a fresh pass over the written labels."""
    from .io.partial_files import ensure_folder

    scale = None if info.scale is None else tuple(info.scale[1:])
    kw = dict(lineage=lineage, scale=scale, unit=info.unit, frame_interval=info.frame_interval, overwrite=True)
    done = []
    if getattr(job, "geff", None) is not None:
        from .io.geff import write_geff

        ensure_folder(job.geff.parent, "--geff")
        tmp = temp.folder(job.geff)
        write_geff(tmp, frames(), **kw)
        done.append((tmp, job.geff))
    if getattr(job, "trackmate", None) is not None:
        from .io.trackmate import write_trackmate

        ensure_folder(job.trackmate.parent, "--trackmate")
        tmp = temp.file(job.trackmate)
        write_trackmate(tmp, frames(), **kw)
        done.append((tmp, job.trackmate))
    return done
