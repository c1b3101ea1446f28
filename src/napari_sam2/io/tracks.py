"""Centroid tracks for a napari Tracks layer, from an object table.

One track per object id: its centroid on every frame where SAM 2 reports the object
present and its mask is not empty. Frames where it is absent are left out (napari
draws the track across the gap). :func:`tracks_graph` turns a
:class:`~napari_sam2.engine.lineage.Lineage` into the Tracks layer's ``graph`` of divisions
(``{daughter: [parent]}``; the track id is the object id), and :func:`tracks_layer_data` gives
both: ``napari.layers.Tracks(data, graph=graph)``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.lineage import Lineage
from ..errors import InputError

_NEEDED = ("obj_id", "present", "area_px", "centroid_row", "centroid_col")


def _columns_from_csv(path: Path, names: tuple[str, ...]) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [n for n in names if n not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path.name} lacks the columns {missing}; write it with ObjectTable.write_csv.")
        cols: dict[str, list[str]] = {n: [] for n in names}
        for row in reader:
            for n in names:
                cols[n].append(row[n])
    return cols


def _as_bool(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(bool)
    return np.isin(np.char.lower(arr.astype(str)), ["true", "1", "1.0", "yes"])


def _as_float(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    return np.array([float(v) if str(v).strip() else np.nan for v in arr], np.float64)


def tracks_from_table(table: Any, *, time: str = "frame") -> np.ndarray:
    """``(N, 4)`` float array of ``[track_id, t, row, col]`` sorted by track then time.

    ``table`` is an :class:`ObjectTable`, anything indexable by column name (a pandas
    DataFrame) or the path of a CSV written by ``ObjectTable.write_csv``. ``time``
    names the column used as the time axis.
    """
    names = (time, *_NEEDED)
    if isinstance(table, (str, Path)):
        table = _columns_from_csv(Path(table), names)
    track = _as_float(table["obj_id"])
    t = _as_float(table[time])
    present = _as_bool(table["present"])
    area = _as_float(table["area_px"])
    row = _as_float(table["centroid_row"])
    col = _as_float(table["centroid_col"])
    keep = present & (area > 0) & np.isfinite(row) & np.isfinite(col)
    data = np.stack([track, t, row, col], axis=1)[keep]
    order = np.lexsort((data[:, 1], data[:, 0]))
    data = data[order]
    if len(data) > 1:
        dup = np.all(data[1:, :2] == data[:-1, :2], axis=1)
        if dup.any():
            k = int(np.argmax(dup))
            raise InputError(
                f"object {int(data[k, 0])} has several rows at {time} {int(data[k, 1])}; "
                "pick a time column that is unique per object (e.g. an outer index)."
            )
    return data


def tracks_graph(tracks: np.ndarray, lineage: Lineage | None) -> dict[int, list[int]]:
    """The napari Tracks ``graph`` of ``lineage`` for ``tracks`` (``[track_id, t, ...]`` rows).

    Divisions whose parent or daughter has no point in ``tracks`` are left out (napari refuses
    links to tracks it does not have).
    """
    if not lineage or len(tracks) == 0:
        return {}
    return lineage.napari_graph(np.unique(np.asarray(tracks)[:, 0]).astype(np.int64).tolist())


def tracks_layer_data(table: Any, lineage: Lineage | None = None, *,
                      time: str = "frame") -> tuple[np.ndarray, dict[int, list[int]]]:
    """``(data, graph)`` for ``napari.layers.Tracks(data, graph=graph)`` from an object table
    (see :func:`tracks_from_table`) and an optional lineage."""
    data = tracks_from_table(table, time=time)
    return data, tracks_graph(data, lineage)
