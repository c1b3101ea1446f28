"""Per-object, per-frame measurements accumulated from :class:`FrameResult` s.

Masks are reduced to a few numbers as each result arrives (area, centroid, bounding
box) and dropped, so a whole-movie table costs about 100 bytes per object and frame.
Bounding boxes follow scikit-image: ``min`` inclusive, ``max`` exclusive; empty masks
leave centroid and box empty (NaN).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..engine.results import FrameResult
from ..errors import InputError
from ._units import ascii_unit, normalize_unit

_INT_COLUMNS = {"frame", "obj_id", "area_px", "min_row", "min_col", "max_row", "max_col"}


class ObjectTable:
    """Rows of (frame, obj_id, present, score, iou, area_px[, area_<unit>2],
    centroid_row, centroid_col, min_row, min_col, max_row, max_col).

    ``pixel_size`` is the (row, col) size of a pixel in ``unit``; when given, a
    physical area column (e.g. ``area_um2``) is added. Results carrying an outer
    ``index`` (e.g. the time point of a T x Z stack) get leading ``index_names``
    columns (default ``index_0``, ...).
    """

    def __init__(
        self,
        pixel_size: Sequence[float] | None = None,
        unit: str | None = None,
        index_names: Sequence[str] | None = None,
    ) -> None:
        self.pixel_size = None if pixel_size is None else (float(pixel_size[0]), float(pixel_size[1]))
        self.unit = normalize_unit(unit)
        self._index_names = None if index_names is None else tuple(index_names)
        self._chunks: list[dict[str, np.ndarray]] = []
        self._n_index: int | None = None

    @classmethod
    def for_stack(cls, stack: Any, **kwargs: Any) -> ObjectTable:
        """Table calibrated with a :class:`Stack`'s Y and X pixel sizes."""
        if stack.scale is None:
            return cls(**kwargs)
        size = dict(zip(stack.axes, stack.scale))
        return cls(pixel_size=(size["Y"], size["X"]), unit=stack.unit, **kwargs)

    @property
    def area_column(self) -> str | None:
        """Name of the physical area column, None without a pixel size."""
        if self.pixel_size is None:
            return None
        unit = ascii_unit(self.unit)
        return f"area_{unit}2" if unit else "area_scaled"

    @property
    def index_columns(self) -> list[str]:
        n = self._n_index or 0
        names = list(self._index_names or ())
        return (names + [f"index_{i}" for i in range(len(names), n)])[:n]

    @property
    def columns(self) -> list[str]:
        cols = [*self.index_columns, "frame", "obj_id", "present", "score", "iou", "area_px"]
        if self.area_column:
            cols.append(self.area_column)
        return cols + ["centroid_row", "centroid_col", "min_row", "min_col", "max_row", "max_col"]

    def __len__(self) -> int:
        return sum(len(c["frame"]) for c in self._chunks)

    def add(self, result: FrameResult) -> None:
        """Measure every object of ``result`` (one row each)."""
        index = tuple(int(i) for i in result.index)
        if self._n_index is None:
            self._n_index = len(index)
        elif len(index) != self._n_index:
            raise InputError(f"result index {index} has not {self._n_index} values like the earlier ones.")
        n = len(result.obj_ids)
        if n == 0:
            return
        masks = np.asarray(result.masks, dtype=bool)
        row_counts = masks.sum(axis=2, dtype=np.int64)  # (N, Y)
        col_counts = masks.sum(axis=1, dtype=np.int64)  # (N, X)
        area = row_counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c_row = row_counts @ np.arange(masks.shape[1], dtype=np.float64) / area
            c_col = col_counts @ np.arange(masks.shape[2], dtype=np.float64) / area
        chunk: dict[str, np.ndarray] = {
            name: np.full(n, value, np.int64) for name, value in zip(self.index_columns, index)
        }
        chunk.update(
            frame=np.full(n, int(result.frame), np.int64),
            obj_id=np.asarray(result.obj_ids, np.int64),
            present=np.asarray(result.present, bool).reshape(n),
            score=np.asarray(result.scores, np.float64).reshape(n),
            iou=np.asarray(result.iou, np.float64).reshape(n),
            area_px=area,
            centroid_row=c_row,
            centroid_col=c_col,
        )
        if self.area_column:
            chunk[self.area_column] = area * self.pixel_size[0] * self.pixel_size[1]
        for name, counts in (("row", row_counts), ("col", col_counts)):
            hit = counts > 0
            first = np.argmax(hit, axis=1).astype(np.float64)
            last = counts.shape[1] - np.argmax(hit[:, ::-1], axis=1).astype(np.float64)
            empty = area == 0
            first[empty] = np.nan
            last[empty] = np.nan
            chunk[f"min_{name}"], chunk[f"max_{name}"] = first, last
        self._chunks.append(chunk)

    def __getitem__(self, name: str) -> np.ndarray:
        """One column over all rows (box and centroid are float, NaN when empty)."""
        if name not in self.columns:
            raise KeyError(name)
        if not self._chunks:
            return np.empty(0, bool if name == "present" else np.float64)
        return np.concatenate([c[name] for c in self._chunks])

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts (for small tables, tests and quick looks)."""
        cols = {name: self[name] for name in self.columns}
        return [{name: cols[name][i].item() for name in self.columns} for i in range(len(self))]

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of the rows (pandas comes with napari)."""
        import pandas as pd

        return pd.DataFrame({name: self[name] for name in self.columns})

    def write_csv(self, path: str | Path) -> Path:
        """Write the table sorted by (index, frame, object); empty cells where the mask was empty."""
        path = Path(path)
        cols = {name: self[name] for name in self.columns}
        # rows sorted by position (outer index, frame, object), whatever order frames were computed in
        keys = [cols["obj_id"], cols["frame"], *(cols[n] for n in reversed(self.index_columns))]
        order = np.lexsort(keys) if len(self) else np.arange(0)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.columns)
            cells = [_format(name, cols[name][order]) for name in self.columns]
            writer.writerows(zip(*cells))
        return path


def _format(name: str, values: np.ndarray) -> list[str]:
    if name == "present":
        return ["True" if v else "False" for v in values]
    if name in _INT_COLUMNS:
        return ["" if np.isnan(v) else str(int(v)) for v in values.astype(np.float64)]
    if name.startswith("index_") or values.dtype.kind in "iu":
        return [str(int(v)) for v in values]
    digits = ".3f" if name.startswith("centroid") else ".6g"
    return ["" if np.isnan(v) else format(v, digits) for v in values]
