"""The panel's "Live" toggle: follow an Image layer that grows while it is tracked (Qt side).

On: the chosen image becomes a :class:`~.live_source.LayerStream` (the next session opens on it),
and the stack is watched two ways: ``layer.events.data`` (the data replaced by a longer array, as
acquisition plugins do with numpy / dask) and a poll of its shape every ``POLL_MS`` (a zarr array
growing in place: the layer is refreshed so napari shows the new frames). Each growth is passed to
the stream at once, and the output Labels layer (:class:`~.live_labels.GrowingLabels`) catches up
whenever the controller picks it (``PanelView.output``: before every check and write) or at the next
poll, so the controller always finds the two of the same length. Propagate then follows the stream
(:class:`~.live_control.LiveRun`). Off, another image, the image removed, the dock closed or the
panel destroyed: the follow is cancelled, the watching stops and the stream is closed.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

from qtpy.QtCore import QEvent, QObject, QTimer

from ..errors import Sam2Error
from . import layers as L
from .live_control import LiveRun
from .live_labels import GrowingLabels
from .live_source import LayerStream

POLL_MS = 200
LIVE_ON = ("Live: following '{name}' as it grows ({n} frames so far). Click an object, then press Propagate "
           "to track each new frame as it arrives.")
LIVE_AXIS = "Live mode follows the first axis of the image: choose it under 'Propagate along', then turn Live on."
NO_IMAGE = "Live mode needs an image: pick one under 'Image', then turn Live on."


class LiveBinding(QObject):
    """Binds ``panel.live_check`` to a :class:`LiveRun` on the panel's image."""

    def __init__(self, panel: Any) -> None:
        super().__init__(panel)
        self.panel = panel
        self.run: LiveRun | None = None
        self.image: Any = None
        self.labels = GrowingLabels()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        panel.live_check.toggled.connect(self._toggled)
        panel.installEventFilter(self)
        viewer_layers = panel.viewer.layers
        viewer_layers.events.removed.connect(self._on_removed)
        me = weakref.ref(self)

        def destroyed(*_: Any) -> None:  # touches no Qt object: they are being deleted
            live = me()
            if live is not None:
                live._disconnect()
                if live.run is not None:
                    live.run.stream.close()
            try:
                viewer_layers.events.removed.disconnect(self._on_removed)
            except (RuntimeError, ValueError, TypeError):
                pass

        panel.destroyed.connect(destroyed)

    @property
    def on(self) -> bool:
        return self.run is not None

    @property
    def stream(self) -> LayerStream | None:
        """The stream the session opens on while Live is on (brought up to date first)."""
        if self.run is None:
            return None
        self.pull()
        return self.run.stream if self.run is not None else None

    # ---- on / off ------------------------------------------------------------------------------
    def _toggled(self, on: bool) -> None:
        if on and self.run is None:
            self._begin()
        elif not on and self.run is not None:
            self._end()

    def _begin(self) -> None:
        panel, image = self.panel, self.panel.image_layer
        if image is None or panel.axis != 0:
            self._refuse(NO_IMAGE if image is None else LIVE_AXIS)
            return
        try:
            stream = LayerStream(L.image_data(image), rgb=bool(getattr(image, "rgb", False)), name=image.name)
        except Sam2Error as err:
            panel.controller.report(err)
            self._refuse(None)
            return
        panel.controller.invalidate()  # the next session opens on the stream
        stream.grow(L.image_data(image))
        self.run, self.image = LiveRun(panel.controller, stream), image
        image.events.data.connect(self._on_data)
        self._timer.start()
        panel._status(LIVE_ON.format(name=image.name, n=len(stream)))
        if panel.points_layer is not None and (len(panel.points_layer.data) or len(panel.boxes_layer.data)):
            panel.sync_prompts()  # the prompts there are go to the new session

    def _refuse(self, text: str | None) -> None:
        if text is not None:
            self.panel._say("warning", text)
        self.panel.live_check.blockSignals(True)
        self.panel.live_check.setChecked(False)
        self.panel.live_check.blockSignals(False)

    def _end(self, invalidate: bool = True) -> None:
        run, self.run = self.run, None
        self._disconnect()
        self.labels.release()
        if run is not None:
            run.stop()
        if invalidate and not self.panel.controller.closed:
            self.panel.controller.invalidate()  # back to an ordinary session on the whole stack

    def stop(self) -> None:
        """Turn Live off (the follow is cancelled, the stream closed)."""
        if self.run is not None:
            self.panel.live_check.setChecked(False)  # -> _end
            if self.run is not None:  # signals blocked
                self._end()

    def _disconnect(self) -> None:
        if not self._deleted():
            self._timer.stop()
        image, self.image = self.image, None
        if image is not None:
            try:
                image.events.data.disconnect(self._on_data)
            except (RuntimeError, ValueError, TypeError):
                pass

    def _deleted(self) -> bool:
        try:
            self._timer.isActive()
        except RuntimeError:
            return True
        return False

    # ---- following -----------------------------------------------------------------------------
    def follow(self, layer_ids: Sequence[int] = ()) -> bool:
        """Start tracking each frame as it arrives (the panel's Propagate while Live is on)."""
        if self.run is None:
            return False
        drop = "oldest" if self.panel.live_skip_check.isChecked() else "none"
        return self.run.start(layer_ids, drop)

    def pull(self, labels: bool = True) -> int:
        """Pass the image's new frames to the stream (and grow the output labels); the frames added."""
        run, image = self.run, self.image
        if run is None or image is None:
            return 0
        if image is not self.panel.image_layer:
            self.stop()
            return 0
        n = run.stream.grow(L.image_data(image))
        if run.stream.error is not None:
            self.panel.controller.report(run.stream.error)
            self.stop()
            return 0
        if labels:
            self.grow_output()
        return n

    def grow_output(self) -> None:
        """Make the output Labels layer as long as the stream (kept in step with it)."""
        if self.run is None:
            return
        out = self.panel.guards.output_layer(False)
        if out is not None and tuple(out.data.shape[1:]) == tuple(self.run.stream.frame_shape[:2]):
            self.labels.grow(out, len(self.run.stream))

    def _on_data(self, *_: Any) -> None:
        # the stream at once (latency); the labels when the controller next looks at them or at the next
        # poll, so a fast acquisition pays napari's labels update once per result, not once per frame
        self.pull(labels=False)

    def _poll(self) -> None:
        run, image = self.run, self.image
        if run is None or image is None:
            return
        if run.following and "sync" in self.panel.runner.pending:
            run.make_way_for_prompts()  # a click while following: sync it, then follow on
        self.pull()
        if int(image.extent.data[1][0]) + 1 < len(run.stream):  # grown in place: no napari event came with it
            image.refresh()  # napari learns the new extent (the slider grows)

    def _on_removed(self, event: Any = None) -> None:
        if self.run is not None and getattr(event, "value", None) is self.image:
            self.stop()

    def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt's name
        """napari closes a dock by taking the panel out of it: Live ends then."""
        if obj is self.panel and ev.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self.stop()
        return False
