"""Turn exceptions and conditions into one-line napari notifications that name the fix.

Importing this module pulls in neither napari nor Qt (the controller uses it); :func:`show` does.
"""

from __future__ import annotations

import logging

from ..errors import Cancelled, DownloadCancelled, LoadCancelled, Sam2Error

log = logging.getLogger("napari_sam2")

NO_IMAGE = (
    "SAM 2: open an image stack first (File > Open, or File > Open Sample > SAM 2), "
    "then pick it in the SAM 2 panel."
)
NOTHING_TO_PROPAGATE = (
    "SAM 2: '{name}' is a single 2D image, so there is nothing to propagate along. "
    "Open a time-lapse, a 3D stack or a video clip (3 or more dimensions)."
)
NO_PROMPTS = (
    "SAM 2: add a prompt first: click on an object in the '{points}' layer (n toggles negative clicks) "
    "or draw a box in the '{boxes}' layer."
)
PROPAGATING = "SAM 2 is already propagating; wait for it to finish or press Cancel, then propagate again."
MASK_SHAPE = (
    "SAM 2: the mask prompt layer '{name}' has shape {shape}, but the image '{image}' needs {need}: "
    "choose a Labels layer of the image's shape under 'Mask prompts'."
)
NO_MASKS_HERE = (
    "SAM 2: '{name}' has no labels on frame {frame}, so no mask prompts were sent; go to a frame where it "
    "has labels, or click on the objects."
)
BUSY = "SAM 2 is still working; wait for it to finish or press Cancel."
DOWNLOAD_CANCELLED = (
    "SAM 2: model download cancelled. The part already downloaded is kept; click or press Propagate "
    "to resume it."
)
LOAD_CANCELLED = "SAM 2: model loading cancelled. Click or press Propagate to load it again."
OOM = (
    "SAM 2 ran out of memory ({detail}). Try a smaller model (sam2.1_hiera_tiny), a lower resolution "
    "('512 (laptop)'), a shorter frame range, or device 'cpu'."
)


def is_out_of_memory(err: BaseException) -> bool:
    oom = None
    try:  # torch is imported lazily elsewhere; here only to recognise its error
        import torch

        oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(err, MemoryError) or (oom is not None and isinstance(err, oom)):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def describe(err: BaseException) -> tuple[str, str]:
    """(level, message) for an exception raised by a job.

    Every :class:`~napari_sam2.errors.Sam2Error` is a user error: its own message, never "failed
    unexpectedly" (that is kept for bugs, see :func:`is_bug`). :class:`~napari_sam2.errors.Cancelled`
    is the user's own doing: an 'info' notice.
    """
    if is_out_of_memory(err):
        detail = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        return "error", OOM.format(detail=detail)
    if isinstance(err, DownloadCancelled):
        return "info", DOWNLOAD_CANCELLED
    if isinstance(err, LoadCancelled):
        return "info", LOAD_CANCELLED
    if isinstance(err, Cancelled):
        return "info", f"SAM 2: {err}"
    if isinstance(err, Sam2Error):
        return "error", f"SAM 2: {err}"
    return "error", f"SAM 2 failed unexpectedly: {type(err).__name__}: {err}"


def is_bug(err: BaseException) -> bool:
    """Neither a user error nor running out of memory: worth a traceback in the log."""
    return not isinstance(err, Sam2Error) and not is_out_of_memory(err)


def log_bug(err: BaseException) -> None:
    """Log ``err`` with its traceback when it is a bug (:func:`is_bug`)."""
    if is_bug(err):
        log.error("napari-sam2 job failed", exc_info=(type(err), err, err.__traceback__))


def show(level: str, text: str) -> None:
    """Show ``text`` as a napari notification of ``level`` ('error', 'warning' or 'info')."""
    from napari.utils import notifications

    fn = {"error": notifications.show_error, "warning": notifications.show_warning}.get(level, notifications.show_info)
    fn(text)
