"""Mask decoder: two-way transformer + upscaling with high-res features + heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


@dataclass
class DecoderOutput:
    """Raw decoder output for all 4 mask tokens (token 0 = single-mask output)."""

    masks: torch.Tensor  # (B, 4, 4h, 4w) low-res logits
    iou: torch.Tensor  # (B, 4)
    mask_tokens: torch.Tensor  # (B, 4, C)
    object_score_logits: torch.Tensor  # (B, 1)


def stability_scores(mask_logits: torch.Tensor, delta: float = 0.05) -> torch.Tensor:
    """#(logit > delta) / #(logit > -delta) per mask; 1 where the denominator is 0."""
    flat = mask_logits.flatten(-2)
    inter = torch.sum(flat > delta, dim=-1).float()
    union = torch.sum(flat > -delta, dim=-1).float()
    return torch.where(union > 0, inter / union, 1.0)


@dataclass
class SelectedMasks:
    """The decoder's answer after SAM 2's output selection."""

    masks: torch.Tensor  # (B, K, 4h, 4w) with K = 3 (multimask) or 1
    iou: torch.Tensor  # (B, K)
    tokens: torch.Tensor  # (B, K, C) output tokens usable for object pointers
    object_score_logits: torch.Tensor  # (B, 1)


def select_outputs(
    out: DecoderOutput, multimask: bool, stability_thresh: float = 0.98, delta: float = 0.05
) -> SelectedMasks:
    """SAM 2's selection: tokens 1-3 for multimask; else token 0 unless it is unstable.

    With a single mask requested, an unstable token-0 mask (stability < 0.98) is replaced
    by the multimask output with the highest predicted IoU ("dynamic multimask"); the
    object-pointer token stays token 0 in that case.
    """
    if multimask:
        return SelectedMasks(out.masks[:, 1:], out.iou[:, 1:], out.mask_tokens[:, 1:],
                             out.object_score_logits)
    multi_masks, multi_iou = out.masks[:, 1:], out.iou[:, 1:]
    best = torch.argmax(multi_iou, dim=-1)
    rows = torch.arange(multi_iou.shape[0], device=multi_iou.device)
    best_masks = multi_masks[rows, best].unsqueeze(1)
    best_iou = multi_iou[rows, best].unsqueeze(1)
    single_masks, single_iou = out.masks[:, 0:1], out.iou[:, 0:1]
    stable = stability_scores(single_masks, delta) >= stability_thresh  # (B, 1)
    masks = torch.where(stable[..., None, None].expand_as(single_masks), single_masks, best_masks)
    iou = torch.where(stable.expand_as(single_iou), single_iou, best_iou)
    return SelectedMasks(masks, iou, out.mask_tokens[:, 0:1], out.object_score_logits)


class MaskDecoder(nn.Module):
    """SAM 2 mask decoder with object-score token and high-resolution skip features."""

    def __init__(self, dim: int = 256, num_multimask_outputs: int = 3) -> None:
        super().__init__()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(depth=2, dim=dim, num_heads=8, mlp_dim=2048)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.obj_score_token = nn.Embedding(1, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1, stride=1)
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1, stride=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, 256, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(dim, 256, 1, 3)

    def forward(
        self,
        image_embed: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        high_res: list[torch.Tensor],
    ) -> DecoderOutput:
        """``image_embed`` (B, C, h, w) already has one entry per prompt set."""
        b = sparse.shape[0]
        out_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0
        )
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        src = image_embed + dense
        pos = image_pe.expand(b, -1, -1, -1) if image_pe.shape[0] != b else image_pe
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        iou_token_out = hs[:, 1, :]
        mask_tokens_out = hs[:, 2 : 2 + self.num_mask_tokens, :]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        up = act1(ln1(dc1(src) + feat_s1))
        up = act2(dc2(up) + feat_s0)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )
        _, cu, hu, wu = up.shape
        masks = (hyper_in @ up.reshape(b, cu, hu * wu)).reshape(b, -1, hu, wu)
        iou = self.iou_prediction_head(iou_token_out)
        object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
        return DecoderOutput(masks, iou, mask_tokens_out, object_score_logits)
