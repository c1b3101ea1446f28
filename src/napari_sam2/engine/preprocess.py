"""Turning stack frames into the model's input tensor, the same way for every caller.

Intensities: uint8 passes through unchanged. Other dtypes (uint16, float microscopy data)
are mapped to [0, 255] with one intensity range for the whole stack, so frames do not
flicker; the range is the 0.5 / 99.5 percentiles of a sparse sample of frames unless the
caller gives one (e.g. the napari layer's contrast limits). NaNs become the low end.
Grayscale becomes 3 identical channels; one channel of multichannel data can be picked.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def robust_range(sample: np.ndarray) -> tuple[float, float]:
    """0.5 / 99.5 percentiles of the finite values, widened if they coincide."""
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:  # constant image: map it to mid-grey
        return float(lo) - 1.0, float(lo) + 1.0
    return float(lo), float(hi)


def to_uint8(frame: np.ndarray, intensity_range: tuple[float, float] | None) -> np.ndarray:
    """Map one frame to uint8 with the stack's intensity range (uint8 stays as is)."""
    if frame.dtype == np.uint8 and intensity_range is None:
        return frame
    if frame.dtype == bool:
        return frame.astype(np.uint8) * 255
    lo, hi = intensity_range if intensity_range is not None else (0.0, 255.0)
    f = frame.astype(np.float32)
    f = np.nan_to_num(f, nan=lo, posinf=hi, neginf=lo)
    f = (f - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def to_rgb(frame: np.ndarray, channel: int | None) -> np.ndarray:
    """(Y, X) or (Y, X, C) -> (Y, X, 3): grey is repeated, a chosen channel is repeated."""
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3:
        raise InputError(f"A frame must be 2D (Y, X) or (Y, X, C); got shape {frame.shape}.")
    if channel is not None:
        if not 0 <= channel < frame.shape[2]:
            raise InputError(f"channel {channel} does not exist; frames have {frame.shape[2]} channels.")
        return np.repeat(frame[:, :, channel : channel + 1], 3, axis=2)
    if frame.shape[2] == 3:
        return frame
    if frame.shape[2] == 4:  # RGBA: drop alpha
        return frame[:, :, :3]
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    raise InputError(
        f"Frames have {frame.shape[2]} channels; choose one with channel=... (0..{frame.shape[2] - 1})."
    )


def normalise(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> ImageNet-normalised float32."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def video_input(rgb8: np.ndarray, image_size: int) -> torch.Tensor:
    """Model input of a video frame, as the official video loader makes it.

    uint8 RGB resized with PIL bicubic to image_size x image_size (stretching, no padding;
    nothing happens when the frame already has that size), then /255 and ImageNet
    normalisation in float32.
    """
    if rgb8.shape[:2] != (image_size, image_size):
        rgb8 = np.asarray(Image.fromarray(np.ascontiguousarray(rgb8)).resize(
            (image_size, image_size), Image.BICUBIC))
    rgb8 = np.ascontiguousarray(rgb8)
    if not rgb8.flags.writeable:
        rgb8 = rgb8.copy()
    x = torch.from_numpy(rgb8).permute(2, 0, 1).to(torch.float32) / 255.0
    return normalise(x)


def image_input(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """Model input of a single image, as the official image predictor makes it.

    [0, 1] float (uint8 / 255), resized with bilinear *antialiased* interpolation
    (``F.interpolate(..., antialias=True)``, the arithmetic torchvision's Resize uses on
    tensors), then ImageNet normalisation.
    """
    x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).to(torch.float32) / 255.0
    if x.shape[1:] != (image_size, image_size):
        x = F.interpolate(x[None], size=(image_size, image_size), mode="bilinear",
                          align_corners=False, antialias=True)[0]
    return normalise(x)


def sample_indices(n: int, k: int = 16) -> Sequence[int]:
    """Up to k evenly spread frame indices, used to estimate the stack's intensity range."""
    if n <= k:
        return range(n)
    return np.linspace(0, n - 1, k).round().astype(int).tolist()
