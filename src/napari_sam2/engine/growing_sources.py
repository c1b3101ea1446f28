"""Growing sources for a :class:`~.stream.FrameStream`: a folder receiving image files, a zarr array
growing along T. Both are polled by a daemon thread (``stream.producer``) that appends each new frame.

Folder (``watch_folder`` / ``FrameStream.from_folder``): the image files of ``io/image_folder.py``
(same suffixes, natural order, same reader), optionally only those matching ``pattern``. A file is
read once it is complete: its size and modification time unchanged for ``settle`` seconds (at least
one poll apart) and it decodes. Files are taken strictly in natural order: a complete file waits for
every earlier file still being written. A frame of another size or bit depth, a file that stays
undecodable, or a file arriving after a later one was taken fails the stream with an InputError naming
the file (the consumer raises it).

Zarr (``watch_zarr`` / ``FrameStream.from_zarr``): a (T, Y, X[, C]) array, opened with
``io/zarr_stack.py`` when given a path and re-opened each poll to see its new shape. A writer grows
the array before it writes the frame (``zarr.Array.append``), so a frame is read only once it is
written: a newer frame exists, or (zarr-python 3, one frame per chunk along T) every chunk of the
frame is in the store. A frame whose chunks zarr left out (all fill value) waits for the next frame or
the end. No timing is assumed, so a slow writer on a loaded machine is never read half-way.

Both end when ``stop_when`` says so (a sentinel: a file name in the folder or a truthy attribute of
the zarr array, or any callable returning True; every frame written before it is then taken at
once), after ``idle_timeout`` seconds without a new frame (the frames then there are taken), or when
the stream is closed or released.
``idle_timeout=None`` (default) waits for ever, until ``stream.close()`` or the sentinel.
Polling needs no extra package and works on network drives, where file-system events often do not.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..io.image_folder import IMAGE_SUFFIXES, _header, _read_image, natural_key
from .stream import FrameStream

#: A complete-looking file that still does not decode after this many seconds unchanged is damaged.
DAMAGED_AFTER_S = 5.0


def _check_timing(poll: float, idle_timeout: float | None) -> None:
    if not poll > 0:
        raise InputError(f"poll must be a positive number of seconds; got {poll!r}.")
    if idle_timeout is not None and not idle_timeout > 0:
        raise InputError(f"idle_timeout must be a positive number of seconds or None (wait for ever); "
                         f"got {idle_timeout!r}.")


def _start(stream: FrameStream, step: Callable[[bool], int], stop: Callable[[], bool] | None, poll: float,
           idle_timeout: float | None, name: str) -> FrameStream:
    """Run ``step(final)`` every ``poll`` s in a daemon thread until stopped; close or fail the stream."""

    def run() -> None:
        last = time.monotonic()
        try:
            while not stream.closed:
                stopping = stop is not None and bool(stop())  # looked at first: frames before it are complete
                if step(stopping):
                    last = time.monotonic()
                if stopping:
                    break
                if idle_timeout is not None and time.monotonic() - last >= idle_timeout:
                    step(True)  # the writer is done: its last frames are complete
                    break
                time.sleep(poll)
        except BaseException as exc:  # the consumer re-raises it
            if not stream.closed:  # else the user closed it meanwhile (our append was refused)
                stream.fail(exc)
            return
        stream.close()

    stream.producer = threading.Thread(target=run, name=name, daemon=True)
    stream.producer.start()
    return stream


class _Folder:
    """The not-yet-taken image files of a folder and when each last changed."""

    def __init__(self, folder: Path, pattern: str | None, settle: float, sentinel: str | None) -> None:
        self.folder, self.pattern, self.settle = folder, pattern, settle
        self.taken: set[str] = set() if sentinel is None else {sentinel}  # names never (again) read
        self.last: str | None = None  # name of the last file taken
        self.changed: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, time first seen so)

    def ready(self, final: bool) -> list[tuple[Path, float]]:
        """(file, seconds unchanged) of the files to take now, in natural order."""
        now = time.monotonic()
        pending: list[tuple[tuple, Path, float, bool]] = []
        with os.scandir(self.folder) as entries:
            for e in entries:
                name = e.name
                if (name in self.taken or name.startswith(".") or os.path.splitext(name)[1].lower()
                        not in IMAGE_SUFFIXES or (self.pattern and not fnmatch.fnmatch(name, self.pattern))):
                    continue
                try:
                    if not e.is_file():
                        continue
                    st = e.stat()
                except FileNotFoundError:  # removed meanwhile
                    continue
                sig = (st.st_size, st.st_mtime_ns)
                prev = self.changed.get(name)
                if prev is None or prev[:2] != sig:
                    self.changed[name] = prev = (*sig, now)
                quiet = now - prev[2]
                complete = final or (st.st_size > 0 and quiet >= self.settle)
                pending.append((natural_key(name), Path(e.path), quiet, complete))
        pending.sort(key=lambda p: p[0])
        out = []
        for key, path, quiet, complete in pending:
            if not complete:
                break  # keep natural order: later files wait for this one
            if self.last is not None and key < natural_key(self.last):
                raise InputError(f"{path.name} arrived in {self.folder} after {self.last}, which sorts after it; "
                                 "write the frames in order (or name them so that they sort in order).")
            out.append((path, quiet))
        return out

    def take(self, path: Path) -> None:
        self.taken.add(path.name)
        self.changed.pop(path.name, None)
        self.last = path.name


def _fits(path: Path, header: tuple, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse a file whose header does not give frames of the stream's shape and dtype."""
    h_shape, h_dtype, pages = header
    if pages > 1:
        raise InputError(f"{path.name} holds {pages} pages, not one frame; write one image per file.")
    same = h_shape == shape or (len(shape) == 3 and h_shape == shape[:2])  # grey frames read as colour
    if not same or h_dtype != dtype:
        raise InputError(f"{path.name} has shape {h_shape} and dtype {h_dtype}, but this stream takes frames "
                         f"of shape {shape} and dtype {dtype}; write frames like the first one.")


