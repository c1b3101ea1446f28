"""The stack and prompt side of a CLI job: axes, channels, the stack's layout and checked prompts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine.layout import StackLayout
from .engine.prompts import PromptSet
from .engine.session_replay import SUFFIX as SESSION_SUFFIX
from .engine.session_replay import SessionDoc, check_identity, read_session
from .errors import InputError, PromptError
from .io.channel_view import channels_last
from .io.prompt_csv import MAX_OBJ_ID
from .io.prompt_files import read_prompts


@dataclass
class StackInfo:
    """An opened stack as a job segments it: the data (channels last), its layout, the labels' calibration."""

    data: Any  # channels last
    layout: StackLayout
    axes: str  # of the labels: the stack's axes without C
    scale: tuple[float, ...] | None
    unit: str | None
    note: str | None = None
    frame_interval: float | None = None


def describe_stack(stack: Any, axis: int, channel: int | None) -> StackInfo:
    """Axes, layout and calibration of an opened ``io.Stack`` for segmentation."""
    data, axes, rgb = stack.data, stack.axes, False
    note = None
    if axes == "CYX" and channel is None:  # e.g. tifffile.imwrite(imagej=True) without axes: frames, really
        axes = "TYX"
        name = stack.path.name if stack.path else "the stack"
        note = f"{name} has a channel axis only: using its channels as frames."
    else:
        data, rgb = channels_last(stack)
        axes = axes.replace("C", "") + ("C" if rgb else "")
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
    layout = StackLayout(tuple(int(n) for n in data.shape), axis, rgb)
    scale = None
    if stack.scale is not None:
        size = dict(zip(stack.axes, stack.scale))
        scale = tuple(float(size.get(a, 1.0)) for a in spatial)
    return StackInfo(data, layout, spatial, scale, stack.unit, note, stack.frame_interval)


def open_labels_writer(path: Path, zarr_out: bool, info: StackInfo, max_label: int) -> Any:
    """The labels writer of a job: a page-ordered TIFF, or a chunked OME-Zarr (``--out x.zarr``)."""
    from .io import LabelsTiffWriter
    from .io.labels_zarr import LabelsZarrWriter

    shape = info.layout.labels_shape
    if zarr_out:
        return LabelsZarrWriter(path, shape, max_label=max_label, axes=info.axes, scale=info.scale,
                                unit=info.unit, frame_interval=info.frame_interval)
    return LabelsTiffWriter(path, shape, max_label=max_label, axes=info.axes, scale=info.scale, unit=info.unit)


def read_prompt_file(path: Path, layout: StackLayout) -> PromptSet | SessionDoc:
    """Prompts of ``path`` for a stack of ``layout``: read once (every outer position of an N-D
    stack, by frame key), checked against the stack, ids that fit a labels TIFF. A session file
    (``*.sam2.json``) gives a :class:`~.engine.session_replay.SessionDoc`, whose ``apply`` replays it."""
    if path.name.lower().endswith(SESSION_SUFFIX):
        prompts: Any = read_session(path)
        if not prompts:
            raise PromptError(f"{path.name}: no prompt is left at the end of the session; add one and save it again.")
        for key in prompts.frames:
            try:
                layout.key(key, prompt=True)
            except PromptError as err:
                raise PromptError(f"{path.name}: {err}") from None
    else:
        prompts = read_prompts(path, layout)
    too_big = [i for i in prompts.obj_ids if i > MAX_OBJ_ID]
    if too_big:
        raise PromptError(f"{path.name}: object id {too_big[0]} is too large; label TIFFs hold ids up to "
                          f"{MAX_OBJ_ID} (uint32), renumber the objects.")
    return prompts


def session_settings(prompts: Any, data: Any, axis: int, channel: int | None) -> tuple[dict, list[str]]:
    """For a session file: the ``VideoSession`` settings it was made with (``intensity_range``,
    ``fill_hole_area``, ...; axis and channel stay the command line's) and notes on what differs
    (other pixels, axis, channel). Frames of another shape or dtype are refused (InputError)."""
    if not isinstance(prompts, SessionDoc):
        return {}, []
    notes = check_identity(prompts.image, data, prompts.path.name)
    kwargs = prompts.session_kwargs()
    for name, mine in (("axis", axis), ("channel", channel)):
        if name in kwargs and kwargs[name] != mine:
            notes.append(f"{prompts.path.name} was made with {name} {kwargs[name]}; using --{name} {mine}.")
    return {k: v for k, v in kwargs.items() if k not in ("axis", "channel", "rgb")}, notes
