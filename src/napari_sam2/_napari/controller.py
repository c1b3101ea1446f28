"""The SAM 2 widget's logic without Qt: model, session, prompt sync, propagation, cancellation.

napari-animation's split: :class:`Sam2Controller` owns the state (model, ``VideoSession``,
:class:`~.state.SessionState`, :class:`~.prompt_sync.PromptTracker`, the output layer's
:class:`~.labels_writer.LabelsWriter`) and queues the model work on a :class:`~.runner.JobRunner`,
the one place that knows what is running. The panel (``widget.py``) binds controls and layers to
it through a :class:`~.controller_view.ControllerView`, which the controller reads from (image,
prompts, output layer, current frame) and reports to (status, messages, busy, progress, review
list). Neither Qt nor napari is imported here: tests drive it with :class:`~.runner.InlineWorkers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..engine.layout import FrameKey, guess_layout
from ..engine.prompts import MaskPrompt, PromptSet
from ..errors import Sam2Error
from . import messages as M
from . import status as ST
from . import workers as W
from .controller_view import ControllerView
from .labels_writer import OutputLayer, OutputLayerError
from .progress import ProgressMeter
from .prompt_sync import REMOVE, PromptTracker, SyncBatch
from .refresh_throttle import RefreshThrottle, paint_frames
from .runner import Job, JobRunner, Starter
from .state import LostFrame, SessionState

LONG_JOBS = ("load", "open", "propagate")  # the controls that must not change are disabled meanwhile
CANCELLABLE_JOBS = ("load", "propagate")
CANDIDATES_SINGLE_CLICK = "No other candidates: they exist for a single click only."
RESET = "Session reset: edit a prompt or press Propagate to start again."


class Sam2Controller:
    """One widget's model, session, prompt tracker, job runner, cancellation and owned ids."""

    def __init__(self, view: ControllerView | None = None, start: Starter | None = None) -> None:
        self.view = view or ControllerView()
        self.runner = JobRunner(on_busy=self._on_busy, start=start)
        self.state = SessionState()
        self.tracker = PromptTracker()
        self.model: Any = None
        self.model_source: tuple[str, str, int | None] | None = None  # (name or file, device, image size)
        self.session: Any = None
        self.output = OutputLayer(lambda create: self.view.output(create), self.labels_shape)
        self.meter: ProgressMeter | None = None
        self.follow = False  # move the view along with a propagation
        self.refresher = RefreshThrottle(lambda *a: paint_frames(self, *a))  # paint / Follow 4 times a second
        self.closed = False
        self.mask_source_factory: Any = None  # (model, settings) -> generator; None: MaskGenerator (everything_jobs)
        self._generation = 0  # callbacks of jobs made for an older session are dropped

    # ---- what runs ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    @property
    def propagating(self) -> bool:
        return self.runner.running("propagate")

    def working(self) -> bool:
        """A propagation or a model load runs (closing the panel or its layers cancels it)."""
        return self.runner.running("propagate", "load")

    # ---- model, image, output ----------------------------------------------------------------
    def use_model(self, model: Any) -> None:
        """Use an already loaded model; the next edit opens a new session."""
        self.model = model
        self.invalidate()

    def choose_model(self, name: str, device: str = "auto", image_size: int | None = None) -> None:
        """A registry model name or checkpoint file, loaded (in a worker) when first needed."""
        self.model, self.model_source = None, (str(name), str(device), image_size)
        self.invalidate()

    def invalidate(self) -> None:
        """Image, axis or model changed: the next edit starts a new session (prompts are re-sent)."""
        if self.propagating:
            self.cancel()
        self._generation += 1
        self._retire(self.session)
        self.session = None
        self.output.drop()  # what a cancelled propagation wrote stays undoable
        self.tracker.reset()
        self.state.reset()
        self.view.review(self.state.review)

    def labels_shape(self) -> tuple[int, ...] | None:
        """Shape of the labels of the current image (None without one)."""
        if self.session is not None:
            return self.session.layout.labels_shape
        spec = self.view.stack()
        if spec is None:
            return None
        data, axis, kwargs = spec
        try:
            return guess_layout(data, axis, kwargs.get("rgb"), kwargs.get("channel")).labels_shape
        except Sam2Error:
            return None

    def output_ok(self, top_id: int) -> bool:
        """Whether the output layer can hold ids up to ``top_id``; says the problem (one message) if not."""
        try:
            self.output.check(top_id)
        except OutputLayerError as err:
            self.report(err)
            return False
        return True

    # ---- operations the panel binds to ---------------------------------------------------------
    def prepare(self) -> None:
        """Queue model loading and session creation when needed."""
        if self.model is None:
            self._submit("load", self._load_spec, on_return=self._set_model, coalesce=True, quit_on_cancel=False)
        if self.session is None:
            self._submit("open", self._open_spec, on_return=self._set_session, coalesce=True)

    def sync(self, prompts: PromptSet | Callable[[], PromptSet] | None = None) -> None:
        """Send the prompts' changes to the session; the edited frames come back at once.

        ``prompts``: a PromptSet, a callable returning one, or None to read ``view.prompts()``
        when the job starts (then queued syncs are merged into one).
        """
        self.prepare()
        if self.propagating:
            self.view.queued()  # applied once the propagation ends: the status line says so
        batch = SyncBatch()
        self._submit(
            "sync",
            lambda job: self._sync_spec(prompts, batch),
            on_yield=lambda item: self._apply(item, batch),
            on_error=lambda err: self._sync_failed(err, batch),
            coalesce=prompts is None,
        )

    def add_masks(self, read: Callable[[], list[MaskPrompt]]) -> None:
        """Send mask prompts (``read()`` when the job starts; nothing happens when it gives none)."""
        self.prepare()

        def spec(job: Job) -> Any:
            if self.session is None:
                return None
            masks = read()
            if not masks:
                return None
            self.output.check(max(m.obj_id for m in masks))
            for m in masks:
                self.tracker.note_mask(m.obj_id)
            return W.masks_job, (self.session, masks), {}

        self._submit("masks", spec)

    def propagate(self, direction: str, start: FrameKey, stop: Any = None, layer_ids: Sequence[int] = ()) -> bool:
        """Propagate every object from frame ``start`` (after syncing the prompts); False if refused.

        ``stop`` as ``VideoSession.propagate`` takes it; ``layer_ids``: ids in the prompt layers
        (the output layer must hold them). Progress is counted by ``session.layout.count_visits``.
        """
        if "propagate" in self.runner.pending or self.propagating:
            self.view.message("info", M.PROPAGATING)  # a second press: refused, the first one carries on
            return False
        if not self.output_ok(max(set(layer_ids) | self.state.owned_ids, default=0)):
            return False
        self.sync()
        failed: list[bool] = []
        self._submit(
            "propagate",
            lambda job: self._propagate_spec(direction, start, stop, job),
            on_yield=self._on_frame,
            on_error=lambda err: (failed.append(True), self.report(err)),
            on_done=lambda job: self._propagate_done(job, bool(failed)),
        )
        return True

    def next_candidate(self, key: FrameKey, obj_id: int) -> None:
        """Show the next multimask candidate of object ``obj_id``'s single click on frame ``key``."""
        if self.session is None or self.runner.busy:
            return
        session = self.session

        def spec(job: Job) -> Any:
            n = session.num_candidates(key, obj_id)
            if n <= 1:
                self.view.status(CANDIDATES_SINGLE_CLICK)
                return None
            k = self.state.next_candidate(key, obj_id, n)
            self.view.status(f"Object {obj_id}: candidate {k + 1} of {n}.")
            return W.candidate_job, (session, key, obj_id, k), {}

        self._submit("candidate", spec)

    def prefetch(self, key: FrameKey) -> None:
        """Compute frame ``key``'s image features in the background when nothing else runs."""
        if self.session is None or self.runner.busy:
            return
        session = self.session
        self._submit("prefetch", lambda job: (W.prefetch_job, (session, key), {}), coalesce=True)

    def cancel(self) -> None:
        """Stop a propagation within one frame (finished frames stay written) or a model load.

        A load is stopped through its cancel event rather than by quitting the worker, so that a
        download really ends (keeping its partial file) and the job reports it.
        """
        self.runner.cancel()

    def abandon(self) -> None:
        """Cancel, and drop the results still on their way (their layer is gone)."""
        self.cancel()
        self._generation += 1

    def reset(self) -> None:
        """Forget the model's memory; the prompt layers are re-sent on the next edit."""
        self.cancel()
        self.invalidate()
        self.view.status(RESET)

    def shutdown(self) -> None:
        """The view is gone: stop the job, drop its results, release the session; nothing is reported."""
        if self.closed:
            return
        self.closed = True
        self.runner.cancel()
        self.runner.quit()
        session, self.session = self.session, None
        self._retire(session)

    def new_object_id(self, *taken: Any) -> int:
        """The next free object id over the owned ids and ``taken`` (ids, or maxima)."""
        return self.state.next_free_id(*taken)

    def lost_frames(self) -> list[LostFrame]:
        return self.state.lost_frames()

    def report(self, err: BaseException) -> None:
        """Say ``err`` as one message: a user error its own text, a bug "failed unexpectedly" (logged)."""
        M.log_bug(err)
        self.view.message(*M.describe(err))

    # ---- jobs ----------------------------------------------------------------------------------
    def _submit(self, name: str, factory: Callable[[Job], Any], *, on_yield: Any = None, on_return: Any = None,
                on_error: Any = None, on_done: Any = None, **kw: Any) -> Job | None:
        """Queue a job; its results are dropped once the session it was made for is replaced.

        A result that cannot be applied stops the job with ONE message (not one per frame), and
        nothing at all is queued or reported once the view is closed.
        """
        if self.closed:
            return None
        gen, failed = self._generation, []
        on_error = on_error or self.report

        def guard(fn: Any) -> Any:
            def call(*args: Any) -> None:
                if self.closed or gen != self._generation or failed:
                    return  # a result of a session replaced meanwhile, or of a failed job
                try:
                    fn(*args)
                except Exception as err:  # noqa: BLE001 - reported as one message, never a traceback
                    failed.append(err)
                    job.cancel.set()
                    self.runner.clear_queue()
                    self.runner.quit()
                    on_error(err)

            return None if fn is None else call

        def alive(fn: Any) -> Any:
            return None if fn is None else lambda *args: None if self.closed else fn(*args)

        job = Job(name, lambda: factory(job), on_yield=guard(on_yield or self._apply), on_return=guard(on_return),
                  on_error=alive(on_error), on_done=alive(on_done and (lambda: on_done(job))), **kw)
        self.runner.submit(job)
        return job

    def _retire(self, session: Any) -> None:
        """Close a replaced session (no model work), after the worker using it if one runs."""
        if session is None:
            return
        if self.runner.busy:
            self.runner.submit(Job("close", lambda: (W.close_job, (session,), {}), essential=True))
        else:
            W.close_job(session)

    def _load_spec(self, job: Job) -> Any:
        if self.model is not None or self.model_source is None:
            return None
        name, device, size = self.model_source
        return W.load_model_job, (name, device, size, job.cancel), {}

    def _set_model(self, model: Any) -> None:
        self.model = model
        note = getattr(model, "fallback_note", "")
        self.view.model_note(note)  # offline without the chosen checkpoint: the demo model stands in
        if note:  # (workers._offline_fallback); the warning once, the note for as long as it is in use
            self.view.message("warning", f"Model {model.source_name} ready. {note} {model.fallback_detail}")
            return
        self.view.status(f"Model {self.model_source[0] if self.model_source else ''} ready.")

    def _open_spec(self, job: Job) -> Any:
        spec = None if self.session is not None or self.model is None else self.view.stack()
        if spec is None:
            return None
        data, axis, kwargs = spec
        return W.open_session_job, (self.model, data, axis), kwargs

    def _set_session(self, session: Any) -> None:
        self.session = session
        self.view.status(ST.STACK_READY)  # "Preparing the stack..." ends here
        self.view.session_opened()

    def _sync_spec(self, prompts: Any, batch: SyncBatch) -> Any:
        if self.session is None:
            return None
        ps = self.view.prompts() if prompts is None else prompts() if callable(prompts) else prompts
        self.output.check(max(ps.obj_ids, default=0))  # refused before the session is told anything
        ops = self.tracker.diff(ps)
        if not ops:
            return None
        self.tracker.commit(ops)
        batch.ops = list(ops)
        for op in ops:
            self.state.reset_candidate(op.key, op.obj_id)
        return W.sync_job, (self.session, ops), {}

    def _sync_failed(self, err: BaseException, batch: SyncBatch) -> None:
        self.tracker.uncommit(batch.unsent())  # the failing op stays sent: no retry loop
        self.report(err)

    def _propagate_spec(self, direction: str, start: FrameKey, stop: Any, job: Job) -> Any:
        if self.session is None or not list(self.session.obj_ids):
            return None
        layout = self.session.layout
        key = layout.key(start)
        self.meter = ProgressMeter(layout.count_visits(direction, key[layout.axis], stop))
        self.output.get().begin_group()  # the whole propagation is one undo step
        self.view.progress(0, self.meter.total, "Starting...", "start")
        return W.propagate_job, (self.session, direction, key, stop, job.cancel), {}

    def _on_frame(self, result: Any) -> None:
        self._write(result, refresh=False)  # in the array now; painted (and followed) by the refresher
        self.refresher.written(tuple(result.key))
        if self.meter is not None:
            self.meter.tick()
            self.view.progress(self.meter.done, self.meter.total, self.meter.text(), "frame")

    def _propagate_done(self, job: Job, failed: bool) -> None:
        self.refresher.finish()  # the last frames written are painted (Follow lands on the last one)
        note = self.output.writer.end_group() if self.output.writer is not None else ""
        meter = self.meter
        if meter is None:
            return
        cancelled = job.cancel.is_set()
        how = "Stopped by an error after" if failed else "Cancelled after" if cancelled else "Propagated"
        text = f"{how} {meter.summary()}; {self.state.review.doubtful_count()} frames to review.{note}"
        self.view.progress(meter.done, meter.total, text, "stopped" if failed or cancelled else "done")
        if not failed:  # an error said itself; done or cancelled ends the propagation's status line
            self.view.status(ST.finished(text, cancelled))

    # ---- results -------------------------------------------------------------------------------
    def _apply(self, item: Any, batch: SyncBatch | None = None) -> None:
        """A job yielded ``item``: apply it (main thread)."""
        if isinstance(item, W.Status):
            self.view.status(item.text)
        elif isinstance(item, W.OpDone):
            op = batch.reached(item.index) if batch is not None else None
            if op is not None and op.kind == REMOVE:
                self.state.forget_object(op.obj_id)
        elif isinstance(item, W.Erase):
            self.output.get().erase(item.key, item.obj_ids)
        elif item is not None:
            self._write(item)

    def _write(self, result: Any, refresh: bool = True) -> None:
        self.state.own(result.obj_ids)
        self.output.get().write(result, refresh=refresh)
        if self.state.record(result):  # O(objects): the view updates only the rows that changed
            self.view.review(self.state.review)
        self.view.written(result)

    def _on_busy(self, busy: bool, name: str) -> None:
        if not self.closed:
            self.view.busy((busy and name in LONG_JOBS) or self.propagating, name in CANCELLABLE_JOBS)
