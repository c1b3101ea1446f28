"""Open DICOM files lazily: ultrasound / X-ray cines (multi-frame) and CT / MR slice series.

* A multi-frame file is a time series: axes ``"TYX"`` or ``"TYXC"`` (colour).
* A single-frame file is one image: a ``(1, Y, X)`` ``"TYX"`` stack.
* A folder (or a list of files) of single-frame slices of one series is a volume, ``"ZYX"``,
  sorted along the slice normal. A folder holding one multi-frame file reads that file.

Only frame 0 is decoded at open (to fail early on a missing decoder); the rest decode when
indexed (:class:`DicomFrames`). YBR colour is converted to RGB, PALETTE COLOR through its
lookup table to RGB, MONOCHROME1 is inverted to look like MONOCHROME2 (unless a rescale
applies), and a Rescale Slope / Intercept other than (1, 0) gives float32 values (CT: HU).
Patient and study elements are never read (see ``_dicom_meta``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._dicom_frames import DicomFrames, FrameSource, PixelRules
from ._dicom_meta import (
    DICOMDIR_SOP_CLASS,
    check_decoder,
    floats,
    frame_timing,
    import_pydicom,
    number,
    pixel_spacing,
    read_header,
    slice_spacing,
    sort_slices,
    transfer_syntax,
)
from .stack import Stack

__all__ = ["DICOM_SUFFIXES", "DicomFrames", "is_dicom_file", "is_dicom_folder", "read_dicom"]

DICOM_SUFFIXES = (".dcm", ".dicom")
_PROBE_FILES = 8
_DEFLATED = "1.2.840.10008.1.2.1.99"


def is_dicom_file(path: str | Path) -> bool:
    """True for a ``.dcm`` / ``.dicom`` name or a file starting with the 128-byte preamble + ``DICM``."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom_folder(path: str | Path) -> bool:
    """True for a folder whose visible files include DICOM files (names first, then a few headers)."""
    path = Path(path)
    if not path.is_dir():
        return False
    files = _visible_files(path)
    if any(f.suffix.lower() in DICOM_SUFFIXES for f in files):
        return True
    return any(is_dicom_file(f) for f in files[:_PROBE_FILES])


def read_dicom(path: str | Path | Sequence[str | Path]) -> Stack:
    """Open a DICOM file, a folder of one series, or a list of one series' files, lazily.

    A multi-frame file gives ``"TYX"``/``"TYXC"`` (frames are time, ``frame_interval`` from
    FrameTime / FrameTimeVector / CineRate), a single-frame file a ``(1, Y, X)`` ``"TYX"``
    stack, several single-frame slices a ``"ZYX"`` volume. ``scale`` is in mm (PixelSpacing,
    ultrasound region calibration, slice spacing) or None. Raise :class:`InputError` when the
    input cannot be used.
    """
    import_pydicom()
    notes: list[str] = []
    if isinstance(path, (str, os.PathLike)):
        root = Path(path)
        if not root.exists():
            raise InputError(f"DICOM file or folder not found: {root}; check the path.")
        if not root.is_dir():
            return _read_file(root, root, read_header(root), notes)
        files = _folder_files(root, notes)
        strict = False
    else:
        files = [Path(p) for p in path]
        if not files:
            raise InputError("No DICOM files were given; pass a folder or a list of one series' files.")
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise InputError(f"DICOM file not found: {missing[0]} ({len(missing)} missing); check the paths.")
        root, strict = files[0].parent, True
    return _read_files(root, files, notes, strict)


def _visible_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))


def _folder_files(folder: Path, notes: list[str]) -> list[Path]:
    """The folder's DICOM candidates; everything else is noted as ignored."""
    entries = sorted(folder.iterdir())
    files = [f for f in entries if f.is_file()]
    keep = [f for f in files if not f.name.startswith(".") and f.name.upper() != "DICOMDIR" and is_dicom_file(f)]
    if not keep:
        sub = " (its subfolders may: point at the folder of one series)" if any(e.is_dir() for e in entries) else ""
        raise InputError(f"The folder {folder.name} holds no DICOM files{sub}; choose a folder of .dcm files.")
    _note_ignored([f.name for f in files if f not in keep], "not DICOM images", notes)
    return keep


