"""Small building blocks shared by several SAM 2 modules."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """A stack of linear layers with an activation between them (keys ``layers.{i}``)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def sine_frequencies(num_feats: int, temperature: float = 10000.0, device=None) -> torch.Tensor:
    """Frequencies of the sine encodings: neighbouring channels share one frequency."""
    idx = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / num_feats)


class EncodingCache:
    """Position encodings made once per (sizes, device, dtype), the only things they depend on.

    ``make(*sizes, device=device)`` builds one in float32 (or complex64); asking with a
    ``dtype`` caches its cast. A module whose encoding also depends on its weights calls
    ``clear`` when they are loaded.
    """

    def __init__(self, make: Callable[..., torch.Tensor]) -> None:
        self._make = make
        self._made: dict[tuple, torch.Tensor] = {}

    def __call__(self, *sizes: int, device: torch.device | str,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
        key = (sizes, str(device), dtype)
        if key not in self._made:
            made = self(*sizes, device=device) if dtype is not None else self._make(*sizes, device=device)
            self._made[key] = made if dtype is None else made.to(dtype)
        return self._made[key]

    def clear(self) -> None:
        self._made.clear()


class PositionEmbeddingSine(nn.Module):
    """2-D sine position encoding (DETR style, normalised to 2*pi), cached per size.

    Output channels are ``[y-encoding, x-encoding]``; inside each half, even channels
    hold sin and odd channels cos of the same frequency.
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.half = num_pos_feats // 2
        self.temperature = temperature
        self.scale = 2 * math.pi
        self.encoding = EncodingCache(self._encode)

    def _encode(self, height: int, width: int, device: torch.device | str) -> torch.Tensor:
        """(C, H, W) float32."""
        eps = 1e-6
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        y = y / (height + eps) * self.scale
        x = x / (width + eps) * self.scale
        freqs = sine_frequencies(self.half, self.temperature, device)
        pos_y = y[:, None] / freqs  # (H, half)
        pos_x = x[:, None] / freqs  # (W, half)
        pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
        pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
        pos = torch.cat(
            (
                pos_y[:, None, :].expand(height, width, self.half),
                pos_x[None, :, :].expand(height, width, self.half),
            ),
            dim=2,
        )
        return pos.permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) encoding of ``x``'s grid, in ``x``'s dtype."""
        pos = self.encoding(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
        return pos[None].expand(x.shape[0], -1, -1, -1)


def sine_encoding_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine encoding ``[sin(p / f), cos(p / f)]`` (concatenated) of shape (..., dim)."""
    freqs = sine_frequencies(dim // 2, temperature, positions.device)
    angles = positions.unsqueeze(-1) / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention with the default 1/sqrt(d) scale."""
    return F.scaled_dot_product_attention(q, k, v)
