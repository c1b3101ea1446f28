"""What happens when the user pulls something away or gives what cannot be used (a panel helper).

The viewer or the dock closing cancels the running job (no result reaches a deleted widget);
removing the image, a prompt layer or the output layer during a propagation cancels it (nothing
is written into a removed layer); clicks outside the image and boxes of zero area or outside it
are removed from their layer with one message. :class:`LayerGuards` holds the panel's listeners
to the viewer and the prompt layers, and picks (or makes) the output layer.
"""

from __future__ import annotations

import weakref
from typing import Any

from qtpy.QtCore import QTimer

from ..layer_prompts import invalid_prompt_rows
from . import layers as L

PANEL_CLOSED = "SAM 2: the panel was closed, so the propagation was cancelled; the frames already done are kept."
LAYER_REMOVED = (
    "SAM 2: the layer '{name}' was removed, so the propagation was cancelled; the frames already done are kept."
)
PROMPT_LAYER_REMOVED = (
    "SAM 2: the prompt layer '{name}' was removed, so the session restarts from the remaining prompts on the "
    "next click (an empty '{name}' layer is back for new clicks; the labels already made are kept)."
)


class LayerGuards:
    """Listeners and checks of one :class:`~.widget.Sam2Widget` (``panel``)."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.viewer = panel.viewer
        self.controller = panel.controller
        self._wired: list[tuple[Any, Any]] = []  # (prompt layer, its data callback)
        self._pending_notice: str | None = None

    # ---- listening -----------------------------------------------------------------------------
    def watch_viewer(self) -> None:
        """Follow the viewer's layers and position until the panel is destroyed (then shut down)."""
        panel = self.panel
        viewer_events = [
            (self.viewer.layers.events.inserted, panel.reset_choices),
            (self.viewer.layers.events.removed, self.on_layer_removed),
            (self.viewer.dims.events.current_step, panel._on_step),
        ]
        for emitter, callback in viewer_events:
            emitter.connect(callback)
        me = weakref.ref(self)

        def destroyed(*_: Any) -> None:  # the viewer closed: stop the job, stop listening
            guards = me()
            if guards is not None:
                guards.shutdown()
            for emitter, callback in viewer_events:
                try:
                    emitter.disconnect(callback)
                except RuntimeError:  # napari 0.5.0 compares callbacks, touching the deleted widget
                    pass

        panel.destroyed.connect(destroyed)

    def wire(self, layer: Any, callback: Any) -> bool:
        """Send ``layer``'s data events to ``callback``; False when it already was."""
        if any(layer is w for w, _ in self._wired):
            return False
        self._wired.append((layer, callback))
        layer.events.data.connect(callback)
        return True

    def _unwire(self, layer: Any) -> None:
        for w, callback in [p for p in self._wired if p[0] is layer]:
            try:
                w.events.data.disconnect(callback)
            except (RuntimeError, ValueError, TypeError):  # already disconnected
                pass
        self._wired = [p for p in self._wired if p[0] is not layer]

    def shutdown(self) -> None:
        """The panel's Qt side is gone: the controller stops its job and releases the session.

        Touches no Qt object (they are deleted); the running worker ends at its next frame.
        """
        if self.controller.closed:
            return
        self.controller.shutdown()
        for layer, _ in list(self._wired):
            self._unwire(layer)
        self.panel.view.shutdown()

    # ---- layers removed --------------------------------------------------------------------------
    def on_layer_removed(self, event: Any = None) -> None:
        panel, layer = self.panel, getattr(event, "value", None)
        writer = self.controller.output.writer.layer if self.controller.output.writer is not None else None
        working = self.controller.working()
        if layer is not None and any(layer is p for p in (panel.points_layer, panel.boxes_layer)):
            self._unwire(layer)
            panel._invalidate()  # the layers are the source of truth: start again from what is left
            self._notice(PROMPT_LAYER_REMOVED.format(name=layer.name))
            QTimer.singleShot(0, self._restore_prompt_layers)
        elif layer is not None and working and (layer is writer or layer is panel.image_layer):
            self.controller.abandon()  # results of the cancelled job are dropped: nothing lands in a removed layer
            self._notice(LAYER_REMOVED.format(name=layer.name))
        if layer is not None and layer is writer:
            self.controller.output.drop()
        panel.reset_choices()

    def _notice(self, text: str) -> None:
        """Say ``text`` once the current burst of removals is over; the first one of a burst is kept,
        and nothing is said when the viewer is closing (it removes every layer first)."""
        if self._pending_notice is None:
            self._pending_notice = text
            QTimer.singleShot(0, self._flush_notice)

    def _flush_notice(self) -> None:
        text, self._pending_notice = self._pending_notice, None
        if text is not None and not self.controller.closed and len(self.viewer.layers):
            self.panel._say("warning", text)

    def _restore_prompt_layers(self) -> None:
        if self.controller.closed:
            return
        image = self.panel.image_layer
        if image is not None and image in self.viewer.layers and L.spatial_ndim(image) >= 3:
            self.panel.setup_prompt_layers(image)

    # ---- prompts the session would refuse ------------------------------------------------------
    def drop_invalid_prompts(self, source: Any = None) -> bool:
        """Remove unusable clicks / boxes of ``source`` (or both prompt layers) with one message.

        Returns True when some were found (their removal, a moment later, syncs the prompts).
        """
        image = self.panel.image_layer
        if image is None:
            return False
        shape = L.labels_shape(image)
        found = []
        for layer in (self.panel.points_layer, self.panel.boxes_layer):
            if layer is not None and (source is None or layer is source):
                rows, reasons = invalid_prompt_rows(layer, shape, image_layer=image)
                if rows:
                    found.append((layer, rows, reasons))
        if not found:
            return False
        reasons = [r for _, _, rs in found for r in rs]
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        first = reasons[0]
        fix = "drag a rectangle around the object" if "box" in first else "click on the image"
        self.panel._say("warning", f"SAM 2: {first}{more}, so it was removed; {fix}.")
        for layer, rows, _ in found:
            QTimer.singleShot(0, lambda layer=layer, rows=rows: self._remove_rows(layer, rows))
        return True

    def _remove_rows(self, layer: Any, rows: list[int]) -> None:
        if self.controller.closed or layer not in self.viewer.layers:
            return
        keep = [i for i in rows if i < len(layer.data)]
        if keep:
            layer.selected_data = set(keep)
            layer.remove_selected()

    # ---- output layer ------------------------------------------------------------------------
    def output_layer(self, create: bool) -> Any:
        """The Labels layer results go to; ``create``: make ``"<image> SAM 2"`` when there is none."""
        writer = self.controller.output.writer
        if writer is not None and writer.layer in self.viewer.layers:
            return writer.layer
        combo = self.panel.output_combo
        layer = combo.currentData()
        if layer is not None and layer in self.viewer.layers:
            return layer
        if not create:
            return None
        active = self.viewer.layers.selection.active  # the prompt layer the user clicks in
        mode = getattr(active, "mode", None)
        layer = L.create_output_layer(self.viewer, self.panel.image_layer)
        L.place_below(self.viewer, layer, (self.panel.points_layer, self.panel.boxes_layer))
        combo.setCurrentIndex(combo.findText(layer.name))
        L.restore_active(self.viewer, active, mode)
        return layer
