"""SIGTERM and SIGHUP end the command line like Ctrl-C: unfinished outputs are removed.

Batch schedulers (SLURM, systemd, ``timeout``, ``kill``) send SIGTERM; Python's default
for it ends the process at once, skipping the ``finally`` blocks that delete the hidden
temporary files. Here the signal raises :class:`Terminated` (a ``KeyboardInterrupt``) in
the main thread instead, and so does Ctrl-C (SIGINT); a repeated signal during the cleanup
is ignored so that the cleanup can finish (SIGKILL still ends the process). Signals that
were ignored when the process started (``nohup``) stay ignored. The exit status is 128 +
the signal number (143 for SIGTERM, 130 for Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def interrupt_status(exc: KeyboardInterrupt) -> int:
    """Exit status for an interruption: 128 + signal number."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGINT / SIGTERM / SIGHUP raise :class:`Terminated` once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return  # already stopping: let the cleanup finish
        raised = True
        raise Terminated(signum)

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    previous: dict[int, Any] = {}
    for name in names:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:  # nohup etc. stay ignored
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
