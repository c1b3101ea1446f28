"""Bad inputs and faults in the docked widget (real viewer, real engine, random-weights model).

Each case ends in ONE clear message naming the fix (status line and napari notification), the
session is usable afterwards and the user's labels are untouched. Covered: the viewer or the dock
closed during a propagation; the image, a prompt layer or the output layer removed during one; an
output layer of the wrong shape or a uint8 one too narrow for the ids; a mask-prompt layer empty on
a frame or of the wrong shape; a junk checkpoint file; no network for a registry model (real
downloader, closed loopback port); clicks outside the image, boxes of zero area or outside it;
Propagate with no prompts, pressed twice, and again after Cancel. docs/errors.md lists the messages.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from itertools import islice

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_sam2._napari import guards
from napari_sam2._napari import messages as M
from napari_sam2._napari import widget as widget_module
from napari_sam2._napari.ui import LOAD_FILE, NEW_OUTPUT
from napari_sam2.checkpoints import ENV_REGISTRY, ENV_WEIGHTS_DIR
from napari_sam2.engine.video_session import VideoSession

from .conftest import add_box, open_widget, wait_idle

T, H, W = 12, 96, 96


def blobs() -> np.ndarray:
    """A small stack with one bright disc drifting right: fast to track with the random model."""
    yy, xx = np.mgrid[:H, :W]
    data = np.zeros((T, H, W), np.float32)
    for t in range(T):
        data[t][(yy - 40) ** 2 + (xx - 30 - 2 * t) ** 2 < 120] = 1.0
    return data + np.random.default_rng(0).normal(0, 0.05, data.shape).astype(np.float32)


@pytest.fixture
def w(viewer, qtbot, model):
    """The widget on the 'blobs' stack with the shared random-weights model; the slider stays put."""
    viewer.add_image(blobs(), name="blobs")
    widget = open_widget(viewer)
    widget.use_model(model, "random test model")
    widget.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    yield widget
    widget.cancel()
    wait_idle(qtbot, widget)


@pytest.fixture
def ref(model):
    """A fresh session on the same stack: what the widget's session must have produced."""
    with VideoSession(model, blobs()) as session:
        yield session


@pytest.fixture
def stray(monkeypatch, caplog):
    """Exceptions that reached ``sys.excepthook`` (an error in a Qt slot) and ERROR log records."""
    hooked: list = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: hooked.append(exc))
    caplog.set_level(logging.WARNING)

    def found() -> list[str]:
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        return [f"{e[0].__name__}: {e[1]}" for e in hooked] + errors

    return found


def P(*rows):
    return np.array(rows, float)


def errors(notes):
    return [text for level, text in notes if level == "error"]


def written(out) -> list[int]:
    return [t for t in range(out.shape[0]) if out[t].any()]


def same(actual, result):
    np.testing.assert_array_equal(actual, result.to_labels(actual.dtype), err_msg=f"frame {result.frame}")


def gate(monkeypatch, session) -> list[int]:
    """After its first frame, ``session``'s propagation waits until it is cancelled (60 s at most):
    whatever should cancel it cannot lose a race against the end of the propagation. Returns the
    frames the engine yielded (one more may come out after the cancel; it must not be written)."""
    real = session.propagate
    frames: list[int] = []

    def gated(*args, cancel=None, **kwargs):
        for result in real(*args, cancel=cancel, **kwargs):
            frames.append(result.frame)
            yield result
            if len(frames) == 1:
                cancel.wait(60)

    monkeypatch.setattr(session, "propagate", gated)
    return frames


def click_and_wait(w, qtbot, *rows):
    w.points_layer.add([list(r) for r in rows])
    wait_idle(qtbot, w)


def start_gated_propagation(w, qtbot, monkeypatch):
    click_and_wait(w, qtbot, (0, 40, 30))
    frames = gate(monkeypatch, w.session)
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 1, timeout=60_000)
    return frames


