"""napari-sam2: Segment Anything 2 (SAM 2 / 2.1) video segmentation and tracking for napari.

Public API (imported lazily so that plugin discovery stays cheap)::

    from napari_sam2 import load_model, ImagePredictor, VideoSession, FrameStream, MaskGenerator, segment_video
    from napari_sam2 import MaskFilter, Everything, Lineage, Cleanup   # segment everything, lineage, clean-up

and the errors (:mod:`napari_sam2.errors`). Prompts, results and layer adapters live in their
modules: ``napari_sam2.engine.prompts``, ``napari_sam2.engine.results``, ``napari_sam2.api``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "napari_sam2.model.loading",
    "ImagePredictor": "napari_sam2.engine.image_predictor",
    "VideoSession": "napari_sam2.engine.video_session",
    "FrameStream": "napari_sam2.engine.stream",
    "MaskGenerator": "napari_sam2.engine.mask_generator",
    "MaskFilter": "napari_sam2.engine.everything",
    "Everything": "napari_sam2.engine.track_all",
    "Lineage": "napari_sam2.engine.lineage",
    "Cleanup": "napari_sam2.engine.cleanup",
    "segment_video": "napari_sam2.api",
    **{name: "napari_sam2.errors" for name in (
        "Sam2Error", "InputError", "PromptError", "OutputError", "CheckpointError", "DownloadError",
        "DeviceError", "BusyError", "Cancelled",
    )},
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'napari_sam2' has no attribute {name!r}")
