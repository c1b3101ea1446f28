"""Prompts from plain arrays in napari's data order: what ``segment_video`` and scripts pass.

``L`` is the number of leading (non-spatial) axes of the stack: 1 for (T, Y, X[, C]), 2 for
(T, Z, Y, X). Accepted forms:

* points: an (N, L + 2) array of (frame..., row, col) rows (napari Points ``layer.data``), with
  one object id per point (default 1) and labels 1/True positive, 0/False negative (default 1).
  Points of one object on one frame become one :class:`PointPrompt`.
* boxes: an (N, K, L + 2) array or a list of (K, L + 2) vertex arrays (corner pairs, or napari
  rectangles as in ``shapes_layer.data``), or an (N, L + 4) array of (frame..., row0, col0, row1,
  col1) rows; default ids 1, 2, ..., N. One box per object and frame.
* masks: a labels array of the stack's labels shape; every nonzero id on every frame is a mask.

Frame positions go through :func:`~.layout.coords_key`, every check through
:meth:`StackLayout.check_prompts`, so arrays, layers and files follow the same rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import PromptError
from .layout import FrameKey, StackLayout, coords_key
from .prompts import BoxPrompt, MaskPrompt, PointPrompt, PromptSet, mask_prompts_from_planes


def build_prompts(layout: StackLayout, points: Any = None, boxes: Any = None, masks: Any = None, *,
                  prompts: PromptSet | None = None, point_ids: Any = None, point_labels: Any = None,
                  box_ids: Any = None) -> PromptSet:
    """One checked PromptSet from any mix of the accepted forms (see the module docstring)."""
    out = PromptSet()
    if isinstance(points, PromptSet):
        prompts, points = (points if prompts is None else merge(prompts, points)), None
    if prompts is not None:
        if not isinstance(prompts, PromptSet):
            raise PromptError("prompts must be a PromptSet (e.g. from prompts_from_layers), "
                              f"not {type(prompts).__name__}.")
        out = merge(out, prompts)
    if not _empty(points):
        out.points.extend(point_prompts(points, point_ids, point_labels, layout))
    if not _empty(boxes):
        out.boxes.extend(box_prompts(boxes, box_ids, layout))
    if masks is not None:
        out.masks.extend(mask_prompts(masks, layout))
    return layout.check_prompts(out)


def merge(a: PromptSet, b: PromptSet) -> PromptSet:
    """The prompts of both sets (nothing is deduplicated: the session groups them)."""
    return PromptSet(points=[*a.points, *b.points], boxes=[*a.boxes, *b.boxes], masks=[*a.masks, *b.masks])


def point_prompts(points: Any, ids: Any, labels: Any, layout: StackLayout) -> list[PointPrompt]:
    """(N, L + 2) point rows -> one PointPrompt per (frame, object)."""
    d = len(layout.leading) + 2
    hint = f"of shape (N, {d}): ({', '.join(['frame'] * (d - 2))}, row, col) per point"
    pts = _coords(points, "points", hint)
    if pts.ndim == 1 and pts.size == d:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != d:
        raise PromptError(f"points must be an array {hint}; got shape {pts.shape}.")
    n = len(pts)
    obj = _ids(ids, n, np.ones(n, np.int64), "point_ids")
    if labels is None:
        lbl = np.ones(n, np.int64)
    else:
        lbl = np.asarray(labels).reshape(-1) if np.ndim(labels) else np.full(n, labels)
        if lbl.shape != (n,) or not np.isin(lbl, (0, 1)).all():
            raise PromptError(f"point_labels must give {n} value(s), one per point: 1/True (positive) "
                              "or 0/False (negative).")
        lbl = lbl.astype(np.int64)
    groups: dict[tuple[FrameKey, int], list[int]] = {}
    for i, row in enumerate(pts):
        key = layout.key(coords_key(row[:-2], f"point {i}"), prompt=True)
        groups.setdefault((key, int(obj[i])), []).append(i)
    return [PointPrompt(frame=key, obj_id=o, points=pts[rows, -2:], labels=lbl[rows])
            for (key, o), rows in groups.items()]


def box_prompts(boxes: Any, ids: Any, layout: StackLayout) -> list[BoxPrompt]:
    """Boxes as vertex arrays or (frame..., row0, col0, row1, col1) rows -> BoxPrompts."""
    d = len(layout.leading) + 2
    hint = f"of shape (N, 2, {d}) (corner pairs), (N, 4, {d}) (napari rectangles) or (N, {d + 2}) rows " \
           f"({', '.join(['frame'] * (d - 2))}, row0, col0, row1, col1)"
    if isinstance(boxes, (list, tuple)) and boxes and all(np.ndim(b) == 2 for b in boxes):
        items = [_coords(b, "boxes", hint) for b in boxes]  # napari shapes_layer.data: a list of (K, D)
    else:
        arr = _coords(boxes, "boxes", hint)
        if arr.ndim == 2 and arr.shape[1] == d + 2:
            lead, rc = arr[:, : d - 2], arr[:, d - 2 :].reshape(-1, 2, 2)
            items = [np.concatenate([np.repeat(ld[None], 2, 0), c], axis=1) for ld, c in zip(lead, rc)]
        elif arr.ndim == 3:
            items = list(arr)
        else:
            raise PromptError(f"boxes must be an array {hint}; got shape {arr.shape}.")
    obj = _ids(ids, len(items), np.arange(1, len(items) + 1), "box_ids")
    out: list[BoxPrompt] = []
    seen: set[tuple[FrameKey, int]] = set()
    for i, verts in enumerate(items):
        if verts.ndim != 2 or verts.shape[0] < 2 or verts.shape[1] != d:
            raise PromptError(f"box {i} has shape {verts.shape}; boxes must be arrays {hint}.")
        key = layout.key(coords_key(verts[:, :-2], f"box {i}"), prompt=True)
        (r0, c0), (r1, c1) = verts[:, -2:].min(axis=0), verts[:, -2:].max(axis=0)  # area: check_prompts
        if (key, int(obj[i])) in seen:
            raise PromptError(f"box {i}: object {int(obj[i])} already has a box on frame {key}; SAM 2 takes one.")
        seen.add((key, int(obj[i])))
        out.append(BoxPrompt(frame=key, obj_id=int(obj[i]), box=np.array([r0, c0, r1, c1])))
    return out


def mask_prompts(masks: Any, layout: StackLayout) -> list[MaskPrompt]:
    """A labels array of the stack's labels shape -> one MaskPrompt per id and frame."""
    if not hasattr(masks, "shape"):
        masks = np.asarray(masks)
    if tuple(masks.shape) != layout.labels_shape:
        raise PromptError(f"masks must be a labels array of shape {layout.labels_shape} (the stack without "
                          f"channels); got {tuple(masks.shape)}.")
    if np.dtype(masks.dtype).kind not in "biu":
        raise PromptError(f"masks must be an integer labels array (a Labels layer's data), not {masks.dtype}.")
    planes = ((key, np.asarray(masks[key])) for key in np.ndindex(*layout.leading_shape))
    return mask_prompts_from_planes(planes, "masks")


def _ids(values: Any, n: int, default: np.ndarray, what: str) -> np.ndarray:
    if values is None:
        return default
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise PromptError(f"{what} must be one value or {n} values (one per prompt); got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf" or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise PromptError(f"{what} must be whole numbers >= 1 (0 is the background label); got {arr.tolist()}.")
    return arr.astype(np.int64)


def _coords(values: Any, what: str, shape_hint: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"{what} must be a numeric array {shape_hint}.") from None
    if not np.all(np.isfinite(arr)):
        raise PromptError(f"{what} contain NaN or infinite coordinates.")
    return arr


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    return getattr(value, "size", 1) == 0
