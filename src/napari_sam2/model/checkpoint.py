"""Reading official SAM 2 checkpoints safely and recognising which model they hold.

Loading is ``torch.load(weights_only=True)``: no pickled code runs. Every failure becomes
a :class:`~napari_sam2.errors.CheckpointError` whose message says what is wrong and what
to do about it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..checkpoints.filecheck import sniff_checkpoint
from ..errors import CheckpointError
from .configs import CONFIGS, TEST_CONFIG, ModelConfig

# (trunk embed_dim, number of Hiera blocks) -> size name
_SIZE_BY_TRUNK = {(96, 12): "tiny", (96, 16): "small", (112, 24): "base_plus", (144, 48): "large"}
_V21_ONLY_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint file (``ckpt["model"]`` or a bare state dict)."""
    path = Path(path).expanduser()
    sniff_checkpoint(path)  # missing, folder, empty, LFS pointer, HTML page, safetensors, archive
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "GLOBAL" in str(err):
            raise CheckpointError(
                f"{path} contains Python objects other than tensors, so it is not loaded "
                "(safe loading refuses to run pickled code). Use an official SAM 2 checkpoint "
                "or re-save yours as {'model': state_dict}."
            ) from None
        raise CheckpointError(_corrupt_message(path)) from None
    except Exception:  # any other failure of the unpickler: the bytes are not a checkpoint
        raise CheckpointError(_corrupt_message(path)) from None
    return _state_dict_of(ckpt, path)


def _corrupt_message(path: Path) -> str:
    return (
        f"{path} is not a readable PyTorch checkpoint (it may be truncated or corrupt, "
        "e.g. an interrupted download). Delete it and download it again."
    )


def _state_dict_of(ckpt: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
        ckpt = ckpt["model"]
    elif isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not ckpt or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt.items()
    ):
        raise CheckpointError(
            f"{path} does not hold a model state dict (expected {{'model': {{name: tensor}}}} "
            "as in the official SAM 2 checkpoints)."
        )
    return ckpt


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a model built from ``cfg``, without allocating its weights."""
    from .sam2 import Sam2Model

    with torch.device("meta"):
        model = Sam2Model(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def detect_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> ModelConfig:
    """Recognise version and size from the keys and shapes themselves."""
    keys = set(state)
    if "image_encoder.trunk.patch_embed.proj.weight" not in keys:
        raise CheckpointError(_foreign_message(keys, source))
    embed_dim = int(state["image_encoder.trunk.patch_embed.proj.weight"].shape[0])
    depth = len({k.split(".")[3] for k in keys if k.startswith("image_encoder.trunk.blocks.")})
    version = "2.1" if "no_obj_embed_spatial" in keys else "2.0"
    size = _SIZE_BY_TRUNK.get((embed_dim, depth))
    if size is None:
        test = TEST_CONFIG.trunk
        if (embed_dim, depth) == (test.embed_dim, sum(test.stages)):
            return TEST_CONFIG
        raise CheckpointError(
            f"The {source} has a Hiera trunk of width {embed_dim} and {depth} blocks, which is "
            "none of SAM 2's tiny / small / base_plus / large. It is not an official-layout "
            "SAM 2 checkpoint."
        )
    prefix = "sam2.1" if version == "2.1" else "sam2"
    return CONFIGS[f"{prefix}_hiera_{size}"]


def _foreign_message(keys: set[str], source: str) -> str:
    if any(k.startswith("image_encoder.blocks.") for k in keys) or "mask_decoder.iou_token.weight" in keys:
        what = "a SAM 1 (segment-anything / micro-sam SAM 1) checkpoint"
    elif any("perceiver" in k for k in keys) or any(k.startswith("image_encoder.trunk.body") for k in keys):
        what = "an EdgeTAM-style checkpoint (different image encoder and memory)"
    else:
        what = "not a SAM 2 checkpoint"
    sample = ", ".join(sorted(keys)[:3])
    return (
        f"The {source} looks like {what}: it has no SAM 2 Hiera image encoder "
        f"(first keys: {sample}). napari-sam2 loads SAM 2 / 2.1 checkpoints only."
    )


def check_keys(state: dict[str, torch.Tensor], cfg: ModelConfig, source: str = "checkpoint") -> None:
    """Strict key and shape match against ``cfg``, with a short summary on mismatch."""
    expected = expected_shapes(cfg)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:4]) + (f", ... ({len(items)} in all)" if len(items) > 4 else "")
            parts.append(f"{len(items)} {label} ({shown})")
    raise CheckpointError(
        f"The {source} does not match the {cfg.name} layout: " + "; ".join(parts) + ". "
        "It may be a fine-tune with extra heads or another model; only checkpoints with the "
        "official SAM 2 key layout can be loaded."
    )


def inspect_checkpoint(path: str | Path) -> str:
    """Validate a checkpoint file fully (readable, known layout, strict keys); return its config name."""
    state = read_state_dict(path)
    cfg = detect_config(state, source=str(path))
    check_keys(state, cfg, source=str(path))
    return cfg.name
