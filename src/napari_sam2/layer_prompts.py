"""napari layers -> prompts: the adapter shared by the dock widget, the console API and scripts.

Plain functions on layer objects (duck-typed: ``data``, ``features``, ``shape_type``, ``scale``...),
so this module imports neither napari nor Qt::

    from napari_sam2.api import prompts_from_layers
    prompts = prompts_from_layers(viewer.layers["points"], viewer.layers["boxes"])

Conventions: a Points layer carries features ``obj_id`` (int) and ``positive`` (bool); a Shapes
layer carries rectangles with feature ``obj_id``; a Labels layer gives one mask prompt per label id
per frame. A point's leading coordinates (all but the last two) give its frame key: the tuple of
all leading indices (``engine.layout``), which every prompt carries and ``VideoSession`` takes.
Only rectangles are box prompts; a shape whose vertices lie on different frames, or a point between
frames, is refused (:func:`invalid_prompt_rows` says which rows, for the widget to flag).
Coordinates are converted to the image's DATA coordinates when ``image_layer`` is given (layers with
another scale or translate), otherwise the prompt layers' own data coordinates are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .engine.layout import FrameKey, coords_key, frame_key, key_text
from .engine.prompt_checks import checked_box, points_inside
from .engine.prompts import BoxPrompt, MaskPrompt, PointPrompt, PromptSet, mask_prompts_from_planes
from .errors import PromptError

#: The one rule for shapes: only rectangles are box prompts (their bounding box), everywhere.
BOX_SHAPE = "rectangle"


# ---- reading prompts -----------------------------------------------------------------------------
def _to_image_coords(layer: Any, coords: np.ndarray, image_layer: Any | None) -> np.ndarray:
    if image_layer is None or len(coords) == 0:
        return coords
    same = np.allclose(layer.scale, image_layer.scale) and np.allclose(layer.translate, image_layer.translate)
    if same and layer.ndim == image_layer.ndim:
        return coords
    world = np.array([layer.data_to_world(c) for c in coords])
    return np.array([image_layer.world_to_data(w) for w in world])


def _matches(key: FrameKey, frame: Any) -> bool:
    return frame is None or key == frame_key(frame)


def _split(coords: np.ndarray, frame: Any, what: str) -> tuple[FrameKey, np.ndarray]:
    """(N, D) data coordinates of one point or shape -> (frame key, (N, 2) row/col)."""
    lead = coords[:, :-2]
    if lead.shape[1] == 0:
        if frame is None:
            raise PromptError(
                "The prompt layer is 2D, so it does not say which frame a prompt is on: "
                "create the prompt layers with the same number of dimensions as the image."
            )
        return frame_key(frame), coords[:, -2:]
    return coords_key(lead, what), coords[:, -2:]


def points_prompts(points_layer: Any, *, frame: Any = None, image_layer: Any = None) -> list[PointPrompt]:
    """One PointPrompt per (frame, object) from a Points layer with ``obj_id`` / ``positive`` features."""
    data = np.asarray(points_layer.data, dtype=float)
    if len(data) == 0:
        return []
    data = _to_image_coords(points_layer, data, image_layer)
    feats = points_layer.features
    obj = np.asarray(feats["obj_id"], dtype=int) if "obj_id" in feats else np.ones(len(data), int)
    pos = np.asarray(feats["positive"], dtype=bool) if "positive" in feats else np.ones(len(data), bool)
    groups: dict[tuple[FrameKey, int], list[int]] = {}
    for i, row in enumerate(data):
        key, _ = _split(row[None], frame, f"point {i}")
        if _matches(key, frame):
            groups.setdefault((key, int(obj[i])), []).append(i)
    out = []
    for (key, obj_id), idx in sorted(groups.items()):
        out.append(
            PointPrompt(
                frame=key,
                obj_id=obj_id,
                points=data[idx][:, -2:].astype(np.float32),
                labels=pos[idx].astype(np.int32),
            )
        )
    return out


def box_prompts(shapes_layer: Any, *, frame: Any = None, image_layer: Any = None) -> list[BoxPrompt]:
    """One BoxPrompt per rectangle (its bounding box) from a Shapes layer with feature ``obj_id``.

    Other shape types are refused with a :class:`PromptError` (only rectangles are box prompts).
    """
    feats = shapes_layer.features
    n = len(shapes_layer.data)
    obj = np.asarray(feats["obj_id"], dtype=int) if "obj_id" in feats and len(feats) == n else np.ones(n, int)
    out = []
    for i, (verts, kind) in enumerate(zip(shapes_layer.data, shapes_layer.shape_type)):
        if kind != BOX_SHAPE:
            raise PromptError(_not_a_box(i, kind))
        verts = _to_image_coords(shapes_layer, np.asarray(verts, dtype=float), image_layer)
        key, rc = _split(verts, frame, f"box {i}")
        if not _matches(key, frame):
            continue
        box = np.array([*rc.min(axis=0), *rc.max(axis=0)], dtype=np.float32)
        out.append(BoxPrompt(frame=key, obj_id=int(obj[i]), box=box))
    return out


def mask_prompts(labels_layer: Any, *, frame: Any = None, n_leading: int | None = None) -> list[MaskPrompt]:
    """One MaskPrompt per label id per frame of a Labels layer (only ``frame`` when given)."""
    data = labels_layer.data
    lead = data.ndim - 2 if n_leading is None else int(n_leading)
    if frame is not None:
        keys: Sequence[FrameKey] = [frame_key(frame)]
    else:
        keys = [tuple(int(i) for i in k) for k in np.ndindex(*data.shape[:lead])]
    planes = ((key if key else (0,), np.asarray(data[key] if key else data)) for key in keys)
    return mask_prompts_from_planes(planes, getattr(labels_layer, "name", "labels"))


def prompts_from_layers(
    points_layer: Any = None,
    shapes_layer: Any = None,
    labels_layer: Any = None,
    *,
    frame: Any = None,
    image_layer: Any = None,
) -> PromptSet:
    """All prompts held by the given layers (only those on ``frame`` when given) as a PromptSet.

    ``frame`` is a frame key (an int is taken as a 1-tuple), the same as ``VideoSession`` takes. Give ``image_layer`` when the prompt layers' scale/translate
    differ from the image's.
    """
    ps = PromptSet()
    if points_layer is not None:
        ps.points.extend(points_prompts(points_layer, frame=frame, image_layer=image_layer))
    if shapes_layer is not None:
        ps.boxes.extend(box_prompts(shapes_layer, frame=frame, image_layer=image_layer))
    if labels_layer is not None:
        ps.masks.extend(mask_prompts(labels_layer, frame=frame))
    return ps


# ---- prompts the session would refuse ---------------------------------------------------------
def _not_a_box(row: int, kind: str) -> str:
    return f"shape {row} is a {kind}; only rectangles can be box prompts (draw it with the rectangle tool)"


def _frame_problem(key: FrameKey, shape: Sequence[int]) -> str | None:
    if any(not 0 <= k < n for k, n in zip(key, shape[:-2])):
        return "is not on a frame of the stack"
    return None


def _point_problem(key: FrameKey, rc: np.ndarray, shape: Sequence[int]) -> str | None:
    """Why a click at frame ``key``, (row, col) ``rc`` cannot be used on a stack of ``shape``."""
    where = f"the click at (row {rc[0]:.1f}, col {rc[1]:.1f}) on frame {key_text(key)}"
    if not np.all(np.isfinite(rc)):
        return f"{where} has no finite position"
    why = _frame_problem(key, shape)
    if why is None:
        try:
            points_inside(rc, tuple(shape[-2:]), "click")
        except PromptError:
            h, w = shape[-2:]
            why = f"is outside the {h} x {w} image"
    return None if why is None else f"{where} {why}"


def _box_problem(key: FrameKey, box: np.ndarray, shape: Sequence[int]) -> str | None:
    """Why the box (row0, col0, row1, col1) on frame ``key`` cannot be used."""
    where = f"the box on frame {key_text(key)}"
    if not np.all(np.isfinite(box)):
        return f"{where} has no finite corners"
    why = _frame_problem(key, shape)
    if why is None and min(box[2:] - box[:2]) < 1:
        why = "has (almost) zero area"
    if why is None:
        try:
            checked_box(box, tuple(shape[-2:]))
        except PromptError:
            h, w = shape[-2:]
            why = f"lies outside the {h} x {w} image"
    return None if why is None else f"{where} {why}"


def invalid_prompt_rows(layer: Any, shape: Sequence[int], *, image_layer: Any = None) -> tuple[list[int], list[str]]:
    """Rows of a prompt Points or Shapes layer that ``VideoSession`` would refuse, and why.

    ``shape`` is the stack's (..., Y, X) shape: clicks outside the image, off the stack's frames
    or between frames; shapes that are not rectangles, span frames, have zero area or lie entirely
    outside the image. Returns (row indices, reasons).
    """
    rows: list[int] = []
    reasons: list[str] = []
    if layer is None or len(layer.data) == 0:
        return rows, reasons
    kinds = getattr(layer, "shape_type", None)
    if kinds is None:  # a Points layer
        data = _to_image_coords(layer, np.asarray(layer.data, dtype=float), image_layer)
        items = [(i, r[None], None) for i, r in enumerate(data)]
    else:
        items = [(i, _to_image_coords(layer, np.asarray(v, dtype=float), image_layer), kind)
                 for i, (v, kind) in enumerate(zip(layer.data, kinds))]
    for i, coords, kind in items:
        what = f"point {i}" if kind is None else f"box {i}"
        if kind is not None and kind != BOX_SHAPE:
            why: str | None = _not_a_box(i, kind)
        else:
            try:
                key = coords_key(coords[:, :-2], what) if coords.shape[1] > 2 else ()
            except PromptError as err:
                why = str(err).rstrip(".")
            else:
                rc = coords[:, -2:]
                why = (_point_problem(key, rc[0], shape) if kind is None
                       else _box_problem(key, np.concatenate([rc.min(axis=0), rc.max(axis=0)]), shape))
        if why is not None:
            rows.append(i)
            reasons.append(why)
    return rows, reasons


def drop_invalid(prompts: PromptSet, shape: Sequence[int]) -> PromptSet:
    """``prompts`` without the clicks and boxes :func:`invalid_prompt_rows` finds (a new PromptSet)."""
    out = PromptSet(masks=list(prompts.masks))
    for p in prompts.points:
        ok = np.array([_point_problem(p.frame, rc, shape) is None for rc in np.asarray(p.points, float)], bool)
        if ok.any():
            pts, lbl = np.asarray(p.points)[ok], np.asarray(p.labels)[ok]
            out.points.append(PointPrompt(frame=p.frame, obj_id=p.obj_id, points=pts, labels=lbl))
    for b in prompts.boxes:
        if _box_problem(b.frame, np.asarray(b.box, dtype=float), shape) is None:
            out.boxes.append(b)
    return out


def layer_obj_ids(*layers: Any) -> set[int]:
    """Object ids used by prompt layers (their ``obj_id`` feature)."""
    ids: set[int] = set()
    for layer in layers:
        if layer is not None and "obj_id" in layer.features and len(layer.features):
            ids.update(int(i) for i in np.asarray(layer.features["obj_id"]))
    return ids
