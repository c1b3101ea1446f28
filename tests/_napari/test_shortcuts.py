"""Shortcuts from any layer and Ctrl-click, with real key and mouse events through napari's canvas."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_sam2._napari.shortcuts import Shortcuts

from .conftest import wait_idle
from .test_click_landing import click, shown  # noqa: F401 - shown is a fixture

pytestmark = pytest.mark.gui
SHIFT, CTRL = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier


def press(qtbot, viewer, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, key, modifier)


def test_new_object_and_propagate_from_the_image_and_the_output_labels(shown, viewer, qtbot):
    w = shown
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    viewer.layers.selection.active = viewer.layers["cells"]  # the image: no prompt layer selected
    press(qtbot, viewer, Qt.Key.Key_M, SHIFT)
    assert w.obj_spin.value() == 2
    viewer.layers.selection.active = viewer.layers["cells SAM 2"]  # the output Labels layer
    w.direction_combo.setCurrentText("forward")
    press(qtbot, viewer, Qt.Key.Key_Return, SHIFT)
    wait_idle(qtbot, w)
    assert "Propagated" in w.progress_label.text()
    assert viewer.layers["cells SAM 2"].data[1:].any()


@pytest.mark.parametrize("selected", ["cells SAM 2", "cells SAM 2 boxes"])  # the image: see the first test
def test_escape_cancels_a_propagation_from_labels_shapes_and_image_layers(shown, viewer, qtbot, selected):
    w = shown
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    w.direction_combo.setCurrentText("forward")
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 1, timeout=60_000)
    viewer.layers.selection.active = viewer.layers[selected]
    press(qtbot, viewer, Qt.Key.Key_Escape)
    wait_idle(qtbot, w)
    assert "Cancelled after" in w.progress_label.text()
    assert w.meter.done < w.meter.total


def test_escape_when_idle_still_finishes_a_polygon_in_a_shapes_layer(shown, viewer, qtbot):
    w = shown
    shapes = viewer.add_shapes(ndim=3, name="regions")  # added after the widget: bound on insertion
    viewer.layers.selection.active = shapes
    shapes.mode = "add_polygon"
    for row, col in ((40, 40), (40, 120), (120, 80)):
        click(qtbot, viewer, row, col)
    press(qtbot, viewer, Qt.Key.Key_Escape)
    assert len(shapes.data) == 1 and not shapes._is_creating
    assert not w.controller.runner.busy and "Cancelled" not in w.progress_label.text()


def test_ctrl_click_adds_a_negative_point_and_the_next_click_is_positive_again(shown, viewer, qtbot):
    w = shown
    points = w.points_layer
    click(qtbot, viewer, 60, 50)
    wait_idle(qtbot, w)
    click(qtbot, viewer, 64, 58, CTRL)
    wait_idle(qtbot, w)
    click(qtbot, viewer, 100, 120)
    wait_idle(qtbot, w)
    assert len(points.data) == 3
    assert points.features["positive"].tolist() == [True, False, True]
    assert not w.negative_check.isChecked()
    colours = np.asarray(points.face_color)[:, :3]
    assert (colours[0] == colours[2]).all() and not (colours[0] == colours[1]).all()  # red among greens
    assert w.session is not None and list(w.session.obj_ids) == [1]  # all three went to object 1


def test_after_the_dock_is_closed_the_keys_do_nothing_and_escape_is_napari_s_again(viewer, qtbot, model):
    import gc

    viewer.add_image(np.zeros((3, 32, 32), np.uint8), name="img")
    dock_widget, w = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    w.reset_choices()
    assert isinstance(w.shortcuts, Shortcuts)
    spin = w.obj_spin.value()
    dock_widget.title.close_button.click()  # the dock's own "x"
    qtbot.waitUntil(lambda: w.parent() is None, timeout=30_000)
    viewer.layers.selection.active = viewer.layers["img"]
    press(qtbot, viewer, Qt.Key.Key_M, SHIFT)  # no error, nothing happens
    press(qtbot, viewer, Qt.Key.Key_Return, SHIFT)
    assert w.obj_spin.value() == spin and w.session is None
    labels = viewer.add_labels(np.zeros((3, 32, 32), np.uint8), name="mine")  # still bound: napari's action
    viewer.layers.selection.active = labels
    press(qtbot, viewer, Qt.Key.Key_Escape)
    gc.collect()
