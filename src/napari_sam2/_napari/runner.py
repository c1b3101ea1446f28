"""Runs the widget's jobs one at a time in napari thread workers, with a small queue.

The session is not thread-safe and the model must never run on the main thread, so exactly one
worker runs at a time. A job is described by a *factory* called when its turn comes (so a prompt
sync reads the layers as they are then, not as they were when queued); jobs with the same
``name`` and ``coalesce=True`` are queued once (the queued one reads the state when it starts).
A failed job empties the queue (later jobs usually depend on it), except for ``essential`` jobs
(closing a replaced session). :meth:`JobRunner.quit` ends a job at its next item and closes its
generator, so a cancelled propagation never stays open in the session.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from napari.qt.threading import create_worker

Spec = tuple[Callable[..., Any], tuple, dict]


class JobError(Exception):
    """Carries a job's exception out of the worker thread (see :func:`_guarded`)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(
    func: Callable[..., Any], *args: Any, _stop: threading.Event | None = None, **kwargs: Any
) -> Iterator[Any]:
    """Run ``func`` as a generator job whose errors always reach ``errored``.

    superqt's GeneratorWorker treats a RuntimeError raised by the generator as "the worker was
    deleted": it emits neither ``errored`` nor ``finished``. torch raises RuntimeError subclasses
    (``torch.OutOfMemoryError`` among them), which would leave the widget busy forever.
    ``_stop`` set ends the job after its current item and CLOSES its generator (superqt's own
    ``quit`` leaves it suspended, e.g. holding a session's propagation open).
    """
    try:
        if not inspect.isgeneratorfunction(func):
            return func(*args, **kwargs)
        gen = func(*args, **kwargs)
        try:
            while True:
                try:
                    item = next(gen)
                except StopIteration as end:
                    return end.value
                yield item
                if _stop is not None and _stop.is_set():
                    return None
        finally:
            gen.close()
    except Exception as err:  # noqa: BLE001 - re-raised, wrapped
        raise JobError(err) from err


@dataclass
class Job:
    name: str
    factory: Callable[[], Spec | None]
    on_yield: Callable[[Any], None] | None = None
    on_return: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_done: Callable[[], None] | None = None
    coalesce: bool = False
    essential: bool = False  # survives clear_queue(): releasing a session must happen even after errors
    meta: dict = field(default_factory=dict)


class JobRunner:
    """One worker at a time; ``on_busy(bool, job_name)`` is called when that changes."""

    def __init__(self, on_busy: Callable[[bool, str], None] | None = None) -> None:
        self._queue: deque[Job] = deque()
        self._on_busy = on_busy
        self.worker: Any = None
        self.job: Job | None = None
        self._stop: threading.Event | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    @property
    def pending(self) -> list[str]:
        return [j.name for j in self._queue]

    def submit(self, job: Job) -> None:
        if job.coalesce and any(j.name == job.name for j in self._queue):
            return  # the queued twin reads the state when it starts, so it covers this request
        self._queue.append(job)
        self._next()

    def clear_queue(self) -> None:
        """Drop the queued jobs except the essential ones."""
        kept = [j for j in self._queue if j.essential]
        self._queue.clear()
        self._queue.extend(kept)

    def quit(self) -> None:
        """Ask the running job to stop at its next yield (its generator is closed then)."""
        if self.worker is not None and self._stop is not None:
            self._stop.set()

    # ---- internals ---------------------------------------------------------------------------
    def _next(self) -> None:
        while self.worker is None and self._queue:
            job = self._queue.popleft()
            try:
                spec = job.factory()
            except Exception as err:  # noqa: BLE001 - reported like a worker error
                self.clear_queue()
                if job.on_error:
                    job.on_error(err)
                if job.on_done:
                    job.on_done()
                continue
            if spec is None:
                continue
            func, args, kwargs = spec
            self._stop = threading.Event()
            worker = create_worker(_guarded, func, *args, _ignore_errors=True, _stop=self._stop, **kwargs)
            if job.on_yield is not None and hasattr(worker, "yielded"):
                worker.yielded.connect(job.on_yield)
            if job.on_return is not None:
                worker.returned.connect(job.on_return)
            worker.errored.connect(self._errored)
            worker.finished.connect(self._finished)
            self.worker, self.job = worker, job
            if self._on_busy:
                self._on_busy(True, job.name)
            worker.start()

    def _errored(self, err: BaseException) -> None:
        err = err.original if isinstance(err, JobError) else err
        self.clear_queue()
        if self.job is not None and self.job.on_error is not None:
            self.job.on_error(err)

    def _finished(self) -> None:
        job = self.job
        self.worker, self.job = None, None
        if job is not None and job.on_done is not None:
            job.on_done()
        self._next()
        if self._on_busy and self.worker is None:
            self._on_busy(False, job.name if job else "")
