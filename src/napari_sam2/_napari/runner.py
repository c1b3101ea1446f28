"""Runs the widget's jobs one at a time, with a small queue; the one place that knows what is running.

The session is not thread-safe and the model must never run on the main thread, so exactly one
worker runs at a time. A job is described by a *factory* called when its turn comes (so a prompt
sync reads the layers as they are then, not as they were when queued); jobs with the same
``name`` and ``coalesce=True`` are queued once (the queued one reads the state when it starts).
A failed job empties the queue (later jobs usually depend on it), except for ``essential`` jobs
(closing a replaced session). Each job carries its own ``cancel`` event: :meth:`JobRunner.cancel`
sets it, and :meth:`JobRunner.quit` ends a job at its next item and closes its generator, so a
cancelled propagation never stays open in the session.

Workers are started by a *starter*: :func:`start_qt_worker` (napari's thread workers, the default)
or :class:`InlineWorkers`, which runs the jobs on the calling thread step by step (tests, scripts).
This module imports neither Qt nor napari until a Qt worker is started.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Spec = tuple[Callable[..., Any], tuple, dict]
#: starter(target, args, kwargs, on_yield, on_return, on_error, on_finished) -> a handle kept while it runs
Starter = Callable[..., Any]


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


def start_qt_worker(target: Callable[..., Iterator[Any]], args: tuple, kwargs: dict, on_yield: Any,
                    on_return: Any, on_error: Any, on_finished: Any) -> Any:
    """Run ``target(*args, **kwargs)`` in a napari thread worker; its signals arrive on the main thread."""
    from napari.qt.threading import create_worker

    worker = create_worker(target, *args, _ignore_errors=True, **kwargs)
    if on_yield is not None:
        worker.yielded.connect(on_yield)
    if on_return is not None:
        worker.returned.connect(on_return)
    worker.errored.connect(on_error)
    worker.finished.connect(on_finished)
    worker.start()
    return worker


class InlineWorkers:
    """A starter that runs jobs on the calling thread, one item per :meth:`step` (no Qt, no threads).

    Callbacks come in the order napari's workers emit them (yielded..., returned or errored,
    finished), so a controller driven by it behaves as under Qt, only deterministically.
    """

    def __init__(self) -> None:
        self._current: tuple[Iterator[Any], Any, Any, Any, Any] | None = None

    def __call__(self, target: Callable[..., Iterator[Any]], args: tuple, kwargs: dict, on_yield: Any,
                 on_return: Any, on_error: Any, on_finished: Any) -> Any:
        if self._current is not None:
            raise RuntimeError("InlineWorkers runs one job at a time")
        self._current = (target(*args, **kwargs), on_yield, on_return, on_error, on_finished)
        return self

    @property
    def idle(self) -> bool:
        return self._current is None

    def step(self) -> bool:
        """Advance the running job by one item; False when no job was running."""
        if self._current is None:
            return False
        gen, on_yield, on_return, on_error, on_finished = self._current
        try:
            item = next(gen)
        except StopIteration as end:
            self._current = None
            if on_return is not None:
                on_return(end.value)
            on_finished()
        except Exception as err:  # noqa: BLE001 - delivered like a worker's errored signal
            self._current = None
            on_error(err)
            on_finished()
        else:
            if on_yield is not None:
                on_yield(item)
        return True

    def run(self, max_steps: int = 100_000) -> int:
        """Run until no job is left (queued jobs start as earlier ones finish); returns the steps."""
        n = 0
        while n < max_steps and self.step():
            n += 1
        return n


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
    quit_on_cancel: bool = True  # False: Cancel only sets ``cancel``; the job ends itself and reports it
    cancel: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """One worker at a time; ``on_busy(bool, job_name)`` is called when that changes."""

    def __init__(self, on_busy: Callable[[bool, str], None] | None = None, start: Starter | None = None) -> None:
        self._queue: deque[Job] = deque()
        self._on_busy = on_busy
        self._start = start or start_qt_worker
        self.worker: Any = None
        self.job: Job | None = None
        self._stop: threading.Event | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    @property
    def pending(self) -> list[str]:
        return [j.name for j in self._queue]

    def running(self, *names: str) -> bool:
        """Whether a job runs now (one named ``names``, when given)."""
        return self.job is not None and (not names or self.job.name in names)

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

    def cancel(self) -> None:
        """Set the running job's ``cancel`` event, drop the queue, and stop the job unless it ends itself."""
        job = self.job
        if job is not None:
            job.cancel.set()
        self.clear_queue()
        if job is None or job.quit_on_cancel:
            self.quit()

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
            self.job = job
            self.worker = self._start(_guarded, (func, *args), {**kwargs, "_stop": self._stop}, job.on_yield,
                                      job.on_return, self._errored, self._finished)
            if self._on_busy:
                self._on_busy(True, job.name)

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
