"""Keyboard shortcuts and Ctrl-click of the widget, working whichever layer is selected.

* ``Shift-Enter``: Propagate;  ``Shift-M``: new object (napari's ``m`` is "new label");  ``Escape``: Cancel
  the running job;  ``Shift-N`` (review panel): next frame to review;
* on the prompt layers (as before): ``n`` toggles negative clicks, ``c`` shows the next candidate mask;
* ``Ctrl``-click (``Cmd`` on macOS) in the clicks layer adds a negative point, whatever ``n`` is set to.

napari sends a key first to the selected layer's own bindings, then to the viewer's. No napari layer
binds ``Shift-Enter`` or ``Shift-M``, so viewer bindings reach them from every layer. Labels and Shapes
layers keep ``Escape`` for themselves (abort a polygon or a brush stroke, finish a shape), so every
Labels and Shapes layer of the viewer also gets an ``Escape`` that cancels a running SAM 2 job and,
when none runs, does what napari's own binding does. The handlers hold the widget weakly and do
nothing once its dock is closed: a closed panel neither stays alive through them nor reacts.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator
from typing import Any

PROPAGATE_KEY = "Shift-Enter"
NEW_OBJECT_KEY = "Shift-M"  # as napari's m (new label); Shift-N is "Next to review"
CANCEL_KEY = "Escape"
NEGATIVE_MODIFIERS = ("Control", "Meta")


def _napari_escape(layer: Any) -> Callable[[Any], None] | None:
    """napari's own Escape action of a Labels or Shapes layer (None for other layers)."""
    kind = type(layer).__name__
    if kind == "Labels":
        from napari.layers.labels._labels_key_bindings import reset_polygon

        return reset_polygon
    if kind == "Shapes":
        from napari.layers.shapes._shapes_key_bindings import finish_drawing_shape

        return finish_drawing_shape
    return None


def docked(widget: Any) -> bool:
    """Whether the widget is in the viewer: napari closes a dock by taking the widget out of it
    (``setParent(None)``) and deletes it later; a closed panel's keys must do nothing meanwhile."""
    try:
        return not widget.controller.closed and widget.parent() is not None
    except RuntimeError:  # its Qt side is already deleted
        return False


def busy(widget: Any) -> bool:
    """Whether the widget has a job running or queued (what Escape would cancel)."""
    ctrl = widget.controller
    return bool(ctrl.runner.busy or ctrl.runner.pending or ctrl.propagating)


class Shortcuts:
    """The viewer-wide shortcuts of one widget (see the module docstring)."""

    def __init__(self, widget: Any) -> None:
        self._ref = weakref.ref(widget)
        self.viewer = widget.viewer
        self.viewer.bind_key(PROPAGATE_KEY, self._call("propagate"), overwrite=True)
        self.viewer.bind_key(NEW_OBJECT_KEY, self._call("new_object"), overwrite=True)
        self.viewer.bind_key(CANCEL_KEY, self._call("cancel"), overwrite=True)
        for layer in list(self.viewer.layers):
            self.bind_escape(layer)
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        for button, key in ((widget.propagate_btn, PROPAGATE_KEY), (widget.new_obj_btn, NEW_OBJECT_KEY),
                            (widget.cancel_btn, CANCEL_KEY)):
            button.setToolTip(f"{button.toolTip()} ({key} from any layer)".lstrip())

    def _call(self, name: str) -> Callable[[Any], None]:
        ref = self._ref

        def handler(_viewer: Any) -> None:
            widget = ref()
            if widget is not None and docked(widget):
                getattr(widget, name)()

        return handler

    def _on_inserted(self, event: Any) -> None:
        self.bind_escape(event.value)

    def bind_escape(self, layer: Any) -> None:
        """Escape on a Labels or Shapes layer: cancel a running job, else napari's own action."""
        default = _napari_escape(layer)
        if default is None:
            return
        ref = self._ref

        def escape(lay: Any) -> None:
            widget = ref()
            if widget is not None and docked(widget) and busy(widget):
                widget.cancel()
            else:
                default(lay)

        layer.bind_key(CANCEL_KEY, escape, overwrite=True)

    def close(self) -> None:
        """Stop binding new layers (the handlers already bound do nothing once the widget is gone)."""
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_inserted)
        except (RuntimeError, TypeError, ValueError):
            pass


def bind_prompt_keys(layer: Any, widget: Any) -> None:
    """``n`` / ``c`` on a prompt layer; on the clicks layer also Ctrl-click for a negative point."""
    ref = weakref.ref(widget)

    def toggle(_layer: Any) -> None:
        if (w := ref()) is not None:
            w.negative_check.toggle()

    def candidate(_layer: Any) -> None:
        if (w := ref()) is not None:
            w.next_candidate()

    layer.bind_key("n", toggle, overwrite=True)
    layer.bind_key("c", candidate, overwrite=True)
    if type(layer).__name__ == "Points" and _negative_click not in layer.mouse_drag_callbacks:
        layer.mouse_drag_callbacks.insert(0, _negative_click)


def _negative_click(layer: Any, event: Any) -> Generator[None, None, None]:
    """With Ctrl held, the point this click adds is negative; the default is restored once it is added.

    Runs before napari's add-mode callback (it is first in the list); the point is added on release,
    so the default is put back after the release has been handled (next turn of the event loop).
    """
    mods = {str(getattr(m, "name", m)) for m in (event.modifiers or ())}
    if layer.mode != "add" or not mods & set(NEGATIVE_MODIFIERS):
        return
    defaults = dict(layer.feature_defaults.iloc[0]) if len(layer.feature_defaults.columns) else {}
    if "positive" not in defaults:
        return
    layer.feature_defaults = {**defaults, "positive": False}
    yield
    while event.type == "mouse_move":
        yield
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, lambda: _restore(layer, bool(defaults["positive"])))


def _restore(layer: Any, positive: bool) -> None:
    defaults = dict(layer.feature_defaults.iloc[0])
    layer.feature_defaults = {**defaults, "positive": positive}
