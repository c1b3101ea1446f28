"""Mask prompts from a label image (TIFF or .npy), read one frame at a time.

Each nonzero label on a frame becomes a :class:`MaskPrompt` for the object with that
id, on the frame key of its plane (all leading indices); frames without labels are skipped.
A 2D image prompts frame ``(0,)``; a (T, Y, X) stack prompts every frame (also when tifffile
reads a 3- or 4-frame stack as planar RGB samples, as napari's own Labels writer produces);
with more axes, every position is read (``every_outer``, when the stack is known) or
``index`` picks one outer position (as for CSVs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..engine.prompts import PromptSet, mask_prompts_from_planes
from ..errors import InputError, PromptError
from .stack import read_stack


def read_label_prompts(path: str | Path, *, index: Sequence[int] | None = None,
                       every_outer: bool = False) -> PromptSet:
    """One MaskPrompt per (frame key, nonzero label) of the label image at ``path``.

    Frames are read one at a time and kept compressed (see
    :func:`~napari_sam2.engine.prompts.mask_prompts_from_planes`).
    """
    path = Path(path)
    try:
        stack = read_stack(path)
    except InputError as exc:
        raise PromptError(f"Cannot use {path.name} as mask prompts: {exc}") from None
    with stack:
        data = stack.data
        if stack.dtype.kind not in "biu":
            raise PromptError(
                f"{path.name} holds {stack.dtype} values; mask prompts need an integer "
                "label image (save the Labels layer, not an Image layer)."
            )
        # napari's Labels writer lets tifffile store 3- or 4-frame stacks as planar
        # "RGB" samples (axes CYX); a leading sample axis of a label image is frames.
        if "C" in stack.axes[1:]:
            raise PromptError(f"{path.name} is a colour image; mask prompts need a label image.")
        n_outer = max(stack.ndim - 3, 0)
        if index is None and every_outer:
            keys = list(np.ndindex(*stack.shape[:-2])) if stack.ndim > 2 else [()]
            planes = ((key or (0,), np.asarray(data[key] if key else data[...])) for key in keys)
            return PromptSet(masks=mask_prompts_from_planes(planes, path.name))
        if index is None:
            if any(n > 1 for n in stack.shape[:n_outer]):
                raise PromptError(
                    f"{path.name} has shape {stack.shape}; choose the outer position with "
                    f"index=(...) ({n_outer} values)."
                )
            index = (0,) * n_outer
        if len(index) != n_outer:
            raise PromptError(
                f"index={tuple(index)} must give {n_outer} values for {path.name} of shape {stack.shape}."
            )
        outer = tuple(int(i) for i in index)
        if any(not 0 <= i < n for i, n in zip(outer, stack.shape)):
            raise PromptError(f"index={outer} is outside {path.name} of shape {stack.shape}.")
        n_frames = 1 if stack.ndim == 2 else stack.shape[n_outer]
        planes = (((*outer, frame), np.asarray(data[...] if stack.ndim == 2 else data[outer + (frame,)]))
                  for frame in range(n_frames))
        masks = mask_prompts_from_planes(planes, path.name)
    return PromptSet(masks=masks)
