"""The "SAM 2" dock widget: binds the controls of :class:`~.ui.Sam2Panel` and the viewer's layers
to one :class:`~.controller.Sam2Controller`.

The controller (no Qt) owns the model, the session, the prompt tracker, the job runner and the
output writer; this panel fills the pickers, creates the prompt layers, turns the viewer's
position into frame keys; :class:`~.view.PanelView` shows what the controller reports.
What happens when layers or the panel go away is :class:`~.guards.LayerGuards`'.
"""

from __future__ import annotations

from typing import Any

import napari
import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import QFileDialog

from ..checkpoints.builtin import DEMO_MODEL
from ..errors import Sam2Error
from ..layer_prompts import layer_obj_ids, mask_prompts
from . import layers as L
from . import messages as M
from .controller import Sam2Controller
from .everything_panel import EverythingBinding
from .frames import axis_names, default_axis
from .guards import PANEL_CLOSED, LayerGuards
from .live_panel import LiveBinding
from .panel_memory import PanelMemory
from .review_panel import ReviewPanel
from .runner import Starter
from .session_io import fill_prompt_layers, open_session, read_session, save_session
from .shortcuts import Shortcuts, bind_prompt_keys
from .ui import FALLBACK_MODELS, LOAD_FILE, NEW_OUTPUT, NO_MASKS, Sam2Panel
from .view import PanelView

SESSION_FILES = "SAM 2 sessions (*.sam2.json);;All files (*)"
READY = "Click on an object (green = object, red = background), or draw a box."


def _registry_names() -> list[str]:
    """Registry model names, SAM 2.1 first (the default is the first one)."""
    try:
        from ..checkpoints import registry_names

        names = list(registry_names()) or list(FALLBACK_MODELS)
    except Exception:  # noqa: BLE001 - registry missing or broken: offer the standard names
        names = list(FALLBACK_MODELS)
    return sorted(names, key=lambda n: not n.startswith("sam2.1"))


