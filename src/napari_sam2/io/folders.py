"""What a folder given as input is: one stack (zarr, DICOM series, image sequence) or a batch of stacks.

One rule for ``read_stack``, the CLI and the napari reader, checked in this order:

1. a zarr store (``*.zarr``, or ``.zgroup`` / ``.zarray`` / ``zarr.json`` inside) is one stack;
2. a folder holding DICOM files is one series (``io.dicom``);
3. a folder whose files are single-page 2D images (jpg, png, bmp, tif) is one image sequence;
4. any other folder is a batch: each stack file in it (TIFF stack, .npy, video, DICOM file) is one job.
"""

from __future__ import annotations

from pathlib import Path

from .image_folder import IMAGE_SUFFIXES, image_files
from .zarr_stack import is_zarr

ZARR, DICOM, IMAGES, STACKS = "zarr store", "DICOM series", "image sequence", "folder of stacks"
_STACK_ONLY = (".npy", ".ome.tif", ".ome.tiff", ".btf", ".tf8", ".tf2")


def _single_page(path: Path) -> bool:
    if path.suffix.lower() not in (".tif", ".tiff"):
        return True
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages) == 1 and tif.series[0].ndim <= 3 and (
                tif.series[0].ndim == 2 or tif.series[0].shape[-1] in (3, 4))
    except Exception:
        return True  # unreadable: read_image_folder names the file


def folder_kind(folder: Path) -> str:
    """Which of the rules of the module docstring applies to ``folder``."""
    if is_zarr(folder):
        return ZARR
    from .dicom import is_dicom_folder

    if is_dicom_folder(folder):
        return DICOM
    images, others = image_files(folder)
    if images and not any(p.name.lower().endswith(_STACK_ONLY) for p in images + others):
        from .video import VIDEO_SUFFIXES

        if not any(p.suffix.lower() in VIDEO_SUFFIXES for p in others) and all(map(_single_page, images)):
            return IMAGES
    return STACKS


__all__ = ["DICOM", "IMAGES", "IMAGE_SUFFIXES", "STACKS", "ZARR", "folder_kind"]