# ---- the viewer or the dock closes during a propagation ---------------------------------------
@pytest.mark.parametrize("how", ["viewer.close()", "window close button"])
def test_closing_the_viewer_during_a_propagation_cancels_it_quietly(make_napari_viewer, qtbot, model, monkeypatch,
                                                                    stray, qtlog, how):
    viewer = make_napari_viewer()
    viewer.add_image(blobs(), name="blobs")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    viewer.dims.set_current_step(0, 0)
    frames = start_gated_propagation(w, qtbot, monkeypatch)
    session, runner = w.session, w.runner
    closed = []
    real_close = session.close
    monkeypatch.setattr(session, "close", lambda: (closed.append(True), real_close()))
    if how == "viewer.close()":  # removes every layer first, then closes the window
        viewer.close()
    else:  # the window goes, the layers stay: the widget learns it only from its own destruction
        with qtbot.waitSignal(w.destroyed, timeout=30_000):
            viewer.window._qt_window.close()
    qtbot.waitUntil(lambda: not runner.busy and not runner.pending, timeout=60_000)
    qtbot.wait(50)  # let queued signals of the worker arrive (they must be dropped quietly)
    assert stray() == []  # was: RuntimeError "wrapped C/C++ object of type QLabel has been deleted"
    assert not [m for m in qtlog.records if "deleted" in m.message]
    assert len(frames) <= 2 < T  # cancelled at once, not run to the end behind a closed window
    assert closed == [True] and w.session is None  # the session's threads and features are released
    if how != "viewer.close()":
        del viewer.window._qt_window  # already deleted: napari's fixture must not close it again


def test_closing_the_dock_during_a_propagation_cancels_it(w, viewer, qtbot, monkeypatch, notes, stray):
    frames = start_gated_propagation(w, qtbot, monkeypatch)
    viewer.window.remove_dock_widget(w)  # what the dock's close button does
    wait_idle(qtbot, w)
    assert notes[-1] == ("info", guards.PANEL_CLOSED) and not errors(notes) and stray() == []
    assert len(frames) <= 2 and written(viewer.layers["blobs SAM 2"].data) == [0]
    assert not w.controller.propagating and w.session is None


# ---- layers removed during a propagation --------------------------------------------------------
@pytest.mark.parametrize("which", ["points", "boxes", "image", "output"])
def test_removing_a_layer_during_a_propagation_cancels_it(w, viewer, qtbot, monkeypatch, notes, stray, ref, which):
    frames = start_gated_propagation(w, qtbot, monkeypatch)
    out = viewer.layers["blobs SAM 2"]
    layer = {"points": w.points_layer, "boxes": w.boxes_layer, "image": viewer.layers["blobs"], "output": out}[which]
    before = out.data.copy()
    n_notes = len(notes)
    viewer.layers.remove(layer)
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: len(notes) > n_notes, timeout=5000)  # said once the removal is over
    assert stray() == [] and not errors(notes)
    assert len(notes) == n_notes + 1 and notes[-1][0] == "warning" and f"'{layer.name}' was removed" in notes[-1][1]
    assert len(frames) <= 2
    # nothing reached a layer after the removal: frame 0 as it was, the frame in flight dropped
    np.testing.assert_array_equal(out.data, before)
    assert written(out.data) == [0] and not w.controller.propagating and w.propagate_btn.isEnabled()
    if which == "output":
        assert "blobs SAM 2" not in viewer.layers  # no new layer made for the frame in flight
    if which == "image":
        assert w.image_layer is None and w.session is None
        return
    if which in ("points", "boxes"):
        assert "restarts from the remaining prompts" in notes[-1][1]
        qtbot.waitUntil(lambda: f"blobs SAM 2 {which}" in viewer.layers, timeout=5000)  # an empty one is back
        assert len(viewer.layers[f"blobs SAM 2 {which}"].data) == 0
    # still usable: the next click works (a new session when the prompts changed under it)
    viewer.dims.set_current_step(0, 5)
    w.obj_spin.setValue(2)
    click_and_wait(w, qtbot, (5, 40, 40))
    labels = viewer.layers["blobs SAM 2"].data
    if which == "boxes":  # the click of object 1 on frame 0 is sent again to the new session
        ref.add_points(0, 1, P([40, 30]), [1])
    same(labels[5], ref.add_points(5, 2, P([40, 40]), [1]))
    assert (labels[5] == 2).any() and not errors(notes)
    if which != "output":
        np.testing.assert_array_equal(labels[0], before[0])  # the labels already made are kept