def _decode(path: Path, quiet: float, final: bool, shape: tuple[int, ...] | None, dtype: Any):
    """(frame, header) of a complete file, or None while it may still be being written."""
    try:
        header = _header(path)
        if shape is not None:
            _fits(path, header, shape, np.dtype(dtype))
        else:
            shape, dtype = header[0], header[1]
        return _read_image(path, tuple(shape), np.dtype(dtype)), header
    except InputError as exc:
        if "Cannot decode" not in str(exc) or final or quiet >= DAMAGED_AFTER_S:
            raise
    except Exception as exc:  # a header cut short: try again at the next poll
        if final or quiet >= DAMAGED_AFTER_S:
            raise InputError(f"Cannot read {path.name} as an image ({exc}); the file is damaged: replace or "
                             "remove it.") from None
    return None


def watch_folder(folder: str | Path, pattern: str | None = None, *, poll: float = 0.2,
                 settle: float | None = None, stop_when: str | Callable[[], bool] | None = None,
                 idle_timeout: float | None = None, frame_shape: tuple[int, ...] | None = None,
                 dtype: Any = None, keep_last: int | None = None, max_bytes: int | None = None,
                 spill_dir: str | Path | None = None) -> FrameStream:
    """A stream of the image files written into ``folder`` (see the module docstring).

    ``settle``: seconds a file must stay unchanged before it is read (default ``poll``).
    ``stop_when``: a file name in ``folder`` (e.g. ``"DONE"``) or a callable; ``idle_timeout`` see above.
    Without ``frame_shape`` and ``dtype`` this call waits (up to ``idle_timeout``) for the first complete
    file to learn them; give both to return at once. The other arguments are ``FrameStream``'s.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not an existing folder; create it (or give the folder the frames are "
                         "written to) before watching it.")
    _check_timing(poll, idle_timeout)
    settle = poll if settle is None else float(settle)
    if settle < 0:
        raise InputError(f"settle must be 0 or more seconds; got {settle!r}.")
    watch = _Folder(folder, pattern, max(settle, 1e-9), stop_when if isinstance(stop_when, str) else None)
    if isinstance(stop_when, str):
        sentinel = folder / stop_when
        stop: Callable[[], bool] | None = sentinel.exists
    else:
        stop = stop_when
    first: list[np.ndarray] = []
    if frame_shape is None or dtype is None:
        start = time.monotonic()
        while not first:
            stopping = stop is not None and bool(stop())
            for path, quiet in watch.ready(stopping)[:1]:
                got = _decode(path, quiet, stopping, None, None)
                if got is not None:
                    watch.take(path)
                    first.append(got[0])
            if first:
                break
            if stopping or (idle_timeout is not None and time.monotonic() - start >= idle_timeout):
                raise InputError(f"No image file arrived in {folder}; give frame_shape and dtype to start "
                                 "the stream before the first frame is written.")
            time.sleep(poll)
        frame_shape = first[0].shape if frame_shape is None else frame_shape
        dtype = first[0].dtype if dtype is None else dtype
    stream = FrameStream(frame_shape, dtype, keep_last=keep_last, max_bytes=max_bytes, spill_dir=spill_dir)
    for f in first:
        stream.append(f)

    def step(final: bool) -> int:
        n = 0
        for path, quiet in watch.ready(final):
            got = _decode(path, quiet, final, stream.frame_shape, stream.dtype)
            if got is None:
                break  # not complete yet: keep the order
            stream.append(got[0])
            watch.take(path)
            n += 1
        return n

    return _start(stream, step, stop, poll, idle_timeout, "napari-sam2-folder-watch")


def _zarr_array(source: Any) -> Any:
    """The array to watch: a path opened as in ``io/zarr_stack.py``, or the array given."""
    if isinstance(source, (str, Path)):
        from ..io.zarr_stack import read_zarr

        return read_zarr(Path(source)).data
    if not hasattr(source, "shape") or not hasattr(source, "dtype"):
        raise InputError(f"from_zarr needs a zarr array or the path of one, not {type(source).__name__}.")
    return source


def _reopened(array: Any) -> Any:
    """A fresh handle on a zarr array (its shape as now written); other arrays are read as they are."""
    if type(array).__module__.split(".")[0] != "zarr":
        return array  # e.g. an h5py dataset, whose shape is read live
    import zarr

    store_path = getattr(array, "store_path", None)
    if store_path is not None:
        return zarr.open_array(store=store_path, mode="r")
    return zarr.open_array(store=array.store, path=array.path, mode="r")  # zarr-python 2


def _frame_stored(array: Any, t: int) -> bool:
    """Whether every chunk of frame ``t`` is in the store (zarr-python 3 with one frame per chunk along T).

    Otherwise (zarr-python 2, h5py, chunks spanning several frames) False: the frame is taken once a
    newer one exists.
    """
    chunks = getattr(array, "chunks", None)
    metadata = getattr(array, "metadata", None)
    if not chunks or chunks[0] != 1 or not hasattr(metadata, "encode_chunk_key"):
        return False
    try:
        from zarr.core.sync import sync

        grid = [range(-(-int(n) // int(c))) for n, c in zip(array.shape[1:], chunks[1:])]
        prefix = f"{array.path}/" if array.path else ""
        return all(sync(array.store.exists(prefix + metadata.encode_chunk_key((t, *rest))))
                   for rest in itertools.product(*grid))
    except Exception:  # another zarr layout or version: wait for the next frame
        return False


def watch_zarr(array_or_path: Any, *, poll: float = 0.2, stop_when: str | Callable[[], bool] | None = None,
               idle_timeout: float | None = None, keep_last: int | None = None, max_bytes: int | None = None,
               spill_dir: str | Path | None = None) -> FrameStream:
    """A stream of a (T, Y, X[, C]) zarr array whose T grows (see the module docstring).

    ``stop_when``: the name of an attribute of the array that the writer sets to a true value at the
    end (e.g. ``"acquisition_done"``), or a callable. The other arguments are ``FrameStream``'s.
    """
    _check_timing(poll, idle_timeout)
    array = _zarr_array(array_or_path)
    frame_shape = tuple(int(n) for n in array.shape[1:])
    if len(frame_shape) not in (2, 3):
        raise InputError(f"The zarr array has shape {tuple(array.shape)}; a growing stack must be (T, Y, X) or "
                         "(T, Y, X, C) with time first.")
    stream = FrameStream(frame_shape, array.dtype, keep_last=keep_last, max_bytes=max_bytes, spill_dir=spill_dir)
    state = {"array": array}

    def step(final: bool) -> int:
        arr = state["array"] = _reopened(state["array"])
        shape = tuple(int(n) for n in arr.shape)
        if shape[1:] != frame_shape:
            raise InputError(f"The zarr array's frames changed from shape {frame_shape} to {shape[1:]}; a growing "
                             "stack may only grow along its first axis (T).")
        ready = shape[0]
        if not final and ready > 0 and not _frame_stored(arr, ready - 1):
            ready -= 1
        start = len(stream)
        for t in range(start, ready):
            stream.append(np.asarray(arr[t]))
        return max(ready - start, 0)

    if isinstance(stop_when, str):
        key = stop_when

        def stop() -> bool:
            return bool(dict(getattr(_reopened(state["array"]), "attrs", {})).get(key))
    else:
        stop = stop_when
    return _start(stream, step, stop, poll, idle_timeout, "napari-sam2-zarr-watch")
