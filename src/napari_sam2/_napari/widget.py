"""The "SAM 2" dock widget: translates between napari layers and a ``VideoSession``.

This file builds the wiring, the pickers and the small prompt actions; model jobs are in
``jobs.py``, propagation and the review list in ``propagation.py``, the layout in ``ui.py``.
State lives in Qt-free objects: :class:`SessionState` (owned ids, frames to review),
:class:`PromptTracker` (what the session was told), :class:`LabelsWriter` (output layer),
:class:`JobRunner` (one worker at a time). The model only ever runs inside those workers.
"""

import threading
from typing import Any

import napari
import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog

from napari_sam2._napari import layers as L
from napari_sam2._napari import messages as M
from napari_sam2._napari import workers as W
from napari_sam2._napari.controller import SessionState
from napari_sam2._napari.frames import axis_names, default_axis, round_key, session_frame
from napari_sam2._napari.guards import GuardsMixin
from napari_sam2._napari.jobs import JobsMixin
from napari_sam2._napari.labels_writer import LabelsWriter
from napari_sam2._napari.progress import ProgressMeter
from napari_sam2._napari.propagation import PropagationMixin
from napari_sam2._napari.prompt_sync import PromptTracker
from napari_sam2._napari.runner import JobRunner
from napari_sam2._napari.ui import FALLBACK_MODELS, LOAD_FILE, NEW_OUTPUT, NO_MASKS, Sam2Panel


def _registry_names() -> list[str]:
    """Registry model names, SAM 2.1 first (the default is the first one)."""
    try:
        from napari_sam2.checkpoints import registry_names

        names = list(registry_names()) or list(FALLBACK_MODELS)
    except Exception:  # noqa: BLE001 - registry missing or broken: offer the standard names
        names = list(FALLBACK_MODELS)
    return sorted(names, key=lambda n: not n.startswith("sam2.1"))


class Sam2Widget(GuardsMixin, PropagationMixin, JobsMixin, Sam2Panel):
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
        self._prop_failed = False
        self._generation = 0
        self._image: Any = None
        self._wired: list = []  # prompt layers whose events reach this widget
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
        viewer_events = [
            (self.viewer.layers.events.inserted, self.reset_choices),
            (self.viewer.layers.events.removed, self._on_layer_removed),
            (self.viewer.dims.events.current_step, self._on_step),
        ]
        for emitter, callback in viewer_events:
            emitter.connect(callback)

        def disconnect() -> None:  # the widget was destroyed: stop listening to the viewer
            for emitter, callback in viewer_events:
                emitter.disconnect(callback)

        self._watch_lifetime(disconnect)
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.size_combo.currentIndexChanged.connect(self._on_device_changed)
        self.axis_combo.currentIndexChanged.connect(lambda *_: self._invalidate())
        self.contrast_check.toggled.connect(lambda *_: self._invalidate())
        self.output_combo.currentIndexChanged.connect(self._on_output_changed)
        self.obj_spin.valueChanged.connect(self._update_defaults)
        self.negative_check.toggled.connect(self._update_defaults)
        self.new_obj_btn.clicked.connect(self.new_object)
        self.candidate_btn.clicked.connect(self.next_candidate)
        self.masks_btn.clicked.connect(self.use_mask_prompts)
        self.propagate_btn.clicked.connect(self.propagate)
        self.cancel_btn.clicked.connect(self.cancel)
        self.reset_btn.clicked.connect(self.reset_session)
        self.range_check.toggled.connect(self.first_spin.setEnabled)
        self.range_check.toggled.connect(self.last_spin.setEnabled)
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
            if not any(layer is w for w in self._wired):
                self._wired.append(layer)
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
        if self.state.running:
            self.cancel()
        self._generation += 1
        self._retire(self.session)
        self.session = None
        if self.writer is not None:
            self.writer.end_group()  # keep what a cancelled propagation wrote undoable
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
        self.first_spin.setRange(0, max(n - 1, 0))
        self.last_spin.setRange(0, max(n - 1, 0))
        self.last_spin.setValue(max(n - 1, 0))

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

    def _on_output_changed(self, *_: Any) -> None:
        """A new output layer: never reuse an id that already labels something there."""
        self.writer = None
        out = self.output_combo.currentData()
        if out is None or not out.data.size:
            return
        obj = int(self.obj_spin.value())
        if obj not in self.state.owned_ids and obj <= int(np.max(out.data)):
            nxt = self.new_object()
            self._say("info", f"Object ids start at {nxt} so the existing labels of '{out.name}' stay untouched.")

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
        if not self._check_image():
            return
        need = L.labels_shape(self.image_layer)
        if tuple(layer.data.shape) != need:  # refused before any model work is queued
            shape = tuple(layer.data.shape)
            self._say("error", M.MASK_SHAPE.format(name=layer.name, shape=shape, image=self.image_layer.name, need=need))
            return
        if not self._ready():
            return
        key = self.current_key()

        def spec() -> Any:
            if self.session is None:
                return None
            masks = L.mask_prompts(layer, frame=session_frame(key), n_leading=len(key))
            if not masks:  # an empty frame is no error: nothing to send
                self._say("warning", M.NO_MASKS_HERE.format(name=layer.name, frame=session_frame(key)))
                return None
            self._check_output(max(m.obj_id for m in masks))
            for m in masks:
                self.tracker.note_mask(m.obj_id)
            return W.masks_job, (self.session, masks), {}

        self._submit("masks", spec)
