"""Where the automatic mask generator looks: point grids and crop boxes.

Everything here is in the official generator's own convention, (x, y) points and
``(x0, y0, x1, y1)`` crop boxes with exclusive ends, because the arithmetic (integer
truncations, float64 grids) must be reproduced exactly; ``mask_generator.py`` converts to
napari's (row, col) at its boundary.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError


def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) float64 (x, y) cell centres of an n x n grid over [0, 1]^2, rows of constant y."""
    half = 1.0 / (2 * n_per_side)
    side = np.linspace(half, 1.0 - half, n_per_side)
    xs = np.broadcast_to(side[None, :], (n_per_side, n_per_side))
    ys = np.broadcast_to(side[:, None], (n_per_side, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_grids(points_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One grid per crop layer; layer i has ``int(points_per_side / downscale**i)`` points a side."""
    grids = []
    for i in range(n_layers + 1):
        n = int(points_per_side / (downscale ** i))
        if n < 1:
            raise InputError(
                f"crop layer {i} would get no points (points_per_side={points_per_side} / "
                f"crop_n_points_downscale_factor={downscale}**{i} < 1): lower crop_n_layers or the factor."
            )
        grids.append(point_grid(n))
    return grids


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """Crop boxes ``[x0, y0, x1, y1]`` (ends exclusive) and their layer index.

    Layer 0 is the whole image; layer i >= 1 tiles it with (2**i)^2 overlapping crops, the
    overlap being ``int(overlap_ratio * short_side * 2 / 2**i)`` pixels; x0 varies slowest.
    """
    boxes, layers = [[0, 0, width, height]], [0]
    short = min(height, width)
    for i in range(1, n_layers + 1):
        per_side = 2 ** i
        overlap = int(overlap_ratio * short * (2 / per_side))
        cw = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        ch = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        x0s = [int((cw - overlap) * k) for k in range(per_side)]
        y0s = [int((ch - overlap) * k) for k in range(per_side)]
        for x0 in x0s:
            for y0 in y0s:
                boxes.append([x0, y0, min(x0 + cw, width), min(y0 + ch, height)])
                layers.append(i)
    return boxes, layers


def checked_grids(point_grids, n_layers: int) -> list[np.ndarray]:
    """User grids, (N, 2) (row, col) in [0, 1] per crop layer -> official (x, y) float64 grids."""
    grids = list(point_grids)
    if len(grids) < n_layers + 1:
        raise InputError(
            f"point_grids has {len(grids)} grid(s) but crop_n_layers={n_layers} needs {n_layers + 1} "
            "(one per crop layer, layer 0 = the whole image)."
        )
    out = []
    for i, g in enumerate(grids):
        a = np.asarray(g, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0:
            raise InputError(f"point_grids[{i}] must be a non-empty (N, 2) array of (row, col); got shape {a.shape}.")
        if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise InputError(f"point_grids[{i}] must hold (row, col) fractions of the crop in [0, 1].")
        out.append(np.ascontiguousarray(a[:, ::-1]))
    return out
