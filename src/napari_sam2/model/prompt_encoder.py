"""Prompt encoder: points/boxes -> sparse tokens, mask logits -> dense embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import EncodingCache, LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier position encoding with a fixed Gaussian matrix (a checkpoint buffer)."""

    def __init__(self, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``coords`` in [0, 1], (x, y) order, shape (..., 2) -> (..., 2 * num_pos_feats)."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def grid(self, size: int) -> torch.Tensor:
        """Dense encoding of a size x size grid of cell centres, (C, size, size)."""
        device = self.positional_encoding_gaussian_matrix.device
        ones = torch.ones((size, size), device=device, dtype=torch.float32)
        y = (ones.cumsum(dim=0) - 0.5) / size
        x = (ones.cumsum(dim=1) - 0.5) / size
        return self._encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: int) -> torch.Tensor:
        """Encode pixel coordinates (x, y) of the model's input frame."""
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / image_size
        coords[..., 1] = coords[..., 1] / image_size
        return self._encode(coords.to(torch.float))


def _forget_dense_pe(module: PromptEncoder, _keys) -> None:
    module._dense_pe.clear()


class PromptEncoder(nn.Module):
    """SAM prompt encoder. Point labels: 0 negative, 1 positive, 2/3 box corners, -1 padding."""

    def __init__(self, embed_dim: int = 256, image_size: int = 1024) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_size = image_size
        self.embedding_size = image_size // 16
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=2, stride=2),
            LayerNorm2d(4),
            nn.GELU(),
            nn.Conv2d(4, 16, kernel_size=2, stride=2),
            LayerNorm2d(16),
            nn.GELU(),
            nn.Conv2d(16, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe = EncodingCache(self._grid)
        # the grid depends on the Gaussian matrix too: when one is loaded, encode again
        self.register_load_state_dict_post_hook(_forget_dense_pe)

    @property
    def mask_input_size(self) -> int:
        return 4 * self.embedding_size

    def dense_pe(self) -> torch.Tensor:
        """Position encoding of the image embedding grid, (1, C, h, w); cached."""
        gm = self.pe_layer.positional_encoding_gaussian_matrix
        return self._dense_pe(self.embedding_size, device=gm.device, dtype=gm.dtype)

    def _grid(self, size: int, device: torch.device | str) -> torch.Tensor:
        return self.pe_layer.grid(size)[None]  # on the Gaussian matrix's device

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) pixel coords + (B, N) labels -> (B, N + 1, C); a padding point is appended."""
        coords = coords + 0.5  # pixel centres
        pad_xy = torch.zeros((coords.shape[0], 1, 2), device=coords.device, dtype=coords.dtype)
        pad_lbl = -torch.ones((labels.shape[0], 1), device=labels.device, dtype=labels.dtype)
        coords = torch.cat([coords, pad_xy], dim=1)
        labels = torch.cat([labels, pad_lbl], dim=1)
        emb = self.pe_layer.points(coords, self.image_size)
        lbl = labels[..., None]
        emb = torch.where(lbl == -1, torch.zeros_like(emb), emb)
        emb = emb + (lbl == -1) * self.not_a_point_embed.weight
        for k in range(4):
            emb = emb + (lbl == k) * self.point_embeddings[k].weight
        return emb

    def forward(
        self, coords: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N + 1, C) and dense (B, C, h, w) prompt embeddings."""
        sparse = self.embed_points(coords, labels)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            s = self.embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(coords.shape[0], -1, s, s)
        return sparse, dense
