"""Widget part: propagate, show progress, cancel, list the frames to review.

A mixin of :class:`~napari_sam2._napari.widget.Sam2Widget`. Each finished frame is written into the
Labels layer from the worker's ``yielded`` signal (main thread) as soon as it arrives; the whole
propagation is one undo step of that layer.
"""

from __future__ import annotations

import threading
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QListWidgetItem

from napari_sam2._napari import layers as L
from napari_sam2._napari import messages as M
from napari_sam2._napari import workers as W
from napari_sam2._napari.frames import count_frames, result_key, session_frame
from napari_sam2._napari.progress import ProgressMeter


class PropagationMixin:
    """Propagation, cancel and the review list of the SAM 2 widget."""

    def propagate(self) -> None:
        """Propagate every object from the current frame (forward / backward / both)."""
        if not self._check_image():
            return
        if not (len(self.points_layer.data) or len(self.boxes_layer.data) or self.state.owned_ids):
            self._say("warning", M.NO_PROMPTS.format(points=self.points_layer.name, boxes=self.boxes_layer.name))
            return
        job = self.runner.job
        if "propagate" in self.runner.pending or (job is not None and job.name == "propagate"):
            self._say("info", M.PROPAGATING)  # a second press: refused, the first one carries on
            return
        ids = self.state.owned_ids | L.layer_obj_ids(self.points_layer, self.boxes_layer)
        if not self._output_ok(max(ids, default=0)):
            return
        self._ready()
        self._submit("sync", self._sync_spec, on_error=self._on_sync_error, coalesce=True)
        self._submit(
            "propagate",
            self._propagate_spec,
            on_yield=self._on_frame,
            on_error=self._on_propagate_error,
            on_done=self._propagate_done,
        )

    def stop_arg(self, direction: str) -> Any:
        """The ``stop`` argument of ``VideoSession.propagate`` from the frame range controls."""
        if not self.range_check.isChecked():
            return None
        first, last = sorted((int(self.first_spin.value()), int(self.last_spin.value())))
        return {"forward": last, "backward": first}.get(direction, (first, last))

    def _propagate_spec(self) -> Any:
        if self.session is None or not list(self.session.obj_ids):
            return None
        key = self.current_key()
        direction = self.direction_combo.currentText()
        stop = self.stop_arg(direction)
        n = L.labels_shape(self.image_layer)[self.axis]
        self.meter = ProgressMeter(count_frames(n, direction, key[self.axis], stop))
        self._cancel = threading.Event()
        self._prop_failed = False
        self._writer().begin_group()
        self.state.running = True
        self.set_running(True)
        self.progress_bar.setValue(0)
        self.progress_label.setText("Starting...")
        return W.propagate_job, (self.session, direction, session_frame(key), stop, self._cancel), {}

    def _on_frame(self, result: Any) -> None:
        key = result_key(result, self.axis)
        move = self.follow_check.isChecked() and key != self.current_key()
        self._write_result(result, refresh=not move)  # moving the slider re-slices the layer anyway
        if move:
            self.go_to(key)
        if self.meter is not None:
            self.meter.tick()
            self.progress_bar.setValue(self.meter.percent)
            self.progress_label.setText(self.meter.text())

    def _on_propagate_error(self, err: BaseException) -> None:
        self._prop_failed = True
        self._on_error(err)

    def _propagate_done(self) -> None:
        if self.writer is not None:
            self.writer.end_group()
        self.state.running = False
        cancelled = self._cancel is not None and self._cancel.is_set()
        self._cancel = None
        if self.meter is not None:
            n_lost = len(self.state.lost_frames())
            how = "Stopped by an error after" if self._prop_failed else "Cancelled after" if cancelled else "Propagated"
            self.progress_label.setText(f"{how} {self.meter.summary()}; {n_lost} frames to review.")
            if not self._prop_failed:
                self.status_label.setText("Fix a frame by clicking on it, then propagate again.")
            if not (cancelled or self._prop_failed):
                self.progress_bar.setValue(100)
        self.set_running(False)

    def cancel(self) -> None:
        """Stop the propagation within one frame (finished frames stay written), or a model download.

        A model load is stopped through its cancel event rather than by quitting the worker, so
        that the download really ends (keeping its partial file) and the job reports it.
        """
        if self._cancel is not None:
            self._cancel.set()
        loading = self.runner.job is not None and self.runner.job.name == "load"
        if self._load_cancel is not None:
            self._load_cancel.set()
        self.runner.clear_queue()
        if not loading:
            self.runner.quit()

    def reset_session(self) -> None:
        """Forget the model's memory; the prompt layers are re-sent on the next edit."""
        self.cancel()
        self._invalidate()
        self.status_label.setText("Session reset: edit a prompt or press Propagate to start again.")

    # ---- review list -------------------------------------------------------------------------
    def _show_lost(self) -> None:
        self.lost_list.clear()
        for f in self.state.lost_frames():
            item = QListWidgetItem(f.describe())
            item.setData(Qt.ItemDataRole.UserRole, f.key)
            self.lost_list.addItem(item)

    def _on_lost_clicked(self, item: Any) -> None:
        self.go_to(tuple(item.data(Qt.ItemDataRole.UserRole)))
