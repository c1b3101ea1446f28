"""Frames per second and time left of a propagation (Qt-free; the widget shows :meth:`text`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class ProgressMeter:
    """Counts finished frames against an expected total."""

    def __init__(self, total: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = max(int(total), 1)
        self.done = 0
        self._clock = clock
        self._t0 = clock()
        self._t_first: float | None = None

    def tick(self, n: int = 1) -> None:
        self.done += int(n)
        if self._t_first is None:
            self._t_first = self._clock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._t0

    @property
    def fps(self) -> float:
        """Frames per second, counted after the first frame (which includes warm-up)."""
        if self._t_first is None or self.done < 2:
            return self.done / self.elapsed if self.done and self.elapsed > 0 else 0.0
        dt = self._clock() - self._t_first
        return (self.done - 1) / dt if dt > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        fps = self.fps
        if fps <= 0:
            return None
        return max(self.total - self.done, 0) / fps

    @property
    def percent(self) -> int:
        return int(100 * min(self.done, self.total) / self.total)

    def text(self) -> str:
        left = self.seconds_left
        eta = "?" if left is None else format_seconds(left)
        return f"{self.done}/{self.total} frames - {self.fps:.1f} frames/s - {eta} left"

    def summary(self) -> str:
        return f"{self.done} frames in {format_seconds(self.elapsed)} ({self.fps:.1f} frames/s)"
