"""napari-sam2: Segment Anything 2 (SAM 2 / 2.1) video segmentation and tracking for napari.

Public API (imported lazily so that plugin discovery stays cheap)::

    from napari_sam2 import load_model, ImagePredictor, VideoSession, segment_video
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "napari_sam2.model.loading",
    "ImagePredictor": "napari_sam2.engine.image_predictor",
    "VideoSession": "napari_sam2.engine.video_session",
    "FrameResult": "napari_sam2.engine.results",
    "PromptSet": "napari_sam2.engine.prompts",
    "PointPrompt": "napari_sam2.engine.prompts",
    "BoxPrompt": "napari_sam2.engine.prompts",
    "MaskPrompt": "napari_sam2.engine.prompts",
    "Sam2Error": "napari_sam2.errors",
    "segment_video": "napari_sam2.api",
    "prompts_from_layers": "napari_sam2.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'napari_sam2' has no attribute {name!r}")
