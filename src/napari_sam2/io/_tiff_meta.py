"""Axes and physical pixel size of a TIFF series, from ImageJ, OME or plain tags.

Only the spatial axes (Z, Y, X) get a physical size; T and C keep 1.0, because the
frame index is what prompts and results refer to (frame intervals are not used).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import tifffile

from ._units import convert, normalize_unit

_SPATIAL = "ZYX"
_LEAD_GUESS = "TZ"  # unknown leading axes become T, then Z


def normalize_axes(axes: str) -> str:
    """Map tifffile axis codes to the plugin's letters (T, Z, C, Y, X), without duplicates.

    ``S`` (samples, RGB) becomes ``C`` (a channel axis next to it is then treated as a
    sequence axis); unknown sequence axes (``I``, ``Q``, ...) become ``T`` then ``Z``
    from the left, so a plain multi-page TIFF is a time series.
    """
    out = list(axes.upper())
    if "S" in out:
        if "C" in out:  # e.g. ImageJ RGB planes counted as channels: a sequence axis
            out[out.index("C")] = "?"
        out[out.index("S")] = "C"
    for i, letter in enumerate(out):
        if letter not in "TZCYXS":
            free = next((g for g in _LEAD_GUESS if g not in out), None)
            if free is not None:
                out[i] = free
    return "".join(out)


def _ome_sizes(tif: tifffile.TiffFile, series_index: int) -> tuple[dict[str, float], str | None]:
    """PhysicalSize{X,Y,Z} of the series' OME Image, converted to the X unit."""
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return {}, None
    images = [el for el in root if el.tag.rsplit("}", 1)[-1] == "Image"]
    if series_index >= len(images):
        return {}, None
    pixels = next((el for el in images[series_index] if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or pixels.get("PhysicalSizeX") is None:
        return {}, None
    unit = normalize_unit(pixels.get("PhysicalSizeXUnit", "µm"))
    sizes: dict[str, float] = {}
    for axis in _SPATIAL:
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            continue
        size = convert(float(value), pixels.get(f"PhysicalSize{axis}Unit", "µm"), unit)
        if size is not None and size > 0:
            sizes[axis] = size
    return sizes, unit


def _resolution_sizes(page: tifffile.TiffPage) -> dict[str, float]:
    """Pixel sizes (units per pixel) from the X/YResolution tags, if set."""
    try:
        xres, yres = page.get_resolution()
    except Exception:
        return {}
    sizes: dict[str, float] = {}
    if xres and xres > 0:
        sizes["X"] = 1.0 / float(xres)
    if yres and yres > 0:
        sizes["Y"] = 1.0 / float(yres)
    return sizes


def _imagej_sizes(tif: tifffile.TiffFile) -> tuple[dict[str, float], str | None]:
    meta = tif.imagej_metadata or {}
    unit = normalize_unit(meta.get("unit"))
    if unit is None:
        return {}, None
    sizes = _resolution_sizes(tif.pages.first)
    spacing = meta.get("spacing")
    if spacing:
        sizes["Z"] = abs(float(spacing))
    return sizes, unit


_TAG_UNITS = {"CENTIMETER": "cm", "MILLIMETER": "mm", "MICROMETER": "µm"}


def _tag_sizes(tif: tifffile.TiffFile) -> tuple[dict[str, float], str | None]:
    """Plain TIFF: trust metric ResolutionUnit only (inch DPI is printing metadata)."""
    page = tif.pages.first
    unit = _TAG_UNITS.get(getattr(page.resolutionunit, "name", ""))
    if unit is None:
        return {}, None
    sizes = {a: convert(s, unit, "µm") for a, s in _resolution_sizes(page).items()}
    return {a: s for a, s in sizes.items() if s}, "µm"


def physical_scale(
    tif: tifffile.TiffFile, series_index: int, axes: str
) -> tuple[tuple[float, ...] | None, str | None]:
    """Per-axis pixel size and unit, or ``(None, None)`` when X/Y are uncalibrated."""
    if tif.is_ome:
        sizes, unit = _ome_sizes(tif, series_index)
    elif tif.is_imagej:
        sizes, unit = _imagej_sizes(tif)
    else:
        sizes, unit = _tag_sizes(tif)
    if "X" not in sizes or "Y" not in sizes or unit is None:
        return None, None
    return tuple(float(sizes.get(a, 1.0)) for a in axes), unit