# ---- output layers that cannot hold the result ---------------------------------------------------
def test_output_layer_of_the_wrong_shape_is_refused_with_the_fix(w, viewer, qtbot, notes, ref):
    wrong = viewer.add_labels(np.zeros((T, 50, 50), np.uint32), name="other stack")
    wrong.data[:, 10:20, 10:20] = 4
    kept = wrong.data.copy()
    w.output_combo.setCurrentIndex(w.output_combo.findText("other stack"))
    assert w.obj_spin.value() == 5  # above the layer's 4, so its labels stay untouched
    click_and_wait(w, qtbot, (0, 40, 30))
    (text,) = errors(notes)
    assert "'other stack' has shape (12, 50, 50)" in text and "(12, 96, 96)" in text
    assert "choose '(new layer)'" in text and "unexpectedly" not in text and w.status_label.text() == text
    assert w.session.obj_ids == []  # refused before the session was told anything
    w.propagate()  # refused at once too, one more message, no job
    assert len(errors(notes)) == 2 and not w.runner.busy and not w.runner.pending
    np.testing.assert_array_equal(wrong.data, kept)

    w.output_combo.setCurrentIndex(w.output_combo.findText(NEW_OUTPUT))  # the fix the message names
    w.points_layer.add([[0, 60, 60]])
    wait_idle(qtbot, w)
    same(viewer.layers["blobs SAM 2"].data[0], ref.add_points(0, 5, P([40, 30], [60, 60]), [1, 1]))
    assert len(errors(notes)) == 2
    np.testing.assert_array_equal(wrong.data, kept)


def test_uint8_output_that_cannot_hold_the_id_is_refused_with_the_fix(w, viewer, qtbot, notes, ref):
    data = np.zeros((T, H, W), np.uint8)
    data[:, 80:90, 80:90] = 255
    small = viewer.add_labels(data.copy(), name="curated u8")
    w.output_combo.setCurrentIndex(w.output_combo.findText("curated u8"))
    assert w.obj_spin.value() == 256  # the next free id, above the layer's 255
    click_and_wait(w, qtbot, (0, 40, 30))
    (text,) = errors(notes)
    assert "Object id 256 does not fit the uint8 labels of 'curated u8' (at most 255)" in text
    assert "choose '(new layer)'" in text and "uint32" in text and "unexpectedly" not in text
    np.testing.assert_array_equal(small.data, data)
    w.output_combo.setCurrentIndex(w.output_combo.findText(NEW_OUTPUT))
    w.points_layer.add([[0, 60, 60]])
    wait_idle(qtbot, w)
    out = viewer.layers["blobs SAM 2"].data
    assert out.dtype == np.uint32
    same(out[0], ref.add_points(0, 256, P([40, 30], [60, 60]), [1, 1]))
    assert len(errors(notes)) == 1
    np.testing.assert_array_equal(small.data, data)


# ---- mask prompts --------------------------------------------------------------------------------
def test_mask_prompt_layer_empty_on_a_frame_warns_and_later_masks_work(w, viewer, qtbot, notes, ref):
    cellpose = np.zeros((T, H, W), np.uint16)
    cellpose[0, 30:50, 20:40] = 3
    layer = viewer.add_labels(cellpose.copy(), name="cellpose")
    w.mask_combo.setCurrentIndex(w.mask_combo.findText("cellpose"))
    viewer.dims.set_current_step(0, 4)  # nothing labelled on this frame
    w.use_mask_prompts()
    wait_idle(qtbot, w)
    assert notes[-1] == ("warning", M.NO_MASKS_HERE.format(name="cellpose", frame=4)) and not errors(notes)
    assert w.session.obj_ids == []
    viewer.dims.set_current_step(0, 0)
    w.use_mask_prompts()
    wait_idle(qtbot, w)
    same(viewer.layers["blobs SAM 2"].data[0], ref.add_mask(0, 3, cellpose[0] == 3))
    assert w.session.obj_ids == [3] and not errors(notes)
    np.testing.assert_array_equal(layer.data, cellpose)  # the user's labels are untouched

    w.reset_session()  # a session to be opened: a refused mask layer must not even queue that
    viewer.add_labels(np.zeros((H, W), np.uint16), name="one plane")
    w.mask_combo.setCurrentIndex(w.mask_combo.findText("one plane"))
    w.use_mask_prompts()
    (text,) = errors(notes)
    assert "'one plane' has shape (96, 96)" in text and "needs (12, 96, 96)" in text
    assert not w.runner.busy and not w.runner.pending and w.session is None


