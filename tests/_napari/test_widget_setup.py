"""The dock widget: manifest, pickers, prompt layers, keys, object ids (with the real engine), errors."""

import numpy as np
from qtpy.QtWidgets import QFileDialog

from napari_sam2.engine.video_session import VideoSession

from napari_sam2._napari.layers import NEGATIVE_COLOR
from napari_sam2._napari.ui import LOAD_FILE, NEW_OUTPUT, NO_MASKS

from .conftest import open_widget, press, wait_idle


def test_opens_through_manifest_with_pickers_and_prompt_layers(cells_widget, viewer, notes):
    w = cells_widget
    assert w.viewer is viewer  # unwrapped from napari's PublicOnlyProxy
    assert w.image_combo.currentText() == "cells"
    assert w.axis_combo.count() == 1 and w.axis_combo.currentText() == "axis 0 (t, 40 frames)"
    assert w.output_combo.currentText() == NEW_OUTPUT
    assert [w.mask_combo.itemText(i) for i in range(w.mask_combo.count())] == [NO_MASKS, "cells ground truth"]
    models = [w.model_combo.itemText(i) for i in range(w.model_combo.count())]
    assert w.model_combo.currentText() == "sam2.1_hiera_tiny" and models[-1] == LOAD_FILE
    assert [w.size_combo.itemData(i) for i in range(w.size_combo.count())] == [None, 768, 512, 384, 256]
    assert [w.device_combo.itemText(i) for i in range(w.device_combo.count())] == ["auto", "cpu", "cuda", "mps"]
    w.use_model(object(), "injected")
    assert w.model_combo.currentText() == "injected" and w.model is not None
    w.model_combo.setCurrentIndex(w.model_combo.findText("sam2.1_hiera_tiny"))
    assert w.model is None  # a registry model is loaded (in a worker) on the first click
    w.model_combo.setCurrentIndex(w.model_combo.findText("injected"))
    assert w.model is not None
    w.device_combo.setCurrentText("cpu")  # an injected model keeps its device
    pts, boxes = viewer.layers["cells SAM 2 points"], viewer.layers["cells SAM 2 boxes"]
    assert w.points_layer is pts and w.boxes_layer is boxes
    assert viewer.layers.selection.active is pts and pts.mode == "add" and boxes.mode == "add_rectangle"
    assert pts.ndim == 3 and boxes.ndim == 3
    assert set(pts.features.columns) == {"obj_id", "positive"} and "obj_id" in boxes.features.columns
    # re-opening the widget reuses the prompt layers instead of duplicating them
    n = len(viewer.layers)
    open_widget(viewer)
    assert len(viewer.layers) == n
    # with no prompt yet, Propagate says what to do (and starts no model work)
    w.propagate()
    assert notes[-1][0] == "warning" and "add a prompt first" in notes[-1][1]
    assert not w.runner.busy and not w.runner.pending
    assert w.first_spin.maximum() == 39 and w.last_spin.value() == 39


def test_negative_key_checkbox_and_object_id_set_new_points(cells_widget, model, qtbot, monkeypatch):
    sent = []
    real = VideoSession.add_points

    def add_points(session, frame, obj_id, points, labels, **kwargs):  # records, then calls through
        sent.append((frame, obj_id, np.asarray(points).tolist(), np.asarray(labels).tolist()))
        return real(session, frame, obj_id, points, labels, **kwargs)

    monkeypatch.setattr(VideoSession, "add_points", add_points)
    w = cells_widget
    w.use_model(model, "random test model")
    pts = w.points_layer
    press(pts, "n")
    assert w.negative_check.isChecked()
    w.obj_spin.setValue(4)
    pts.add([[0, 30, 30]])
    w.negative_check.setChecked(False)
    pts.add([[0, 40, 40]])
    assert pts.features["obj_id"].tolist() == [4, 4]
    assert pts.features["positive"].tolist() == [False, True]
    np.testing.assert_allclose(pts.face_color[0], [1, 0, 0, 1])  # red
    np.testing.assert_allclose(pts.face_color[1], [0, 1, 0, 1])  # lime
    assert NEGATIVE_COLOR == "red"
    wait_idle(qtbot, w)
    assert sent[-1] == ((0,), 4, [[30.0, 30.0], [40.0, 40.0]], [0, 1])  # frames are frame keys
    assert w.session.obj_ids == [4] and w.state.owned_ids == {4}


