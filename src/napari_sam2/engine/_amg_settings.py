"""The automatic mask generator's settings: official names and defaults, checked once."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class AmgSettings:
    """The official ``SAM2AutomaticMaskGenerator`` parameters (``output_mode`` is always binary masks)."""

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    use_m2m: bool = False
    multimask_output: bool = True

    def __post_init__(self) -> None:
        if self.points_per_side is not None:
            _whole(self.points_per_side, "points_per_side", 1)
        _whole(self.points_per_batch, "points_per_batch", 1)
        _whole(self.crop_n_layers, "crop_n_layers", 0)
        _whole(self.crop_n_points_downscale_factor, "crop_n_points_downscale_factor", 1)
        _whole(self.min_mask_region_area, "min_mask_region_area", 0)
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            _number(getattr(self, name), name, 0.0, 1.0)
        _number(self.stability_score_offset, "stability_score_offset", 0.0, math.inf)
        _number(self.mask_threshold, "mask_threshold", -math.inf, math.inf)
        _number(self.crop_overlap_ratio, "crop_overlap_ratio", 0.0, 1.0)
        if self.crop_overlap_ratio >= 1.0:
            raise InputError("crop_overlap_ratio must be below 1 (a fraction of the image side); "
                             f"got {self.crop_overlap_ratio:g}.")
        for name in ("use_m2m", "multimask_output"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False; got {getattr(self, name)!r}.")


def _whole(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number >= {low}; got {value!r}.")
    if value < low:
        raise InputError(f"{name} must be >= {low}; got {value!r}.")


def _number(value: Any, name: str, low: float, high: float) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not low <= float(value) <= high:
        if math.isfinite(low) and math.isfinite(high):
            bounds = f"a number between {low:g} and {high:g}"
        elif math.isfinite(low):
            bounds = f"a finite number >= {low:g}"
        else:
            bounds = "a finite number"
        raise InputError(f"{name} must be {bounds}; got {value!r}.")
