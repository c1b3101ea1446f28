"""napari reader contributions: video clips and DICOM (files, series folders) as lazy Image layers.

napari (or napari-ome-zarr) already reads TIFF, zarr and folders of images well, so only
what it cannot open is claimed here. The layer's data is a dask array over the plugin's own
lazy reader (``io.read_stack``): frames are decoded when napari shows them or the SAM 2
widget segments them, never all at open. Scale, axis labels and units (napari >= 0.5) come
from the file: frame interval in seconds, pixel spacing in mm for DICOM.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import Sam2Error

LayerData = tuple[Any, dict, str]


def get_video_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari's ``get_reader`` hook for video files (``io.video.VIDEO_SUFFIXES``)."""
    from ..io.video import VIDEO_SUFFIXES

    if isinstance(path, str) and path.lower().endswith(VIDEO_SUFFIXES) and Path(path).is_file():
        return read_layers
    return None


def get_dicom_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari's ``get_reader`` hook for a DICOM file, a list of DICOM slices or a DICOM series folder."""
    from ..io.dicom import is_dicom_file, is_dicom_folder

    paths = [Path(p) for p in ([path] if isinstance(path, str) else path)]
    if len(paths) == 1 and paths[0].is_dir():
        return read_layers if is_dicom_folder(paths[0]) else None
    if paths and all(p.is_file() and is_dicom_file(p) for p in paths):
        return read_layers
    return None


def read_layers(path: str | list[str]) -> list[LayerData]:
    """One Image layer tuple for ``path`` (see module docstring); a problem is one clear message."""
    from ..io import read_stack

    try:
        if isinstance(path, (list, tuple)) and len(path) > 1:
            from ..io.dicom import read_dicom

            stack = read_dicom([Path(p) for p in path])
        else:
            stack = read_stack(path[0] if isinstance(path, (list, tuple)) else path)
    except Sam2Error as err:  # napari shows the message; no traceback for a file the user can fix
        warnings.warn(str(err), stacklevel=2)
        return []
    for note in stack.notes:
        warnings.warn(note, stacklevel=2)
    return [layer_tuple(stack)]


def layer_tuple(stack: Any) -> LayerData:
    """(dask data, Image kwargs, "image") for an opened ``io.Stack``."""
    import dask.array as da

    from ..io.channel_view import channels_last

    data, has_channels = channels_last(stack)
    shape = tuple(int(n) for n in data.shape)
    lazy = da.from_array(data, chunks=(1,) * (len(shape) - (3 if has_channels else 2)) + shape[-(3 if has_channels
                         else 2):], meta=np.empty((0,) * len(shape), np.dtype(data.dtype)), name=False)
    axes = stack.axes.replace("C", "") + ("C" if has_channels else "")
    spatial = axes[:-1] if has_channels else axes
    size = dict(zip(stack.axes, stack.scale)) if stack.scale is not None else {}
    scale = [float(size.get(a, 1.0)) for a in spatial]
    units = [stack.unit if a in "ZYX" and stack.unit else "pixel" for a in spatial]
    if "T" in spatial and stack.frame_interval:
        scale[spatial.index("T")] = float(stack.frame_interval)
        units[spatial.index("T")] = "second"
    rgb = has_channels and shape[-1] in (3, 4)
    kwargs: dict[str, Any] = {
        "name": stack.path.name if stack.path is not None else "stack",
        "scale": scale,
        "axis_labels": [a.lower() for a in spatial],
        "units": units,
        "rgb": rgb,
        "metadata": {"napari_sam2": {"axes": axes, "frame_interval": stack.frame_interval, **stack.metadata}},
    }
    if np.dtype(data.dtype) == np.uint8:
        kwargs["contrast_limits"] = [0, 255]  # no scan of the data for a range
    if has_channels and not rgb:
        kwargs["channel_axis"] = len(shape) - 1
    return lazy, _supported(kwargs), "image"


def _supported(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop the Image arguments this napari does not know (``units`` / ``axis_labels`` before 0.5)."""
    try:
        from napari.layers import Image
    except ImportError:  # reading without napari (tests of the tuple itself)
        return kwargs
    params = inspect.signature(Image.__init__).parameters
    return {k: v for k, v in kwargs.items() if k in params or k == "channel_axis"}
