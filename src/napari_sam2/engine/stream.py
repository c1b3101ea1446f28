"""``FrameStream``: a growing (T, *frame_shape) stack that frames are appended to while it is read.

A producer (an acquisition callback, a thread reading a camera or a video stream) calls
``append(frame)`` from any thread; a consumer (``VideoSession.propagate(follow=True)``) reads it
like any lazy stack (``shape``, ``dtype``, numpy indexing along T) and blocks in ``wait_for``
until the next frame exists. ``close()`` says no frame will follow; ``fail(exc)`` that the
producer died, so the consumer raises ``exc`` instead of waiting for ever.

Frames are kept in host RAM as appended (a copy each). ``keep_last=N`` drops the pixels of frames
more than N behind the newest one (reading those then raises InputError): the engine only reads
frames around its tracking position, so a live session needs just a few, and memory stays flat.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from typing import Any, Iterable

import numpy as np

from ..errors import InputError
from ..io._frame_array import FramesArrayLike


class FrameStream(FramesArrayLike):
    """A thread-safe stack whose length along T grows with each ``append``."""

    def __init__(self, frame_shape: tuple[int, ...], dtype: Any, *, keep_last: int | None = None) -> None:
        shape = tuple(int(s) for s in frame_shape)
        if len(shape) not in (2, 3) or any(s < 1 for s in shape):
            raise InputError(f"frame_shape must be (Y, X) or (Y, X, C) with positive sizes; got {frame_shape!r}.")
        if keep_last is not None and (int(keep_last) != keep_last or keep_last < 1):
            raise InputError(f"keep_last must be a whole number >= 1 (or None to keep every frame); got {keep_last!r}.")
        self.frame_shape = shape
        self.dtype = np.dtype(dtype)
        self.keep_last = None if keep_last is None else int(keep_last)
        self._frames: deque[np.ndarray] = deque()  # frames self._first .. len - 1
        self._first = 0
        self._times = array("d")  # time.perf_counter() of each append (8 bytes a frame)
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self.producer: threading.Thread | None = None  # the thread of ``from_iter``

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        with self._cond:
            return (len(self._times), *self.frame_shape)

    def __repr__(self) -> str:
        state = "failed" if self._error else "closed" if self._closed else "open"
        return f"FrameStream(shape={self.shape}, dtype={self.dtype}, {state})"

    def frame(self, k: int) -> np.ndarray:
        """Frame ``k`` (read-only); InputError when ``keep_last`` already dropped it."""
        with self._cond:
            n = len(self._times)
            if not 0 <= k < n:
                raise IndexError(f"frame {k} is not in the stream, which has {n} frames so far")
            if k < self._first:
                raise InputError(f"Frame {k} of the stream was dropped (keep_last={self.keep_last} keeps frames "
                                 f"{self._first} to {n - 1}); raise keep_last to read older frames.")
            return self._frames[k - self._first]

    # ------------------------------------------------------------------ producer side
    def append(self, frame: Any) -> int:
        """Add the next frame (copied); returns its index. Refuses a wrong shape or dtype, or a closed stream."""
        arr = np.asarray(frame)
        if arr.shape != self.frame_shape or arr.dtype != self.dtype:
            raise InputError(f"This stream takes frames of shape {self.frame_shape} and dtype {self.dtype}; got "
                             f"shape {arr.shape} and dtype {arr.dtype}. Convert the frame before appending.")
        arr = arr.copy()
        arr.setflags(write=False)
        with self._cond:
            if self._closed or self._error is not None:
                raise InputError("The stream is closed; no frame can be appended (start a new FrameStream).")
            self._frames.append(arr)
            self._times.append(time.perf_counter())
            if self.keep_last is not None:
                while len(self._frames) > self.keep_last:
                    self._frames.popleft()
                    self._first += 1
            self._cond.notify_all()
            return len(self._times) - 1

    def close(self) -> None:
        """No more frames will come: a waiting consumer finishes the frames there are and ends."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        """The producer died with ``exc``: a consumer raises it instead of waiting for frames."""
        with self._cond:
            self._error = exc
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ consumer side
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The producer's exception after ``fail``; None otherwise."""
        return self._error

    @property
    def first_kept(self) -> int:
        """The oldest frame whose pixels are still held (0 without ``keep_last``)."""
        with self._cond:
            return self._first

    def append_time(self, k: int) -> float:
        """``time.perf_counter()`` when frame ``k`` was appended (for latencies)."""
        with self._cond:
            return self._times[k]

    def wait_for(self, index: int, timeout: float | None = None) -> bool:
        """Block until frame ``index`` exists (True), the stream closed without it or ``timeout``
        seconds passed (False). Raises the producer's error (``fail``) if the frame will never come."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._times) <= index:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wake(self) -> None:
        """Wake waiting consumers (e.g. after a cancel) without adding a frame."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_iter(cls, frames: Iterable[Any], frame_shape: tuple[int, ...] | None = None, dtype: Any = None, *,
                  keep_last: int | None = None) -> "FrameStream":
        """A stream filled by a daemon thread from any iterator of frames (a camera, ``av`` frames as
        arrays, a generator); closed when the iterator ends, failed with its exception if it raises.

        Without ``frame_shape`` / ``dtype`` the first frame is taken here (blocking) to learn them.
        """
        it = iter(frames)
        first: list[np.ndarray] = []
        if frame_shape is None or dtype is None:
            try:
                first.append(np.asarray(next(it)))
            except StopIteration:
                raise InputError("The frame iterator gave no frames; a stream needs at least one.") from None
            frame_shape = first[0].shape if frame_shape is None else frame_shape
            dtype = first[0].dtype if dtype is None else dtype
        stream = cls(frame_shape, dtype, keep_last=keep_last)

        def produce() -> None:
            try:
                for f in first:
                    stream.append(f)
                for f in it:
                    stream.append(f)
            except BaseException as exc:  # the consumer re-raises it
                stream.fail(exc)
            else:
                stream.close()

        stream.producer = threading.Thread(target=produce, name="napari-sam2-frame-stream", daemon=True)
        stream.producer.start()
        return stream
