"""Turn the coordinate columns of a napari CSV into (frame key, row, col).

napari names them ``axis-0 ... axis-{D-1}`` in layer data order. The last two are (row, col);
the ones before are the frame key, all leading indices of the row's frame (a napari point
coordinate without row and col): ``(t,)`` for D == 3, ``(t, z)`` for D == 4. With D == 2 the
prompts are on frame ``(0,)``. ``index`` keeps only the rows at one position of the axes before
the last leading one. Hand-written files may use ``frame, row, col`` (or ``y, x``) instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine.layout import FRAME_TOLERANCE
from ..errors import PromptError
from ._csv_table import CsvTable

_AXIS = re.compile(r"^axis-(\d+)$")


@dataclass
class Coords:
    """Per-row frame key and (row, col); ``keep`` marks rows at the selected outer index."""

    keys: np.ndarray  # int64 (N, L): all leading indices of each row's frame
    rc: np.ndarray  # float64 (N, 2)
    keep: np.ndarray  # bool (N,)


def coordinate_columns(table: CsvTable) -> list[str]:
    """Names of the coordinate columns in axis order; PromptError when there are none."""
    numbered = sorted((int(m.group(1)), c) for c in table.columns if (m := _AXIS.match(c)))
    if numbered:
        if [n for n, _ in numbered] != list(range(len(numbered))):
            raise PromptError(
                f"{table.path.name}: coordinate columns {[c for _, c in numbered]} are not "
                "axis-0, axis-1, ... without gaps; fix the header."
            )
        return [c for _, c in numbered]
    row = next((c for c in ("row", "y") if table.has(c)), None)
    col = next((c for c in ("col", "column", "x") if table.has(c)), None)
    if row is None or col is None:
        raise PromptError(
            f"{table.path.name} has no coordinate columns; expected axis-0, axis-1, ... "
            "(as napari saves a layer) or frame, row, col."
        )
    return (["frame"] if table.has("frame") else []) + [row, col]


def read_coords(table: CsvTable, ndim: int | None, index: Sequence[int] | None, every_outer: bool) -> Coords:
    """Frame key and (row, col) of every row of ``table``, validated against ``ndim``.

    Without ``index`` and without ``every_outer`` (the stack is unknown), a file with rows at
    several outer positions is refused: say which one with ``index``.
    """
    names = coordinate_columns(table)
    d = len(names)
    if ndim is not None and ndim != d:
        raise PromptError(
            f"{table.path.name} has {d} coordinate columns but the image has {ndim} "
            f"dimensions; save the prompts from a layer with {ndim} dimensions."
        )
    if d < 2:
        raise PromptError(f"{table.path.name} needs at least 2 coordinate columns (row, col).")
    n_outer = max(d - 3, 0)
    if index is not None and len(index) != n_outer:
        raise PromptError(
            f"index={tuple(index)} must give one value per outer axis; {table.path.name} "
            f"has {n_outer} outer axes before (frame, row, col)."
        )
    rc = np.stack([table.numbers(names[-2]), table.numbers(names[-1])], axis=1)
    n = len(table.rows)
    if d == 2:
        return Coords(np.zeros((n, 1), np.int64), rc, np.ones(n, bool))
    whats = ["outer axis index"] * n_outer + ["frame index"]
    # frame positions are whole within the layout's tolerance, as napari point coordinates are (coords_key)
    keys = np.stack([table.integers(c, what, FRAME_TOLERANCE) for c, what in zip(names[:-2], whats)], axis=1)
    for c, what, column in zip(names[:-2], whats, keys.T):
        table.refuse(column < 0, lambda k, c=c, what=what, column=column:
                     f"{what} {column[k]} (column '{c}') is negative; frames are numbered from 0.")
    keep = np.ones(n, bool)
    if n_outer:
        outer = keys[:, :n_outer]
        if index is not None:
            keep = np.all(outer == np.asarray(index, dtype=np.int64), axis=1)
        elif not every_outer and len(np.unique(outer, axis=0)) > 1:
            raise PromptError(
                f"{table.path.name} has prompts at {len(np.unique(outer, axis=0))} positions of the outer "
                f"axes {names[:n_outer]}; choose one position with index=(...)."
            )
    return Coords(keys, rc, keep)

