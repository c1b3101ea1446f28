"""Widget part: queue the model work (load, open a session, send prompts) and apply its results.

A mixin of :class:`~napari_sam2._napari.widget.Sam2Widget`; it uses the widget's controls and its
``state`` / ``tracker`` / ``runner`` objects. Results arrive from worker signals on the main thread.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from napari_sam2._napari import layers as L
from napari_sam2._napari import messages as M
from napari_sam2._napari import workers as W
from napari_sam2._napari.frames import result_key
from napari_sam2._napari.labels_writer import LabelsWriter, check_output
from napari_sam2._napari.prompt_sync import REMOVE
from napari_sam2._napari.runner import Job
from napari_sam2.checkpoints import DownloadCancelled
from napari_sam2.layer_prompts import drop_invalid

LONG_JOBS = ("load", "open", "propagate")
CANCELLABLE_JOBS = ("load", "propagate")
DOWNLOAD_CANCELLED = (
    "SAM 2: model download cancelled. The part already downloaded is kept; click or press Propagate "
    "to resume it."
)
LOAD_CANCELLED = "SAM 2: model loading cancelled. Click or press Propagate to load it again."


class JobsMixin:
    """Model loading, session creation and prompt sync of the SAM 2 widget."""

    _load_cancel: threading.Event | None = None  # set by Cancel while a model loads

    # ---- queueing ----------------------------------------------------------------------------
    def _submit(self, name: str, factory: Any, **kw: Any) -> None:
        """Queue a job; its callbacks are dropped once the session it was made for is replaced.

        A result that cannot be applied stops the job with ONE message (not one per frame), and
        nothing at all runs once the widget is closed (its Qt objects are deleted).
        """
        gen = self._generation
        failed: list[BaseException] = []
        on_error = kw.get("on_error", self._on_error)

        def guard(fn: Any) -> Any:
            def call(*args: Any) -> None:
                if self._closed or gen != self._generation or failed:
                    return  # a result of a session that was replaced meanwhile, or of a failed job
                try:
                    fn(*args)
                except Exception as err:  # noqa: BLE001 - shown as a notification, never a traceback
                    failed.append(err)
                    if self._cancel is not None and name == "propagate":
                        self._cancel.set()
                    self.runner.clear_queue()
                    self.runner.quit()
                    on_error(err)

            return None if fn is None else call

        def unless_closed(fn: Any) -> Any:
            return None if fn is None else lambda *args: None if self._closed else fn(*args)

        self.runner.submit(
            Job(
                name,
                factory,
                on_yield=guard(kw.get("on_yield", self._on_item)),
                on_return=guard(kw.get("on_return")),
                on_error=unless_closed(on_error),
                on_done=unless_closed(kw.get("on_done")),
                coalesce=kw.get("coalesce", False),
            )
        )

    def _check_image(self) -> bool:
        """Is there a stack to work on (with its prompt layers)? Says what to do when not."""
        image = self.image_layer
        if image is None:
            self._say("error", M.NO_IMAGE)
            return False
        if L.spatial_ndim(image) < 3:
            self._say("warning", M.NOTHING_TO_PROPAGATE.format(name=image.name))
            return False
        if self.points_layer not in self.viewer.layers or self.boxes_layer not in self.viewer.layers:
            self._setup_prompt_layers(image)
        return True

    def _ready(self) -> bool:
        """Check the image; queue model loading and session creation when needed."""
        if not self._check_image():
            return False
        if self.model is None:
            self._submit(
                "load", self._load_spec, on_return=self._set_model, on_error=self._on_load_error, coalesce=True
            )
        if self.session is None:
            self._submit("open", self._open_spec, on_return=self._set_session, coalesce=True)
        return True

    def _load_spec(self) -> Any:
        if self.model is not None:
            return None
        name, device = str(self.model_combo.currentData()), self.device_combo.currentText()
        self._load_cancel = threading.Event()
        return W.load_model_job, (name, device, self.size_combo.currentData(), self._load_cancel), {}

    def _on_load_error(self, err: BaseException) -> None:
        if isinstance(err, W.LoadCancelled):  # the user pressed Cancel: not an error
            self._say("info", LOAD_CANCELLED)
        elif isinstance(err, DownloadCancelled):
            self._say("info", DOWNLOAD_CANCELLED)
        else:
            self._on_error(err)

    def _set_model(self, model: Any) -> None:
        self.model = model
        self.status_label.setText(f"Model {self.model_combo.currentText()} ready.")

    def _open_spec(self) -> Any:
        if self.session is not None or self.model is None:
            return None
        image = self.image_layer
        kwargs: dict[str, Any] = {"rgb": bool(getattr(image, "rgb", False))}
        if self.contrast_check.isChecked() and np.dtype(L.image_data(image).dtype) != np.uint8:
            lo, hi = (float(v) for v in image.contrast_limits)
            if hi > lo:
                kwargs["intensity_range"] = (lo, hi)
        return W.open_session_job, (self.model, L.image_data(image), self.axis), kwargs

    def _set_session(self, session: Any) -> None:
        self.session = session
        self._prefetch_timer.start()

    def _retire(self, session: Any) -> None:
        """Close a replaced session (no model work), after the worker using it if one runs."""
        if session is None:
            return
        if self.runner.busy:
            self.runner.submit(Job("close", lambda: (W.close_job, (session,), {}), essential=True))
        else:
            for _ in W.close_job(session):
                pass

    # ---- prompts -----------------------------------------------------------------------------
    def sync_prompts(self) -> None:
        """Send the prompt layers' edits to the session; the edited frame updates at once."""
        if self._ready():
            self._submit("sync", self._sync_spec, on_error=self._on_sync_error, coalesce=True)

    def _on_prompts_changed(self, event: Any = None) -> None:
        if self._closed or str(getattr(event, "action", "changed")) in ("adding", "removing", "changing"):
            return
        if self._drop_invalid_prompts(getattr(event, "source", None)):
            return  # removing them (a moment later) is an edit of its own, which syncs
        self.sync_prompts()

    def _sync_spec(self) -> Any:
        self._ops, self._ops_done = [], -1
        if self.session is None:
            return None
        ps = L.prompts_from_layers(self.points_layer, self.boxes_layer, image_layer=self.image_layer)
        # clicks outside the image are being removed from their layer; a rectangle being drawn right
        # now is still a speck: leave it until the mouse is released
        ps = drop_invalid(ps, L.labels_shape(self.image_layer))
        self._check_output(max(ps.obj_ids, default=0))  # refused before the session is told anything
        ops = self.tracker.diff(ps)
        if not ops:
            return None
        self.tracker.commit(ops)
        self._ops, self._ops_done = ops, -1
        for op in ops:
            self.state.reset_candidate(op.key, op.obj_id)
        return W.sync_job, (self.session, ops), {}

    def _on_sync_error(self, err: BaseException) -> None:
        self.tracker.uncommit(self._ops[self._ops_done + 2 :])  # keep the failing op: no retry loop
        self._on_error(err)

    # ---- results -----------------------------------------------------------------------------
    def _on_item(self, item: Any) -> None:
        """A worker yielded: apply it on the main thread."""
        if isinstance(item, W.Status):
            self.status_label.setText(item.text)
        elif isinstance(item, W.OpDone):
            self._ops_done = item.index
            op = self._ops[item.index] if item.index < len(self._ops) else None
            if op is not None and op.kind == REMOVE:
                self.state.forget_object(op.obj_id)
        elif isinstance(item, W.Erase):
            self._writer().erase(item.key, item.obj_ids)
        elif item is not None:
            self._write_result(item)

    def _write_result(self, result: Any, refresh: bool = True) -> None:
        self.state.own(result.obj_ids)
        self._writer().write(result, refresh=refresh)
        if self.state.record(result, result_key(result, self.axis)):
            self._show_lost()

    def _writer(self) -> LabelsWriter:
        if self.writer is not None and self.writer.layer not in self.viewer.layers:
            self.writer = None  # the user deleted the output layer: make a new one
        if self.writer is None:
            layer = self.output_combo.currentData()
            if layer is None or layer not in self.viewer.layers:
                layer = L.create_output_layer(self.viewer, self.image_layer)
                self.output_combo.setCurrentIndex(self.output_combo.findText(layer.name))
            check_output(layer, L.labels_shape(self.image_layer))
            self.writer = LabelsWriter(layer, self.axis, self.overwrite_check.isChecked())
        return self.writer

    # ---- feedback ----------------------------------------------------------------------------
    def _on_error(self, err: BaseException) -> None:
        self.status_label.setText(M.notify_error(err))

    def _say(self, level: str, text: str) -> None:
        self.status_label.setText(text)
        M.show(level, text)

    def _on_busy(self, busy: bool, name: str) -> None:
        if self._closed:
            return
        long_job = busy and name in LONG_JOBS
        try:
            self.set_running(long_job or self.state.running, cancellable=name in CANCELLABLE_JOBS)
        except RuntimeError:  # the dock widget was closed while a job ran
            pass
