"""Deterministic pseudo-random weights for tests, benchmarks and the reference fixtures.

``rule_tensor`` reproduces the weight rule documented with the shared reference fixtures
(seeded by the CRC32 of the key, scaled per key category, rounded to fp16 precision), so
a model built here has exactly the weights the official code was run with.
"""

from __future__ import annotations

import math
import re
import zlib

import torch

from .configs import TEST_CONFIG, ModelConfig, get_config
from .loading import build_model, prepare
from .sam2 import Sam2Model


def rule_tensor(key: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """The fixture weight of ``key`` (``seed`` != 0 gives another, equally shaped draw)."""
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")) + seed)
    t = torch.randn(shape, generator=gen, dtype=torch.float32)
    if key == "sam_mask_decoder.pred_obj_score_head.layers.2.bias":
        t = t * 0.02 + 1.0  # keeps objects "present" so masks carry information
    elif "." not in key or key.endswith("pos_embed") or key.endswith("pos_embed_window"):
        t = t * 0.1
    elif key.endswith("positional_encoding_gaussian_matrix") or re.search(
        r"(point_embeddings\.\d+|_embed|_tokens?)\.weight$", key
    ):
        pass
    elif key.endswith(".bias"):
        t = t * 0.02
    elif t.ndim == 1:
        t = t * 0.1 + 1.0
    else:
        t = t * (1.0 / math.sqrt(math.prod(shape[1:])))
    return t.to(torch.float16).to(torch.float32)


def rule_state_dict(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A full state dict for ``cfg`` following the fixture rule."""
    from .checkpoint import expected_shapes

    return {k: rule_tensor(k, shape, seed) for k, shape in expected_shapes(cfg).items()}


def random_model(
    config: str | ModelConfig = TEST_CONFIG,
    image_size: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> Sam2Model:
    """A random-weights model; by default the miniature test config at 256 px (fast on CPU)."""
    cfg = get_config(config) if isinstance(config, str) else config
    model = build_model(cfg, rule_state_dict(cfg, seed), image_size)
    return prepare(model, device, torch.float32)
