"""``FrameStream``: a growing (T, *frame_shape) stack that frames are appended to while it is read.

A producer (an acquisition callback, a thread reading a camera or a video stream) calls
``append(frame)`` from any thread; a consumer (``VideoSession.propagate(follow=True)``) reads it
like any lazy stack (``shape``, ``dtype``, numpy indexing along T) and blocks in ``wait_for``
until the next frame exists. ``close()`` says no frame will follow; ``fail(exc)`` that the
producer died, so the consumer raises ``exc`` instead of waiting for ever.

Frames are kept in host RAM as appended (a copy each). ``keep_last=N`` drops the pixels of frames
more than N behind the newest one (reading those then raises InputError): the engine only reads
frames around its tracking position, so a live session needs just a few, and memory stays flat.
``max_bytes=N`` instead keeps every frame but at most N bytes of them in RAM (the newest ones): older
frames move to an anonymous temporary file in ``spill_dir`` and are read back from it when asked for,
so a producer may run any distance ahead of the tracking (``drop="none"``) with flat RAM. The file has
no name on disk: it goes with ``release()``, the stream's garbage collection or the process.

Growing folders and zarr arrays: ``from_folder`` / ``from_zarr`` (``engine/growing_sources.py``).
"""

from __future__ import annotations

import tempfile
import threading
import time
from array import array
from pathlib import Path
from collections import deque
from typing import Any, Iterable

import numpy as np

from ..errors import InputError
from ..io._frame_array import FramesArrayLike

#: How often a waiting consumer checks that ``FrameStream.producer`` is still running (seconds).
PRODUCER_CHECK_S = 0.25


class FrameStream(FramesArrayLike):
    """A thread-safe stack whose length along T grows with each ``append``."""

    def __init__(self, frame_shape: tuple[int, ...], dtype: Any, *, keep_last: int | None = None,
                 max_bytes: int | None = None, spill_dir: str | Path | None = None) -> None:
        shape = tuple(int(s) for s in frame_shape)
        if len(shape) not in (2, 3) or any(s < 1 for s in shape):
            raise InputError(f"frame_shape must be (Y, X) or (Y, X, C) with positive sizes; got {frame_shape!r}.")
        if keep_last is not None and (int(keep_last) != keep_last or keep_last < 1):
            raise InputError(f"keep_last must be a whole number >= 1 (or None to keep every frame); got {keep_last!r}.")
        if max_bytes is not None and (int(max_bytes) != max_bytes or max_bytes < 0):
            raise InputError(f"max_bytes must be a whole number of bytes >= 0 (or None for no RAM limit); "
                             f"got {max_bytes!r}.")
        if spill_dir is not None and not Path(spill_dir).is_dir():
            raise InputError(f"spill_dir {spill_dir} is not an existing folder; create it or leave it out "
                             "(the system's temporary folder is used).")
        self.frame_shape = shape
        self.dtype = np.dtype(dtype)
        self.keep_last = None if keep_last is None else int(keep_last)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._frames: deque[np.ndarray | int] = deque()  # frames self._first .. len - 1: arrays or disk slots
        self._first = 0
        self._in_ram = 0  # the newest self._in_ram frames are arrays, the older ones disk slots
        self._spill = _SpillFile(int(np.prod(shape)) * self.dtype.itemsize, spill_dir)
        self._released = False
        self._times = array("d")  # time.perf_counter() of each append (8 bytes a frame)
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self.producer: threading.Thread | None = None  # from_iter's / a watcher's thread, or set one's own

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
            if self._released:
                raise InputError("The stream was released (FrameStream.release()), so its frames are gone; "
                                 "read them before releasing it.")
            if k < self._first:
                raise InputError(f"Frame {k} of the stream was dropped (keep_last={self.keep_last} keeps frames "
                                 f"{self._first} to {n - 1}); raise keep_last to read older frames.")
            held = self._frames[k - self._first]
            if isinstance(held, int):
                return self._spill.read(held, self.frame_shape, self.dtype)
            return held

    @property
    def ram_bytes(self) -> int:
        """Bytes of frame pixels held in RAM (at most ``max_bytes``)."""
        with self._cond:
            return self._in_ram * self._spill.frame_bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes of frame pixels in the spill file (frames beyond ``max_bytes``)."""
        with self._cond:
            return self._spill.held_bytes

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
            self._in_ram += 1
            self._times.append(time.perf_counter())
            if self.keep_last is not None:
                while len(self._frames) > self.keep_last:
                    self._drop_oldest()
            if self.max_bytes is not None:
                while self._in_ram and self._in_ram * self._spill.frame_bytes > self.max_bytes:
                    pos = len(self._frames) - self._in_ram  # the oldest frame still in RAM
                    self._frames[pos] = self._spill.write(self._frames[pos])
                    self._in_ram -= 1
            self._cond.notify_all()
            return len(self._times) - 1

    def _drop_oldest(self) -> None:
        held = self._frames.popleft()
        if isinstance(held, int):
            self._spill.free(held)
        else:
            self._in_ram -= 1
        self._first += 1

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

    def release(self) -> None:
        """Close the stream and free every frame it holds, in RAM and on disk (the spill file goes)."""
        with self._cond:
            self._closed = self._released = True
            self._frames.clear()
            self._first, self._in_ram = len(self._times), 0
            self._spill.close()
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
        seconds passed (False). Raises the producer's error (``fail``) if the frame will never come,
        and InputError if ``self.producer`` (a thread) ended without closing the stream."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._times) <= index:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return False
                producer = self.producer
                if producer is not None and producer.ident is not None and not producer.is_alive():
                    raise InputError(f"The stream's producer thread {producer.name!r} ended without closing the "
                                     f"stream, so frame {index} will never come; end producers with "
                                     "stream.close() or stream.fail(exc).")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if producer is not None:  # look at the thread again now and then
                    left = PRODUCER_CHECK_S if left is None else min(left, PRODUCER_CHECK_S)
                self._cond.wait(left)
            return True

    def wake(self) -> None:
        """Wake waiting consumers (e.g. after a cancel) without adding a frame."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_iter(cls, frames: Iterable[Any], frame_shape: tuple[int, ...] | None = None, dtype: Any = None, *,
                  keep_last: int | None = None, max_bytes: int | None = None,
                  spill_dir: str | Path | None = None) -> "FrameStream":
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
        stream = cls(frame_shape, dtype, keep_last=keep_last, max_bytes=max_bytes, spill_dir=spill_dir)

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

    @classmethod
    def from_folder(cls, folder: str | Path, pattern: str | None = None, **kw: Any) -> "FrameStream":
        """A stream of the image files written into ``folder`` (see ``growing_sources.watch_folder``)."""
        from .growing_sources import watch_folder

        return watch_folder(folder, pattern, **kw)

    @classmethod
    def from_zarr(cls, array_or_path: Any, **kw: Any) -> "FrameStream":
        """A stream of a zarr array growing along T (see ``growing_sources.watch_zarr``)."""
        from .growing_sources import watch_zarr

        return watch_zarr(array_or_path, **kw)


