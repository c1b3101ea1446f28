"""Clicks land where a user puts them: real mouse and key events through napari's canvas.

The first preview creates the output Labels layer; it must neither take the selection (the next
click would pan instead of adding a point, ``n`` / ``c`` would reach the Labels layer) nor cover the
clicks and boxes (it goes below the prompt layers).
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt

from .conftest import wait_idle

pytestmark = pytest.mark.gui


def canvas_pos(viewer, row: float, col: float) -> QPoint:
    """The canvas pixel showing world position (row, col) of the displayed plane."""
    canvas = viewer.window._qt_viewer.canvas
    transform = canvas.view.transform * canvas.view.scene.transform
    x, y = transform.map([col, row])[:2]
    return QPoint(int(round(x)), int(round(y)))


def click(qtbot, viewer, row: float, col: float, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A real left click (press + release) on the canvas's Qt widget."""
    native = viewer.window._qt_viewer.canvas.native
    qtbot.mouseClick(native, Qt.MouseButton.LeftButton, modifier, canvas_pos(viewer, row, col))


def key(qtbot, viewer, text: str) -> None:
    """A real key press on the canvas (napari routes it to the active layer's key bindings)."""
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, text)


@pytest.fixture
def shown(cells_widget, viewer, qtbot, model):
    """The widget on the cells sample, in a shown window (the canvas has its real size)."""
    cells_widget.use_model(model, "random test model")
    cells_widget.follow_check.setChecked(False)
    viewer.window.show()
    viewer.window.resize(1200, 800)
    viewer.dims.set_current_step(0, 0)
    viewer.reset_view()
    qtbot.wait(100)
    written: list = []
    real = cells_widget.controller._write

    def spy(result, refresh=True):
        written.append((tuple(result.key), tuple(result.obj_ids)))
        real(result, refresh)

    cells_widget.controller._write = spy  # _apply looks it up at each result
    cells_widget.written = written
    return cells_widget


def test_two_clicks_both_add_points_and_both_preview(shown, viewer, qtbot):
    w = shown
    points = w.points_layer
    assert viewer.layers.selection.active is points and points.mode == "add"
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    assert len(points.data) == 1
    np.testing.assert_allclose(points.data[0], [0, 60, 50], atol=1.0)  # the pixel under the cursor
    assert "cells SAM 2" in viewer.layers and len(w.written) == 1
    # the preview made the output layer: the clicks' layer is still the one taking clicks
    assert viewer.layers.selection.active is points and points.mode == "add"

    click(qtbot, viewer, 100, 120)
    wait_idle(qtbot, w)
    assert len(points.data) == 2
    np.testing.assert_allclose(points.data[1], [0, 100, 120], atol=1.0)
    assert len(w.written) == 2 and w.written[-1][0] == (0,)
    assert w.session is not None and list(w.session.obj_ids) == [1]


def test_keys_reach_the_prompt_layer_after_a_preview(shown, viewer, qtbot):
    w = shown
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    assert not w.negative_check.isChecked()
    key(qtbot, viewer, "n")  # the key binding of the (still selected) points layer
    assert w.negative_check.isChecked()
    asked: list = []
    w.next_candidate = lambda: asked.append(True)
    key(qtbot, viewer, "c")
    assert asked == [True]
    click(qtbot, viewer, 80, 70)  # a negative click now
    wait_idle(qtbot, w)
    assert list(np.asarray(w.points_layer.features["positive"], bool)) == [True, False]
    assert len(w.written) == 2


def test_output_layer_goes_below_the_prompt_layers(shown, viewer, qtbot):
    w = shown
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    order = {ly.name: i for i, ly in enumerate(viewer.layers)}
    out = order["cells SAM 2"]
    assert order["cells"] < out < order[w.points_layer.name]
    assert out < order[w.boxes_layer.name]
    assert w.output_combo.currentText() == "cells SAM 2"
