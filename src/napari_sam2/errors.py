"""User-facing errors: one clear message that names the fix, never a deep traceback.

Every error the plugin raises on purpose derives from :class:`Sam2Error`, so the widget,
the CLI and the console can catch it and show ``str(err)`` alone.
"""

from __future__ import annotations


class Sam2Error(Exception):
    """Base class of all expected, user-facing errors of napari-sam2."""


class CheckpointError(Sam2Error):
    """A checkpoint file is missing, unreadable, corrupt or belongs to another model."""


class DeviceError(Sam2Error):
    """The requested compute device is not available."""


class InputError(Sam2Error):
    """The image stack cannot be used (wrong shape, dtype, inconsistent frames...)."""


class PromptError(Sam2Error):
    """A prompt (point, box, mask, object id, frame index) is invalid."""


class BusyError(Sam2Error):
    """The session is already running a propagation; finish, cancel or close it first."""


class DownloadError(Sam2Error):
    """A checkpoint could not be downloaded; the message says how to get it by hand."""


class OutputError(Sam2Error):
    """An output file or folder cannot be written (a file in the way, no permission, disk full)."""