def test_new_object_takes_next_free_id(viewer, qtbot, model):
    stack = np.random.default_rng(0).normal(size=(4, 32, 32)).astype(np.float32)
    viewer.add_image(stack, name="stack")
    lab = np.zeros((4, 32, 32), np.uint32)
    lab[2, :3, :3] = 6
    viewer.add_labels(lab, name="existing")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    assert w.obj_spin.value() == 1
    w.output_combo.setCurrentIndex(w.output_combo.findText("existing"))
    assert w.obj_spin.value() == 7  # choosing a layer that already holds id 6 moves past it
    assert w.new_object() == 7
    w.boxes_layer.feature_defaults = {"obj_id": 11}
    w.boxes_layer.add_rectangles(np.array([[0, 1, 1], [0, 1, 5], [0, 5, 5], [0, 5, 1]], float))
    wait_idle(qtbot, w)
    expected = VideoSession(model, stack).add_box(0, 11, np.array([1.0, 1.0, 5.0, 5.0])).to_labels()
    assert w.output_combo.currentText() == "existing" and (expected == 11).any()
    np.testing.assert_array_equal(w.output_combo.currentData().data[0], expected)
    assert w.new_object() == 12
    assert w.obj_spin.value() == 12


def test_axis_choice_for_4d_defaults_to_time(viewer):
    viewer.add_image(np.zeros((3, 5, 16, 16), np.float32), name="tz", axis_labels=("z", "t", "y", "x"))
    w = open_widget(viewer)
    assert [w.axis_combo.itemText(i) for i in range(2)] == ["axis 0 (z, 3 frames)", "axis 1 (t, 5 frames)"]
    assert w.axis == 1 and w.last_spin.maximum() == 4
    w.axis_combo.setCurrentIndex(0)
    assert w.last_spin.maximum() == 2


def test_no_image_is_an_error_with_the_fix(viewer, notes):
    w = open_widget(viewer)
    w.propagate()
    assert notes[-1][0] == "error" and "open an image" in notes[-1][1]
    assert w.propagate_btn.isEnabled()
    viewer.open_sample("napari-sam2", "ultrasound_clip")  # the widget follows the new layers
    assert w.image_combo.currentText() == "ultrasound"
    assert w.points_layer is viewer.layers["ultrasound SAM 2 points"]
    assert "ultrasound ground truth" in [w.mask_combo.itemText(i) for i in range(w.mask_combo.count())]


def test_2d_image_has_nothing_to_propagate(viewer, notes):
    viewer.add_image(np.zeros((32, 32), np.float32), name="flat")
    w = open_widget(viewer)
    assert notes and notes[-1][0] == "warning" and "nothing to propagate" in notes[-1][1]
    w.propagate()
    assert "nothing to propagate" in w.status_label.text()
    assert w.propagate_btn.isEnabled()


def test_checkpoint_file_that_fails_to_load(cells_widget, notes, qtbot, tmp_path, monkeypatch):
    w = cells_widget
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    w.model_combo.setCurrentIndex(w.model_combo.findText(LOAD_FILE))
    assert w.model_combo.currentText() == str(bad)
    w.device_combo.setCurrentText("cpu")
    w.points_layer.add([[0, 50, 50]])  # the first click loads the model
    wait_idle(qtbot, w)
    assert notes and notes[-1][0] == "error"
    assert w.model is None and w.session is None
    assert w.propagate_btn.isEnabled() and w.model_combo.isEnabled()
    # cancelling the file dialog keeps the previous choice
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    w.model_combo.setCurrentIndex(w.model_combo.findText(LOAD_FILE))
    assert w.model_combo.currentText() == str(bad)


def test_display_contrast_option_feeds_the_layer_contrast_limits(cells_widget, viewer, qtbot, model):
    w = cells_widget
    w.use_model(model, "random test model")
    image = viewer.layers["cells"]
    assert image.data.dtype == np.uint16
    w.points_layer.add([[0, 60, 60]])
    wait_idle(qtbot, w)
    default_range = w.session.intensity_range
    assert default_range != tuple(image.contrast_limits)  # robust stack-wide percentiles by default
    image.contrast_limits = (float(image.data.min()) + 5, float(image.data.max()) / 2)
    w.contrast_check.setChecked(True)
    assert w.session is None  # a new session is needed: features depend on the intensities
    w.points_layer.add([[0, 62, 62]])
    wait_idle(qtbot, w)
    assert w.session.intensity_range == tuple(float(v) for v in image.contrast_limits)
    assert w.session.obj_ids == [1]  # the earlier prompts were replayed into the new session
