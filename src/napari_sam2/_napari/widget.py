"""The "SAM 2" dock widget: translates between napari layers and a ``VideoSession``.

State lives elsewhere: :class:`SessionState` (owned ids, frames to review), :class:`PromptTracker`
(what the session was told), :class:`LabelsWriter` (output layer), :class:`JobRunner` (one worker at
a time). The model only ever runs inside those workers.
"""

import threading
from typing import Any

import napari
import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QFileDialog, QListWidgetItem

from napari_sam2._napari import layers as L
from napari_sam2._napari import messages as M
from napari_sam2._napari import workers as W
from napari_sam2._napari.controller import SessionState
from napari_sam2._napari.frames import axis_names, count_frames, default_axis, result_key, round_key, session_frame
from napari_sam2._napari.labels_writer import LabelsWriter
from napari_sam2._napari.progress import ProgressMeter
from napari_sam2._napari.prompt_sync import PromptTracker
from napari_sam2._napari.runner import Job, JobRunner
from napari_sam2._napari.ui import FALLBACK_MODELS, LOAD_FILE, NEW_OUTPUT, NO_MASKS, Sam2Panel

_LONG_JOBS = ("load", "open", "propagate")


def _registry_names() -> list[str]:
    try:
        from napari_sam2.checkpoints import registry_names

        return list(registry_names()) or list(FALLBACK_MODELS)
    except Exception:  # noqa: BLE001 - registry missing or broken: offer the standard names
        return list(FALLBACK_MODELS)


