"""The widget's layers: create the prompt and output layers; reading prompts back is
:mod:`napari_sam2.layer_prompts`.

Conventions: a Points layer carries features ``obj_id`` (int) and ``positive`` (bool, green / red);
a Shapes layer carries rectangles with feature ``obj_id``; a Labels layer gives one mask prompt per
label id per frame. A point's leading coordinates (all but the last two) give its frame.
Coordinates are converted to the image's DATA coordinates when ``image_layer`` is given (layers with
another scale or translate), otherwise the prompt layers' own data coordinates are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
POINTS_SUFFIX = "SAM 2 points"
BOXES_SUFFIX = "SAM 2 boxes"
OUTPUT_SUFFIX = "SAM 2"


# ---- geometry of an image layer ------------------------------------------------------------------
def image_data(image_layer: Any) -> Any:
    """The array the session reads: level 0 of a multiscale image."""
    return image_layer.data[0] if getattr(image_layer, "multiscale", False) else image_layer.data


def spatial_ndim(image_layer: Any) -> int:
    """Dimensions of the image without the RGB(A) channel axis."""
    return int(image_layer.ndim)


def labels_shape(image_layer: Any) -> tuple[int, ...]:
    """Shape of a Labels layer matching the image (the RGB channel dropped)."""
    return tuple(int(s) for s in image_data(image_layer).shape[: spatial_ndim(image_layer)])


def _transform_kwargs(image_layer: Any) -> dict:
    return {
        "scale": tuple(image_layer.scale),
        "translate": tuple(image_layer.translate),
    }


# ---- creating layers -----------------------------------------------------------------------------
def create_points_layer(viewer: Any, image_layer: Any, name: str | None = None) -> Any:
    """An empty prompt Points layer aligned with ``image_layer`` (green = positive, red = negative)."""
    ndim = spatial_ndim(image_layer)
    return viewer.add_points(
        np.zeros((0, ndim)),
        ndim=ndim,
        name=name or f"{image_layer.name} {POINTS_SUFFIX}",
        features={"obj_id": np.zeros(0, dtype=int), "positive": np.zeros(0, dtype=bool)},
        feature_defaults={"obj_id": 1, "positive": True},
        face_color="positive",
        face_color_cycle={True: POSITIVE_COLOR, False: NEGATIVE_COLOR},
        border_color="white",
        size=max(4.0, 0.015 * max(labels_shape(image_layer)[-2:])),
        text={"string": "{obj_id}", "color": "white", "size": 8, "translation": [0] * (ndim - 1) + [-8]},
        **_transform_kwargs(image_layer),
    )


def create_boxes_layer(viewer: Any, image_layer: Any, name: str | None = None) -> Any:
    """An empty prompt Shapes layer for rectangles, aligned with ``image_layer``."""
    ndim = spatial_ndim(image_layer)
    layer = viewer.add_shapes(
        None,
        ndim=ndim,
        name=name or f"{image_layer.name} {BOXES_SUFFIX}",
        features={"obj_id": np.zeros(0, dtype=int)},
        face_color="transparent",
        edge_color="yellow",
        edge_width=max(1.0, 0.004 * max(labels_shape(image_layer)[-2:])),
        **_transform_kwargs(image_layer),
    )
    layer.feature_defaults = {"obj_id": 1}
    return layer


def create_output_layer(viewer: Any, image_layer: Any, name: str | None = None) -> Any:
    """An empty Labels layer (uint32) matching ``image_layer``: ``"<image> SAM 2"``."""
    data = np.zeros(labels_shape(image_layer), dtype=np.uint32)
    return viewer.add_labels(data, name=name or f"{image_layer.name} {OUTPUT_SUFFIX}", **_transform_kwargs(image_layer))


# ---- where the output layer goes, and which layer keeps the clicks -----------------------------
def place_below(viewer: Any, layer: Any, above: Any) -> None:
    """Move ``layer`` just below the lowest of the layers ``above`` (clicks and boxes drawn over the mask)."""
    layers = viewer.layers
    rows = [layers.index(ly) for ly in above if ly is not None and ly in layers]
    if layer in layers and rows and layers.index(layer) > min(rows):
        layers.move(layers.index(layer), min(rows))


def restore_active(viewer: Any, layer: Any, mode: str | None) -> None:
    """Select ``layer`` again in ``mode`` (adding a layer selects it, in pan / zoom: the next click is lost)."""
    if layer is None or layer not in viewer.layers:
        return
    viewer.layers.selection.active = layer
    if mode is not None and layer.mode != mode:
        layer.mode = mode


# ---- recognising prompt layers (made by the widget, or reopened from saved CSV files) ------------
def _is_csv(layer: Any) -> bool:
    return str(getattr(getattr(layer, "source", None), "path", None) or "").lower().endswith(".csv")


def is_points_prompts(layer: Any, ndim: int) -> bool:
    """A Points layer of clicks: ``obj_id`` and ``positive`` columns (as napari saves them to CSV)."""
    cols = set(getattr(getattr(layer, "features", None), "columns", ()))
    return type(layer).__name__ == "Points" and int(layer.ndim) == ndim and {"obj_id", "positive"} <= cols


def is_boxes_prompts(layer: Any, ndim: int) -> bool:
    """A Shapes layer of rectangles with ``obj_id``, or reopened from a CSV (napari drops the column)."""
    if type(layer).__name__ != "Shapes" or int(layer.ndim) != ndim or not len(layer.data):
        return False
    rects = all(k == "rectangle" for k in layer.shape_type)
    return rects and ("obj_id" in getattr(layer.features, "columns", ()) or _is_csv(layer))


def find_prompt_layers(viewer: Any, image_layer: Any) -> tuple[Any, Any]:
    """The image's (points, boxes) prompt layers: by their names, else by their columns; None: none."""
    nd, found = spatial_ndim(image_layer), []
    for suffix, test in ((POINTS_SUFFIX, is_points_prompts), (BOXES_SUFFIX, is_boxes_prompts)):
        name = f"{image_layer.name} {suffix}"
        named = [ly for ly in viewer.layers if ly.name == name]
        others = [ly for ly in viewer.layers if test(ly, nd) and not ly.name.endswith(suffix)]
        found.append(named[0] if named else others[-1] if others else None)
    if found[0] is not None:
        adopt_points(found[0])
    if found[1] is not None and "obj_id" not in found[1].features.columns:
        found[1].features = {"obj_id": np.ones(len(found[1].data), dtype=int)}
    return found[0], found[1]


def adopt_points(layer: Any) -> None:
    """Give reopened clicks their types back (CSV gives floats) and their colours (green / red)."""
    feats = layer.features
    if not len(feats) or feats["positive"].dtype == bool:
        return
    layer.features = {"obj_id": np.asarray(feats["obj_id"], dtype=int), "positive": np.asarray(feats["positive"], bool)}
    layer.face_color_cycle = {True: POSITIVE_COLOR, False: NEGATIVE_COLOR}
    layer.face_color = "positive"
