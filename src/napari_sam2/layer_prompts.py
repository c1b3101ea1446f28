"""napari layers -> prompts: the adapter shared by the dock widget, the console API and scripts.

Plain functions on layer objects (duck-typed: ``data``, ``features``, ``shape_type``, ``scale``...),
so this module imports neither napari nor Qt::

    from napari_sam2 import prompts_from_layers
    prompts = prompts_from_layers(viewer.layers["points"], viewer.layers["boxes"])

Conventions: a Points layer carries features ``obj_id`` (int) and ``positive`` (bool); a Shapes
layer carries rectangles with feature ``obj_id``; a Labels layer gives one mask prompt per label id
per frame. A point's leading coordinates (all but the last two) give its frame: a *frame key* is the
tuple of all leading indices, ``VideoSession`` takes an int for 3D data and that tuple for N-D data.
Coordinates are converted to the image's DATA coordinates when ``image_layer`` is given (layers with
another scale or translate), otherwise the prompt layers' own data coordinates are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_sam2.engine.prompts import BoxPrompt, MaskPrompt, PointPrompt, PromptSet, mask_prompts_from_planes
from napari_sam2.errors import PromptError

FrameKey = tuple[int, ...]


def session_frame(key: Sequence[int]) -> Any:
    """The frame argument ``VideoSession`` expects: an int for one leading axis, else a tuple."""
    key = tuple(int(k) for k in key)
    return key[0] if len(key) == 1 else key


def key_of(frame: Any) -> FrameKey:
    """Inverse of :func:`session_frame`: an int or a tuple -> a tuple of ints."""
    if isinstance(frame, (tuple, list, np.ndarray)):
        return tuple(int(f) for f in frame)
    return (int(frame),)


def result_key(result: Any, axis: int) -> FrameKey:
    """The frame key of a ``FrameResult``: its outer ``index`` with ``frame`` inserted at ``axis``."""
    outer = [int(i) for i in getattr(result, "index", ()) or ()]
    if not outer:
        return (int(result.frame),)
    outer.insert(min(int(axis), len(outer)), int(result.frame))
    return tuple(outer)


def round_key(coords: Sequence[float]) -> FrameKey:
    """Leading coordinates of a napari point (data coordinates) -> integer frame key."""
    return tuple(int(np.round(c)) for c in coords)


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
    return frame is None or key == key_of(frame)


def _split(coords: np.ndarray, frame: Any) -> tuple[FrameKey, np.ndarray]:
    """(N, D) data coordinates -> (frame key, (N, 2) row/col)."""
    lead = coords[:, :-2]
    if lead.shape[1] == 0:
        if frame is None:
            raise PromptError(
                "The prompt layer is 2D, so it does not say which frame a prompt is on: "
                "create the prompt layers with the same number of dimensions as the image."
            )
        return key_of(frame), coords[:, -2:]
    return round_key(lead.mean(axis=0)), coords[:, -2:]


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
        key, _ = _split(row[None], frame)
        if _matches(key, frame):
            groups.setdefault((key, int(obj[i])), []).append(i)
    out = []
    for (key, obj_id), idx in sorted(groups.items()):
        out.append(
            PointPrompt(
                frame=session_frame(key),
                obj_id=obj_id,
                points=data[idx][:, -2:].astype(np.float32),
                labels=pos[idx].astype(np.int32),
            )
        )
    return out


def box_prompts(shapes_layer: Any, *, frame: Any = None, image_layer: Any = None) -> list[BoxPrompt]:
    """One BoxPrompt per rectangle (its bounding box) from a Shapes layer with feature ``obj_id``."""
    feats = shapes_layer.features
    n = len(shapes_layer.data)
    obj = np.asarray(feats["obj_id"], dtype=int) if "obj_id" in feats and len(feats) == n else np.ones(n, int)
    out = []
    for i, (verts, kind) in enumerate(zip(shapes_layer.data, shapes_layer.shape_type)):
        if kind not in ("rectangle", "polygon", "ellipse"):
            continue
        verts = _to_image_coords(shapes_layer, np.asarray(verts, dtype=float), image_layer)
        key, rc = _split(verts, frame)
        if not _matches(key, frame):
            continue
        box = np.array([*rc.min(axis=0), *rc.max(axis=0)], dtype=np.float32)
        out.append(BoxPrompt(frame=session_frame(key), obj_id=int(obj[i]), box=box))
    return out


def mask_prompts(labels_layer: Any, *, frame: Any = None, n_leading: int | None = None) -> list[MaskPrompt]:
    """One MaskPrompt per label id per frame of a Labels layer (only ``frame`` when given)."""
    data = labels_layer.data
    lead = data.ndim - 2 if n_leading is None else int(n_leading)
    if frame is not None:
        keys: Sequence[FrameKey] = [key_of(frame)]
    else:
        keys = [tuple(int(i) for i in k) for k in np.ndindex(*data.shape[:lead])]
    planes = ((session_frame(key) if key else 0, np.asarray(data[key] if key else data)) for key in keys)
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

    ``frame`` is an int for (T, Y, X) data or a tuple of all leading indices for N-D data, the
    same as ``VideoSession`` takes. Give ``image_layer`` when the prompt layers' scale/translate
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


def layer_obj_ids(*layers: Any) -> set[int]:
    """Object ids used by prompt layers (their ``obj_id`` feature)."""
    ids: set[int] = set()
    for layer in layers:
        if layer is not None and "obj_id" in layer.features and len(layer.features):
            ids.update(int(i) for i in np.asarray(layer.features["obj_id"]))
    return ids
