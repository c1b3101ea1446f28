"""Live tracking in the widget without Qt: the follow job of a :class:`~.controller.Sam2Controller`.

While Live is on, the controller's session is opened on a :class:`~.live_source.LayerStream` (the
panel's ``view.stack()`` returns it), and :func:`start_follow` queues ONE propagation job that runs
``VideoSession.propagate("forward", follow=True, drop=...)``: it tracks each frame as it arrives and
waits for the next, until Cancel, Live off, the panel or a layer going away (all of which cancel the
job; the engine notices within 50 ms while waiting), or the stream failing (the stack shrank).

Each result goes through the controller's ``_on_frame`` (the same writing, review list and Follow
as an ordinary propagation), with no undo group: a live run has no end, so each frame is its own
step of napari's bounded undo history (memory stays flat). The status line says frames tracked,
behind (arrived but not tracked yet), skipped (``drop="oldest"``) and the latency (append to result).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from . import messages as M
from .live_source import LayerStream, LiveStats
from .runner import Job

#: What happens when frames arrive faster than the model runs: skip to the newest (a live view stays
#: current; the skipped frames are counted) unless the panel asks to track every frame ("none").
DEFAULT_DROP = "oldest"
LIVE_WAITING = "Live: waiting for frames of '{name}'..."
LIVE_STOPPED = "Live tracking stopped: {n} frames tracked, {skipped} skipped."


def follow_job(session: Any, start: Any, cancel: threading.Event, drop: str) -> Iterator[Any]:
    """Track forward as frames arrive; yields one FrameResult per tracked frame."""
    for result in session.propagate("forward", start=start, cancel=cancel, follow=True, drop=drop):
        yield result
        if cancel.is_set():
            return


class LiveRun:
    """One widget's live state: the stream, the statistics and the follow job."""

    def __init__(self, controller: Any, stream: LayerStream) -> None:
        self.controller = controller
        self.stream = stream
        self.stats = LiveStats()
        self.job: Job | None = None
        self._again: tuple[Sequence[int], str] | None = None  # start again after the prompts' sync
        self._args: tuple[Sequence[int], str] = ((), DEFAULT_DROP)

    @property
    def following(self) -> bool:
        job = self.job
        return job is not None and self.controller.runner.job is job

    def start(self, layer_ids: Sequence[int] = (), drop: str = DEFAULT_DROP) -> bool:
        """Queue the follow job (after syncing the prompts); False when refused (already running)."""
        ctrl = self.controller
        if "propagate" in ctrl.runner.pending or ctrl.propagating:
            ctrl.view.message("info", M.PROPAGATING)
            return False
        if not ctrl.output_ok(max(set(layer_ids) | ctrl.state.owned_ids, default=0)):
            return False
        self._args = (tuple(layer_ids), drop)
        ctrl.sync()
        failed: list[bool] = []
        self.job = ctrl._submit(
            "propagate",
            lambda job: self._spec(job, drop),
            on_yield=self._on_frame,
            on_error=lambda err: (failed.append(True), err is self.stream.error or ctrl.report(err)),
            on_done=lambda job: self._done(job, bool(failed)),
        )
        return self.job is not None

    def make_way_for_prompts(self) -> None:
        """Prompts were edited while following (their sync waits behind the follow job): end the
        follow after its current frame, let the sync run, then follow again from the next frame, so
        a new object joins mid-acquisition (as ``propagate(start=that frame)`` would)."""
        if self.following and self._again is None:
            self._again = self._args
            self.job.cancel.set()  # not runner.cancel(): that would drop the queued sync

    def stop(self) -> None:
        """End the follow (cancel) and the stream (no frame will follow).

        A failed stream's error is said once, by the panel; the job ending with it stays quiet.
        """
        if self.following or (self.job is not None and self.job in self.controller.runner._queue):
            self.controller.cancel()
        self.stream.close()

    # ---- the job -----------------------------------------------------------------------------
    def _spec(self, job: Job, drop: str) -> Any:
        ctrl = self.controller
        session = ctrl.session
        if session is None or not list(session.obj_ids) or getattr(session, "data", None) is not self.stream:
            return None
        # a second start goes on after the frames already tracked (from the newest one when skipping)
        newest = len(self.stream) - 1
        start = None if self.stats.last < 0 else newest if drop == "oldest" else min(self.stats.last + 1, newest)
        ctrl.meter = None
        ctrl.output.get()  # the output layer exists (and grows with the stack) from the first frame on
        ctrl.view.status(LIVE_WAITING.format(name=self.stream.name))
        return follow_job, (session, start, job.cancel, drop), {}

    def _on_frame(self, result: Any) -> None:
        self.stats.add(result)
        self.controller._on_frame(result)
        self.controller.view.status(self.stats.text(len(self.stream)))

    def _done(self, job: Job, failed: bool) -> None:
        ctrl = self.controller
        refresher = getattr(ctrl, "refresher", None)
        if refresher is not None:
            refresher.finish()  # the last frames written are painted
        if ctrl.output.writer is not None:
            ctrl.output.writer.end_group()
        again, self._again = self._again, None
        if again is not None and not failed and not self.stream.closed and "sync" in ctrl.runner.pending:
            self.start(*again)  # queued after the sync (a Cancel meanwhile emptied the queue: no restart)
            return
        if not failed:
            ctrl.view.status(LIVE_STOPPED.format(n=self.stats.tracked, skipped=self.stats.skipped))
