"""Mask post-processing that runs on the host (no CUDA extension needed)."""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label


def fill_holes(low_res: torch.Tensor, max_area: int) -> torch.Tensor:
    """Give background holes (8-connected, area <= max_area) of each mask a logit of 0.1.

    ``low_res`` is (B, 1, h, w); the official predictor does this with its optional CUDA
    extension and silently skips it without; here it always runs when max_area > 0.
    """
    if max_area <= 0:
        return low_res
    arr = low_res.detach().float().cpu().numpy()
    out = arr.copy()
    for b in range(arr.shape[0]):
        bg = arr[b, 0] <= 0
        lab = label(bg, connectivity=2)
        if lab.max() == 0:
            continue
        areas = np.bincount(lab.ravel())
        small = (areas <= max_area)
        small[0] = False
        hole = small[lab]
        out[b, 0][hole] = 0.1
    return torch.from_numpy(out).to(low_res.device, low_res.dtype)
