"""Repaint (and Follow) a propagation a few times a second, not once per frame.

Each frame of a propagation is written into the Labels array at once, but painting it (and, with
Follow, moving the viewer to it, which re-slices every layer) took the main thread 130-410 ms per
frame. :class:`RefreshThrottle` coalesces the frames written between two paints: the first frame is
painted at once, later ones at most once per ``interval`` (0.25 s: 4 paints a second), and
:meth:`RefreshThrottle.finish` paints what is left when the job ends. Qt-free: the deferred paint is
scheduled by ``later(delay_s, fn)``, by default a Qt single-shot timer when a Qt application runs,
else the paint happens at once (no deferral: every frame is painted, as before).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Paint = Callable[[set, Any, bool], None]  # (keys written since the last paint, the last key, final)
INTERVAL_S = 0.25


def qt_later(delay_s: float, fn: Callable[[], None]) -> bool:
    """Run ``fn`` on Qt's event loop after ``delay_s``; False when no Qt application runs."""
    try:
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QApplication
    except Exception:  # noqa: BLE001 - no Qt binding: paint at once
        return False
    if QApplication.instance() is None:
        return False
    QTimer.singleShot(max(0, int(round(1000 * delay_s))), fn)
    return True


class RefreshThrottle:
    """Calls ``paint`` for the frames written, at most once per ``interval`` seconds, and at the end."""

    def __init__(self, paint: Paint, interval: float = INTERVAL_S,
                 later: Callable[[float, Callable[[], None]], bool] = qt_later,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._paint, self.interval, self._later, self._clock = paint, float(interval), later, clock
        self._keys: set = set()
        self._last: Any = None
        self._next = float("-inf")  # when the next paint may happen
        self._scheduled = False
        self.paints = 0  # calls of ``paint`` so far

    @property
    def pending(self) -> bool:
        """Frames were written that are not painted yet."""
        return bool(self._keys)

    def written(self, key: Any) -> None:
        """Frame ``key`` was written into the labels: paint now, or with the next paint."""
        self._keys.add(key)
        self._last = key
        if self._scheduled:
            return
        wait = self._next - self._clock()
        if wait <= 0 or not self._later(wait, self._fire):
            self.flush()
        else:
            self._scheduled = True

    def _fire(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self, final: bool = False) -> None:
        """Paint the frames written since the last paint (``final``: the job ended)."""
        if not self._keys and not final:
            return
        keys, last = self._keys, self._last
        self._keys = set()
        self._next = self._clock() + self.interval
        self.paints += 1
        self._paint(keys, last, final)

    def finish(self) -> None:
        """The job ended: paint what is left now (a timer still pending then finds nothing to do)."""
        if self._last is not None:
            self.flush(final=True)
        self._last = None
        self._next = float("-inf")


def paint_frames(controller: Any, keys: set, last: Any, final: bool) -> None:
    """A :class:`RefreshThrottle`'s paint for a ``Sam2Controller``: show what the propagation wrote.

    With Follow the viewer moves to the ``last`` frame written (which re-slices every layer, so the
    labels' pending partial refresh is dropped); else only a written frame that is shown is painted.
    ``final``: the job ended, the layer is refreshed in full (its thumbnail too).
    """
    writer = controller.output.writer
    if controller.closed or writer is None:
        return
    shown = controller.view.view_key()
    if controller.follow and last is not None and shown is not None and tuple(last) != tuple(shown):
        writer.discard_refresh()
        controller.view.go_to(last)
        if final:
            writer.refresh(keys, last, full=True)
        return
    writer.refresh(keys, shown, full=final)
