"""Open an image stack lazily: TIFF / OME-TIFF / ImageJ hyperstacks, ``.npy``, and (through
``read_stack``'s dispatch) video clips, DICOM, zarr / OME-Zarr and folders of images.

Nothing is decoded at open time except one page (to fail early on missing codecs), and
a file cut short is refused from its page offsets (``_tiff_check``);
``Stack.data`` reads only the frames that are indexed, so a stack larger than memory
can be segmented frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tifffile

from ..engine.layout import guess_rgb
from ..errors import InputError
from ._lazy_tiff import LazyTiffSeries
from ._tiff_check import check_tiff_complete, quiet_tifffile
from ._tiff_meta import normalize_axes, physical_scale
from .image_folder import read_image_folder
from .zarr_stack import read_zarr

TIFF_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".btf", ".tf8", ".tf2")
NPY_SUFFIXES = (".npy",)
#: Every file name ending read as a stack (the CLI finds stacks in folders by it).
STACK_SUFFIXES = TIFF_SUFFIXES + NPY_SUFFIXES


class ArrayLike(Protocol):
    """What ``Stack.data`` offers: numpy-style lazy indexing plus shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...


@dataclass
class Stack:
    """A lazily read image stack and its calibration.

    ``axes`` uses T, Z, C, Y, X (e.g. ``"TYX"``, ``"TYXC"``, ``"TZYX"``); ``scale`` has
    one physical size per axis (1.0 for T and C) in ``unit``, or is None when the file
    carries no spatial calibration. ``frame_interval`` is the time between frames in
    seconds (video frame rate, DICOM frame time, OME time scale) when the file says.
    ``notes`` are things the user should know that do not stop the job (frames lost at a
    truncated end, files ignored in a folder, which folder rule applied); ``metadata``
    holds further non-identifying facts (format, frame times, ...), never patient data.
    Close it (or use ``with``) to release the file.
    """

    data: ArrayLike
    axes: str
    scale: tuple[float, ...] | None = None
    unit: str | None = None
    path: Path | None = None
    _handle: Any = field(default=None, repr=False)
    frame_interval: float | None = None
    notes: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    def close(self) -> None:
        """Release the open file; ``data`` must not be indexed afterwards."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def guess_axes(shape: tuple[int, ...]) -> str:
    """Axes of an array without metadata; colour (a last C axis) by napari's rule, ``guess_rgb``."""
    ndim = len(shape)
    rgb = guess_rgb(shape)
    spatial = ndim - 1 if rgb else ndim
    lead = {2: "YX", 3: "TYX", 4: "TZYX", 5: "TZCYX"}.get(spatial)
    if lead is None:
        raise InputError(
            f"Cannot interpret an array of shape {shape}; save it as (T, Y, X) or "
            "(T, Y, X, C) with axis metadata (e.g. an ImageJ or OME TIFF)."
        )
    return lead + ("C" if rgb else "")