def _note_ignored(names: list[str], why: str, notes: list[str]) -> None:
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        notes.append(f"Ignored {len(names)} file(s) in the folder ({why}): {shown}.")


def _read_files(root: Path, files: list[Path], notes: list[str], strict: bool) -> Stack:
    headers: list[tuple[Path, Any]] = []
    unreadable: list[str] = []
    no_image: list[str] = []
    for f in files:
        try:
            ds = read_header(f)
        except InputError:
            if strict:
                raise
            unreadable.append(f.name)
            continue
        is_dir_index = str(getattr(ds, "SOPClassUID", "")) == DICOMDIR_SOP_CLASS
        if is_dir_index or number(ds, "Rows") is None:
            no_image.append(f.name)
        else:
            headers.append((f, ds))
    _note_ignored(unreadable, "not readable as DICOM", notes)
    _note_ignored(no_image, "DICOM without an image: reports, directories", notes)
    if not headers:
        raise InputError(
            f"{root.name} holds no DICOM images (only reports, directories or other files); "
            "choose the folder or files of an image series."
        )
    series = Counter(str(getattr(ds, "SeriesInstanceUID", "unknown")) for _, ds in headers)
    if len(series) > 1:
        listed = "; ".join(f"{uid} ({n} files)" for uid, n in series.most_common())
        raise InputError(
            f"{root.name} holds {len(series)} DICOM series ({listed}); point at one series' folder "
            "or pass that series' files."
        )
    if len(headers) == 1:
        return _read_file(headers[0][0], root, headers[0][1], notes)
    multi = [f.name for f, ds in headers if int(number(ds, "NumberOfFrames", 1)) > 1]
    if multi:
        raise InputError(
            f"{root.name} holds {len(headers)} files of one series, {len(multi)} of them multi-frame "
            f"(e.g. {multi[0]}); open one multi-frame file at a time."
        )
    return _read_series(root, headers, notes)


def _rules(ds: Any, rescale: bool) -> PixelRules:
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    return PixelRules(
        photometric=photometric,
        bits_stored=int(number(ds, "BitsStored", number(ds, "BitsAllocated", 8))),
        signed=number(ds, "PixelRepresentation", 0) == 1,
        palette=ds if photometric == "PALETTE COLOR" else None,
        rescale=rescale,
    )


def _rescale(ds: Any) -> tuple[float, float]:
    return float(number(ds, "RescaleSlope", 1.0) or 1.0), float(number(ds, "RescaleIntercept", 0.0))


def _frame_shape(ds: Any, rules: PixelRules) -> tuple[int, ...]:
    rows, cols = int(number(ds, "Rows", 0)), int(number(ds, "Columns", 0))
    colour = int(number(ds, "SamplesPerPixel", 1)) == 3 or rules.photometric == "PALETTE COLOR"
    return (rows, cols, 3) if colour else (rows, cols)


def _decoded_photometric(rules: PixelRules) -> str:
    if rules.photometric.startswith("YBR") or rules.photometric == "PALETTE COLOR":
        return "RGB"
    if rules.photometric == "MONOCHROME1" and not rules.rescale:
        return "MONOCHROME2"
    return rules.photometric


def _metadata(ds: Any, ts: Any, rules: PixelRules) -> dict[str, Any]:
    sop = getattr(ds, "SOPClassUID", None)
    return {
        "format": "dicom",
        "modality": str(getattr(ds, "Modality", "")) or None,
        "sop_class": getattr(sop, "name", str(sop)) if sop else None,
        "transfer_syntax": getattr(ts, "name", str(ts)),
        "photometric": _decoded_photometric(rules),
        "stored_photometric": rules.photometric,
    }


