"""The object panel's track exports and Tracks layer, without Qt: the output labels with their lineage.

Every export carries the session's :class:`~napari_sam2.engine.lineage.Lineage` (parent ->
daughters, from divisions found while tracking or "Split here"):

* ``"tiff"``: the labels TIFF and per-object CSV of :mod:`.object_export`, plus ``<stem>_lineage.csv``
  (one ``parent_id, daughter_id, frame`` row per daughter; a header only when nothing divided);
* ``"ctc"``: a Cell Tracking Challenge folder (``mask000.tif`` ... and ``man_track.txt`` with parents);
* ``"geff"``: a GEFF graph (napari-geff, TrackMate, ultrack, motile), needs the ``geff`` extra;
* ``"trackmate"``: TrackMate XML.

The track formats read the labels frame by frame along the frame axis (what the user sees, with their
edits) and take (T, Y, X) or (T, Z, Y, X) labels, as the command line's ``--ctc`` / ``--geff`` /
``--trackmate`` do. :func:`tracks_layer` gives the data and ``graph`` of a napari Tracks layer.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.lineage import Lineage
from ..errors import OutputError
from ..io.tracks import tracks_layer_data
from .object_export import export_objects, export_paths, object_table

#: format -> (label in the panel, file-dialog filter)
FORMATS = {
    "tiff": ("labels TIFF + CSV", "TIFF (*.tif)"),
    "ctc": ("CTC folder", "Cell Tracking Challenge folder (*)"),
    "geff": ("GEFF graph", "GEFF (*.geff)"),
    "trackmate": ("TrackMate XML", "TrackMate XML (*.xml)"),
}


def lineage_path(path: str | Path) -> Path:
    """``<stem>_lineage.csv`` next to the labels TIFF of ``path``."""
    tif, _ = export_paths(path)
    return tif.with_name(tif.stem + "_lineage.csv")


def write_lineage_csv(path: str | Path, lineage: Lineage | None) -> Path:
    """One ``parent_id, daughter_id, frame`` row per daughter of ``lineage``."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["parent_id", "daughter_id", "frame"])
        for division in (lineage.divisions if lineage else []):
            out.writerows([division.parent, d, division.frame] for d in division.daughters)
    return path


def _frames(data: Any, axis: int) -> Iterator[np.ndarray]:
    for t in range(data.shape[axis]):
        key = (slice(None),) * axis + (t,)
        yield np.asarray(data[key])


def _check_track_shape(data: Any, fmt: str) -> None:
    if data.ndim not in (3, 4):
        raise OutputError(f"The {FORMATS[fmt][0]} export takes (T, Y, X) or (T, Z, Y, X) labels, not "
                          f"{data.ndim} dimensions; export labels TIFF + CSV instead.")


def export(data: Any, path: str | Path, fmt: str, session: Any = None, lineage: Lineage | None = None,
           frame_axis: int = 0, overwrite: bool = False) -> list[Path]:
    """Write ``data`` (the output labels) in format ``fmt`` (see :data:`FORMATS`); the paths written."""
    if fmt not in FORMATS:
        raise OutputError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    path = Path(path)
    if fmt == "tiff":
        side = lineage_path(path)
        if side.exists() and not overwrite:
            raise OutputError(f"{side} already exists; choose another name (nothing was written).")
        files = list(export_objects(data, path, session, frame_axis, overwrite=overwrite))
        return files + [write_lineage_csv(side, lineage)]
    _check_track_shape(data, fmt)
    if not path.parent.is_dir():
        raise OutputError(f"The folder {path.parent} does not exist; choose an existing folder.")
    frames = _frames(data, frame_axis)
    if fmt == "ctc":
        from ..io.ctc import write_ctc

        write_ctc(path, frames, n_frames=data.shape[frame_axis], overwrite=overwrite, lineage=lineage)
        return [path, path / "man_track.txt"]
    if fmt == "geff":
        from ..io.geff import write_geff

        path = path if path.suffix else path.with_suffix(".geff")
        write_geff(path, frames, lineage=lineage, overwrite=overwrite)
        return [path]
    from ..io.trackmate import write_trackmate

    path = path if path.suffix else path.with_suffix(".xml")
    write_trackmate(path, frames, lineage=lineage, overwrite=overwrite)
    return [path]


def tracks_layer(data: Any, lineage: Lineage | None = None,
                 frame_axis: int = 0) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``(data, graph)`` of a napari Tracks layer: each object's centroid on every frame it has pixels,
    divisions as the graph."""
    if data.ndim != 3:
        raise OutputError(f"The Tracks layer is made from (T, Y, X) labels, not {data.ndim} dimensions.")
    return tracks_layer_data(object_table(data, None, frame_axis), lineage)
