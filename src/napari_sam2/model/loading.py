"""``load_model``: a registry name or a .pt path -> a ready-to-run ``Sam2Model``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError, InputError
from .checkpoint import check_keys, detect_config, read_state_dict
from .configs import CONFIGS, ModelConfig
from .device import default_autocast, resolve_device
from .sam2 import Sam2Model


def check_image_size(image_size: int) -> int:
    """Laptop mode sizes: multiples of 64 from 256 to 1024."""
    size = int(image_size)
    if size % 64 or not 256 <= size <= 1024:
        raise InputError(f"image_size must be a multiple of 64 between 256 and 1024, not {image_size}.")
    return size


def build_model(cfg: ModelConfig, state: dict[str, torch.Tensor] | None = None,
                image_size: int | None = None) -> Sam2Model:
    """Build a model for ``cfg`` (optionally at another internal resolution) and load ``state``."""
    if image_size is not None:
        cfg = cfg.with_image_size(image_size)
    model = Sam2Model(cfg)
    if state is not None:
        check_keys(state, cfg)
        model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def prepare(model: Sam2Model, device: str | torch.device = "auto",
            dtype: torch.dtype | str | None = None) -> Sam2Model:
    """Move to the resolved device and choose autocast (bf16 on CUDA unless fp32 is asked)."""
    dev = resolve_device(device)
    model = model.to(dev)
    model.autocast_dtype = default_autocast(dev, dtype)
    return model


def load_model(
    name_or_path: str | Path,
    device: str | torch.device = "auto",
    dtype: torch.dtype | str | None = None,
    image_size: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: Any = None,
) -> Sam2Model:
    """Load an official SAM 2 / 2.1 checkpoint by registry name or file path.

    ``name_or_path``: e.g. ``"sam2.1_hiera_tiny"`` (downloaded once into the cache, see
    ``docs/weights.md``) or a path to a ``.pt`` file; version and size are read from the
    file's keys. ``device``: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
    ``"mps"``. ``progress(done_bytes, total_bytes)`` and ``cancel`` (a ``threading.Event``)
    apply to a download. ``dtype``: ``None`` = bf16 autocast on CUDA and fp32 elsewhere;
    ``torch.float32`` forces fp32 everywhere. ``image_size``: run the same weights at a
    lower internal resolution (multiple of 64 in [256, 1024]); masks still come back at
    the stack's resolution.
    """
    if image_size is not None:
        image_size = check_image_size(image_size)
    dev = resolve_device(device)  # fail fast, before any download
    text = str(name_or_path)
    from ..checkpoints import registry_names, resolve_checkpoint

    if text in CONFIGS or text in registry_names():
        path = resolve_checkpoint(text, progress=progress, cancel=cancel)
    else:
        path = Path(text).expanduser()
        if not path.suffix and not path.exists():
            names = ", ".join(CONFIGS)
            raise CheckpointError(f"{text!r} is neither a model name ({names}) nor an existing file.")
    state = read_state_dict(path)
    cfg = detect_config(state, source=str(path))
    model = build_model(cfg, state, image_size)
    return prepare(model, dev, dtype)