class Sam2Widget(Sam2Panel):
    """Dock widget: pick an image, click objects, propagate, review."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        # napari hands plugins a PublicOnlyProxy; layers fetched through it are new proxies on each
        # access (identity checks fail) and every attribute access inspects the caller's frame
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.state = SessionState()
        self.tracker = PromptTracker()
        self.runner = JobRunner(on_busy=self._on_busy)
        self.model: Any = None
        self.session: Any = None
        self.points_layer: Any = None
        self.boxes_layer: Any = None
        self.writer: LabelsWriter | None = None
        self.meter: ProgressMeter | None = None
        self._cancel: threading.Event | None = None
        self._ops: list = []
        self._ops_done = -1
        self._generation = 0
        self._image: Any = None
        self._model_index = 0
        for name in _registry_names():
            self.model_combo.addItem(name, name)
        self.model_combo.addItem(LOAD_FILE, LOAD_FILE)
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(200)
        self._prefetch_timer.timeout.connect(self._prefetch)
        self._connect()
        self.reset_choices()

    # ---- wiring ------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.viewer.layers.events.inserted.connect(self.reset_choices)
        self.viewer.layers.events.removed.connect(self.reset_choices)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.axis_combo.currentIndexChanged.connect(lambda *_: self._invalidate())
        self.output_combo.currentIndexChanged.connect(lambda *_: setattr(self, "writer", None))
        self.obj_spin.valueChanged.connect(self._update_defaults)
        self.negative_check.toggled.connect(self._update_defaults)
        self.new_obj_btn.clicked.connect(self.new_object)
        self.candidate_btn.clicked.connect(self.next_candidate)
        self.masks_btn.clicked.connect(self.use_mask_prompts)
        self.propagate_btn.clicked.connect(self.propagate)
        self.cancel_btn.clicked.connect(self.cancel)
        self.reset_btn.clicked.connect(self.reset_session)
        self.range_check.toggled.connect(self.stop_spin.setEnabled)
        self.overwrite_check.toggled.connect(self._on_overwrite)
        self.threshold_spin.valueChanged.connect(lambda v: setattr(self.state, "score_threshold", float(v)))
        self.lost_list.itemDoubleClicked.connect(self._on_lost_clicked)

    def reset_choices(self, *_: Any) -> None:
        """Refill the layer pickers from ``viewer.layers``, keeping the current choices."""
        self._fill(self.image_combo, [ly for ly in self.viewer.layers if isinstance(ly, Image)], None)
        labels = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        self._fill(self.output_combo, labels, NEW_OUTPUT)
        self._fill(self.mask_combo, labels, NO_MASKS)
        if self.image_combo.currentData() is not self._image:
            self._on_image_changed()

    @staticmethod
    def _fill(combo: Any, layers: list, none_text: str | None) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        if none_text is not None:
            combo.addItem(none_text, None)
        for ly in layers:
            combo.addItem(ly.name, ly)
        idx = next((i for i in range(combo.count()) if combo.itemData(i) is current), -1)
        combo.setCurrentIndex(idx if idx >= 0 else 0 if combo.count() else -1)
        combo.blockSignals(False)

    # ---- setup -------------------------------------------------------------------------------
    @property
    def image_layer(self) -> Any:
        return self.image_combo.currentData()

    def _on_image_changed(self, *_: Any) -> None:
        image = self.image_layer
        if image is self._image:
            return
        self._image = image
        self._invalidate()
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        if image is None:
            self.axis_combo.blockSignals(False)
            return
        nd = L.spatial_ndim(image)
        if nd < 3:
            self.axis_combo.blockSignals(False)
            self._say("warning", M.NOTHING_TO_PROPAGATE.format(name=image.name))
            return
        shape = L.labels_shape(image)
        labels = getattr(image, "axis_labels", None)
        self.axis_combo.addItems(axis_names(labels, shape, nd - 2))
        self.axis_combo.setCurrentIndex(default_axis(labels, nd - 2))
        self.axis_combo.blockSignals(False)
        self._setup_prompt_layers(image)
        out_name = f"{image.name} {L.OUTPUT_SUFFIX}"
        idx = self.output_combo.findText(out_name)
        self.output_combo.setCurrentIndex(max(idx, 0))
        self._update_stop_range()
        self.status_label.setText("Click on an object (green = object, red = background), or draw a box.")

    def _setup_prompt_layers(self, image: Any) -> None:
        names = [ly.name for ly in self.viewer.layers]
        pname, bname = f"{image.name} {L.POINTS_SUFFIX}", f"{image.name} {L.BOXES_SUFFIX}"
        boxes = self.viewer.layers[bname] if bname in names else L.create_boxes_layer(self.viewer, image, bname)
        points = self.viewer.layers[pname] if pname in names else L.create_points_layer(self.viewer, image, pname)
        for layer in (points, boxes):
            if layer not in (self.points_layer, self.boxes_layer):
                layer.events.data.connect(self._on_prompts_changed)
                layer.bind_key("n", lambda _ly: self.negative_check.toggle(), overwrite=True)
                layer.bind_key("c", lambda _ly: self.next_candidate(), overwrite=True)
        self.points_layer, self.boxes_layer = points, boxes
        boxes.mode = "add_rectangle"
        self.viewer.layers.selection.active = points
        points.mode = "add"
        self._update_defaults()

    def _on_model_changed(self, *_: Any) -> None:
        if self.model_combo.currentData() == LOAD_FILE:
            path, _f = QFileDialog.getOpenFileName(self, "SAM 2 checkpoint", "", "Checkpoints (*.pt *.pth);;All (*)")
            self.model_combo.blockSignals(True)
            if path:
                self.model_combo.insertItem(self.model_combo.count() - 1, path, path)
                self.model_combo.setCurrentIndex(self.model_combo.count() - 2)
            else:
                self.model_combo.setCurrentIndex(self._model_index)
            self.model_combo.blockSignals(False)
            if not path:
                return
        self._model_index = self.model_combo.currentIndex()
        data = self.model_combo.currentData()
        self.model = None if isinstance(data, str) else data
        self._invalidate()

    def _on_device_changed(self, *_: Any) -> None:
        if isinstance(self.model_combo.currentData(), str):
            self.model = None
            self._invalidate()

    def use_model(self, model: Any, name: str = "custom model") -> None:
        """Use an already loaded model (console, tests): ``widget.use_model(random_model())``."""
        self.model_combo.blockSignals(True)
        self.model_combo.insertItem(0, name, model)
        self.model_combo.setCurrentIndex(0)
        self.model_combo.blockSignals(False)
        self._model_index = 0
        self.model = model
        self._invalidate()

    def _invalidate(self) -> None:
        """Image, axis or model changed: the next edit starts a new session (prompts are re-sent)."""
        self._generation += 1
        self.session = None
        self.writer = None
        self.tracker.reset()
        self.state.reset()
        self.lost_list.clear()
        self._update_stop_range()

    @property
    def axis(self) -> int:
        return max(self.axis_combo.currentIndex(), 0)

    def _update_stop_range(self) -> None:
        image = self.image_layer
        n = L.labels_shape(image)[self.axis] if image is not None and image.ndim >= 3 else 1
        self.stop_spin.setRange(0, max(n - 1, 0))

    def _update_defaults(self, *_: Any) -> None:
        obj = int(self.obj_spin.value())
        if self.points_layer is not None:
            self.points_layer.feature_defaults = {"obj_id": obj, "positive": not self.negative_check.isChecked()}
        if self.boxes_layer is not None:
            self.boxes_layer.feature_defaults = {"obj_id": obj}

    def _on_overwrite(self, on: bool) -> None:
        if self.writer is not None:
            self.writer.overwrite_other = bool(on)

    # ---- frames ------------------------------------------------------------------------------
    def current_key(self) -> tuple[int, ...]:
        image = self.image_layer
        nd = L.spatial_ndim(image)
        world = np.asarray(self.viewer.dims.point)[-nd:]
        key = round_key(np.asarray(image.world_to_data(world))[: nd - 2])
        shape = L.labels_shape(image)
        return tuple(int(np.clip(k, 0, shape[i] - 1)) for i, k in enumerate(key))

    def go_to(self, key: tuple[int, ...]) -> None:
        image = self.image_layer
        nd = L.spatial_ndim(image)
        data = np.zeros(nd)
        data[: nd - 2] = key
        world = np.asarray(image.data_to_world(data))
        first = self.viewer.dims.ndim - nd
        self.viewer.dims.set_point(tuple(range(first, first + nd - 2)), tuple(world[: nd - 2]))

    def _on_step(self, *_: Any) -> None:
        if self.session is not None and not self.state.running:
            self._prefetch_timer.start()

    def _prefetch(self) -> None:
        if self.session is None or self.runner.busy or self.state.running:
            return
        frame = session_frame(self.current_key())
        session = self.session
        self._submit("prefetch", lambda: (W.prefetch_job, (session, frame), {}), coalesce=True)

    # ---- jobs --------------------------------------------------------------------------------
    def _submit(self, name: str, factory: Any, **kw: Any) -> None:
        gen = self._generation

        def guard(fn: Any) -> Any:
            def call(*args: Any) -> None:
                if gen != self._generation:
                    return  # a result of a session that was replaced meanwhile
                try:
                    fn(*args)
                except Exception as err:  # noqa: BLE001 - shown as a notification, never a traceback
                    self._on_error(err)

            return None if fn is None else call

        self.runner.submit(
            Job(
                name,
                factory,
                on_yield=guard(kw.get("on_yield", self._on_item)),
                on_return=guard(kw.get("on_return")),
                on_error=kw.get("on_error", self._on_error),
                on_done=kw.get("on_done"),
                coalesce=kw.get("coalesce", False),
            )
        )

    def _ready(self) -> bool:
        """Check the image; queue model loading and session creation when needed."""
        image = self.image_layer
        if image is None:
            self._say("error", M.NO_IMAGE)
            return False
        if L.spatial_ndim(image) < 3:
            self._say("warning", M.NOTHING_TO_PROPAGATE.format(name=image.name))
            return False
        if self.points_layer not in self.viewer.layers or self.boxes_layer not in self.viewer.layers:
            self._setup_prompt_layers(image)
        self._submit("load", self._load_spec, on_return=self._set_model, coalesce=True)
        self._submit("open", self._open_spec, on_return=self._set_session, coalesce=True)
        return True

    def _load_spec(self) -> Any:
        if self.model is not None:
            return None
        return W.load_model_job, (str(self.model_combo.currentData()), self.device_combo.currentText()), {}

    def _set_model(self, model: Any) -> None:
        self.model = model
        self.status_label.setText(f"Model {self.model_combo.currentText()} ready.")

    def _open_spec(self) -> Any:
        if self.session is not None or self.model is None:
            return None
        return W.open_session_job, (self.model, L.image_data(self.image_layer), self.axis), {}

    def _set_session(self, session: Any) -> None:
        self.session = session
        self._prefetch_timer.start()

    def sync_prompts(self) -> None:
        """Send the prompt layers' edits to the session; the current frame updates at once."""
        if self._ready():
            self._submit("sync", self._sync_spec, on_error=self._on_sync_error, coalesce=True)

    def _on_prompts_changed(self, event: Any = None) -> None:
        if str(getattr(event, "action", "changed")) in ("adding", "removing", "changing"):
            return
        self.sync_prompts()

    def _sync_spec(self) -> Any:
        if self.session is None:
            return None
        ps = L.prompts_from_layers(self.points_layer, self.boxes_layer, image_layer=self.image_layer)
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

    def _on_item(self, item: Any) -> None:
        """A worker yielded: apply it on the main thread."""
        if isinstance(item, W.Status):
            self.status_label.setText(item.text)
        elif isinstance(item, W.OpDone):
            self._ops_done = item.index
            op = self._ops[item.index] if item.index < len(self._ops) else None
            if op is not None and op.kind == "remove":
                self.state.forget_object(op.obj_id)
        elif isinstance(item, W.Erase):
            self._writer().erase(item.key, item.obj_ids)
        elif item is not None:
            self._write_result(item)

    def _write_result(self, result: Any) -> None:
        self.state.own(result.obj_ids)
        self._writer().write(result)
        if self.state.record(result, result_key(result, self.axis)):
            self._show_lost()

    def _writer(self) -> LabelsWriter:
        if self.writer is None:
            layer = self.output_combo.currentData()
            if layer is None or layer not in self.viewer.layers:
                layer = L.create_output_layer(self.viewer, self.image_layer)
                self.output_combo.setCurrentIndex(self.output_combo.findText(layer.name))
            if tuple(layer.data.shape) != L.labels_shape(self.image_layer):
                raise ValueError(f"output layer '{layer.name}' does not match the image's shape")
            self.writer = LabelsWriter(layer, self.axis, self.overwrite_check.isChecked())
        return self.writer

    def _on_error(self, err: BaseException) -> None:
        self.status_label.setText(M.notify_error(err))

    def _say(self, level: str, text: str) -> None:
        self.status_label.setText(text)
        M.show(level, text)

    def _on_busy(self, busy: bool, name: str) -> None:
        long_job = busy and name in _LONG_JOBS
        self.set_running(long_job or self.state.running, cancellable=name == "propagate")

    # ---- user actions ------------------------------------------------------------------------
    def new_object(self) -> int:
        """Select the next free object id (over output labels, session and prompt layers)."""
        out = self.output_combo.currentData()
        top = int(np.max(out.data)) if out is not None and out.data.size else 0
        nxt = self.state.next_free_id(top, L.layer_obj_ids(self.points_layer, self.boxes_layer))
        self.obj_spin.setValue(nxt)
        return nxt

    def next_candidate(self) -> None:
        """Show the next multimask candidate of the current object's single click on this frame."""
        if self.session is None or self.runner.busy:
            return
        key, obj, session = self.current_key(), int(self.obj_spin.value()), self.session

        def spec() -> Any:
            n = session.num_candidates(session_frame(key), obj)
            if n <= 1:
                self.status_label.setText("No other candidates: they exist for a single click only.")
                return None
            k = self.state.next_candidate(key, obj, n)
            self.status_label.setText(f"Object {obj}: candidate {k + 1} of {n}.")
            return W.candidate_job, (session, session_frame(key), obj, k), {}

        self._submit("candidate", spec)

    def use_mask_prompts(self) -> None:
        """Each label of the 'Mask prompts' layer on the current frame becomes an object's mask."""
        layer = self.mask_combo.currentData()
        if layer is None:
            self._say("warning", "SAM 2: pick a Labels layer under 'Mask prompts' first.")
            return
        if not self._ready():
            return
        key = self.current_key()

        def spec() -> Any:
            masks = L.mask_prompts(layer, frame=session_frame(key), n_leading=len(key))
            if not masks or self.session is None:
                self.status_label.setText("No labels on this frame of the mask prompt layer.")
                return None
            for m in masks:
                self.tracker.note_mask(m.obj_id)
            return W.masks_job, (self.session, masks), {}

        self._submit("masks", spec)

    def propagate(self) -> None:
        """Propagate every object from the current frame (forward / backward / both)."""
        if not self._ready():
            return
        if not (len(self.points_layer.data) or len(self.boxes_layer.data) or self.state.owned_ids):
            self._say("warning", M.NO_PROMPTS.format(points=self.points_layer.name, boxes=self.boxes_layer.name))
            return
        self._submit("sync", self._sync_spec, on_error=self._on_sync_error, coalesce=True)
        self._submit("propagate", self._propagate_spec, on_yield=self._on_frame, on_done=self._propagate_done)

    def _propagate_spec(self) -> Any:
        if self.session is None or not list(self.session.obj_ids):
            return None
        key = self.current_key()
        direction = self.direction_combo.currentText()
        stop = int(self.stop_spin.value()) if self.range_check.isChecked() else None
        start = key[self.axis]
        self.meter = ProgressMeter(count_frames(L.labels_shape(self.image_layer)[:-2], self.axis, direction, start, stop))
        self._cancel = threading.Event()
        self._writer().begin_group()
        self.state.running = True
        self.set_running(True)
        self.progress_bar.setValue(0)
        self.progress_label.setText("Starting...")
        return W.propagate_job, (self.session, direction, start, stop, self._cancel), {}

    def _on_frame(self, result: Any) -> None:
        self._write_result(result)
        if self.meter is not None:
            self.meter.tick()
            self.progress_bar.setValue(self.meter.percent)
            self.progress_label.setText(self.meter.text())
        if self.follow_check.isChecked():
            self.go_to(result_key(result, self.axis))

    def _propagate_done(self) -> None:
        if self.writer is not None:
            self.writer.end_group()
        self.state.running = False
        cancelled = self._cancel is not None and self._cancel.is_set()
        self._cancel = None
        if self.meter is not None:
            n_lost = len(self.state.lost_frames())
            done = f"{'Cancelled after' if cancelled else 'Propagated'} {self.meter.summary()}"
            self.progress_label.setText(f"{done}; {n_lost} frames to review.")
            self.status_label.setText("Fix a frame by clicking on it, then propagate again.")
            if not cancelled:
                self.progress_bar.setValue(100)
        self.set_running(False)

    def cancel(self) -> None:
        """Stop the propagation within one frame; finished frames stay written."""
        if self._cancel is not None:
            self._cancel.set()
        self.runner.clear_queue()
        self.runner.quit()

    def reset_session(self) -> None:
        """Forget the model's memory; the prompt layers are re-sent on the next edit."""
        self.cancel()
        self._invalidate()
        self.status_label.setText("Session reset.")

    # ---- review list -------------------------------------------------------------------------
    def _show_lost(self) -> None:
        self.lost_list.clear()
        for f in self.state.lost_frames():
            item = QListWidgetItem(f.describe())
            item.setData(Qt.ItemDataRole.UserRole, f.key)
            self.lost_list.addItem(item)

    def _on_lost_clicked(self, item: Any) -> None:
        self.go_to(tuple(item.data(Qt.ItemDataRole.UserRole)))
