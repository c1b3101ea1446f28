"""Memory encoder: fuses a frame's features with its predicted mask into a 64-d memory."""

from __future__ import annotations

import torch
from torch import nn

from .common import LayerNorm2d, PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """Four 3x3 stride-2 conv + LN + GELU stages (1 -> 256 channels, /16), then a 1x1 conv."""

    def __init__(self, embed_dim: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for _ in range(4):
            cout = cin * 4
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), LayerNorm2d(cout), nn.GELU()]
            cin = cout
        layers.append(nn.Conv2d(cin, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7 conv, LN, pointwise MLP, layer scale, residual."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int = 256, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """``out_proj(fuser(pix_feat_proj(feat) + mask_downsampler(mask)))`` and its position encoding."""

    def __init__(self, in_dim: int = 256, out_dim: int = 64) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim)
        self.position_encoding = PositionEmbeddingSine(out_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask`` is already scaled to the memory's input range (see ``Sam2Model.encode_memory``)."""
        m = self.mask_downsampler(mask)
        x = self.pix_feat_proj(pix_feat.to(m.device)) + m
        x = self.out_proj(self.fuser(x))
        return x, self.position_encoding(x).to(x.dtype)
