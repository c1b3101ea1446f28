"""SAM 2's training losses on one frame: focal + dice on the masks, IoU prediction, object score.

Weights follow the SAM 2 paper's recipe (20 : 1 : 1 : 1 for focal : dice : IoU : object score).
With several mask candidates (multimask), only the candidate with the lowest focal + dice loss is
supervised on the mask (the "min over outputs" of SAM), while every candidate's predicted IoU is
supervised against its actual IoU (L1). Mask and IoU losses count only where the object is present;
the object score is a binary cross-entropy against presence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

WEIGHTS = {"focal": 20.0, "dice": 1.0, "iou": 1.0, "score": 1.0}


def focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Per-mask sigmoid focal loss, mean over pixels: logits / target (M, H, W) -> (M,)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(1).mean(1)


def dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask soft dice loss (M,)."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Actual IoU (M,) of the thresholded masks (no gradient)."""
    with torch.no_grad():
        p = (logits > 0).flatten(1)
        t = (target > 0.5).flatten(1)
        inter = (p & t).sum(1).float()
        union = (p | t).sum(1).float()
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


@dataclass
class FrameLoss:
    total: torch.Tensor
    parts: dict[str, float]
    iou: float  # actual IoU of the supervised mask


def frame_loss(candidates: torch.Tensor, pred_iou: torch.Tensor, score_logit: torch.Tensor,
               target: torch.Tensor) -> FrameLoss:
    """Loss of one object on one frame.

    ``candidates`` (K, H, W) mask logits at the target's size, ``pred_iou`` (K,), ``score_logit`` (1,),
    ``target`` (H, W) in {0, 1}.
    """
    present = bool(target.any())
    targets = target.expand_as(candidates)
    logit = score_logit.reshape(1).float()
    score = F.binary_cross_entropy_with_logits(logit, logit.new_tensor([float(present)]))
    actual = mask_iou(candidates, targets)
    if present:
        f, d = focal(candidates, targets), dice(candidates, targets)
        best = int(torch.argmin(WEIGHTS["focal"] * f + WEIGHTS["dice"] * d))
        f_best, d_best = f[best], d[best]
        iou_loss = F.l1_loss(pred_iou, actual)
    else:
        zero = candidates.sum() * 0.0
        f_best = d_best = iou_loss = zero
        best = 0
    total = (WEIGHTS["focal"] * f_best + WEIGHTS["dice"] * d_best + WEIGHTS["iou"] * iou_loss
             + WEIGHTS["score"] * score)
    named = (("focal", f_best), ("dice", d_best), ("iou", iou_loss), ("score", score))
    parts = {k: float(v.detach()) for k, v in named}
    return FrameLoss(total, parts, float(actual[best]))
