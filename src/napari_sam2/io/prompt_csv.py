"""Point and box prompts from the CSV files napari writes for Points and Shapes layers.

Points (``index, axis-0, ..., obj_id, positive``): features ``obj_id`` (default 1 for
every point) and ``positive`` (default True; a ``label`` column of 1/0 is accepted
too). Shapes (``index, shape-type, vertex-index, axis-0, ...``): each rectangle becomes
the box bounding its vertices (only rectangles can be box prompts, as in the widget); its
object is the ``obj_id`` column when present (napari's own shapes writer does not save
features), else ``index + 1``. Prompt frames are frame keys (``_coords``); checks against the
stack are :meth:`~napari_sam2.engine.layout.StackLayout.check_prompts`' (``read_prompts``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..engine.layout import key_text
from ..engine.prompts import BoxPrompt, PointPrompt, PromptSet
from ..errors import PromptError
from ._coords import read_coords
from ._csv_table import CsvTable

SHAPES_COLUMNS = ("index", "shape-type", "vertex-index")
MAX_OBJ_ID = 2**32 - 1  # the largest label a uint32 labels image holds


def is_shapes_table(table: CsvTable) -> bool:
    """True for napari's Shapes CSV layout."""
    return all(table.has(c) for c in SHAPES_COLUMNS)


def _obj_ids(table: CsvTable, default: np.ndarray) -> np.ndarray:
    if not table.has("obj_id"):
        return default
    ids = table.integers("obj_id", "object id")
    table.refuse(ids < 1, lambda k: f"object id {ids[k]} must be 1 or more (0 is the background label).")
    table.refuse(ids > MAX_OBJ_ID, lambda k: f"object id {ids[k]} is too large; label images hold ids up to "
                 f"{MAX_OBJ_ID} (uint32), renumber the objects.")
    return ids


def points_from_table(
    table: CsvTable, *, ndim: int | None = None, index: Sequence[int] | None = None, every_outer: bool = False
) -> PromptSet:
    """One :class:`PointPrompt` per (frame key, object), points in file order."""
    coords = read_coords(table, ndim, index, every_outer)
    n = len(table.rows)
    obj_ids = _obj_ids(table, np.ones(n, np.int64))
    if table.has("positive"):
        positive = table.booleans("positive")
    elif table.has("label"):
        positive = table.booleans("label")
    else:
        positive = np.ones(n, bool)
    groups: dict[tuple[tuple[int, ...], int], list[int]] = {}
    for k in np.flatnonzero(coords.keep):
        groups.setdefault((tuple(coords.keys[k].tolist()), int(obj_ids[k])), []).append(int(k))
    points = [
        PointPrompt(
            frame=frame,
            obj_id=obj_id,
            points=coords.rc[rows].astype(np.float64),
            labels=positive[rows].astype(np.int64),
        )
        for (frame, obj_id), rows in groups.items()
    ]
    return PromptSet(points=points)


def boxes_from_table(
    table: CsvTable, *, ndim: int | None = None, index: Sequence[int] | None = None, every_outer: bool = False
) -> PromptSet:
    """One :class:`BoxPrompt` per rectangle; other shape types are an error."""
    coords = read_coords(table, ndim, index, every_outer)
    shape_index = table.integers("index", "shape index")
    types = [t.lower() for t in table.text("shape-type")]
    obj_ids = _obj_ids(table, shape_index + 1)
    boxes: list[BoxPrompt] = []
    seen: dict[tuple[tuple[int, ...], int], int] = {}
    for s in dict.fromkeys(shape_index.tolist()):  # shapes in file order
        rows = np.flatnonzero(shape_index == s)
        line = table.lines[int(rows[0])]
        if {types[k] for k in rows} != {"rectangle"}:
            raise PromptError(
                f"{table.path.name}, line {line}: shape {s} is a {types[rows[0]]}; only "
                "rectangles can be box prompts, draw boxes with the rectangle tool."
            )
        if not coords.keep[rows].any():
            continue
        frames = [tuple(f) for f in np.unique(coords.keys[rows], axis=0).tolist()]
        ids = np.unique(obj_ids[rows])
        if len(frames) != 1:
            raise PromptError(
                f"{table.path.name}, line {line}: rectangle {s} spans frames "
                f"{', '.join(key_text(f) for f in frames)}; draw each box on a single frame."
            )
        if len(ids) != 1:
            raise PromptError(
                f"{table.path.name}, line {line}: rectangle {s} has several object ids "
                f"{ids.tolist()}; give all its vertices one obj_id."
            )
        rc = coords.rc[rows]
        (r0, c0), (r1, c1) = rc.min(axis=0), rc.max(axis=0)
        key = (frames[0], int(ids[0]))
        if key in seen:
            raise PromptError(
                f"{table.path.name}: rectangles {seen[key]} and {s} are both for object "
                f"{key[1]} on frame {key_text(key[0])}; SAM 2 takes one box per object and frame."
            )
        seen[key] = s
        boxes.append(BoxPrompt(frame=key[0], obj_id=key[1], box=np.array([r0, c0, r1, c1], np.float64)))
    return PromptSet(boxes=boxes)
