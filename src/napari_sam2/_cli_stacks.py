"""The stack and prompt side of a CLI job: axes, channels, geometry and checked prompts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, PromptError

MAX_LABEL = 2**32 - 1  # labels TIFFs are at most uint32


class ChannelLast:
    """Lazy view of a stack with its channel axis moved last (where VideoSession expects it)."""

    def __init__(self, data: Any, channel_axis: int) -> None:
        self.data, self.c = data, channel_axis
        shape = list(data.shape)
        n = shape.pop(channel_axis)
        self.shape = (*shape, n)
        self.dtype = np.dtype(data.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        src = list(key[:-1])
        src.insert(self.c, key[-1])
        out = np.asarray(self.data[tuple(src)])
        if isinstance(key[-1], (int, np.integer)):
            return out
        pos = sum(not isinstance(k, (int, np.integer)) for k in src[: self.c])
        return np.moveaxis(out, pos, -1)


@dataclass
class StackInfo:
    data: Any  # channels last
    geo: Any  # api.Geometry
    rgb: bool
    axes: str  # of the labels: the stack's axes without C
    scale: tuple[float, ...] | None
    unit: str | None
    note: str | None = None


def describe_stack(stack: Any, axis: int, channel: int | None) -> StackInfo:
    """Axes, geometry and calibration of an opened ``io.Stack`` for segmentation."""
    from .api import Geometry

    data, axes = stack.data, stack.axes
    note = None
    if axes == "CYX" and channel is None:  # e.g. tifffile.imwrite(imagej=True) without axes: frames, really
        axes = "TYX"
        name = stack.path.name if stack.path else "the stack"
        note = f"{name} has a channel axis only: using its channels as frames."
    if "C" in axes and not axes.endswith("C"):
        data = ChannelLast(data, axes.index("C"))
        axes = axes.replace("C", "") + "C"
    rgb = axes.endswith("C")
    n_channels = data.shape[-1] if rgb else 1
    name = stack.path.name if stack.path else "the stack"
    if channel is not None and not rgb:
        raise InputError(f"{name} has no channel axis (axes {stack.axes}); leave out --channel.")
    if channel is not None and not 0 <= channel < n_channels:
        raise InputError(f"{name} has {n_channels} channel(s) (axes {stack.axes}); "
                         f"--channel must be 0 to {n_channels - 1}.")
    if rgb and channel is None and n_channels not in (1, 3, 4):
        raise InputError(f"{name} has {n_channels} channels; choose one with --channel (0 to {n_channels - 1}).")
    spatial = axes[:-1] if rgb else axes
    lead = spatial[:-2]
    if not lead:
        raise InputError(f"{name} is a single 2D image (axes {stack.axes}); give a stack (T, Y, X) or more.")
    if not 0 <= axis < len(lead):
        raise InputError(f"--axis {axis} is not one of the leading axes {lead} of {name} (0 to {len(lead) - 1}).")
    shape = tuple(int(n) for n in data.shape)
    geo = Geometry(shape[: len(lead)], shape[len(lead) : len(lead) + 2], axis)
    scale = None
    if stack.scale is not None:
        size = dict(zip(stack.axes, stack.scale))
        scale = tuple(float(size.get(a, 1.0)) for a in spatial)
    return StackInfo(data, geo, rgb, spatial, scale, stack.unit, note)


def read_prompt_file(path: Path, geo: Any) -> Any:
    """Prompts of ``path`` (io.read_prompts) for a stack of geometry ``geo``, checked and ready."""
    from .api import check_prompt_set
    from .engine.prompts import PromptSet
    from .io import read_prompts

    n_lead = len(geo.leading)
    kwargs = dict(ndim=n_lead + 2, n_frames=geo.leading[-1], frame_shape=geo.frame_shape)
    if n_lead == 1:
        prompts = read_prompts(path, **kwargs)
    else:  # outer positions one by one: the file's last leading column is its "frame"
        prompts = PromptSet()
        for outer in np.ndindex(*geo.leading[:-1]):
            part = read_prompts(path, index=outer, **kwargs)
            for name in ("points", "boxes", "masks"):
                getattr(prompts, name).extend(
                    dataclasses.replace(p, frame=(*outer, int(p.frame))) for p in getattr(part, name)
                )
    prompts = check_prompt_set(prompts, geo, source=path.name)
    too_big = [i for i in prompts.obj_ids if i > MAX_LABEL]
    if too_big:
        raise PromptError(f"{path.name}: object id {too_big[0]} is too large; label TIFFs hold ids up to "
                          f"{MAX_LABEL} (uint32), renumber the objects.")
    return prompts
