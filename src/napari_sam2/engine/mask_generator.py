"""Segment everything in one image: SAM 2's automatic mask generator, napari coordinates.

The algorithm is the official one (same parameter names, defaults and arithmetic): a grid
of single positive clicks per crop layer; per crop the image encoder runs once, the clicks
are decoded in batches on that embedding, candidates are kept when their predicted IoU is
above ``pred_iou_thresh`` and their stability score reaches ``stability_score_thresh``,
masks touching an inner crop edge are dropped, box NMS removes duplicates within a crop
and, with crops, across crops (smaller crops preferred). Differences, all on purpose:

* the predicted-IoU filter runs before the masks are upsampled (the same masks survive, far
  less work), and kept masks are stored bit-packed, not as RLE;
* NMS is written here with torchvision's CPU semantics (``_amg_filter.py``), and runs on the CPU;
* ``min_mask_region_area`` always works: holes and specks of at most that many low-res
  pixels are removed before upsampling, as the official predictor does when its CUDA
  extension exists (without it, i.e. on any CPU, the official silently skips this);
* a constant image returns no objects without running the model (logged, not raised);
* coordinates are napari's: ``bbox`` / ``crop_box`` are ``(row0, col0, row1, col1)`` with
  exclusive ends (as scikit-image), ``point`` is ``(row, col)``; user ``point_grids`` are
  (row, col) fractions of the crop.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..model.mask_decoder import select_outputs
from ..model.sam2 import Sam2Model
from ._amg_filter import box_area, mask_boxes, near_crop_edge, nms_one_class, remove_small_regions, stability_score
from ._amg_grid import checked_grids, crop_boxes, layer_grids
from ._amg_settings import AmgSettings
from .preprocess import image_input, robust_range, to_rgb, to_uint8

log = logging.getLogger("napari_sam2")

_UPSAMPLE_CHUNK = 16  # masks upsampled to the crop's resolution at once (bounds memory)
LONG_RUN_S = 600.0  # a generate call estimated longer than this says so (with the estimate) when it starts


class MaskGenerator:
    """Every object of a 2D image, from a grid of clicks (the official generator's settings)."""

    def __init__(self, model: Sam2Model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0,
                 box_nms_thresh: float = 0.7, crop_n_layers: int = 0, crop_nms_thresh: float = 0.7,
                 crop_overlap_ratio: float = 512 / 1500, crop_n_points_downscale_factor: int = 1,
                 point_grids: list[np.ndarray] | None = None, min_mask_region_area: int = 0,
                 output_mode: str = "binary_mask", use_m2m: bool = False,
                 multimask_output: bool = True) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise InputError("Give exactly one of points_per_side (a regular grid) and point_grids "
                             "(your own grids, one per crop layer); set the other to None.")
        if output_mode != "binary_mask":
            raise InputError(f"output_mode {output_mode!r} is not supported: masks come back as boolean "
                             "arrays only (output_mode='binary_mask').")
        self.settings = AmgSettings(
            points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
            stability_score_offset, mask_threshold, box_nms_thresh, crop_n_layers, crop_nms_thresh,
            crop_overlap_ratio, crop_n_points_downscale_factor, min_mask_region_area, use_m2m,
            multimask_output)
        s = self.settings
        if point_grids is None:
            self.point_grids = layer_grids(s.points_per_side, s.crop_n_layers, s.crop_n_points_downscale_factor)
        else:
            self.point_grids = checked_grids(point_grids, s.crop_n_layers)
        self.model = model
        #: per NMS call of the last ``generate``: boxes in / kept, and torchvision's path
        self.last_nms_calls: list[dict[str, Any]] = []
        self._estimate: tuple[int, int, float] | None = None
        self._batches_left = 0

    # ------------------------------------------------------------------ public
    @torch.inference_mode()
    def generate(self, image: np.ndarray, channel: int | None = None,
                 intensity_range: tuple[float, float] | None = None) -> list[dict[str, Any]]:
        """Masks of everything in a (Y, X) or (Y, X, C) image, best first within each crop.

        Each object: ``segmentation`` (bool (Y, X)), ``area``, ``bbox`` and ``crop_box``
        (row0, col0, row1, col1; ends exclusive), ``predicted_iou``, ``stability_score``,
        ``point`` (row, col) of the click that made it. Intensities follow ``ImagePredictor``.
        """
        rgb = self._rgb(image, channel, intensity_range)
        self.last_nms_calls = []
        if np.all(rgb == rgb[:1, :1]):
            log.info("The image is constant: there is nothing to segment, so no objects were made.")
            return []
        h, w = rgb.shape[:2]
        s = self.settings
        boxes, layers = crop_boxes(h, w, s.crop_n_layers, s.crop_overlap_ratio)
        clicks = sum(len(self.point_grids[layer]) for layer in layers)
        self._batches_left = sum(math.ceil(len(self.point_grids[layer]) / s.points_per_batch) for layer in layers)
        self._estimate = (clicks, len(boxes), time.perf_counter())  # said once, after the first batch
        found = [self._crop(rgb, box, self.point_grids[layer], (h, w)) for box, layer in zip(boxes, layers)]
        data = {k: torch.cat([f[k] for f in found]) for k in ("boxes", "iou", "stability", "points", "crop")}
        masks = [m for f in found for m in f["masks"]]
        if len(boxes) > 1:  # duplicates across crops: prefer the smaller crop
            scores = 1 / box_area(data["crop"])
            keep = self._nms(data["boxes"].float(), scores, s.crop_nms_thresh)
            data = {k: v[keep] for k, v in data.items()}
            masks = [masks[i] for i in keep.tolist()]
        return [self._record(masks[i], {k: v[i] for k, v in data.items()}, (h, w)) for i in range(len(masks))]

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _rgb(image: Any, channel: int | None, intensity_range) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] not in (1, 3, 4) and channel is None:
            raise InputError(
                f"generate takes one 2D image, (Y, X) or (Y, X, C) with 1, 3 or 4 channels; shape {image.shape} "
                f"looks like a stack of {image.shape[0]} frames: pass one frame (image[k]) or choose a "
                "channel with channel=...")
        if image.ndim not in (2, 3):
            raise InputError(f"generate takes one 2D image (Y, X) or (Y, X, C); got shape {image.shape}: "
                             "pass one frame of a stack.")
        if image.dtype.kind not in "biuf":
            raise InputError(f"generate needs a numeric image; got dtype {image.dtype}.")
        if min(image.shape[:2]) < 1:
            raise InputError(f"generate needs a non-empty image; got shape {image.shape}.")
        if image.dtype != np.uint8 and intensity_range is None:
            intensity_range = robust_range(image)
        return to_rgb(to_uint8(image, intensity_range) if image.dtype != np.uint8 else image, channel)

    def _nms(self, boxes: torch.Tensor, scores: torch.Tensor, thresh: float) -> torch.Tensor:
        keep = nms_one_class(boxes, scores, thresh)
        path = "vanilla" if boxes.numel() > 4000 else "coordinate_trick"
        self.last_nms_calls.append({"n_in": int(boxes.shape[0]), "n_kept": int(len(keep)),
                                    "iou_threshold": float(thresh), "path": path})
        return keep

    def _crop(self, rgb: np.ndarray, crop_box: list[int], grid: np.ndarray, hw: tuple[int, int]) -> dict:
        """Candidates of one crop, NMS'd, in the image frame (masks stay bit-packed at crop size)."""
        s, model = self.settings, self.model
        x0, y0, x1, y1 = crop_box
        crop = rgb[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        x = image_input(crop, model.image_size).to(model.device)[None]
        with model.autocast():
            feats = model.encode_image(x)
            embed = model.image_embedding(feats)
        points = torch.as_tensor(grid * np.array([cw, ch]), dtype=torch.float32)
        parts: list[dict] = []
        for start in range(0, len(points), s.points_per_batch):
            parts.append(self._batch(embed, feats.high_res, points[start:start + s.points_per_batch],
                                     (ch, cw), crop_box, hw))
            self._batch_done()
        data = {k: torch.cat([p[k] for p in parts]) for k in ("boxes", "iou", "stability", "points")}
        masks = [m for p in parts for m in p["masks"]]
        keep = self._nms(data["boxes"].float(), data["iou"], s.box_nms_thresh)
        data = {k: v[keep] for k, v in data.items()}
        offset = torch.tensor([x0, y0, x0, y0])
        data["boxes"] = data["boxes"] + offset
        data["points"] = data["points"] + offset[:2]
        data["crop"] = torch.tensor([crop_box] * len(keep), dtype=torch.int64).reshape(-1, 4)
        data["masks"] = [masks[i] for i in keep.tolist()]
        return data

    def _batch_done(self) -> None:
        """After the first batch, estimate the whole call; a long one says so (a dense grid on a CPU)."""
        self._batches_left -= 1
        if self._estimate is None:
            return
        clicks, crops, t0 = self._estimate
        self._estimate = None
        eta = (time.perf_counter() - t0) * (self._batches_left + 1)
        if eta > LONG_RUN_S:
            from .everything import EverythingNotice

            warnings.warn(EverythingNotice(
                f"Segmenting everything decodes {clicks} clicks in {crops} crop(s): about {eta / 60:.0f} min on "
                f"this device (from the first batch). Lower points_per_side (now {self.settings.points_per_side}) "
                "or crop_n_layers, or use a GPU, for a faster result."), stacklevel=4)

    def _model_xy(self, points: torch.Tensor, chw: tuple[int, int]) -> torch.Tensor:
        """Crop pixels (x, y) -> model-input pixels, float32, with the official rounding."""
        ch, cw = chw
        out = points.clone()
        out[:, 0] = out[:, 0] / cw
        out[:, 1] = out[:, 1] / ch
        return (out * self.model.image_size).to(self.model.device)

    def _decode(self, embed, high_res, xy: torch.Tensor, mask_input, multimask: bool):
        labels = torch.ones(len(xy), 1, dtype=torch.int32, device=xy.device)
        with self.model.autocast():
            raw = self.model.decode(embed, high_res, xy[:, None, :], labels, mask_input)
        sel = select_outputs(raw, multimask)
        return sel.masks.float(), sel.iou.float()

    def _batch(self, embed, high_res, points: torch.Tensor, chw: tuple[int, int], crop_box: list[int],
               hw: tuple[int, int]) -> dict:
        """One batch of clicks -> the candidates that pass the filters."""
        s = self.settings
        xy = self._model_xy(points, chw)
        low, iou = self._decode(embed, high_res, xy, None, s.multimask_output)
        k = low.shape[1]
        low, iou = low.flatten(0, 1), iou.flatten(0, 1)
        pts = points.repeat_interleave(k, dim=0)
        if s.use_m2m:  # refine every candidate once, its own low-res mask as the mask prompt
            refined = [self._decode(embed, high_res, xy.repeat_interleave(k, dim=0)[j:j + s.points_per_batch],
                                    torch.clamp(low[j:j + s.points_per_batch, None], -32.0, 32.0), False)
                       for j in range(0, len(low), s.points_per_batch)]
            low = torch.cat([r[0][:, 0] for r in refined])
            iou = torch.cat([r[1][:, 0] for r in refined])
        keep = iou.cpu() > s.pred_iou_thresh if s.pred_iou_thresh > 0 else torch.ones(len(iou), dtype=torch.bool)
        low, iou, pts = low[keep.to(low.device)], iou[keep.to(iou.device)].cpu(), pts[keep]
        low = remove_small_regions(low, s.min_mask_region_area, 0.0)
        x0, y0 = crop_box[:2]
        offset = torch.tensor([x0, y0, x0, y0])
        out = _empty()
        for j in range(0, len(low), _UPSAMPLE_CHUNK):
            part = slice(j, j + _UPSAMPLE_CHUNK)
            logits = F.interpolate(low[part, None], size=chw, mode="bilinear", align_corners=False)[:, 0]
            stab = stability_score(logits, s.mask_threshold, s.stability_score_offset).cpu()
            binary = logits > s.mask_threshold
            boxes = mask_boxes(binary).cpu()
            keep = stab >= s.stability_score_thresh if s.stability_score_thresh > 0 else torch.ones_like(stab, dtype=torch.bool)
            keep &= ~near_crop_edge(boxes + offset, crop_box, [0, 0, hw[1], hw[0]])
            idx = torch.nonzero(keep).flatten()
            for key, value in (("boxes", boxes), ("iou", iou[part]), ("stability", stab), ("points", pts[part])):
                out[key] = torch.cat([out[key], value[idx]])
            out["masks"] += [np.packbits(binary[i].cpu().numpy(), axis=-1) for i in idx.tolist()]
        return out

    @staticmethod
    def _record(packed: np.ndarray, row: dict, hw: tuple[int, int]) -> dict[str, Any]:
        x0, y0, x1, y1 = row["crop"].tolist()
        mask = np.zeros(hw, dtype=bool)
        mask[y0:y1, x0:x1] = np.unpackbits(packed, axis=-1, count=x1 - x0).astype(bool)
        area = int(mask.sum())
        bx0, by0, bx1, by1 = row["boxes"].tolist()
        bbox = (int(by0), int(bx0), int(by1) + 1, int(bx1) + 1) if area else (0, 0, 0, 0)
        px, py = row["points"].tolist()
        return {"segmentation": mask, "area": area, "bbox": bbox, "predicted_iou": float(row["iou"]),
                "stability_score": float(row["stability"]), "point": (float(py), float(px)),
                "crop_box": (y0, x0, y1, x1)}


def _empty() -> dict:
    return {"boxes": torch.zeros(0, 4, dtype=torch.int64), "iou": torch.zeros(0), "stability": torch.zeros(0),
            "points": torch.zeros(0, 2), "masks": []}