def read_stack(path: str | Path, *, series: int = 0, level: int = 0) -> Stack:
    """Open ``path`` lazily; raise :class:`InputError` when it cannot be used.

    Files: TIFF / OME-TIFF (``series`` picks the image series), ``.npy``, video clips
    (``io.video``), DICOM files (``io.dicom``, also without a suffix). Folders (``io.folders``):
    a zarr / OME-Zarr store (``level`` picks the resolution level), a DICOM series or a
    folder of 2D images (one stack in natural order).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Image file not found: {path}; check the path.")
    if path.is_dir():
        return _read_folder(path, level)
    if level:
        raise InputError(f"{path.name} has no resolution levels; --level applies to OME-Zarr images only.")
    name = path.name.lower()
    if name.endswith(NPY_SUFFIXES):
        return _read_npy(path)
    if name.endswith(TIFF_SUFFIXES):
        return _read_tiff(path, series)
    from .dicom import DICOM_SUFFIXES, is_dicom_file, read_dicom
    from .video import VIDEO_SUFFIXES, read_video

    if name.endswith(VIDEO_SUFFIXES):
        return read_video(path)
    if name.endswith(DICOM_SUFFIXES) or is_dicom_file(path):
        return read_dicom(path)
    raise InputError(
        f"Unsupported image file type '{path.suffix}' ({path.name}); napari-sam2 reads TIFF, .npy, video "
        f"({', '.join(VIDEO_SUFFIXES)}), DICOM, zarr and folders of images: convert it to one of these."
    )


def _read_folder(path: Path, level: int) -> Stack:
    from .folders import DICOM, IMAGES, ZARR, folder_kind

    kind = folder_kind(path)
    if kind == ZARR:
        return read_zarr(path, level=level)
    if level:
        raise InputError(f"{path.name} has no resolution levels; --level applies to OME-Zarr images only.")
    if kind == DICOM:
        from .dicom import read_dicom

        return read_dicom(path)
    if kind == IMAGES:
        return read_image_folder(path)
    visible = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not visible:
        raise InputError(f"The folder {path} is empty; choose a folder of image frames, a DICOM series or a file.")
    from .image_folder import IMAGE_SUFFIXES
    from .video import VIDEO_SUFFIXES

    known = IMAGE_SUFFIXES + STACK_SUFFIXES + VIDEO_SUFFIXES + (".zarr",)
    if not any(p.name.lower().endswith(known) for p in visible):
        raise InputError(f"The folder {path} holds no images or stacks (e.g. {visible[0].name}); choose a folder "
                         "of image frames, a DICOM series or a file.")
    raise InputError(
        f"{path} is a folder of stacks, not one stack (its files are not single 2D images of one series); "
        "open its files one by one, or give the folder to `napari-sam2 segment`, which runs each as a batch."
    )


def _read_npy(path: Path) -> Stack:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise InputError(f"Cannot read {path} as a NumPy array ({exc}); re-save it with numpy.save.") from exc
    if data.dtype.kind not in "biuf":
        raise InputError(f"{path} holds {data.dtype} values; save a numeric (integer or float) array.")
    return Stack(data=data, axes=guess_axes(data.shape), path=path)


def _read_tiff(path: Path, series: int) -> Stack:
    with quiet_tifffile():  # tifffile's log lines about a damaged file: our one message says it all
        return _open_tiff(path, series)


def _open_tiff(path: Path, series: int) -> Stack:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise InputError(f"Cannot read {path} as a TIFF file ({exc}); check that it is not corrupt.") from exc
    try:
        n_series = len(tif.series)
        if n_series == 0:
            raise InputError(f"{path.name} holds no images: it is truncated or corrupt; copy or save it again.")
        if not 0 <= series < n_series:
            raise InputError(
                f"{path.name} has {n_series} image series; choose a series between 0 and {n_series - 1}."
            )
        tseries = tif.series[series]
        check_tiff_complete(tif, series, path)  # a file cut short must not read as zero frames
        axes = normalize_axes(tseries.axes)
        data: ArrayLike | None = _memmap(path, series, tseries)
        if data is None:
            data = LazyTiffSeries(tif, series)
            data.read_page(0)  # fail now, not mid-propagation, if a codec is missing
        scale, unit = physical_scale(tif, series, axes)
    except InputError:
        tif.close()
        raise
    except Exception as exc:
        tif.close()
        raise InputError(f"Cannot interpret {path} ({exc}); re-save it as a plain TIFF stack.") from exc
    keep_open = isinstance(data, LazyTiffSeries)
    if not keep_open:
        tif.close()  # the memory map holds its own mapping of the file
    return Stack(data=data, axes=axes, scale=scale, unit=unit, path=path, _handle=tif if keep_open else None)


def _memmap(path: Path, series: int, tseries: tifffile.TiffPageSeries) -> np.ndarray | None:
    """Memory-map the series when its pixels are uncompressed and contiguous."""
    if tseries.dataoffset is None:
        return None
    try:
        data = tifffile.memmap(path, series=series, mode="r")
    except (ValueError, OSError):
        return None
    if tuple(data.shape) != tuple(tseries.shape):
        return None
    return data
