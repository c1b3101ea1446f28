"""The SAM 2 network in pure PyTorch (no napari, no Qt)."""

from .configs import CONFIGS, ModelConfig, get_config
from .loading import build_model, load_model
from .sam2 import Sam2Model

__all__ = ["CONFIGS", "ModelConfig", "Sam2Model", "build_model", "get_config", "load_model"]
