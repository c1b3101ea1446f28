"""Memory attention: the current frame's features attend to past memories (with 2-D RoPE)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import EncodingCache, sdpa
from .transformer import Attention


def axial_rope_table(dim: int, side_x: int, side_y: int, theta: float = 10000.0) -> torch.Tensor:
    """Complex rotations (side_x * side_y, dim / 2) for a row-major grid: x pairs, then y pairs."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(side_x * side_y, dtype=torch.float32)
    t_x = (t % side_x).float()
    t_y = torch.div(t, side_x, rounding_mode="floor").float()
    ang_x, ang_y = torch.outer(t_x, freqs), torch.outer(t_y, freqs)
    rot_x = torch.polar(torch.ones_like(ang_x), ang_x)
    rot_y = torch.polar(torch.ones_like(ang_y), ang_y)
    return torch.cat([rot_x, rot_y], dim=-1)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of (B, heads, L, D) by ``table`` (L', D/2), tiled if L = r * L'."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    reps = xc.shape[-2] // table.shape[0]
    if reps > 1:
        table = table.unsqueeze(0).expand(reps, -1, -1).flatten(0, 1)
    out = torch.view_as_real(xc * table).flatten(3)
    return out.type_as(x)


class RoPEAttention(Attention):
    """Attention with axial rotary position encoding on queries and (non-pointer) keys."""

    def __init__(self, embedding_dim: int = 256, num_heads: int = 1, kv_in_dim: int | None = None,
                 rope_theta: float = 10000.0) -> None:
        super().__init__(embedding_dim, num_heads, 1, kv_in_dim)
        self.rope_theta = rope_theta
        self.table = EncodingCache(self._make_table)

    def _make_table(self, length: int, device: torch.device | str) -> torch.Tensor:
        """Rotations of a square grid of ``length`` tokens (made on the CPU, then moved)."""
        side = int(math.sqrt(length))
        dim = self.internal_dim // self.num_heads
        return axial_rope_table(dim, side, side, self.rope_theta).to(device)

    def forward(self, q, k, v, num_k_exclude_rope: int = 0):
        q = self._split(self.q_proj(q))
        k = self._split(self.k_proj(k))
        v = self._split(self.v_proj(v))
        table = self.table(q.shape[-2], device=q.device)
        q = apply_rope(q, table)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            k = torch.cat([apply_rope(k[:, :, :n_rope], table), k[:, :, n_rope:]], dim=2)
        return self.out_proj(self._merge(sdpa(q, k, v)))


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: RoPE self-attention, RoPE cross-attention to memory, ReLU FFN."""

    def __init__(self, d_model: int = 256, mem_dim: int = 64, ffn_dim: int = 2048) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, 1)
        self.cross_attn_image = RoPEAttention(d_model, 1, kv_in_dim=mem_dim)
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x, memory, memory_pos, num_ptr_tokens: int):
        t = self.norm1(x)
        x = x + self.self_attn(t, t, t)
        t = self.norm2(x)
        x = x + self.cross_attn_image(t, memory + memory_pos, memory, num_k_exclude_rope=num_ptr_tokens)
        t = self.norm3(x)
        return x + self.linear2(torch.relu(self.linear1(t)))


class MemoryAttention(nn.Module):
    """Four memory-attention layers and a final LayerNorm; batch-first (B, L, C)."""

    def __init__(self, d_model: int = 256, num_layers: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(d_model) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, curr, curr_pos, memory, memory_pos, num_ptr_tokens: int = 0):
        x = curr + 0.1 * curr_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_ptr_tokens)
        return self.norm(x)