# ---- models that cannot be loaded ----------------------------------------------------------------
def test_junk_checkpoint_file_gives_one_message(w, viewer, qtbot, notes, monkeypatch, tmp_path, model):
    junk = tmp_path / "mödel weights" / "my sam2 file.pt"  # spaces and non-ASCII in the path
    junk.parent.mkdir()
    junk.write_bytes(np.random.default_rng(1).bytes(4096))
    monkeypatch.setattr(widget_module.QFileDialog, "getOpenFileName", lambda *a, **k: (str(junk), ""))
    w.model_combo.setCurrentIndex(w.model_combo.findData(LOAD_FILE))
    assert w.model_combo.currentData() == str(junk) and w.model is None
    click_and_wait(w, qtbot, (0, 40, 30))
    (text,) = errors(notes)
    assert "my sam2 file.pt" in text and "unexpectedly" not in text and w.model is None
    assert w.propagate_btn.isEnabled() and not w.runner.pending
    w.use_model(model, "random test model")  # another model: the same prompts work
    w.points_layer.add([[0, 60, 60]])
    wait_idle(qtbot, w)
    assert w.session.obj_ids == [1] and len(errors(notes)) == 1


def test_no_network_for_a_registry_model_names_url_file_and_folder(viewer, qtbot, notes, monkeypatch, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: the connection is refused, as with no network
    url = f"http://127.0.0.1:{port}/sam2.1_hiera_tiny.pt"
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"checkpoints": [{"name": "sam2.1_hiera_tiny", "url": url}]}))
    weights = tmp_path / "weights"
    monkeypatch.setenv(ENV_REGISTRY, str(registry))
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(weights))
    viewer.add_image(blobs(), name="blobs")
    w = open_widget(viewer)
    viewer.dims.set_current_step(0, 0)
    assert w.model_combo.currentData() == "sam2.1_hiera_tiny"
    click_and_wait(w, qtbot, (0, 40, 30))
    # the built-in demo model stands in (test_demo_fallback_widget.py); the warning keeps the manual steps
    assert not errors(notes)
    (text,) = [t for level, t in notes if level == "warning"]
    assert url in text and "'sam2.1_hiera_tiny.pt'" in text and str(weights) in text and ENV_WEIGHTS_DIR in text
    assert "connection was refused" in text and "napari-sam2-demo" in text
    flags = w.status_label.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse  # the long message can be copied
    assert w.model.source_name == "napari-sam2-demo" and w.propagate_btn.isEnabled() and not w.runner.busy
    assert not weights.exists() or not any(weights.glob("*.pt"))


