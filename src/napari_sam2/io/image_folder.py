"""A folder of 2D images (``00000.jpg``, ``frame2.png``, ...) read lazily as one stack.

This is the official SAM 2 video layout and what microscopes and ultrasound exporters often
write. Rules: the image files (``IMAGE_SUFFIXES``, single page) are the frames, in natural
order (``frame2`` before ``frame10``); hidden files are skipped and other files are ignored
with a note; every frame must have the first one's size and bit depth (the first offending
file is named); grey and colour frames mixed are read as colour. Only the file headers are
read at open time; each frame is decoded when indexed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._frame_array import FrameArray

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")


def natural_key(name: str) -> tuple:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts if p != "")


def image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files in natural order, other non-hidden files) of ``folder``."""
    images, others = [], []
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        (images if p.suffix.lower() in IMAGE_SUFFIXES else others).append(p)
    images.sort(key=lambda p: natural_key(p.name))
    return images, sorted(others)


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(frame shape, dtype, pages) of one image file, reading its header only."""
    if path.suffix.lower() in _TIFF:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(int(n) for n in series.shape), np.dtype(series.dtype), len(tif.pages)
    from PIL import Image

    with Image.open(path) as im:
        mode, (w, h) = im.mode, im.size
        n_pages = getattr(im, "n_frames", 1)
    shape, dtype = {
        "1": ((h, w), np.uint8),
        "L": ((h, w), np.uint8),
        "I;16": ((h, w), np.uint16),
        "I;16B": ((h, w), np.uint16),
        "I": ((h, w), np.int32),
        "F": ((h, w), np.float32),
        "RGBA": ((h, w, 4), np.uint8),
        "LA": ((h, w, 4), np.uint8),
        "PA": ((h, w, 4), np.uint8),
    }.get(mode, ((h, w, 3), np.uint8))  # RGB, P (palette), CMYK, YCbCr... read as RGB
    return shape, np.dtype(dtype), n_pages


def _read_image(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Decode one frame to the folder's common ``shape`` (grey frames become colour if needed)."""
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            data = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                want = "RGBA" if shape[-1:] == (4,) and len(shape) == 3 else "RGB" if len(shape) == 3 else None
                if want is None and im.mode in ("P", "1"):
                    im = im.convert("L")
                elif want is not None and im.mode != want:
                    im = im.convert(want)
                data = np.asarray(im)
    except Exception as exc:
        raise InputError(f"Cannot decode {path.name} ({exc}); the file is damaged: replace or remove it.") from exc
    if data.ndim == 2 and len(shape) == 3:
        data = np.repeat(data[:, :, None], shape[2], axis=2)
    if data.shape != shape:
        raise InputError(f"{path.name} has shape {data.shape}, not {shape} like the other frames; "
                         "remove it or resize it to match.")
    return data.astype(dtype, copy=False)


def read_image_folder(folder: str | Path):
    """Open the image files of ``folder`` as one lazy (T, Y, X[, C]) stack (see module docstring)."""
    from .stack import Stack

    folder = Path(folder)
    images, others = image_files(folder)
    if not images:
        raise InputError(f"The folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                         "choose a folder of frames.")
    headers = []
    for p in images:
        try:
            headers.append(_header(p))
        except Exception as exc:
            raise InputError(f"Cannot read {p.name} in {folder} as an image ({exc}); remove or replace it.") from exc
    multi = next((p for p, h in zip(images, headers) if h[2] > 1), None)
    if multi is not None:
        raise InputError(f"{multi.name} in {folder} holds several pages, so the folder is not one frame per file; "
                         "open the stacks one by one or as a batch.")
    first_shape, first_dtype, _ = headers[0]
    colour = any(len(h[0]) == 3 for h in headers)
    for p, (shape, dtype, _) in zip(images, headers):
        if shape[:2] != first_shape[:2]:
            raise InputError(f"{p.name} is {shape[1]}x{shape[0]} pixels but {images[0].name} is "
                             f"{first_shape[1]}x{first_shape[0]}: the frames of {folder.name} must all have one "
                             "size; resize or remove it.")
        if dtype != first_dtype:
            raise InputError(f"{p.name} has {dtype} pixels but {images[0].name} has {first_dtype}: the frames "
                             f"of {folder.name} must have one bit depth; convert or remove it.")
    n_channels = max((h[0][2] for h in headers if len(h[0]) == 3), default=0)
    frame_shape = (*first_shape[:2], n_channels) if colour else first_shape[:2]
    data = FrameArray(len(images), frame_shape, first_dtype,
                      lambda k: _read_image(images[k], frame_shape, first_dtype), name=str(folder))
    data.frame(0)  # fail now on an undecodable first frame
    notes = [f"{folder.name}: {len(images)} image files read as the frames of one stack, in natural order."]
    if others:
        shown = ", ".join(p.name for p in others[:3]) + (" ..." if len(others) > 3 else "")
        notes.append(f"{folder.name}: ignored {len(others)} file(s) that are not images ({shown}).")
    return Stack(data=data, axes="TYXC" if colour else "TYX", path=folder, _handle=data, notes=notes,
                 metadata={"format": "image folder", "files": [p.name for p in images]})
