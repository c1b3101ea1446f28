"""The model work of the widget, run by the :class:`~.runner.JobRunner`'s workers.

Nothing here touches Qt or napari layers: each job talks to the model / ``VideoSession`` and yields
plain objects (``FrameResult``, :class:`Erase`, :class:`OpDone`, :class:`Status`) that the controller
applies on the main thread; jobs with nothing to report are plain functions. Frames are frame keys.
The generators can be iterated directly in tests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..engine.layout import FrameKey
from ..errors import Cancelled, DownloadCancelled, DownloadError, LoadCancelled, PromptError
from .prompt_sync import CLEAR, REMOVE, SET, SyncOp


@dataclass(frozen=True)
class Erase:
    """Remove ``obj_ids`` from frame ``key`` of the output labels."""

    key: FrameKey
    obj_ids: tuple[int, ...]


@dataclass(frozen=True)
class OpDone:
    """Sync operation number ``index`` reached the session."""

    index: int


@dataclass(frozen=True)
class Status:
    """A line for the widget's status label."""

    text: str


#: After Cancel, how long the loading thread may take to notice before the job stops waiting for it.
CANCEL_GRACE_S = 1.0


def _cancelled(name: str, downloading: bool) -> Cancelled:
    """What a load cancelled before its thread noticed ends with."""
    if downloading:
        return DownloadCancelled(f"The model download of {name} was cancelled.")
    return LoadCancelled(f"The model loading of {name} was cancelled.")


def load_model_job(
    name: str, device: str, image_size: int | None = None, cancel: threading.Event | None = None
) -> Iterator[Any]:
    """Load a registry model (downloading it once) or a checkpoint file; returns the model.

    ``load_model`` blocks, so it runs in a helper thread while this generator reports the download
    progress it calls back with. Setting ``cancel`` stops a download at its next chunk (the partial
    file is kept and the next attempt resumes it) and raises ``DownloadCancelled``; when the helper
    thread does not notice within ``CANCEL_GRACE_S`` (a stalled connection, a model being built),
    this job raises ``DownloadCancelled`` anyway (``LoadCancelled`` when no download was under
    way; both are :class:`~napari_sam2.errors.Cancelled`) and leaves the daemon thread to end on its own.
    """
    from .status import device_text  # "auto" said as the device it resolves to (cpu, cuda:0, mps)

    shown = device_text(device)
    yield Status(f"Loading {name} on {device if shown.startswith('not available') else shown}...")
    from ..model.loading import load_model  # torch is imported here, in the worker

    events: queue.SimpleQueue = queue.SimpleQueue()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["model"] = load_model(
                name,
                device=device,
                image_size=image_size,
                progress=lambda d, t: events.put((d, t)),
                cancel=cancel,
            )
        except BaseException as err:  # noqa: BLE001 - re-raised in the worker below
            box["error"] = err
        finally:
            events.put(None)

    thread = threading.Thread(target=run, name="napari-sam2-load", daemon=True)
    thread.start()
    shown = -1
    downloading = False
    deadline: float | None = None
    while True:
        try:
            item = events.get(timeout=0.05)
        except queue.Empty:
            if cancel is not None and cancel.is_set():
                deadline = deadline or time.monotonic() + CANCEL_GRACE_S
                if time.monotonic() > deadline:
                    raise _cancelled(name, downloading) from None
            continue
        if item is None:
            break
        done, total = item
        downloading = not total or done < total
        mb = int(done // 1_000_000)
        if mb != shown:
            shown = mb
            of = f" of {total / 1e6:.0f}" if total else ""
            yield Status(f"Downloading {name}: {mb}{of} MB...")
    thread.join()
    if isinstance(box.get("error"), DownloadError):
        return (yield from _offline_fallback(name, device, box["error"]))
    if "error" in box:
        raise box["error"]
    return box["model"]


def _offline_fallback(name: str, device: str, err: DownloadError) -> Iterator[Any]:
    """``name`` is not cached and cannot be downloaded: load the built-in demo model instead, with a
    ``fallback_note`` (what happened, the fix) and ``fallback_detail`` (the download error with its manual
    steps) on it, which the controller shows."""
    from ..checkpoints.builtin import DEMO_MODEL, DEMO_NOTE
    from ..model.loading import load_model

    yield Status(f"{name} cannot be downloaded; loading the built-in demo model...")
    try:
        model = load_model(DEMO_MODEL, device=device)  # its own resolution (256 px): the one it was trained at
    except Exception:  # noqa: BLE001 - no demo model either: the download error is the one to show
        raise err from None
    model.fallback_note = (f"{name} is not cached and could not be downloaded, so this uses {DEMO_NOTE}. "
                           f"Connect to the network and choose {name} again for SAM 2's quality.")
    model.fallback_detail = str(err)  # the download error: URL, file name, cache folder, the manual steps
    model.source_name = DEMO_MODEL
    return model


def open_session_job(model: Any, data: Any, axis: int, **kwargs: Any) -> Iterator[Any]:
    """Create a ``VideoSession`` on ``data`` (may read and normalise the stack); returns it."""
    yield Status("Preparing the stack...")
    from ..engine.video_session import VideoSession

    return VideoSession(model, data, axis=axis, **kwargs)


def sync_job(session: Any, ops: list[SyncOp]) -> Iterator[Any]:
    """Send prompt changes to the session; yield each resulting frame (instant preview)."""
    for i, op in enumerate(ops):
        if op.kind == SET:  # both calls replace the object's earlier prompts on that frame
            if op.box is not None:
                result = session.add_box(op.key, op.obj_id, op.box, points=op.points, labels=op.labels)
            else:
                result = session.add_points(op.key, op.obj_id, op.points, op.labels, clear=True)
            yield OpDone(i)
            yield result
        elif op.kind == CLEAR:
            if op.obj_id in session.obj_ids:
                try:
                    session.clear_prompts(op.key, op.obj_id)
                except PromptError:  # the object lives in another sequence (N-D): nothing here
                    pass
            yield OpDone(i)
            yield Erase(op.key, (op.obj_id,))
            others = [o for o in session.obj_ids if o != op.obj_id]
            if others:  # repaint the remaining objects where the erased one covered them
                try:
                    yield session.result(op.key, others)
                except PromptError:
                    pass
        elif op.kind == REMOVE:
            if op.obj_id in session.obj_ids:  # clearing its last prompt may have removed it
                session.remove_object(op.obj_id)
            yield OpDone(i)


def masks_job(session: Any, masks: list[Any]) -> Iterator[Any]:
    """Send mask prompts (e.g. Cellpose labels on one frame); yields the last frame result."""
    result = None
    for m in masks:
        result = session.add_mask(m.frame, m.obj_id, m.mask)
    if result is not None:
        yield result


def candidate_job(session: Any, key: FrameKey, obj_id: int, k: int) -> Iterator[Any]:
    """Show multimask candidate ``k`` of a single click."""
    yield session.choose_candidate(key, obj_id, k)


def close_job(session: Any) -> None:
    """Release a replaced session (its prefetch thread and cached features)."""
    close = getattr(session, "close", None)
    if close is not None:
        close()


def prefetch_job(session: Any, key: FrameKey) -> None:
    """Compute and cache the image features of frame ``key`` so the next click is instant."""
    session.prefetch(key)


def propagate_job(
    session: Any,
    direction: str,
    start: FrameKey,
    stop: Any,
    cancel: threading.Event,
) -> Iterator[Any]:
    """Propagate all objects; yields one FrameResult per frame as soon as it is done."""
    for result in session.propagate(direction=direction, start=start, stop=stop, cancel=cancel):
        yield result
        if cancel.is_set():
            return
