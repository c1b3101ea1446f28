"""The automatic mask generator's filters: stability, boxes, non-maximum suppression, small regions.

Boxes are ``(x0, y0, x1, y1)`` with ``x1``/``y1`` the *last* foreground column/row, as the
official generator computes them; its NMS is torchvision's, whose CPU semantics are written
out here (no torchvision): greedy over a stable descending sort of the scores, box area
``(x1 - x0) * (y1 - y0)`` (a one-pixel-wide box has area 0), IoU
``inter / ((area_i + area_j) - inter)`` in float32, suppression only when the IoU is strictly
above the threshold (so a threshold of 1 suppresses nothing), kept indices in visiting order.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label

#: torchvision runs its per-category fallback above this many box coordinates on CPU
_VANILLA_NUMEL = 4000


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks cut at ``threshold + offset`` and ``threshold - offset`` (float32, NaN for 0/0)."""
    inter = (logits > threshold + offset).flatten(-2).sum(-1, dtype=torch.int32)
    union = (logits > threshold - offset).flatten(-2).sum(-1, dtype=torch.int32)
    return inter / union


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) int64 ``(x0, y0, x1, y1)``, ends inclusive; ``(0, 0, 0, 0)`` when empty."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4, dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=-1)  # (N, H)
    cols = masks.any(dim=-2)  # (N, W)
    out = []
    for occupied, size in ((cols, w), (rows, h)):
        idx = torch.arange(size, device=masks.device)
        last = torch.where(occupied, idx, -1).amax(dim=-1)
        first = torch.where(occupied, idx, size).amin(dim=-1)
        out.append((first, last))
    (x0, x1), (y0, y1) = out
    box = torch.stack([x0, y0, x1, y1], dim=-1)
    empty = ~rows.any(dim=-1)
    return torch.where(empty[:, None], 0, box)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """``(x1 - x0) * (y1 - y0)`` in the boxes' dtype (ends as given, no +1)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with torchvision's CPU semantics; int64 indices in decreasing-score order."""
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.sort(scores.detach().cpu(), stable=True, descending=True)[1].numpy()
    b = boxes.detach().cpu().numpy()
    dt = b.dtype
    x0, y0, x1, y1 = (b[order, k] for k in range(4))
    areas = (x1 - x0) * (y1 - y0)
    zero = np.zeros((), dtype=dt)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        rest = slice(i + 1, None)
        w = np.maximum(zero, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(zero, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / ((areas[i] + areas[rest]) - inter)
        suppressed[rest] |= iou.astype(np.float64) > iou_threshold
    return torch.as_tensor(np.asarray(keep, dtype=np.int64))


def nms_one_class(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's ``batched_nms`` with a single category, as the generator calls it.

    Up to 1000 boxes that is plain ``nms``; above, torchvision runs ``nms`` per category and
    re-sorts the kept indices (in index order) by score with ``torch.sort``, done the same way here.
    """
    keep = nms(boxes, scores, iou_threshold)
    if boxes.numel() <= _VANILLA_NUMEL:
        return keep
    keep = torch.sort(keep)[0]
    return keep[scores.detach().cpu()[keep].sort(descending=True)[1]]


def near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_box: list[int], atol: float = 20.0) -> torch.Tensor:
    """True for image-frame boxes within ``atol`` px of a crop edge that is not an image edge."""
    crop = torch.as_tensor(crop_box, dtype=torch.float32)
    image = torch.as_tensor(image_box, dtype=torch.float32)
    b = boxes.float()
    at_crop = torch.isclose(b, crop[None], atol=atol, rtol=0)
    at_image = torch.isclose(b, image[None], atol=atol, rtol=0)
    return torch.any(at_crop & ~at_image, dim=1)


def remove_small_regions(low_res: torch.Tensor, max_area: int, threshold: float) -> torch.Tensor:
    """Fill background holes, then drop foreground specks, of at most ``max_area`` low-res pixels.

    What the official predictor does with ``max_hole_area = max_sprinkle_area =
    min_mask_region_area`` when its CUDA extension exists: 8-connected components of
    ``logit <= threshold`` (holes) get ``threshold + 10`` and components of ``logit > threshold``
    (sprinkles) get ``threshold - 10``, both found on the low-res logits before upsampling
    (the official predictor's threshold is 0 whatever the generator's ``mask_threshold``). ``low_res``
    is (..., h, w); the result is a new tensor.
    """
    if max_area <= 0:
        return low_res
    arr = low_res.detach().float().cpu().numpy()
    flat = arr.reshape(-1, *arr.shape[-2:]).copy()
    for m in flat:
        # both kinds of component come from the original logits (holes and specks are disjoint)
        changes = []
        for region, value in ((m <= threshold, threshold + 10.0), (m > threshold, threshold - 10.0)):
            lab = label(region, connectivity=2)
            if lab.max() == 0:
                continue
            small = np.bincount(lab.ravel()) <= max_area
            small[0] = False
            changes.append((small[lab], value))
        for where, value in changes:
            m[where] = value
    return torch.from_numpy(flat.reshape(arr.shape)).to(low_res.device)
