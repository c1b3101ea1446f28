"""The panel remembers its settings across openings; a CPU defaults to resolution 512 (and says so);
prompt layers saved as CSV and reopened with napari's reader are the widget's prompt layers again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam2._napari.settings_store import settings_path
from napari_sam2._napari.status import device_text

from .conftest import open_widget

pytestmark = pytest.mark.gui
ON_CPU = device_text("auto") == "cpu"


def fresh(viewer, qtbot):
    """A new panel on the same viewer, as after closing the dock and restarting napari."""
    from napari_sam2._napari.widget import Sam2Widget

    widget = Sam2Widget(viewer)
    qtbot.addWidget(widget)
    return widget


def test_settings_come_back_in_the_next_panel(cells_widget, viewer, qtbot, settings_dir):
    w = cells_widget
    w.size_combo.setCurrentIndex(w.size_combo.findData(384))
    w.direction_combo.setCurrentText("both")
    w.follow_check.setChecked(False)
    w.overwrite_check.setChecked(True)
    w.threshold_spin.setValue(0.45)
    w.device_combo.setCurrentText("cpu")
    w.model_combo.setCurrentIndex(w.model_combo.findText("sam2.1_hiera_small"))
    saved = json.loads(settings_path().read_text())
    assert settings_path().parent == settings_dir
    assert saved["resolution"] == 384 and saved["direction"] == "both" and saved["model"] == "sam2.1_hiera_small"
    w.use_model(object(), "injected")  # an injected model is never remembered
    assert json.loads(settings_path().read_text())["model"] == "sam2.1_hiera_small"

    w2 = fresh(viewer, qtbot)
    assert w2 is not w
    assert w2.size_combo.currentData() == 384 and w2.direction_combo.currentText() == "both"
    assert not w2.follow_check.isChecked() and not w2.controller.follow
    assert w2.overwrite_check.isChecked() and w2.controller.output.overwrite
    assert w2.threshold_spin.value() == pytest.approx(0.45)
    assert w2.model_combo.currentText() == "sam2.1_hiera_small" and w2.device_combo.currentText() == "cpu"
    assert w2.controller.model_source == ("sam2.1_hiera_small", "cpu", 384)


def test_checkpoint_file_is_remembered_while_it_exists(cells_widget, viewer, qtbot, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    ckpt = tmp_path / "my_model.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(ckpt), "")))
    w = cells_widget
    w.model_combo.setCurrentIndex(w.model_combo.findText("Load checkpoint file..."))
    assert w.model_combo.currentText() == str(ckpt)
    w2 = fresh(viewer, qtbot)
    assert w2.model_combo.currentText() == str(ckpt) and w2.controller.model_source[0] == str(ckpt)
    ckpt.unlink()  # gone: the next panel falls back to the default model
    w3 = fresh(viewer, qtbot)
    assert w3.model_combo.findText(str(ckpt)) < 0 and w3.model_combo.currentText() == "sam2.1_hiera_tiny"


def test_broken_settings_file_is_ignored(viewer, settings_dir):
    (settings_dir / "settings.json").write_text("{not json")
    viewer.open_sample("napari-sam2", "cells_timelapse")
    w = open_widget(viewer)
    assert w.direction_combo.currentText() == "forward"


@pytest.mark.skipif(not ON_CPU, reason="the CPU default applies without a GPU")
def test_cpu_defaults_to_512_and_says_so(cells_widget, viewer, qtbot):
    w = cells_widget
    assert w.size_combo.currentData() == 512 and w.controller.model_source[2] == 512
    assert w.device_label.text().startswith("cpu:") and "512" in w.device_label.text()
    w.size_combo.setCurrentIndex(w.size_combo.findData(None))  # the user wants full resolution
    assert w.device_label.text() == "cpu"
    w2 = fresh(viewer, qtbot)
    assert w2.size_combo.currentData() is None and w2.device_label.text() == "cpu"


def test_reopened_csv_prompt_layers_are_recognised(viewer, tmp_path):
    viewer.open_sample("napari-sam2", "cells_timelapse")
    viewer.add_points(np.array([[0, 60, 50], [0, 80, 70]], float), ndim=3, name="clicks",
                      features={"obj_id": [2, 2], "positive": [True, False]})
    rect = np.array([[1, 10, 10], [1, 10, 40], [1, 40, 40], [1, 40, 10]], float)
    viewer.add_shapes([rect], shape_type="rectangle", ndim=3, name="rects")
    for name in ("clicks", "rects"):
        viewer.layers[name].save(str(tmp_path / f"{name}.csv"), plugin="napari")
        viewer.layers.remove(name)
    pts = viewer.open(str(tmp_path / "clicks.csv"), plugin="napari")[0]
    boxes = viewer.open(str(tmp_path / "rects.csv"), plugin="napari")[0]
    assert pts.features["positive"].dtype != bool  # napari's CSV reader gives floats back
    w = open_widget(viewer)
    assert w.points_layer is pts and w.boxes_layer is boxes
    assert "cells SAM 2 points" not in viewer.layers  # no empty duplicate was made
    assert viewer.layers.selection.active is pts and pts.mode == "add"
    ps = w.view.prompts()
    assert [(p.frame, p.obj_id, list(p.labels)) for p in ps.points] == [((0,), 2, [1, 0])]
    assert [(b.frame, b.obj_id) for b in ps.boxes] == [((1,), 1)]