def _read_file(path: Path, given: Path, ds: Any, notes: list[str]) -> Stack:
    """One file: its frames are time (a cine), a single image is one frame."""
    ts = transfer_syntax(ds, path.name)
    if number(ds, "Rows") is None:
        raise InputError(f"{path.name} holds no image (e.g. a report or a directory); choose an image file or series.")
    check_decoder(ts, path.name)
    slope, intercept = _rescale(ds)
    rules = _rules(ds, (slope, intercept) != (1.0, 0.0))
    n_frames = max(1, int(number(ds, "NumberOfFrames", 1)))
    sources = [FrameSource(path, k, slope, intercept, str(ts) == _DEFLATED) for k in range(n_frames)]
    frames = DicomFrames(sources, rules, _frame_shape(ds, rules))
    colour = frames.ndim == 4
    interval, times = frame_timing(ds, n_frames)
    spacing = pixel_spacing(ds)
    meta = _metadata(ds, ts, rules)
    meta["n_frames"] = n_frames
    if rules.rescale:
        meta["rescale"] = (slope, intercept)
    if times is not None:
        meta["frame_times"] = times
    if rules.photometric == "MONOCHROME1" and rules.rescale:
        notes.append(
            "The image is MONOCHROME1 with a rescale: values are kept as rescaled, not inverted, so "
            "the contrast shows reversed compared with the scanner's display."
        )
    scale = None if spacing is None else (1.0, *spacing) + ((1.0,) if colour else ())
    return Stack(
        data=frames, axes="TYXC" if colour else "TYX", scale=scale, unit="mm" if scale else None,
        path=given, _handle=frames, frame_interval=interval, notes=notes, metadata=meta,
    )  # fmt: skip


def _read_series(root: Path, headers: list[tuple[Path, Any]], notes: list[str]) -> Stack:
    """Single-frame slices of one series: a Z stack sorted along the slice normal."""
    sizes = Counter(
        (int(number(ds, "Rows", 0)), int(number(ds, "Columns", 0)), int(number(ds, "SamplesPerPixel", 1)))
        for _, ds in headers
    )
    if len(sizes) > 1:
        listed = "; ".join(
            f"{c}x{r}{' RGB' if s == 3 else ''}: {n} file{'s' * (n > 1)}" for (r, c, s), n in sizes.most_common()
        )
        raise InputError(
            f"The slices in {root.name} differ in size ({listed}); remove the odd files or export "
            "the series again with one image size."
        )
    for ts in {transfer_syntax(ds, f.name) for f, ds in headers}:
        check_decoder(ts, next(f.name for f, ds in headers if ds.file_meta.TransferSyntaxUID == ts))
    ordered, positions, sort_notes = sort_slices(headers)
    notes.extend(sort_notes)
    first = ordered[0][1]
    rescales = [_rescale(ds) for _, ds in ordered]
    rules = _rules(first, any(r != (1.0, 0.0) for r in rescales))
    sources = [
        FrameSource(f, 0, *r, str(ds.file_meta.TransferSyntaxUID) == _DEFLATED) for (f, ds), r in zip(ordered, rescales)
    ]
    frames = DicomFrames(sources, rules, _frame_shape(first, rules))
    colour = frames.ndim == 4
    _check_orientation(ordered, notes)
    dz = slice_spacing(positions, first)
    if positions is not None and len(positions) > 2 and dz:
        steps = np.diff(positions)
        if np.max(np.abs(steps - dz)) > 0.1 * dz:
            notes.append(
                f"Slice spacing varies ({steps.min():.3g} to {steps.max():.3g} mm); Z scale is the "
                f"median, {dz:.3g} mm."
            )
    spacing = pixel_spacing(first)
    scale = None
    if spacing is not None:
        if dz is None:
            notes.append("The files give no slice spacing; Z scale is set to 1 mm.")
        scale = (dz or 1.0, *spacing) + ((1.0,) if colour else ())
    ts = first.file_meta.TransferSyntaxUID
    meta = _metadata(first, ts, rules)
    meta["n_slices"] = len(ordered)
    if rules.rescale:
        meta["rescale"] = rescales[0] if len(set(rescales)) == 1 else "per slice"
    if positions is not None:
        meta["slice_positions"] = positions
    return Stack(
        data=frames, axes="ZYXC" if colour else "ZYX", scale=scale, unit="mm" if scale else None,
        path=root, _handle=frames, notes=notes, metadata=meta,
    )  # fmt: skip


def _check_orientation(ordered: list[tuple[Path, Any]], notes: list[str]) -> None:
    orients = [floats(ds, "ImageOrientationPatient", 6) for _, ds in ordered]
    known = [o for o in orients if o is not None]
    if known and any(not np.allclose(o, known[0], atol=1e-3) for o in known):
        notes.append("The slices differ in orientation (e.g. a localizer among them); check the series.")
