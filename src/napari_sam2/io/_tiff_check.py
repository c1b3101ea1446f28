"""Refuse TIFF files that were cut short, at open time and without decoding any pixel.

A TIFF truncated by an interrupted copy or download still opens: tifffile keeps the
IFDs that survived, and an ImageJ or tifffile ("shaped") series keeps its declared
shape, so the lost frames would silently read as zeros. The checks use only the file
size, the page offsets and the IFD chain:

* contiguous pixel data (uncompressed ImageJ / tifffile stacks) must end inside the file;
* every page's strips or tiles must end inside the file, and no page of the series may be
  missing (OME files may omit planes on purpose, so there only a broken IFD chain counts);
* the IFD chain must end with offset 0, not point past the end of the file;
* an ImageJ file whose series metadata no longer matches must hold its ``images=`` frames.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tifffile

from ..errors import InputError

_DECLARED_KINDS = ("imagej", "shaped", "ome")  # series whose length comes from metadata


class _QuietFilter(logging.Filter):
    """Drops tifffile's records in threads that are inside :func:`quiet_tifffile`."""

    state = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.state, "depth", 0)


_FILTER = _QuietFilter()
logging.getLogger("tifffile").addFilter(_FILTER)


@contextmanager
def quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's warnings about a damaged file in this thread (the checks here report it)."""
    state = _FILTER.state
    state.depth = getattr(state, "depth", 0) + 1
    try:
        yield
    finally:
        state.depth -= 1


def _truncated(path: Path, good: int, total: int | None, lead: tuple[int, ...]) -> InputError:
    size = os.path.getsize(path)
    unit = "frames" if len(lead) <= 1 else "planes"
    if good <= 0:
        done = f"not even its first {unit[:-1]} is complete"
    else:
        last = good - 1 if len(lead) <= 1 else tuple(int(i) for i in np.unravel_index(good - 1, lead))
        first = f"first {unit[:-1]} is" if good == 1 else f"first {good} {unit} are"
        done = f"only its {first} complete (the last good {unit[:-1]} is {last})"
    should = f"it should hold {total} {unit} but" if total is not None else "its pages run past its end and"
    return InputError(
        f"{path.name} is truncated or corrupt: {should} {done}; the file ({size} bytes) was probably "
        "cut short by an interrupted copy, download or save. Copy or save it again from the original."
    )


def _next_ifd(tif: tifffile.TiffFile, ifd_offset: int) -> int | None:
    """The next-IFD offset stored after the IFD at ``ifd_offset`` (None when unreadable)."""
    fmt = tif.tiff
    fh = tif.filehandle
    try:
        fh.seek(ifd_offset)
        raw = fh.read(fmt.tagnosize)
        if len(raw) < fmt.tagnosize:
            return None
        (tagno,) = struct.unpack(fmt.tagnoformat, raw)
        fh.seek(ifd_offset + fmt.tagnosize + tagno * fmt.tagsize)
        raw = fh.read(fmt.offsetsize)
        if len(raw) < fmt.offsetsize:
            return None
        return int(struct.unpack(fmt.offsetformat, raw)[0])
    except (OSError, struct.error):
        return None


def _chain_broken(tif: tifffile.TiffFile, page: Any, size: int) -> bool:
    offset = getattr(page, "offset", None)
    if not isinstance(offset, int):
        return False
    nxt = _next_ifd(tif, offset)
    return nxt is None or (nxt != 0 and not 8 <= nxt < size)


def _data_end(page: Any) -> int:
    ends = [int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts) if c]
    return max(ends, default=0)


def _declared_pages(tif: tifffile.TiffFile, series_index: int, page_shape: tuple[int, ...]) -> int:
    """Pages that series 0's ImageJ or tifffile metadata promises (0 when there is none)."""
    if series_index != 0:
        return 0
    if tif.is_imagej and tif.imagej_metadata:
        return int(tif.imagej_metadata.get("images", 1) or 1)
    if tif.is_shaped and tif.shaped_metadata:
        shape = tif.shaped_metadata[0].get("shape")
        if isinstance(shape, (list, tuple)) and all(isinstance(n, int) for n in shape):
            return math.prod(shape) // max(math.prod(page_shape), 1)
    return 0


def check_tiff_complete(tif: tifffile.TiffFile, series_index: int, path: Path) -> None:
    """Raise :class:`InputError` naming the last good frame when the file was cut short."""
    size = os.path.getsize(path)
    series = tif.series[series_index]
    first = series.keyframe
    if first is None:
        return  # "holds no image data" is reported by the reader
    page_shape = tuple(int(n) for n in first.shape)
    shape = tuple(int(n) for n in series.shape)
    lead = shape[: len(shape) - len(page_shape)]
    n_pages = math.prod(lead)
    declared_kind = getattr(series, "kind", "") in _DECLARED_KINDS
    total: int | None = n_pages if declared_kind else None
    promised = _declared_pages(tif, series_index, page_shape)
    if promised > n_pages:  # metadata that tifffile could not match with the pages it found
        total, lead = promised, (promised,)
    if series.dataoffset is not None:  # one contiguous block of pixels: never touch every IFD
        page_bytes = math.prod(page_shape) * np.dtype(series.dtype).itemsize
        good = max(size - int(series.dataoffset), 0) // max(page_bytes, 1)
        if good < max(n_pages, total or 0):
            raise _truncated(path, good, total or n_pages, lead)
        if not declared_kind and _chain_broken(tif, series.pages[n_pages - 1], size):
            raise _truncated(path, n_pages, total, lead)
    else:  # the pages are indexed anyway (the lazy reader lists them)
        pages = list(series.pages)
        ome = bool(tif.is_ome)
        for i in range(n_pages):
            page = pages[i] if i < len(pages) else None
            if page is None and not ome:  # OME may omit planes; a broken IFD chain is checked below
                raise _truncated(path, i, total, lead)
            if page is not None and _data_end(page) > size:
                raise _truncated(path, i, total, lead)
        present = [i for i in range(min(n_pages, len(pages))) if pages[i] is not None]
        if present and _chain_broken(tif, pages[present[-1]], size):
            missing = [i for i in range(n_pages) if i >= len(pages) or pages[i] is None]
            if missing:
                raise _truncated(path, missing[0], total, lead)
            if not declared_kind:  # the series' length is only what survived
                raise _truncated(path, n_pages, total, lead)
    if total is not None and total > n_pages:
        raise _truncated(path, n_pages, total, lead)
