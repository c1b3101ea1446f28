"""Image encoder = Hiera trunk + FPN neck; keeps the stride 4, 8 and 16 levels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import PositionEmbeddingSine
from .configs import ModelConfig
from .hiera import Hiera


class _Conv1x1(nn.Module):
    """Wrapper that gives the neck's convolutions their checkpoint key (``convs.k.conv``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    """1x1 lateral convs to 256 channels; top-down nearest-upsampling sum at stride 16 only."""

    def __init__(self, backbone_channel_list: tuple[int, ...], d_model: int = 256) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_Conv1x1(c, d_model) for c in backbone_channel_list)
        self.position_encoding = PositionEmbeddingSine(d_model)
        self.top_down_levels = (2, 3)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        pos: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                up = F.interpolate(prev.to(torch.float32), scale_factor=2.0, mode="nearest")
                prev = lateral + up
            else:
                prev = lateral
            out[i] = prev
            pos[i] = self.position_encoding(prev).to(prev.dtype)
        return out, pos


@dataclass
class ImageFeatures:
    """Backbone output of one frame, ready for the SAM heads.

    ``high_res`` are the stride-4 and stride-8 maps after the decoder's 1x1 projections
    (``conv_s0``/``conv_s1``); ``vision`` is the stride-16 map, ``vision_pos`` its
    sine position encoding.
    """

    high_res: list[torch.Tensor]
    vision: torch.Tensor
    vision_pos: torch.Tensor

    @property
    def nbytes(self) -> int:
        tensors = [*self.high_res, self.vision]
        return sum(t.numel() * t.element_size() for t in tensors)


class ImageEncoder(nn.Module):
    """Trunk + neck with the lowest-resolution level dropped ("scalp")."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.trunk = Hiera(cfg.trunk)
        self.neck = FpnNeck(cfg.backbone_channel_list)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        features, pos = self.neck(self.trunk(x))
        return features[:-1], pos[:-1]
