"""The controller's view of the panel: what :class:`~.controller.Sam2Controller` reads from the
panel (image, prompts, output layer, frame shown) and shows there (status, messages, busy controls,
progress in the panel and in napari's activity dock, the review list).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from napari.utils import progress
from qtpy.QtCore import QTimer

from ..layer_prompts import drop_invalid, prompts_from_layers
from . import layers as L
from .status import StatusLine
from .controller_view import ControllerView


class PanelView(ControllerView):
    """The controller's view of a :class:`Sam2Widget` (held weakly; a deleted panel hears nothing)."""

    def __init__(self, widget: Any) -> None:
        self._widget = weakref.ref(widget)
        self._activity: Any = None  # napari's progress bar of a propagation
        self._closed = False
        self.line = StatusLine()  # the status label follows the propagation's phase

    def stack(self) -> Any:
        w = self._widget()
        image = w.image_layer if w is not None else None
        if image is None or L.spatial_ndim(image) < 3:
            return None
        kwargs: dict[str, Any] = {"rgb": bool(getattr(image, "rgb", False))}
        if w.contrast_check.isChecked() and np.dtype(L.image_data(image).dtype) != np.uint8:
            lo, hi = (float(v) for v in image.contrast_limits)
            if hi > lo:
                kwargs["intensity_range"] = (lo, hi)
        stream = w.live.stream  # Live: the growing image as a FrameStream (live_panel.py)
        return (L.image_data(image) if stream is None else stream), w.axis, kwargs

    def prompts(self) -> Any:
        """The prompt layers' usable prompts in the image's data coordinates.

        Clicks outside the image are being removed from their layer; a rectangle being drawn right
        now is still a speck: both are left out until then.
        """
        w = self._widget()
        if w is None or w.image_layer is None:
            return super().prompts()
        w.live.pull()  # Live: frames that arrived since the last look can take clicks
        ps = prompts_from_layers(w.points_layer, w.boxes_layer, image_layer=w.image_layer)
        return drop_invalid(ps, L.labels_shape(w.image_layer))

    def output(self, create: bool) -> Any:
        w = self._widget()
        if w is not None and w.live.on:
            w.live.pull()  # the stack and its labels grow together: a new layer gets the stream's length
        return w.guards.output_layer(create) if w is not None else None

    def view_key(self) -> Any:
        """The frame key of the image shown now (the viewer's position in the image's data)."""
        w = self._widget()
        image = w.image_layer if w is not None else None
        if image is None:
            return None
        nd = L.spatial_ndim(image)
        world = np.asarray(w.viewer.dims.point)[-nd:]
        lead = np.round(np.asarray(image.world_to_data(world))[: nd - 2])
        shape = L.labels_shape(image)
        return tuple(int(np.clip(k, 0, shape[i] - 1)) for i, k in enumerate(lead))

    def _call(self, method: str, *args: Any) -> None:
        w = self._widget()
        if w is not None:
            try:
                getattr(w, method)(*args)
            except RuntimeError:  # the dock widget's Qt side was deleted while a job ran
                pass

    def status(self, text: str) -> None:
        self._call("_status", text)

    def message(self, level: str, text: str) -> None:
        self._call("_say", level, text)

    def model_note(self, text: str) -> None:
        w = self._widget()
        if w is not None:
            try:
                w.model_note_label.setText(text)
                w.model_note_label.setVisible(bool(text))
            except RuntimeError:  # deleted meanwhile
                pass

    def queued(self) -> None:
        self.status(self.line.note_queued())

    def busy(self, running: bool, cancellable: bool) -> None:
        self._call("set_running", running, cancellable)

    def progress(self, done: int, total: int, text: str, phase: str) -> None:
        """The panel's bar and line; napari's own progress bar in the activity dock follows."""
        w = self._widget()
        if w is not None:
            try:
                if phase != "stopped":
                    w.progress_bar.setValue(100 if phase == "done" else int(100 * min(done, total) / max(total, 1)))
                w.progress_label.setText(text)
                line = self.line.progress(done, total, phase)
                if line is not None:
                    w._status(line)
            except RuntimeError:  # deleted meanwhile
                return
        # napari's bar processes pending Qt events when it changes: update it from the event loop
        # (never from inside the controller's callbacks, which must not be re-entered)
        QTimer.singleShot(0, lambda: self._activity_step(total, phase))

    def _activity_step(self, total: int, phase: str) -> None:
        if phase == "start":
            self.close_activity()
            if not self._closed:
                self._activity = progress(total=total, desc="SAM 2 propagation")
        elif phase == "frame":
            if self._activity is not None:
                self._activity.update(1)
        else:
            self.close_activity()

    def shutdown(self) -> None:
        """The panel is gone: close napari's progress bar, start no other."""
        self._closed = True
        self.close_activity()

    def close_activity(self) -> None:
        activity, self._activity = self._activity, None
        if activity is not None:
            activity.close()

    def go_to(self, key: Any) -> None:
        """Move the viewer to frame ``key`` of the image."""
        w = self._widget()
        image = w.image_layer if w is not None else None
        if image is None:
            return
        nd = L.spatial_ndim(image)
        data = np.zeros(nd)
        data[: nd - 2] = key
        world = np.asarray(image.data_to_world(data))
        first = w.viewer.dims.ndim - nd
        w.viewer.dims.set_point(tuple(range(first, first + nd - 2)), tuple(world[: nd - 2]))

    def review(self, model: Any) -> None:
        """The review list and timeline show the model's changes (review_panel.py)."""
        w = self._widget()
        review = getattr(w, "review", None) if w is not None else None
        if review is not None:
            try:
                review.refresh()
            except RuntimeError:  # deleted meanwhile
                pass

    def session_opened(self) -> None:
        self._call("_session_opened")
