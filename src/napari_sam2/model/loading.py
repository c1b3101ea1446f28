"""``load_model``: a registry name or a .pt path -> a ready-to-run ``Sam2Model``."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import InputError
from .checkpoint import check_keys, detect_config, read_state_dict
from .configs import ModelConfig
from .device import default_autocast, resolve_device
from .sam2 import Sam2Model


def check_image_size(image_size: Any) -> int:
    """Laptop mode sizes: whole multiples of 64 from 256 to 1024."""
    value = image_size.item() if hasattr(image_size, "item") else image_size  # numpy scalars print plainly
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"image_size must be a whole number of pixels (a multiple of 64 between 256 and 1024, "
                         f"e.g. 512), not {value!r}.")
    size = int(value)
    if size % 64 or not 256 <= size <= 1024:
        raise InputError(f"image_size must be a multiple of 64 between 256 and 1024 (e.g. 512), not {size}.")
    return size


def build_model(cfg: ModelConfig, state: dict[str, torch.Tensor] | None = None,
                image_size: int | None = None) -> Sam2Model:
    """Build a model for ``cfg`` (optionally at another internal resolution) and load ``state``."""
    if image_size is not None:
        cfg = cfg.with_image_size(check_image_size(image_size))
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
    compile: bool | str = False,
) -> Sam2Model:
    """Load an official SAM 2 / 2.1 checkpoint by registry name or file path.

    ``name_or_path``: e.g. ``"sam2.1_hiera_tiny"`` (downloaded once into the cache, see
    ``docs/weights.md``) or a path to a ``.pt`` file; version and size are read from the
    file's keys. ``device``: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:N"``, ``"mps"`` (a DeviceError lists the valid ones). ``progress(done_bytes,
    total_bytes)`` and ``cancel`` (a ``threading.Event``) apply to a download. ``dtype``:
    ``None`` = bf16 autocast on CUDA and fp32 elsewhere; ``torch.float32`` forces fp32
    everywhere. ``image_size``: run the same weights at a lower internal resolution (multiple
    of 64 in [256, 1024]); masks still come back at the stack's resolution. A mistyped name
    gives "unknown model ...; did you mean ...?", a missing path "file not found".
    ``compile``: ``True`` (the inductor backend) or a ``torch.compile`` backend name compiles the
    image encoder, memory attention and mask decoder (``model/compile.py``; compiled on first use,
    falls back to eager with one warning where compilation is unavailable).
    """
    if image_size is not None:
        image_size = check_image_size(image_size)
    dev = resolve_device(device)  # fail fast, before any download
    from ..checkpoints import load_registry, resolve_checkpoint
    from ..checkpoints.resolve import checkpoint_source

    registry = load_registry()
    source = checkpoint_source(name_or_path, registry)  # an unknown name or an unusable file fails here
    if isinstance(source, Path):
        path = source
    else:
        path = resolve_checkpoint(source, progress=progress, cancel=cancel, registry=registry)
    state = read_state_dict(path)
    cfg = detect_config(state, source=str(path))
    model = prepare(build_model(cfg, state, image_size), dev, dtype)
    if compile:
        from .compile import compile_model

        compile_model(model, backend="inductor" if compile is True else str(compile))
    return model