class Sam2Widget(Sam2Panel):
    """Dock widget: pick an image, click objects, propagate, review."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, start: Starter | None = None) -> None:
        super().__init__()
        # napari hands plugins a PublicOnlyProxy; layers fetched through it are new proxies on each
        # access (identity checks fail) and every attribute access inspects the caller's frame
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.view = PanelView(self)
        self.controller = Sam2Controller(self.view, start=start)
        self.guards = LayerGuards(self)
        self.live = LiveBinding(self)  # the Live toggle: follow a growing image (live_panel.py)
        self.everything = EverythingBinding(self)  # segment everything, object panel (everything_panel.py)
        self.shortcuts = Shortcuts(self)  # Shift-Enter, Shift-M, Escape from any layer (shortcuts.py)
        self.points_layer = self.boxes_layer = None  # the prompt layers (setup_prompt_layers)
        self._image, self._model_index = None, 0
        for name in [*_registry_names(), DEMO_MODEL, LOAD_FILE]:  # the demo model: built in, offline
            self.model_combo.addItem(name, name)
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(200)
        self._prefetch_timer.timeout.connect(self._prefetch)
        self._connect()
        self.memory = PanelMemory(self)  # the remembered model, resolution... (panel_memory.py)
        self._choose_model()
        self.reset_choices()

    # ---- the controller's state, for the console and tests -------------------------------------
    model = property(lambda self: self.controller.model)
    session = property(lambda self: self.controller.session)
    state = property(lambda self: self.controller.state)
    runner = property(lambda self: self.controller.runner)
    meter = property(lambda self: self.controller.meter)

    # ---- wiring ------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.guards.watch_viewer()
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
        self.save_session_btn.clicked.connect(lambda *_: self.save_session())
        self.open_session_btn.clicked.connect(lambda *_: self.open_session())
        self.range_check.toggled.connect(self.first_spin.setEnabled)
        self.range_check.toggled.connect(self.last_spin.setEnabled)
        self.overwrite_check.toggled.connect(lambda on: setattr(self.controller.output, "overwrite", on))
        self.follow_check.toggled.connect(lambda on: setattr(self.controller, "follow", on))
        self.controller.follow = self.follow_check.isChecked()
        self.review = ReviewPanel(self)  # review list by ranges, Next to review, timeline (review_panel.py)

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

    def event(self, ev: Any) -> bool:
        """napari closes a dock by taking this widget out of it (``setParent(None)``): cancel then."""
        if ev.type() == QEvent.Type.ParentChange and self.parent() is None and self.controller.working():
            self._invalidate()
            self._say("info", PANEL_CLOSED)
        return super().event(ev)

    # ---- setup -------------------------------------------------------------------------------
    @property
    def image_layer(self) -> Any:
        return self.image_combo.currentData()

    @property
    def axis(self) -> int:
        return max(self.axis_combo.currentIndex(), 0)

    def _on_image_changed(self, *_: Any) -> None:
        image = self.image_layer
        if image is self._image:
            return
        self._image = image
        self._invalidate()
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        nd = L.spatial_ndim(image) if image is not None else 0
        if image is not None and nd < 3:
            self._say("warning", M.NOTHING_TO_PROPAGATE.format(name=image.name))
        if nd < 3:
            self.axis_combo.blockSignals(False)
            return
        labels = getattr(image, "axis_labels", None)
        self.axis_combo.addItems(axis_names(labels, L.labels_shape(image), nd - 2))
        self.axis_combo.setCurrentIndex(default_axis(labels, nd - 2))
        self.axis_combo.blockSignals(False)
        self.setup_prompt_layers(image)
        idx = self.output_combo.findText(f"{image.name} {L.OUTPUT_SUFFIX}")
        self.output_combo.setCurrentIndex(max(idx, 0))
        self._update_stop_range()
        self.status_label.setText(READY)

    def setup_prompt_layers(self, image: Any) -> None:
        """Find or create the image's prompt layers, listen to them, select the points layer."""
        pname, bname = f"{image.name} {L.POINTS_SUFFIX}", f"{image.name} {L.BOXES_SUFFIX}"
        points, boxes = L.find_prompt_layers(self.viewer, image)  # by name, else by columns (reopened CSVs)
        boxes = boxes if boxes is not None else L.create_boxes_layer(self.viewer, image, bname)
        points = points if points is not None else L.create_points_layer(self.viewer, image, pname)
        for layer in (points, boxes):
            if self.guards.wire(layer, self._on_prompts_changed):
                bind_prompt_keys(layer, self)  # n, c; Ctrl-click: a negative point (shortcuts.py)
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
        self._choose_model()
        self._update_stop_range()

    def _choose_model(self) -> None:
        data = self.model_combo.currentData()
        if isinstance(data, str):
            self.controller.choose_model(data, self.device_combo.currentText(), self.size_combo.currentData())
        else:
            self.controller.use_model(data)

    def _on_device_changed(self, *_: Any) -> None:
        if isinstance(self.model_combo.currentData(), str):  # an injected model keeps its device
            self._invalidate(model=True)

    def use_model(self, model: Any, name: str = "custom model") -> None:
        """Use an already loaded model (console, tests): ``widget.use_model(random_model())``."""
        self.model_combo.blockSignals(True)
        self.model_combo.insertItem(0, name, model)
        self.model_combo.setCurrentIndex(0)
        self.model_combo.blockSignals(False)
        self._model_index = 0
        self.controller.use_model(model)
        self._update_stop_range()

    def _invalidate(self, model: bool = False) -> None:
        """Image, axis, contrast or device changed: the next edit starts a new session."""
        if model:
            self._choose_model()
        else:
            self.controller.invalidate()
        self._update_stop_range()

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

    def _on_output_changed(self, *_: Any) -> None:
        """A new output layer: never reuse an id that already labels something there."""
        self.controller.output.drop()
        out = self.output_combo.currentData()
        if out is None or not out.data.size:
            return
        obj = int(self.obj_spin.value())
        if obj not in self.state.owned_ids and obj <= int(np.max(out.data)):
            nxt = self.new_object()
            self._say("info", f"Object ids start at {nxt} so the existing labels of '{out.name}' stay untouched.")

    # ---- frames ------------------------------------------------------------------------------
    def _on_step(self, *_: Any) -> None:
        if self.session is not None and not self.controller.propagating:
            self._prefetch_timer.start()

    def _prefetch(self) -> None:
        if self.session is not None and self.image_layer is not None:
            self.controller.prefetch(self.view.view_key())

    # ---- user actions ------------------------------------------------------------------------
    def check_image(self) -> bool:
        """Is there a stack to work on (with its prompt layers)? Says what to do when not."""
        image = self.image_layer
        if image is None:
            self._say("error", M.NO_IMAGE)
            return False
        if L.spatial_ndim(image) < 3:
            self._say("warning", M.NOTHING_TO_PROPAGATE.format(name=image.name))
            return False
        if self.points_layer not in self.viewer.layers or self.boxes_layer not in self.viewer.layers:
            self.setup_prompt_layers(image)
        return True

    def sync_prompts(self) -> None:
        """Send the prompt layers' edits to the session; the edited frame updates at once."""
        if self.check_image():
            self.controller.sync()

    def _on_prompts_changed(self, event: Any = None) -> None:
        if self.controller.closed or str(getattr(event, "action", "changed")) in ("adding", "removing", "changing"):
            return
        if self.guards.drop_invalid_prompts(getattr(event, "source", None)):
            return  # removing them (a moment later) is an edit of its own, which syncs
        self.sync_prompts()

    def new_object(self) -> int:
        """Select the next free object id (over output labels, session and prompt layers)."""
        out = self.output_combo.currentData()
        top = int(np.max(out.data)) if out is not None and out.data.size else 0
        nxt = self.controller.new_object_id(top, layer_obj_ids(self.points_layer, self.boxes_layer))
        self.obj_spin.setValue(nxt)
        return nxt

    def next_candidate(self) -> None:
        """Show the next multimask candidate of the current object's single click on this frame."""
        if self.session is not None:
            self.controller.next_candidate(self.view.view_key(), int(self.obj_spin.value()))

    def use_mask_prompts(self) -> None:
        """Each label of the 'Mask prompts' layer on the current frame becomes an object's mask."""
        layer = self.mask_combo.currentData()
        if layer is None:
            self._say("warning", "SAM 2: pick a Labels layer under 'Mask prompts' first.")
            return
        if not self.check_image():
            return
        need = L.labels_shape(self.image_layer)
        if tuple(layer.data.shape) != need:  # refused before any model work is queued
            shape, image = tuple(layer.data.shape), self.image_layer.name
            self._say("error", M.MASK_SHAPE.format(name=layer.name, shape=shape, image=image, need=need))
            return
        key = self.view.view_key()

        def read() -> list:
            masks = mask_prompts(layer, frame=key, n_leading=len(key))
            if not masks:  # an empty frame is no error: nothing to send
                self._say("warning", M.NO_MASKS_HERE.format(name=layer.name, frame=key[0] if len(key) == 1 else key))
            return masks

        self.controller.add_masks(read)

    def propagate(self) -> None:
        """Propagate every object from the current frame (forward / backward / both)."""
        if not self.check_image():
            return
        if not (len(self.points_layer.data) or len(self.boxes_layer.data) or self.state.owned_ids):
            self._say("warning", M.NO_PROMPTS.format(points=self.points_layer.name, boxes=self.boxes_layer.name))
            return
        direction = self.direction_combo.currentText()
        ids = layer_obj_ids(self.points_layer, self.boxes_layer)
        if self.everything.propagate(ids) is not None:  # new objects / ending / divisions: forward
            return
        if self.live.on:  # track each frame as it arrives, until Cancel or Live off
            return self.live.follow(ids)
        self.controller.propagate(direction, self.view.view_key(), self.stop_arg(direction), ids)

    def stop_arg(self, direction: str) -> Any:
        """The ``stop`` argument of ``VideoSession.propagate`` from the frame range controls."""
        if not self.range_check.isChecked():
            return None
        first, last = sorted((int(self.first_spin.value()), int(self.last_spin.value())))
        return {"forward": last, "backward": first}.get(direction, (first, last))

    def cancel(self) -> None:
        """Stop the propagation within one frame (finished frames stay written), or a model load."""
        self.controller.cancel()

    def reset_session(self) -> None:
        """Forget the model's memory; the prompt layers are re-sent on the next edit."""
        self.controller.reset()
        self._update_stop_range()

    def save_session(self, path: str | None = None) -> Any:
        """Save every prompt call as a session file (``*.sam2.json``; asks where without ``path``)."""
        path = path or QFileDialog.getSaveFileName(self, "Save SAM 2 session", "", SESSION_FILES)[0]
        if not path:
            return None
        direction = self.direction_combo.currentText()
        source = getattr(getattr(self.image_layer, "source", None), "path", None)
        try:
            out = save_session(self.controller, path, image_path=source, direction=direction,
                               stop=self.stop_arg(direction))
        except Sam2Error as err:
            return self.controller.report(err)
        self._status(f"Session saved to {out.name}.")
        return out

    def open_session(self, path: str | None = None) -> None:
        """Replay a session file on the image: fills the output labels and the prompt layers."""
        path = path or QFileDialog.getOpenFileName(self, "Open SAM 2 session", "", SESSION_FILES)[0]
        if not path or not self.check_image():
            return
        try:
            doc = read_session(path)
            axis = int(doc.session_kwargs().get("axis", self.axis))
            if axis != self.axis and 0 <= axis < self.axis_combo.count():
                self.axis_combo.setCurrentIndex(axis)
            open_session(self.controller, doc, lambda ps: fill_prompt_layers(self.points_layer, self.boxes_layer, ps))
        except Sam2Error as err:
            self.controller.report(err)

    # ---- feedback ----------------------------------------------------------------------------
    def _say(self, level: str, text: str) -> None:
        self.status_label.setText(text)
        M.show(level, text)

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _session_opened(self) -> None:
        self._prefetch_timer.start()
