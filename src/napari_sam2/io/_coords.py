"""Turn the coordinate columns of a napari CSV into (frame, row, col).

napari names them ``axis-0 ... axis-{D-1}`` in layer data order. With D == 2 the
prompts are on frame 0; with D == 3 they are (frame, row, col); with D > 3 the leading
D - 3 axes are outer axes (e.g. T of a T x Z x Y x X stack propagated along Z) and
``index`` selects which outer position to keep. Hand-written files may use
``frame, row, col`` (or ``y, x``) instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import PromptError
from ._csv_table import CsvTable

_AXIS = re.compile(r"^axis-(\d+)$")


@dataclass
class Coords:
    """Per-row frame and (row, col); ``keep`` marks rows at the selected outer index."""

    frame: np.ndarray  # int64 (N,)
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


def read_coords(table: CsvTable, ndim: int | None, index: Sequence[int] | None) -> Coords:
    """Frame and (row, col) of every row of ``table``, validated against ``ndim``."""
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
        return Coords(np.zeros(n, np.int64), rc, np.ones(n, bool))
    frame = table.integers(names[-3], "frame index")
    _check_non_negative(table, names[-3], frame, "frame index")
    outer_names = names[:-3]
    keep = np.ones(n, bool)
    if outer_names:
        outer = np.stack([table.integers(c, "outer axis index") for c in outer_names], axis=1)
        if index is None:
            distinct = np.unique(outer, axis=0)
            if len(distinct) > 1:
                raise PromptError(
                    f"{table.path.name} has prompts at {len(distinct)} positions of the outer "
                    f"axes {outer_names}; choose one position with index=(...)."
                )
        else:
            keep = np.all(outer == np.asarray(index, dtype=np.int64), axis=1)
    return Coords(frame, rc, keep)


def _check_non_negative(table: CsvTable, name: str, values: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(values < 0)
    if bad.size:
        k = int(bad[0])
        raise PromptError(
            f"{table.path.name}, line {table.lines[k]}: {what} {values[k]} (column '{name}') "
            "is negative; frames are numbered from 0."
        )
