"""The panel's status line follows the job's phase (Qt-free, so the controller can word it too).

A stack being prepared, a propagation frame ``k / n``, done, cancelled: each phase replaces the
line, so "Preparing the stack..." never outlives the preparation. An edit made while a propagation
runs is queued behind it; the line says so until the propagation ends. The device line names the
device a choice resolves to here (``auto`` -> ``cpu`` / ``cuda:0`` / ``mps``).
"""

from __future__ import annotations

STACK_READY = "Stack ready: click on an object (green = object, red = background), or draw a box."
QUEUED = "Queued: your edit will apply after this propagation."
FIX_AND_AGAIN = "Fix a frame by clicking on it, then propagate again."
CPU_NOTE = "no GPU, so resolution 512 (faster; full is finer)"


def propagating(done: int, total: int, queued: bool = False) -> str:
    """The line while a propagation runs: ``Propagating: frame k / n``."""
    text = f"Propagating: frame {min(done, total)} / {total}..."
    return f"{text} {QUEUED}" if queued else text


def finished(summary: str, cancelled: bool) -> str:
    """The line once a propagation ended: done or cancelled, what to do next."""
    return f"{summary if cancelled else f'Done. {summary}'} {FIX_AND_AGAIN}"


class StatusLine:
    """What the status label says during a propagation, given the progress phases it reports."""

    def __init__(self) -> None:
        self.queued = False  # an edit waits for the running propagation
        self.running = False

    def progress(self, done: int, total: int, phase: str) -> str | None:
        """The line for a progress report (None: the phase ended; the controller words the end)."""
        if phase in ("start", "frame"):
            self.running = True
            return propagating(done, total, self.queued)
        self.running = self.queued = False  # the queued edits run now
        return None

    def note_queued(self) -> str:
        """An edit arrived during the propagation: say it waits."""
        self.queued = True
        return QUEUED


def device_text(choice: str) -> str:
    """The device ``choice`` resolves to on this computer (``auto`` -> ``cpu`` / ``cuda:0`` / ``mps``)."""
    try:
        import torch

        from ..model.device import resolve_device

        dev = resolve_device(choice)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return str(dev)
    except Exception as err:  # noqa: BLE001 - DeviceError names the fix; shown instead of a device
        return f"not available: {str(err).split(';')[0]}"


def on_cpu(choice: str = "auto") -> bool:
    """Whether ``choice`` runs on the CPU here (then a lower resolution is the better default)."""
    return device_text(choice) == "cpu"