# ---- prompts the session cannot use ----------------------------------------------------------------
def test_clicks_and_boxes_outside_the_image_are_removed_and_later_prompts_work(w, viewer, qtbot, notes, ref):
    viewer.dims.set_current_step(0, 2)
    w.points_layer.add([[2, -20, 40]])
    qtbot.waitUntil(lambda: len(w.points_layer.data) == 0, timeout=5000)  # removed from the layer
    wait_idle(qtbot, w)
    level, text = notes[-1]
    assert level == "warning" and "(row -20.0, col 40.0) on frame 2 is outside the 96 x 96 image" in text
    assert "removed; click on the image" in text and len(notes) == 1
    # was: the outside click stayed in the layer, so every later click of this object failed with it
    click_and_wait(w, qtbot, (2, 40, 30))
    out = viewer.layers["blobs SAM 2"].data
    same(out[2], ref.add_points(2, 1, P([40, 30]), [1]))
    w.points_layer.add([[2, 50, 200]])  # outside again, beside a valid click of the same object
    qtbot.waitUntil(lambda: len(w.points_layer.data) == 1, timeout=5000)
    wait_idle(qtbot, w)
    w.points_layer.add([[2, 45, 35]])
    wait_idle(qtbot, w)
    same(out[2], ref.add_points(2, 1, P([40, 30], [45, 35]), [1, 1]))

    w.obj_spin.setValue(2)
    add_box(w.boxes_layer, 2, 30, 30, 30, 60)  # zero height
    qtbot.waitUntil(lambda: len(w.boxes_layer.data) == 0, timeout=5000)
    assert "the box on frame 2 has (almost) zero area" in notes[-1][1] and "drag a rectangle" in notes[-1][1]
    add_box(w.boxes_layer, 2, 150, 150, 180, 190)  # entirely outside
    qtbot.waitUntil(lambda: len(w.boxes_layer.data) == 0, timeout=5000)
    assert "the box on frame 2 lies outside the 96 x 96 image" in notes[-1][1]
    wait_idle(qtbot, w)
    add_box(w.boxes_layer, 2, 60, 60, 80, 90)
    wait_idle(qtbot, w)
    same(out[2], ref.add_box(2, 2, P(60, 60, 80, 90)))
    assert w.session.obj_ids == [1, 2] and not errors(notes)
    assert [lv for lv, _ in notes] == ["warning"] * 4  # one message per bad prompt, nothing else


# ---- propagate: nothing to do, twice, after cancel ------------------------------------------------
def test_propagate_with_no_prompts_says_what_to_do(w, qtbot, notes):
    w.propagate()
    assert notes == [("warning", M.NO_PROMPTS.format(points="blobs SAM 2 points", boxes="blobs SAM 2 boxes"))]
    assert not w.runner.busy and not w.runner.pending and w.session is None


def count_runs(monkeypatch, session) -> list[list[int]]:
    real = session.propagate
    runs: list[list[int]] = []

    def counted(*args, **kwargs):
        runs.append([])
        for result in real(*args, **kwargs):
            runs[-1].append(result.frame)
            yield result

    monkeypatch.setattr(session, "propagate", counted)
    return runs


def test_propagate_pressed_twice_runs_once(w, viewer, qtbot, notes, monkeypatch, ref):
    click_and_wait(w, qtbot, (0, 40, 30))
    runs = count_runs(monkeypatch, w.session)
    w.propagate()
    w.propagate()  # e.g. a double click before the button is disabled
    assert notes[-1] == ("info", M.PROPAGATING)
    w.propagate_btn.click()  # the button itself is disabled meanwhile
    wait_idle(qtbot, w)
    assert runs == [list(range(T))] and not errors(notes)
    ref.add_points(0, 1, P([40, 30]), [1])
    out = viewer.layers["blobs SAM 2"].data
    for r in ref.propagate("forward", start=0):
        same(out[r.frame], r)


def test_cancel_then_propagate_again(w, viewer, qtbot, notes, monkeypatch, ref):
    click_and_wait(w, qtbot, (0, 40, 30))
    runs = count_runs(monkeypatch, w.session)
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 2, timeout=60_000)
    w.cancel_btn.click()
    wait_idle(qtbot, w)
    assert "Cancelled after" in w.progress_label.text() and 2 <= len(runs[0]) < T
    w.propagate()
    wait_idle(qtbot, w)
    assert "Propagated 12 frames" in w.progress_label.text() and runs[1] == list(range(T))
    assert not errors(notes)
    ref.add_points(0, 1, P([40, 30]), [1])
    list(islice(ref.propagate("forward", start=0), len(runs[0])))  # the same calls: broken off, then again
    out = viewer.layers["blobs SAM 2"].data
    for r in ref.propagate("forward", start=0):
        same(out[r.frame], r)
