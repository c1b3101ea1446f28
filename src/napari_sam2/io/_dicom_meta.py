"""DICOM header facts for :mod:`napari_sam2.io.dicom`: calibration, timing, slice order, decoders.

Headers are read with a fixed list of technical tags (``HEADER_TAGS``), so patient and study
elements (names, IDs, dates, institutions) are never parsed: they cannot reach metadata,
notes, messages or pydicom's own validation warnings.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

INSTALL_HINT = 'pip install "napari-sam2[dicom]"'

#: Only these elements are read from a header (see the module docstring).
HEADER_KEYWORDS = (
    "SOPClassUID", "Modality", "SeriesInstanceUID", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "NumberOfFrames", "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation",
    "PlanarConfiguration", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "FrameTime", "FrameTimeVector", "CineRate",
    "RecommendedDisplayFrameRate", "SequenceOfUltrasoundRegions", "SharedFunctionalGroupsSequence",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
)  # fmt: skip

#: Media Storage Directory (a DICOMDIR index): a DICOM file that never holds an image.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

# (transfer syntax UID prefix or UID, what to install)
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.80": "pip install pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pip install pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pip install pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pip install pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pip install pylibjpeg pylibjpeg-openjpeg",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202": "pip install pylibjpeg pylibjpeg-openjpeg",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203": "pip install pylibjpeg pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.4.50": "pip install pylibjpeg pylibjpeg-libjpeg (or Pillow)",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pip install pylibjpeg pylibjpeg-libjpeg (or Pillow)",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "pip install pylibjpeg pylibjpeg-libjpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "pip install pylibjpeg pylibjpeg-libjpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.5": "pip install pylibjpeg pylibjpeg-rle",  # RLE
}
# MPEG-2, MPEG-4 AVC/H.264, HEVC/H.265 and fragmentable/streamed variants
_VIDEO_PREFIXES = ("1.2.840.10008.1.2.4.10", "1.2.840.10008.1.2.4.11")


def import_pydicom() -> Any:
    """``pydicom``, or an InputError naming the optional dependency."""
    try:
        import pydicom
    except ImportError as exc:
        raise InputError(f"Reading DICOM files needs pydicom; install it with {INSTALL_HINT}.") from exc
    return pydicom


def read_header(path: Path) -> Any:
    """The technical header of one file (no pixel data, no patient elements), or InputError."""
    pydicom = import_pydicom()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value warnings must not echo header values
        try:
            return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_KEYWORDS))
        except pydicom.errors.InvalidDicomError as exc:
            raise InputError(
                f"{path.name} is not a DICOM file (no DICM header: encrypted, damaged or another "
                "format); export it again as a DICOM (Part 10) file."
            ) from exc
        except Exception as exc:
            raise InputError(
                f"Cannot read the DICOM header of {path.name} ({type(exc).__name__}): the file is "
                "truncated or damaged; copy or export it again."
            ) from exc


def transfer_syntax(ds: Any, name: str) -> Any:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not ts:
        raise InputError(f"{name} has no transfer syntax in its file meta; export it again as a DICOM (Part 10) file.")
    return ts


def check_decoder(ts: Any, name: str) -> None:
    """Fail at open when pydicom cannot decode ``ts`` here, naming what to install."""
    from pydicom.pixels import get_decoder

    ts_name = getattr(ts, "name", str(ts))
    if str(ts).startswith(_VIDEO_PREFIXES):
        raise InputError(
            f"{name} is stored as {ts_name} video, which is not supported; export the frames as "
            "uncompressed or JPEG DICOM instead."
        )
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise InputError(
            f"{name} uses the transfer syntax {ts_name}, which pydicom cannot decode; export it "
            "as uncompressed or JPEG DICOM instead."
        ) from exc
    if not decoder.is_available:
        fix = _DECODER_PACKAGES.get(str(ts), "install a pydicom pixel data plugin (see the pydicom docs)")
        raise InputError(f"{name} is compressed as {ts_name} and no decoder for it is installed; {fix}.")


def number(ds: Any, keyword: str, default: Any = None) -> Any:
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def floats(ds: Any, keyword: str, n: int) -> np.ndarray | None:
    value = getattr(ds, keyword, None)
    try:
        arr = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def pixel_spacing(ds: Any) -> tuple[float, float] | None:
    """(row, column) spacing in mm: PixelSpacing (also in shared functional groups) or US regions."""
    spacing = floats(ds, "PixelSpacing", 2)
    if spacing is None:
        shared = _first(_first(ds, "SharedFunctionalGroupsSequence"), "PixelMeasuresSequence")
        spacing = floats(shared, "PixelSpacing", 2) if shared is not None else None
    if spacing is not None and np.all(spacing > 0):
        return float(spacing[0]), float(spacing[1])
    region = _first(ds, "SequenceOfUltrasoundRegions")
    if region is not None:
        dx, dy = number(region, "PhysicalDeltaX"), number(region, "PhysicalDeltaY")
        ux, uy = number(region, "PhysicalUnitsXDirection"), number(region, "PhysicalUnitsYDirection")
        if dx and dy and dx > 0 and dy > 0 and ux == 3 and uy == 3:  # 3: centimetres
            return abs(dy) * 10.0, abs(dx) * 10.0
    return None


def _first(ds: Any, keyword: str) -> Any:
    seq = getattr(ds, keyword, None) if ds is not None else None
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def frame_timing(ds: Any, n_frames: int) -> tuple[float | None, list[float] | None]:
    """(interval in s, frame start times in s) from FrameTime, FrameTimeVector or a frame rate."""
    frame_time = number(ds, "FrameTime")
    vector = getattr(ds, "FrameTimeVector", None)
    times: list[float] | None = None
    interval = frame_time / 1000.0 if frame_time and frame_time > 0 else None
    if vector is not None:
        try:
            deltas = np.asarray([float(v) for v in vector], float).ravel()
        except (TypeError, ValueError):
            deltas = np.empty(0)
        if deltas.size == n_frames and np.all(deltas[1:] > 0):
            times = [float(t) for t in np.cumsum(deltas) / 1000.0]
            if interval is None and n_frames > 1:
                interval = float(np.median(deltas[1:])) / 1000.0
    if interval is None:
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = number(ds, keyword)
            if rate and rate > 0:
                interval = 1.0 / rate
                break
    if times is None and interval is not None:
        times = [i * interval for i in range(n_frames)]
    return interval, times


def sort_slices(headers: list[tuple[Path, Any]]) -> tuple[list[tuple[Path, Any]], list[float] | None, list[str]]:
    """Slices in spatial order: position along the slice normal, then InstanceNumber.

    Returns the sorted list, the positions along the normal (mm; None when the files carry
    no ImagePositionPatient / ImageOrientationPatient) and notes.
    """
    notes: list[str] = []
    orient = floats(headers[0][1], "ImageOrientationPatient", 6)
    positions = [floats(ds, "ImagePositionPatient", 3) for _, ds in headers]
    proj: list[float] | None = None
    if orient is not None and all(p is not None for p in positions):
        normal = np.cross(orient[:3], orient[3:])
        normal /= max(float(np.linalg.norm(normal)), 1e-12)
        proj = [float(np.dot(p, normal)) for p in positions]
    elif len(headers) > 1:
        notes.append("The slices carry no patient positions; they are ordered by InstanceNumber.")
    order = sorted(
        range(len(headers)),
        key=lambda i: (proj[i] if proj else 0.0, number(headers[i][1], "InstanceNumber", 0.0), headers[i][0].name),
    )
    if proj is not None and len(set(np.round(proj, 4))) < len(proj):
        notes.append("Some slices share a position; they are ordered by InstanceNumber there.")
    return [headers[i] for i in order], ([proj[i] for i in order] if proj else None), notes


def slice_spacing(positions: list[float] | None, ds: Any) -> float | None:
    """Median distance of consecutive slices, else SpacingBetweenSlices, else SliceThickness."""
    if positions is not None and len(positions) > 1:
        step = float(np.median(np.diff(positions)))
        if step > 1e-6:
            return step
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = number(ds, keyword)
        if value and value > 0:
            return value
    return None

