"""Sample data contributions: synthetic clips with ground truth, as napari layer data tuples.

The pure generators are :mod:`napari_sam2._napari.synthetic`'s (numpy arrays, no napari); import
them from there.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .synthetic import make_cells_timelapse, make_ultrasound_clip

__all__ = ["cells_timelapse", "ultrasound_clip"]

LayerDataTuple = tuple[Any, dict[str, Any], str]
_AXES = ("t", "y", "x")


@lru_cache(maxsize=1)
def _supports_axis_labels() -> bool:
    """Sample layers may carry ``axis_labels`` from napari 0.5.1 on (0.5.0's ``add_image`` refuses it)."""
    try:
        import napari
    except ImportError:  # pragma: no cover - napari is a dependency
        return False
    release = tuple(int(p) for p in re.findall(r"\d+", napari.__version__)[:3])
    return release >= (0, 5, 1)


def _common(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"name": name, "metadata": metadata}
    if _supports_axis_labels():
        kwargs["axis_labels"] = _AXES
    return kwargs


def _metadata(generator: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "synthetic": True,
        "source": f"napari_sam2._napari.synthetic.{generator}",
        "description": description,
        **extra,
    }


def cells_timelapse() -> list[LayerDataTuple]:
    """Synthetic fluorescence time-lapse (40 x 256 x 256, uint16) and its ground-truth Labels."""
    clip = make_cells_timelapse()
    meta = _metadata(
        "make_cells_timelapse",
        "Synthetic fluorescence-like time-lapse: moving cells; 2 and 3 touch, 4 divides into 8 "
        "and 9, 5 leaves the field of view, 7 enters it.",
        seed=0,
        events=clip.events,
    )
    sub = clip.image[:, ::4, ::4]
    limits = (float(sub.min()), float(sub.max()))
    image_kwargs = {**_common("cells", meta), "colormap": "gray", "contrast_limits": limits}
    labels_kwargs = {**_common("cells ground truth", meta), "opacity": 0.5, "visible": False}
    return [(clip.image, image_kwargs, "image"), (clip.labels, labels_kwargs, "labels")]


def ultrasound_clip() -> list[LayerDataTuple]:
    """Synthetic B-mode ultrasound clip (48 x 256 x 256, uint8) and its ground-truth Labels."""
    clip = make_ultrasound_clip()
    cavity = dict(clip.events["cavity"])
    meta = _metadata(
        "make_ultrasound_clip",
        "Synthetic ultrasound-like clip: Rayleigh speckle in a fan-shaped field of view and a "
        "dark cavity (label 1) whose radius pulsates periodically.",
        seed=0,
        events={"cavity": cavity},
    )
    image_kwargs = {**_common("ultrasound", meta), "colormap": "gray", "contrast_limits": (0, 255)}
    labels_kwargs = {**_common("ultrasound ground truth", meta), "opacity": 0.5, "visible": False}
    return [(clip.image, image_kwargs, "image"), (clip.labels, labels_kwargs, "labels")]
