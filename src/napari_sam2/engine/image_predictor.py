"""Single-image segmentation (the SAM 2 image predictor), napari coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, PromptError
from ..model.mask_decoder import select_outputs
from ..model.sam2 import Sam2Model
from .preprocess import image_input, robust_range, to_rgb, to_uint8
from .prompt_checks import as_labels, as_points, checked_box, model_xy


@dataclass
class ImagePrediction:
    masks: np.ndarray  # bool (K, Y, X), or float logits with return_logits
    iou: np.ndarray  # float32 (K,)
    low_res_logits: np.ndarray  # float32 (K, 4h, 4w), clamped to [-32, 32]: reusable as mask_input


class ImagePredictor:
    """Segment one 2D image from clicks, a box and/or a previous mask.

    Preprocessing: uint8 images are used as they are; uint16 / float images are mapped to
    [0, 1] with their 0.5-99.5 % intensity range (or ``intensity_range``); grayscale is
    repeated to 3 channels. The image is stretched (no padding) to the model's square input
    size with bilinear antialiased interpolation and ImageNet-normalised. This is the
    official image predictor's arithmetic: it uses torchvision's ``Resize`` on the float
    tensor, which computes the same antialiased bilinear resize as ``F.interpolate``.
    Masks come back at the image's resolution (bilinear upsampling of the low-res logits).
    """

    def __init__(self, model: Sam2Model) -> None:
        self.model = model
        self._features = None
        self._hw: tuple[int, int] | None = None

    @torch.inference_mode()
    def set_image(self, image: np.ndarray, channel: int | None = None,
                  intensity_range: tuple[float, float] | None = None) -> None:
        """Encode a (Y, X) or (Y, X, C) image (uint8, uint16 or float)."""
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] not in (1, 3, 4) and channel is None:
            raise InputError(
                f"set_image takes one 2D image, (Y, X) or (Y, X, C) with 1, 3 or 4 channels; shape "
                f"{image.shape} looks like a stack of {image.shape[0]} frames: segment a stack with "
                "VideoSession, or pass one frame (image[k]), or choose a channel with channel=..."
            )
        if image.ndim not in (2, 3):
            raise InputError(
                f"set_image takes one 2D image (Y, X) or (Y, X, C); got shape {image.shape}. "
                "For a stack use VideoSession, or pass one frame."
            )
        if image.dtype.kind not in "biuf":
            raise InputError(f"set_image needs a numeric image; got dtype {image.dtype}.")
        if image.dtype != np.uint8 and intensity_range is None:
            intensity_range = robust_range(image)
        rgb = to_rgb(to_uint8(image, intensity_range) if image.dtype != np.uint8 else image, channel)
        x = image_input(rgb, self.model.image_size).to(self.model.device)[None]
        with self.model.autocast():
            feats = self.model.encode_image(x)
            self._embed = self.model.image_embedding(feats)
        self._features = feats
        self._hw = rgb.shape[:2]

    def _to_model_xy(self, rc: np.ndarray, what: str = "point") -> torch.Tensor:
        """(N, 2) (row, col) image pixels -> (N, 2) (x, y) model-input pixels."""
        return model_xy(rc, self._hw, self.model.image_size, what)

    @torch.inference_mode()
    def predict(
        self,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        return_logits: bool = False,
    ) -> ImagePrediction:
        """Points (N, 2) as (row, col) with labels 1/0; box (row0, col0, row1, col1);
        ``mask_input`` = low-res logits of an earlier prediction (4h, 4w)."""
        if self._features is None:
            raise PromptError("Call set_image(...) before predict(...).")
        if points is None and box is None and mask_input is None:
            raise PromptError("Give at least one point, a box or a mask_input.")
        coords, lbls = [], []
        dev = self.model.device
        if box is not None:
            coords.append(self._to_model_xy(checked_box(box, self._hw), "box"))
            lbls.append(torch.tensor([2, 3], dtype=torch.int32))
        if points is not None:
            pts = as_points(points, "point")
            lab = as_labels(labels, len(pts))
            coords.append(self._to_model_xy(pts))
            lbls.append(torch.as_tensor(lab, dtype=torch.int32))
        c = torch.cat(coords)[None].to(dev) if coords else None
        lb = torch.cat(lbls)[None].to(dev) if coords else None
        if c is None:
            c = torch.zeros(1, 1, 2, device=dev)
            lb = -torch.ones(1, 1, dtype=torch.int32, device=dev)
        mask = None
        if mask_input is not None:
            side = self.model.image_size // 4
            m = np.asarray(mask_input, dtype=np.float32)
            if m.shape[-2:] != (side, side) or m.size != side * side:
                raise PromptError(
                    f"mask_input is the ({side}, {side}) low-res logits of an earlier prediction "
                    f"(ImagePrediction.low_res_logits[k]); got shape {m.shape}."
                )
            if not np.all(np.isfinite(m)):
                raise PromptError("mask_input has non-finite values.")
            mask = torch.from_numpy(m.reshape(1, 1, side, side)).to(dev)
        with self.model.autocast():
            raw = self.model.decode(self._embed, self._features.high_res, c, lb, mask)
        sel = select_outputs(raw, multimask)
        low = sel.masks.float()
        full = F.interpolate(low, size=self._hw, mode="bilinear", align_corners=False)[0]
        masks = full.cpu().numpy() if return_logits else (full > 0).cpu().numpy()
        return ImagePrediction(masks, sel.iou[0].float().cpu().numpy(),
                               torch.clamp(low, -32.0, 32.0)[0].cpu().numpy())
