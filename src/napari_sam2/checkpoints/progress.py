"""Progress callbacks and cancellation for downloads (no Qt, no tqdm needed by callers).

A progress callback is any ``callable(done_bytes, total_bytes_or_None)``; it runs in the downloading thread
after every chunk (64 KiB), so a GUI should only forward it (e.g. emit a signal). A cancel token is a
``threading.Event`` or a ``callable() -> bool``, checked between chunks.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import IO, Any, Callable, Optional, Union

ProgressCallback = Callable[[int, Optional[int]], Any]
CancelToken = Union[threading.Event, Callable[[], bool], None]


def is_cancelled(cancel: CancelToken) -> bool:
    """True when a threading.Event is set or a callable returns True."""
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if callable(is_set) else cancel())  # type: ignore[operator]


class TqdmProgress:
    """A progress callback drawing a tqdm bar on the terminal (for the CLI); use as a context manager.

    The bar is created on the first call, when the total is known, and starts at the resume offset.
    """

    def __init__(self, desc: str, file: IO[str] | None = None) -> None:
        self.desc = desc
        self.file = file
        self._bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=done, desc=self.desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=self.file or sys.stderr, leave=True,
            )
            return
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    @property
    def n(self) -> int:
        """Bytes shown so far (0 before the first call)."""
        return 0 if self._bar is None else int(self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def tqdm_progress(desc: str, file: IO[str] | None = None) -> TqdmProgress:
    """Terminal progress callback: ``with tqdm_progress(name) as p: resolve_checkpoint(name, progress=p)``."""
    return TqdmProgress(desc, file=file)