class _SpillFile:
    """Frames on disk: fixed-size slots in an anonymous temporary file, created at the first spill.

    Freed slots (frames that ``keep_last`` dropped) are reused, so the file only grows to the most
    frames held on disk at once. The caller (the stream) holds its lock around every call.
    """

    def __init__(self, frame_bytes: int, spill_dir: str | Path | None) -> None:
        self.frame_bytes = frame_bytes
        self._dir = None if spill_dir is None else str(spill_dir)
        self._file: Any = None
        self._free: list[int] = []
        self._count = 0

    @property
    def held_bytes(self) -> int:
        return (self._count - len(self._free)) * self.frame_bytes

    def write(self, frame: np.ndarray) -> int:
        if self._file is None:
            try:
                self._file = tempfile.TemporaryFile(dir=self._dir, prefix="napari-sam2-frames-")
            except OSError as exc:
                raise InputError(f"Cannot create the stream's spill file in {self._dir or tempfile.gettempdir()} "
                                 f"({exc}); give a writable spill_dir or raise max_bytes.") from None
        slot = self._free.pop() if self._free else self._count
        self._count = max(self._count, slot + 1)
        try:
            self._file.seek(slot * self.frame_bytes)
            self._file.write(np.ascontiguousarray(frame).data)
        except OSError as exc:
            raise InputError(f"Cannot write a frame to the stream's spill file ({exc}); free disk space in "
                             f"{self._dir or tempfile.gettempdir()} or raise max_bytes.") from None
        return slot

    def read(self, slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self._file.seek(slot * self.frame_bytes)
        return np.frombuffer(self._file.read(self.frame_bytes), dtype).reshape(shape)  # read-only

    def free(self, slot: int) -> None:
        self._free.append(slot)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # an unnamed file: its space is given back now
        self._file, self._free, self._count = None, [], 0
