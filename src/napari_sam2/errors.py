"""User-facing errors: one clear message that names the fix, never a deep traceback.

Every error the plugin raises on purpose derives from :class:`Sam2Error`, so the widget, the CLI
and the console catch it and show ``str(err)`` alone; anything else is a bug and is reported as
one. The kinds, by what the user has to fix::

    Sam2Error
    ├── InputError        the image stack (shape, dtype, axis, channel, unreadable file)
    ├── PromptError       a point, box, mask, object id or frame
    ├── OutputError       an output file, folder or Labels layer (in the way, wrong shape, no space)
    ├── CheckpointError   a checkpoint file or model name
    │   └── DownloadError a checkpoint that could not be downloaded
    ├── DeviceError       the compute device (missing CUDA/MPS, out of memory)
    ├── BusyError         a propagation is still running
    └── Cancelled         the user stopped a job (not a failure: reported as a notice)
        ├── DownloadCancelled
        └── LoadCancelled

The command line prints ``str(err)`` as one line and exits with 3 (input), 4 (prompt), 5
(checkpoint, device), 130 (cancelled, a notice) or 1 (the others); docs/errors.md lists the messages.
"""

from __future__ import annotations


class Sam2Error(Exception):
    """Base class of all expected, user-facing errors of napari-sam2."""


class InputError(Sam2Error):
    """The image stack cannot be used (wrong shape, dtype, inconsistent frames...)."""


class PromptError(Sam2Error):
    """A prompt (point, box, mask, object id, frame index) is invalid."""


class OutputError(Sam2Error):
    """An output (file, folder, Labels layer) cannot be written: in the way, wrong shape, no space."""


class CheckpointError(Sam2Error):
    """A checkpoint file is missing, unreadable, corrupt or belongs to another model."""


class DownloadError(CheckpointError):
    """A checkpoint could not be downloaded; the message says how to get it by hand."""


class DeviceError(Sam2Error):
    """The requested compute device is not available."""


class BusyError(Sam2Error):
    """The session is already running a propagation; finish, cancel or close it first."""


class Cancelled(Sam2Error):
    """The user cancelled a job; what was done so far is kept."""


class DownloadCancelled(Cancelled):
    """A checkpoint download was cancelled; the part already downloaded is kept for resuming."""


class LoadCancelled(Cancelled):
    """Loading a model was cancelled (the download, or building the model, was stopped)."""
