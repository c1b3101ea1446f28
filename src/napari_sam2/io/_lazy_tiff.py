"""Array-like view of a TIFF series that decodes pages only when indexed.

Used when the series cannot be memory-mapped (compressed or scattered pages): a
(T, Y, X) stack of thousands of compressed frames must not be decoded up front.
Indexing reads only the pages (2D planes, or YXS colour planes) it needs.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import tifffile

from ..errors import InputError
from ._frame_array import FramesArrayLike, split_frame_key


def decode_error(path: str, page_index: int, lead_shape: tuple[int, ...], exc: BaseException) -> InputError:
    """A missing codec names the fix (imagecodecs); anything else is a damaged file."""
    name = os.path.basename(str(path))
    if "imagecodecs" in str(exc):
        return InputError(
            f"Cannot decode page {page_index} of {name} ({exc}); install the imagecodecs package "
            "(pip install imagecodecs), or re-save the file uncompressed or zlib-compressed."
        )
    where = page_index if len(lead_shape) <= 1 else tuple(int(i) for i in np.unravel_index(page_index, lead_shape))
    return InputError(
        f"Cannot decode page {page_index} of {name}: the file is truncated or corrupt ({exc}); frame "
        f"{where} and possibly others are damaged. Copy or save the file again from the original."
    )


class LazyTiffSeries(FramesArrayLike):
    """Read-only array-like over the pages of one ``TiffPageSeries``.

    Exposes ``shape``, ``dtype``, ``ndim``, ``__len__`` (from ``FramesArrayLike``) and its own
    numpy-style ``__getitem__`` (ints, slices, Ellipsis; an integer array on the page axes), so
    it can be wrapped by ``dask.array.from_array`` or shown by napari directly.
    """

    def __init__(self, tif: tifffile.TiffFile, series_index: int) -> None:
        series = tif.series[series_index]
        self._tif = tif
        self._path = tif.filename
        self._pages = list(series.pages)
        self.shape: tuple[int, ...] = tuple(int(n) for n in series.shape)
        self.dtype = np.dtype(series.dtype)
        first = next((p for p in self._pages if p is not None), None)
        if first is None:
            raise InputError(f"{self._path} holds no image data; choose another file or series.")
        self._page_shape: tuple[int, ...] = tuple(first.shape)
        n_lead = len(self.shape) - len(self._page_shape)
        if n_lead < 0 or self.shape[n_lead:] != self._page_shape:
            raise InputError(
                f"{self._path}: pages of shape {self._page_shape} do not tile the series "
                f"shape {self.shape}; re-save the file as a plain TIFF stack."
            )
        self._lead_shape = self.shape[:n_lead]
        n_pages = int(np.prod(self._lead_shape, dtype=np.int64))
        if len(self._pages) < n_pages:
            self._pages += [None] * (n_pages - len(self._pages))
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LazyTiffSeries(shape={self.shape}, dtype={self.dtype}, file={self._path!r})"

    def read_page(self, page_index: int) -> np.ndarray:
        """Decode one page (missing pages, e.g. absent OME planes, read as zeros)."""
        page = self._pages[page_index]
        if page is None:
            return np.zeros(self._page_shape, self.dtype)
        try:
            with self._lock:
                data = page.asarray()
        except Exception as exc:  # codec missing, truncated or damaged file...
            raise decode_error(self._path, page_index, self._lead_shape, exc) from exc
        return np.asarray(data, dtype=self.dtype).reshape(self._page_shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        lead_key, page_key = self._split_key(key)
        grid = np.arange(len(self._pages)).reshape(self._lead_shape)[lead_key]
        grid = np.asarray(grid)
        plane_shape = np.broadcast_to(np.empty((), np.bool_), self._page_shape)[page_key].shape
        out = np.empty(grid.shape + plane_shape, dtype=self.dtype)
        for pos, page_index in np.ndenumerate(grid):
            out[pos] = self.read_page(int(page_index))[page_key]
        return out

    def _split_key(self, key: Any) -> tuple[tuple, tuple]:
        """Split a numpy index into its page-grid part and its within-page part."""
        n_lead = len(self._lead_shape)
        lead, page = split_frame_key(key, self.ndim, n_lead)
        return (lead if n_lead != 1 else (lead,)), page
