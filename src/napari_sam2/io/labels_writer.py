"""Stream label images to one compressed TIFF, one frame at a time.

Format choice (the ImageJ TIFF format only knows uint8, uint16 and float32):

* ``max_label`` <= 65535: the smallest of uint8 / uint16, written as an ImageJ
  hyperstack (axes in the description, X/YResolution tags plus ``unit=`` and
  ``spacing=`` for the calibration), so Fiji opens it by drag and drop, calibrated.
* larger ``max_label`` (or axes not in ImageJ's T, Z, C order, or a stack over 4 GB):
  uint32 (or the small type) as OME-TIFF with PhysicalSize{X,Y,Z}. Label values stay
  exact integers, which napari Labels layers, scikit-image and the CTC tools need;
  Fiji opens it with File > Import > Bio-Formats. float32 ImageJ was rejected because
  napari cannot show float images as Labels.

Pages are zlib (deflate, TIFF code 8) compressed with tifffile's built-in codec (no
imagecodecs), without predictor or tiles: ImageJ's TiffDecoder reads code 8 and reads
every IFD of a compressed ImageJ file. Each page is written as it arrives; frames never written
are filled with zeros when the writer closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile

from ..errors import OutputError
from ._units import ascii_unit, convert, normalize_unit

_OME_UNITS = {"pm", "Å", "nm", "µm", "mm", "cm", "m", "in"}
_CLASSIC_TIFF_LIMIT = 2**32 - 2**26  # bytes; keep a margin for IFDs and incompressible data


def labels_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned integer type that holds ``max_label``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_label <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise OutputError(f"max_label {max_label} does not fit in uint32.")


def _imagej_order(axes: str) -> bool:
    lead = axes[:-2]
    return set(lead) <= set("TZC") and list(lead) == sorted(lead, key="TZC".index)


class LabelsTiffWriter:
    """Write a (..., Y, X) label stack page by page, in order, with bounded memory.

    Use as a context manager; ``write(index, labels)`` takes the flat page index (the
    frame, for a T x Y x X stack) or a tuple over the leading axes. Skipped pages are
    written as zeros; going back raises OutputError.
    """

    def __init__(
        self,
        path: str | Path,
        shape: Sequence[int],
        *,
        max_label: int,
        axes: str = "TYX",
        scale: Sequence[float] | None = None,
        unit: str | None = None,
        compression_level: int = 6,
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.axes = axes.upper()
        if len(self.shape) < 2 or len(self.axes) != len(self.shape):
            raise OutputError(f"axes {axes!r} must name each of the {len(self.shape)} dimensions of {self.shape}.")
        if not self.axes.endswith("YX") or len(set(self.axes)) != len(self.axes):
            raise OutputError(f"axes {axes!r} must be distinct and end with 'YX'.")
        if scale is not None and len(scale) != len(self.shape):
            raise OutputError(f"scale {tuple(scale)} needs one value per axis of {self.axes}.")
        if max_label < 0:
            raise OutputError("max_label must be 0 or more.")
        self.max_label = int(max_label)
        self.dtype = labels_dtype(self.max_label)
        self.scale = None if scale is None else tuple(float(s) for s in scale)
        self.unit = normalize_unit(unit)
        self.n_pages = int(np.prod(self.shape[:-2], dtype=np.int64))
        raw_bytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.imagej = (
            self.dtype.itemsize <= 2 and _imagej_order(self.axes) and raw_bytes < _CLASSIC_TIFF_LIMIT
        )
        self._level = int(compression_level)
        self._next = 0
        self._zeros: np.ndarray | None = None
        self._description = self._imagej_description() if self.imagej else self._ome_description()
        self._resolution, self._resolution_unit = self._resolution_tags()
        self._tw: tifffile.TiffWriter | None = tifffile.TiffWriter(
            self.path, bigtiff=raw_bytes >= _CLASSIC_TIFF_LIMIT
        )

    # -- metadata -------------------------------------------------------------------
    def _size(self, axis: str) -> float | None:
        if self.scale is None or axis not in self.axes:
            return None
        return self.scale[self.axes.index(axis)]

    def _imagej_description(self) -> str:
        meta: dict = {"min": 0.0, "max": float(max(self.max_label, 1))}
        if self.unit is not None:
            meta["unit"] = ascii_unit(self.unit)
        if self._size("Z") is not None:
            meta["spacing"] = self._size("Z")
        return tifffile.imagej_description(self.shape, self.axes, **meta)

    def _ome_description(self) -> bytes:
        meta: dict = {}
        if self.unit in _OME_UNITS:
            for axis in "XYZ":
                if self._size(axis) is not None:
                    meta[f"PhysicalSize{axis}"] = self._size(axis)
                    meta[f"PhysicalSize{axis}Unit"] = self.unit
        y, x = self.shape[-2:]
        omexml = tifffile.OmeXml()
        omexml.addimage(self.dtype, self.shape, (self.n_pages, 1, 1, y, x, 1), axes=self.axes, **meta)
        return omexml.tostring().encode("utf-8")  # OME-XML is UTF-8 ("µm")

    def _resolution_tags(self) -> tuple[tuple[float, float] | None, str]:
        sx, sy = self._size("X"), self._size("Y")
        if sx is None or sy is None or sx <= 0 or sy <= 0:
            return None, "NONE"
        if self.imagej:  # ImageJ: pixels per `unit=` of the description
            return (1.0 / sx, 1.0 / sy), "NONE"
        cx, cy = convert(sx, self.unit, "cm"), convert(sy, self.unit, "cm")
        if cx is None or cy is None:
            return None, "NONE"
        return (1.0 / cx, 1.0 / cy), "CENTIMETER"

    # -- writing --------------------------------------------------------------------
    def write(self, index: int | Sequence[int], labels: np.ndarray) -> None:
        """Write the page at ``index`` (after zero pages for any skipped ones)."""
        if self._tw is None:
            raise OutputError(f"{self.path.name} is closed.")
        page = self._flat(index)
        if page < self._next:
            raise OutputError(
                f"page {page} of {self.path.name} is already written; write frames in order."
            )
        labels = np.asarray(labels)
        if labels.shape != self.shape[-2:]:
            raise OutputError(f"labels of shape {labels.shape} do not match frames of {self.shape[-2:]}.")
        if labels.size and (labels.min() < 0 or labels.max() > self.max_label):
            raise OutputError(
                f"labels range {labels.min()}..{labels.max()} is outside 0..{self.max_label} (max_label)."
            )
        while self._next < page:
            self._write_page(self._zero_page())
        self._write_page(labels.astype(self.dtype, copy=False))

    def _flat(self, index: int | Sequence[int]) -> int:
        lead = self.shape[:-2]
        if isinstance(index, (int, np.integer)):
            page = int(index)
        else:
            if len(index) != len(lead):
                raise OutputError(f"index {tuple(index)} needs {len(lead)} values for axes {self.axes[:-2]}.")
            page = int(np.ravel_multi_index(tuple(int(i) for i in index), lead))
        if not 0 <= page < self.n_pages:
            raise OutputError(f"page {page} is outside the {self.n_pages} pages of {self.path.name}.")
        return page

    def _zero_page(self) -> np.ndarray:
        if self._zeros is None:
            self._zeros = np.zeros(self.shape[-2:], self.dtype)
        return self._zeros

    def _write_page(self, page: np.ndarray) -> None:
        assert self._tw is not None
        first = self._next == 0
        self._tw.write(
            page,
            description=self._description if first else None,
            metadata=None,
            compression="zlib",
            compressionargs={"level": self._level},
            resolution=self._resolution,
            resolutionunit=self._resolution_unit,
            software="napari-sam2" if first else False,
        )
        self._next += 1

    @property
    def pages_written(self) -> int:
        return self._next

    def close(self) -> None:
        """Fill the remaining pages with zeros and finish the file."""
        if self._tw is None:
            return
        try:
            while self._next < self.n_pages:
                self._write_page(self._zero_page())
        finally:
            self._tw.close()
            self._tw = None

    def abort(self) -> None:
        """Stop without filling the remaining pages (the caller deletes the unfinished file)."""
        if self._tw is not None:
            try:
                self._tw.close()
            finally:
                self._tw = None

    def __enter__(self) -> LabelsTiffWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
