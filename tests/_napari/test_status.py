"""The status line follows the job's phase; clicks during a propagation say they are queued; the
device is named as it resolves here; long messages can be selected and copied."""

from __future__ import annotations

import pytest
from qtpy.QtCore import Qt

from napari_sam2._napari import status as ST
from napari_sam2._napari import workers as W
from napari_sam2.model import loading

from .conftest import open_widget, wait_idle

pytestmark = pytest.mark.gui


def record(w) -> list[str]:
    lines: list[str] = []
    real = w._status

    def spy(text):
        lines.append(text)
        real(text)

    w._status = spy  # the view and the controller's reports look it up at each call
    return lines


def test_status_follows_preparing_propagating_done(cells_widget, model, qtbot):
    w = cells_widget
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    w.viewer.dims.set_current_step(0, 0)
    lines = record(w)
    w.points_layer.add([[0, 60, 50]])
    wait_idle(qtbot, w)
    assert "Preparing the stack..." in lines and lines[-1] == ST.STACK_READY
    w.range_check.setChecked(True)
    w.last_spin.setValue(4)
    lines.clear()
    w.propagate()
    wait_idle(qtbot, w, timeout=120_000)
    frames = [t for t in lines if t.startswith("Propagating: frame")]
    assert frames, (lines, w.status_label.text(), w.progress_label.text())
    assert frames[0] == "Propagating: frame 0 / 5..." and frames[-1] == "Propagating: frame 5 / 5..."
    assert w.status_label.text().startswith("Done. Propagated 5 frames") and ST.FIX_AND_AGAIN in w.status_label.text()


def test_click_during_propagation_says_queued_and_applies_after(viewer, model, qtbot):
    viewer.open_sample("napari-sam2", "ultrasound_clip")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 128, 128]])
    wait_idle(qtbot, w)
    w.range_check.setChecked(True)
    w.last_spin.setValue(6)
    lines = record(w)
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 1, timeout=120_000)
    w.obj_spin.setValue(2)
    w.points_layer.add([[0, 60, 60]])  # queued behind the propagation
    assert w.status_label.text() == ST.QUEUED
    qtbot.waitUntil(lambda: w.meter.done >= 3, timeout=120_000)
    assert any(t.startswith("Propagating: frame") and t.endswith(ST.QUEUED) for t in lines)
    wait_idle(qtbot, w, timeout=120_000)
    assert w.status_label.text().startswith("Done. Propagated 7 frames") and ST.QUEUED not in w.status_label.text()
    assert 2 in w.session.obj_ids  # the queued click reached the session after the propagation


def test_device_is_named_as_resolved(cells_widget):
    w = cells_widget
    resolved = ST.device_text("auto")
    assert resolved in ("cpu", "mps") or resolved.startswith("cuda:")
    assert w.device_combo.currentText() == "auto" and w.device_label.text().split(":")[0] == resolved.split(":")[0]
    assert "auto" not in w.device_label.text()
    w.device_combo.setCurrentText("mps" if resolved != "mps" else "cpu")
    assert w.device_label.text() in ("cpu",) or w.device_label.text().startswith("not available")


def test_loading_says_the_resolved_device(monkeypatch):
    monkeypatch.setattr(loading, "load_model", lambda name, device, image_size, progress, cancel: "model")
    first = next(W.load_model_job("sam2.1_hiera_tiny", "auto", None))
    assert first.text == f"Loading sam2.1_hiera_tiny on {ST.device_text('auto')}..." and "auto" not in first.text


def test_long_error_can_be_selected(cells_widget):
    w = cells_widget
    text = "SAM 2: the download of https://example.org/x.pt failed; copy the file into /some/folder. " * 3
    w._say("error", text)
    assert w.status_label.text() == text and w.status_label.wordWrap()
    assert w.status_label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
