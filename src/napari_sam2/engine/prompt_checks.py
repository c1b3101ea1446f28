"""Checks and conversions of prompt arguments, with one clear message per mistake.

Shared by ``VideoSession`` and ``ImagePredictor``: points are (N, 2) (row, col) pairs, labels
1 (positive) / 0 (negative), frames whole numbers; numbers in messages are written as the user
typed them (``10``, not ``np.float64(10.0)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import PromptError
def show(value: Any) -> str:
    """A value for a message, written as the user would type it (no ``np.float64(...)``)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        inner = ", ".join(show(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def frame_number(value: Any, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if not np.isfinite(f) or f != round(f):
        raise PromptError(f"{what} must be a whole frame number; got {show(value)}.")
    return int(f)


def as_points(points: Any, what: str) -> np.ndarray:
    """(N, 2) float (row, col) from a list of pairs or one pair; a clear message otherwise."""
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"Each {what} is a (row, col) pair of numbers; got {show(points)}.") from None
    if pts.size == 0:
        return np.zeros((0, 2))
    if pts.ndim == 1 and pts.size == 2:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise PromptError(
            f"Points are an (N, 2) list of (row, col) pairs; got an array of shape {pts.shape} ({show(points)}). "
            "Give the frame separately: add_points(frame, obj_id, [[row, col]], [1])."
        )
    return pts


def points_inside(points: Any, frame_shape: tuple[int, int], what: str) -> np.ndarray:
    """(N, 2) (row, col) points checked to be finite and on the image (pixel centres +- 0.5)."""
    h, w = frame_shape
    rc = as_points(points, what)
    if not np.all(np.isfinite(rc)):
        raise PromptError(f"The {what} has non-finite coordinates.")
    outside = (rc[:, 0] < -0.5) | (rc[:, 0] > h - 0.5) | (rc[:, 1] < -0.5) | (rc[:, 1] > w - 0.5)
    if outside.any():
        r, c = rc[outside][0]
        raise PromptError(f"The {what} at (row {r:g}, col {c:g}) is outside the {h} x {w} image.")
    return rc


def model_xy(points: Any, frame_shape: tuple[int, int], image_size: int, what: str) -> torch.Tensor:
    """Checked (N, 2) (row, col) image pixels -> (N, 2) float32 (x, y) model-input pixels."""
    h, w = frame_shape
    rc = points_inside(points, frame_shape, what)
    xy = torch.tensor(rc[:, ::-1].copy(), dtype=torch.float32)
    return xy / torch.tensor([w, h], dtype=torch.float32) * image_size


def as_labels(labels: Any, n: int) -> np.ndarray:
    try:
        lbl = np.asarray(labels if labels is not None else [], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise PromptError(f"Point labels are 1 (positive) or 0 (negative); got {show(labels)}.") from None
    if len(lbl) != n:
        raise PromptError(f"Got {n} points but {len(lbl)} labels; give one label per point (1 or 0).")
    if not np.isin(lbl, (0, 1)).all():
        raise PromptError(f"Point labels must be 1 (positive) or 0 (negative); got {show(lbl)}.")
    return lbl.astype(np.int64)


def checked_box(box: Any, frame_shape: tuple[int, int]) -> np.ndarray:
    """(row0, col0, row1, col1) in any corner order -> corners [[r0, c0], [r1, c1]], clipped to the
    image as users draw boxes past the border in napari; zero-area or outside boxes are refused."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        b = np.zeros(0)
    if b.size != 4:
        raise PromptError(f"A box is four numbers (row0, col0, row1, col1); got {show(box)}.")
    if not np.all(np.isfinite(b)):
        raise PromptError(f"The box {show(b)} has non-finite coordinates.")
    r0, r1 = sorted(b[[0, 2]])
    c0, c1 = sorted(b[[1, 3]])
    if r1 - r0 <= 0 or c1 - c0 <= 0:
        raise PromptError(f"The box {show(b)} has zero area; drag a rectangle around the object.")
    h, w = frame_shape
    if r1 < -0.5 or c1 < -0.5 or r0 > h - 0.5 or c0 > w - 0.5:
        raise PromptError(f"The box {show(b)} lies outside the {h} x {w} image.")
    # a box drawn past the border is clipped to the image, as users draw them in napari
    r0, r1 = np.clip([r0, r1], -0.5, h - 0.5)
    c0, c1 = np.clip([c0, c1], -0.5, w - 0.5)
    return np.array([[r0, c0], [r1, c1]])


def visit_range(direction: str, first: int, stop: Any, num_frames: int) -> tuple[int, int]:
    """(lowest, highest) frame a propagation from ``first`` visits, checking ``stop``."""
    last = num_frames - 1
    if stop is None:
        return 0, last
    if direction == "both":
        if np.ndim(stop) != 1 or len(stop) != 2:
            raise PromptError(f"For direction 'both', stop is a pair (first, last); got {show(stop)}.")
        lo, hi = (frame_number(v, "stop") for v in stop)
    else:
        if np.ndim(stop) != 0:
            raise PromptError(
                f"For direction {direction!r}, stop is one frame index; got {show(stop)} "
                "(a pair (first, last) is for direction 'both')."
            )
        v = frame_number(stop, "stop")
        lo, hi = (first, v) if direction == "forward" else (v, first)
    if not (0 <= lo <= hi <= last and lo <= first <= hi):
        need = {"forward": f"a frame from {first} to {last}", "backward": f"a frame from 0 to {first}",
                "both": f"a pair (first, last) with 0 <= first <= {first} <= last <= {last}"}[direction]
        raise PromptError(
            f"stop={show(stop)} does not fit a {direction} propagation from frame {first} "
            f"(frames 0..{last}); give {need}."
        )
    return lo, hi
