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
