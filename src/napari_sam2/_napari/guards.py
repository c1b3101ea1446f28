"""Widget part: what happens when the user pulls something away or gives what cannot be used.

A mixin of :class:`~napari_sam2._napari.widget.Sam2Widget`. The viewer or the dock closing cancels
the running job (no result reaches a deleted widget); removing the image, a prompt layer or the
output layer during a propagation cancels it (nothing is written into a removed layer); clicks
outside the image and boxes of zero area or outside it are removed from their layer with one
message; an output layer of the wrong shape or too narrow a dtype is refused before any work.
"""

from __future__ import annotations

import weakref
from typing import Any

from qtpy.QtCore import QEvent, QTimer

from napari_sam2._napari import layers as L
from napari_sam2._napari.labels_writer import OutputLayerError, check_output
from napari_sam2.layer_prompts import invalid_prompt_rows

PANEL_CLOSED = "SAM 2: the panel was closed, so the propagation was cancelled; the frames already done are kept."
LAYER_REMOVED = (
    "SAM 2: the layer '{name}' was removed, so the propagation was cancelled; the frames already done are kept."
)
PROMPT_LAYER_REMOVED = (
    "SAM 2: the prompt layer '{name}' was removed, so the session restarts from the remaining prompts on the "
    "next click (an empty '{name}' layer is back for new clicks; the labels already made are kept)."
)


class GuardsMixin:
    """Closing, removed layers, unusable prompts and output layers."""

    _closed = False
    _pending_notice: str | None = None

    # ---- the viewer or the dock goes away ------------------------------------------------------
    def _watch_lifetime(self, disconnect: Any) -> None:
        """Call ``disconnect`` and shut down when the Qt widget is destroyed (the viewer closed)."""
        me = weakref.ref(self)

        def destroyed(*_: Any) -> None:
            disconnect()
            widget = me()
            if widget is not None:
                widget._shutdown()

        self.destroyed.connect(destroyed)

    def _shutdown(self) -> None:
        """The widget's Qt side is gone: stop the job, drop its results, close the session.

        Touches no Qt object (they are deleted); the running worker ends at its next frame.
        """
        if self._closed:
            return
        self._closed = True
        for event in (self._cancel, self._load_cancel):
            if event is not None:
                event.set()
        self.runner.clear_queue()
        self.runner.quit()
        for layer in self._wired:
            try:
                layer.events.data.disconnect(self._on_prompts_changed)
            except (RuntimeError, ValueError, TypeError):  # already disconnected
                pass
        session, self.session = self.session, None
        self._retire(session)

    def event(self, ev: Any) -> bool:
        """napari closes a dock by taking this widget out of it (``setParent(None)``): cancel then."""
        if ev.type() == QEvent.Type.ParentChange and self.parent() is None and self._running_job():
            self._invalidate()
            self._say("info", PANEL_CLOSED)
        return super().event(ev)

    def _running_job(self) -> bool:
        job = self.runner.job
        return bool(self.state.running or (job is not None and job.name in ("propagate", "load")))

    # ---- layers removed --------------------------------------------------------------------------
    def _on_layer_removed(self, event: Any = None) -> None:
        layer = getattr(event, "value", None)
        writer = self.writer.layer if self.writer is not None else None
        running = self._running_job()
        if layer is not None and any(layer is p for p in (self.points_layer, self.boxes_layer)):
            self._wired = [w for w in self._wired if w is not layer]
            try:
                layer.events.data.disconnect(self._on_prompts_changed)
            except (RuntimeError, ValueError, TypeError):
                pass
            self._invalidate()  # the layers are the source of truth: start again from what is left
            self._notice(PROMPT_LAYER_REMOVED.format(name=layer.name))
            QTimer.singleShot(0, self._restore_prompt_layers)
        elif layer is not None and running and (layer is writer or layer is self.image_layer):
            self.cancel()
            self._generation += 1  # results of the cancelled job are dropped: nothing lands in a removed layer
            self._notice(LAYER_REMOVED.format(name=layer.name))
        if layer is not None and layer is writer:
            self.writer = None
        self.reset_choices()

    def _notice(self, text: str) -> None:
        """Say ``text`` once the current burst of removals is over; the first one of a burst is kept,
        and nothing is said when the viewer is closing (it removes every layer first)."""
        if getattr(self, "_pending_notice", None) is None:
            self._pending_notice = text
            QTimer.singleShot(0, self._flush_notice)

    def _flush_notice(self) -> None:
        text, self._pending_notice = self._pending_notice, None
        if text is not None and not self._closed and len(self.viewer.layers):
            self._say("warning", text)

    def _restore_prompt_layers(self) -> None:
        image = self.image_layer
        if not self._closed and image is not None and image in self.viewer.layers and L.spatial_ndim(image) >= 3:
            self._setup_prompt_layers(image)

    # ---- prompts the session would refuse ------------------------------------------------------
    def _drop_invalid_prompts(self, source: Any = None) -> bool:
        """Remove unusable clicks / boxes of ``source`` (or both prompt layers) with one message.

        Returns True when some were found (their removal, a moment later, syncs the prompts).
        """
        image = self.image_layer
        if image is None:
            return False
        shape = L.labels_shape(image)
        found = []
        for layer in (self.points_layer, self.boxes_layer):
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
        self._say("warning", f"SAM 2: {first}{more}, so it was removed; {fix}.")
        for layer, rows, _ in found:
            QTimer.singleShot(0, lambda layer=layer, rows=rows: self._remove_rows(layer, rows))
        return True

    def _remove_rows(self, layer: Any, rows: list[int]) -> None:
        if self._closed or layer not in self.viewer.layers:
            return
        keep = [i for i in rows if i < len(layer.data)]
        if keep:
            layer.selected_data = set(keep)
            layer.remove_selected()

    # ---- output layer ------------------------------------------------------------------------
    def _output_layer(self) -> Any:
        """The Labels layer results go to (None: a new one will be made)."""
        if self.writer is not None and self.writer.layer in self.viewer.layers:
            return self.writer.layer
        layer = self.output_combo.currentData()
        return layer if layer is not None and layer in self.viewer.layers else None

    def _check_output(self, top_id: int) -> None:
        """Raise :class:`OutputLayerError` when the output layer cannot hold ids up to ``top_id``."""
        layer = self._output_layer()
        if layer is not None and self.image_layer is not None:
            check_output(layer, L.labels_shape(self.image_layer), top_id)

    def _output_ok(self, top_id: int) -> bool:
        """Like :meth:`_check_output`, but says the problem (one message) and returns False."""
        try:
            self._check_output(top_id)
        except OutputLayerError as err:
            self._on_error(err)
            return False
        return True
