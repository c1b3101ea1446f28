"""Stream label frames into a chunked OME-Zarr label image, in any order, for inputs of any size.

``LabelsZarrWriter`` has the ``LabelsTiffWriter`` interface (``write(index, labels)``,
``close``, ``abort``, ``shape``, ``dtype``, ``n_pages``), but frames may come in any
order: each is one chunk row written where it belongs, frames never written cost no disk
and read as 0. The store is OME-NGFF 0.4 (zarr format 2): one resolution level ``0`` with
axes, physical scale and ``image-label`` metadata, which napari-ome-zarr, Fiji/MoBIE and
``napari_sam2.io.read_stack`` open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import OutputError
from ._units import normalize_unit
from .labels_writer import labels_dtype

_NGFF_UNITS = {"pm": "picometer", "Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "mm": "millimeter",
               "cm": "centimeter", "m": "meter", "in": "inch"}
CHUNK_YX = 1024


class LabelsZarrWriter:
    """Write a (..., Y, X) label stack frame by frame into ``path`` (a ``.zarr`` folder, replaced if it exists)."""

    def __init__(self, path: str | Path, shape: Sequence[int], *, max_label: int, axes: str = "TYX",
                 scale: Sequence[float] | None = None, unit: str | None = None,
                 frame_interval: float | None = None) -> None:
        try:
            import zarr
        except ImportError:
            raise OutputError('Writing .zarr labels needs the zarr package: pip install "napari-sam2[zarr]".') from None
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.axes = axes.upper()
        if len(self.axes) != len(self.shape) or not self.axes.endswith("YX"):
            raise OutputError(f"axes {axes!r} must name each of the {len(self.shape)} dimensions and end with 'YX'.")
        self.dtype = labels_dtype(int(max_label))
        self.max_label = int(max_label)
        self.n_pages = int(np.prod(self.shape[:-2], dtype=np.int64))
        chunks = (1,) * (len(self.shape) - 2) + tuple(min(n, CHUNK_YX) for n in self.shape[-2:])
        v3 = int(zarr.__version__.split(".")[0]) >= 3
        group = zarr.open_group(str(self.path), mode="w", **({"zarr_format": 2} if v3 else {}))
        create = group.create_array if v3 else group.create_dataset  # zarr 3 / zarr 2
        self._array = create("0", shape=self.shape, chunks=chunks, dtype=self.dtype, fill_value=0)
        group.attrs.update(_ngff_attrs(self.axes, scale, normalize_unit(unit), frame_interval, self.path.stem))
        self._open = True

    def write(self, index: int | Sequence[int], labels: np.ndarray) -> None:
        """Write the frame at ``index`` (the flat page number or a tuple over the leading axes)."""
        if not self._open:
            raise OutputError(f"{self.path.name} is closed.")
        lead = self.shape[:-2]
        key = np.unravel_index(int(index), lead) if isinstance(index, (int, np.integer)) else tuple(index)
        labels = np.asarray(labels)
        if labels.shape != self.shape[-2:]:
            raise OutputError(f"labels of shape {labels.shape} do not match frames of {self.shape[-2:]}.")
        if labels.size and (labels.min() < 0 or labels.max() > self.max_label):
            raise OutputError(f"labels range {labels.min()}..{labels.max()} is outside 0..{self.max_label}.")
        self._array[tuple(int(i) for i in key)] = labels.astype(self.dtype, copy=False)

    def close(self) -> None:
        self._open = False

    def abort(self) -> None:
        self._open = False

    def __enter__(self) -> LabelsZarrWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ngff_attrs(axes: str, scale: Sequence[float] | None, unit: str | None, frame_interval: float | None,
                name: str) -> dict:
    """OME-NGFF 0.4 ``multiscales`` + ``image-label`` attributes of a one-level label image."""
    axes_meta = []
    for a in axes:
        entry = {"name": a.lower(), "type": "time" if a == "T" else "channel" if a == "C" else "space"}
        if a in "ZYX" and unit in _NGFF_UNITS:
            entry["unit"] = _NGFF_UNITS[unit]
        if a == "T" and frame_interval:
            entry["unit"] = "second"
        axes_meta.append(entry)
    values = [float(s) for s in scale] if scale is not None else [1.0] * len(axes)
    if "T" in axes and frame_interval:
        values[axes.index("T")] = float(frame_interval)
    return {
        "multiscales": [{
            "version": "0.4",
            "name": name,
            "axes": axes_meta,
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": values}]}],
        }],
        "image-label": {"version": "0.4"},
    }
