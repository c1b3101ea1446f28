"""The widget with the real engine and a random-weights model: what the Labels layer shows is what
``VideoSession`` returns for the same prompts (clicks, a negative click, a box, several objects,
a correction), propagation keeps napari responsive (the model never runs on the main thread, and
the Qt event loop keeps ticking while the model is mid-frame), undo, screenshot.

How long the event loop is blocked is measured by ``benchmarks/bench_gui_responsiveness.py``; a time
is never asserted here (CI is a loaded 2-core machine).

Set ``NAPARI_SAM2_SCREENSHOT=1`` to (re)write ``docs/screenshot.png``.
"""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from .conftest import add_box, open_widget, wait_idle

pytest.importorskip("napari_sam2.engine.video_session")

from napari_sam2.engine.video_session import VideoSession  # noqa: E402
from napari_sam2.model.testing import random_model  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
TICKS_PER_FRAME = 3  # main-thread timer events the event loop must process while one frame is mid-model
HANG_GUARD_S = 120  # only reached when the event loop is blocked for good (then the check fails)


@pytest.fixture(scope="module")
def model():
    return random_model(seed=0)


class ModelWatch:
    """Which thread runs each top-level part of ``model``, and whether the Qt event loop keeps running.

    Forward pre-hooks record, for every call of the model's parts, whether it ran on the main thread.
    In each memory-attention call (one per tracked frame) made off the main thread, the worker stops
    until a QTimer on the main thread has fired ``TICKS_PER_FRAME`` more times. That can only happen
    while the event loop is processing events during the propagation, however slow the machine is:
    ticks are counted, no time is measured.
    """

    def __init__(self, model):
        self.model = model
        self.calls: list[tuple[str, bool]] = []  # (part, ran on the main thread)
        self.ticked_mid_frame: list[bool] = []
        self.ticks = 0
        self._cond = threading.Condition()
        self._handles = []
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        with self._cond:
            self.ticks += 1
            self._cond.notify_all()

    def _hook(self, name):
        def pre_hook(module, args):
            on_main = threading.current_thread() is threading.main_thread()
            self.calls.append((name, on_main))
            if name == "memory_attention" and not on_main:
                with self._cond:
                    target = self.ticks + TICKS_PER_FRAME
                    self.ticked_mid_frame.append(self._cond.wait_for(lambda: self.ticks >= target, HANG_GUARD_S))

        return pre_hook

    def __enter__(self):
        for name, part in self.model.named_children():
            self._handles.append(part.register_forward_pre_hook(self._hook(name)))
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()
        for h in self._handles:
            h.remove()

    def parts(self, on_main: bool) -> set[str]:
        return {name for name, main in self.calls if main == on_main}


def test_widget_matches_engine_and_stays_responsive(viewer, qtbot, model, tmp_path):
    viewer.open_sample("napari-sam2", "cells_timelapse")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    image = viewer.layers["cells"].data
    ref = VideoSession(model, image)
    viewer.dims.set_current_step(0, 0)

    # object 1: a click, then a negative click (each click is one preview pass)
    w.points_layer.add([[0, 70, 60]])
    wait_idle(qtbot, w)
    out = viewer.layers["cells SAM 2"]
    r = ref.add_points(0, 1, np.array([[70.0, 60.0]]), np.array([1]))
    np.testing.assert_array_equal(out.data[0], r.to_labels(out.data.dtype))
    w.negative_check.setChecked(True)
    w.points_layer.add([[0, 90, 90]])
    wait_idle(qtbot, w)
    ref.add_points(0, 1, np.array([[70.0, 60.0], [90.0, 90.0]]), np.array([1, 0]))
    # object 2: a box, drawn on the same frame
    w.new_object()
    assert w.obj_spin.value() == 2
    add_box(w.boxes_layer, 0, 150, 140, 200, 210)
    wait_idle(qtbot, w)
    r = ref.add_box(0, 2, np.array([150.0, 140.0, 200.0, 210.0]))
    np.testing.assert_array_equal(out.data[0], r.to_labels(out.data.dtype))
    assert w.state.owned_ids == {1, 2}

    # propagate frames 0..5 forward, watching where the model runs and whether the event loop runs
    w.range_check.setChecked(True)
    w.first_spin.setValue(0)
    w.last_spin.setValue(5)
    with ModelWatch(model) as watch:
        w.propagate()
        wait_idle(qtbot, w, timeout=120_000)
    assert watch.parts(on_main=False) >= {"image_encoder", "memory_attention", "sam_mask_decoder", "memory_encoder"}
    assert watch.parts(on_main=True) == set(), "the model ran on the main thread during a propagation"
    # frames 1..5 are tracked from memory: the event loop ticked while each of them was inside the model
    assert len(watch.ticked_mid_frame) >= 5 and all(watch.ticked_mid_frame), watch.ticked_mid_frame
    for res in ref.propagate("forward", start=0, stop=5):
        np.testing.assert_array_equal(out.data[res.frame], res.to_labels(out.data.dtype), err_msg=f"frame {res.frame}")
    assert not out.data[6:].any()
    assert w.meter.done == 6 and "Propagated 6 frames" in w.progress_label.text()

    # correction on a propagated frame, then propagate again from there
    viewer.dims.set_current_step(0, 3)
    w.negative_check.setChecked(False)
    w.obj_spin.setValue(1)
    w.points_layer.add([[3, 120, 40]])
    wait_idle(qtbot, w)
    r = ref.add_points(3, 1, np.array([[120.0, 40.0]]), np.array([1]))
    np.testing.assert_array_equal(out.data[3], r.to_labels(out.data.dtype))
    before = out.data.copy()
    w.propagate()
    wait_idle(qtbot, w, timeout=120_000)
    for res in ref.propagate("forward", start=3, stop=5):
        np.testing.assert_array_equal(out.data[res.frame], res.to_labels(out.data.dtype), err_msg=f"frame {res.frame}")
    out.undo()  # one undo step takes the second propagation back
    np.testing.assert_array_equal(out.data, before)
    out.redo()

    shot = DOCS / "screenshot.png" if os.environ.get("NAPARI_SAM2_SCREENSHOT") else tmp_path / "screenshot.png"
    viewer.window.resize(1500, 950)
    viewer.dims.set_current_step(0, 0)  # the frame holding the clicks (green / red) and the box
    out.opacity = 0.45
    viewer.layers.selection.active = w.points_layer
    qtbot.wait(200)
    img = viewer.screenshot(path=str(shot), canvas_only=False, flash=False)
    assert img.shape[0] > 300 and img.std() > 5


def test_cancel_with_the_engine_keeps_finished_frames(viewer, qtbot, model):
    viewer.open_sample("napari-sam2", "ultrasound_clip")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 128, 128]])
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 2, timeout=120_000)
    w.cancel()
    wait_idle(qtbot, w, timeout=120_000)
    out = viewer.layers["ultrasound SAM 2"].data
    written = [t for t in range(out.shape[0]) if out[t].any()]
    assert written == list(range(w.meter.done)) and w.meter.done < out.shape[0]
    assert "Cancelled after" in w.progress_label.text() and w.propagate_btn.isEnabled()


def test_4d_stack_propagates_along_z_at_the_current_time_point(viewer, qtbot, model):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 4, 64, 64)).astype(np.float32)
    data[:, :, 20:40, 20:40] += 3.0
    viewer.add_image(data, name="tz", axis_labels=("t", "z", "y", "x"))
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    assert w.axis == 0  # time is the default; propagate along Z instead
    w.axis_combo.setCurrentIndex(1)
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 0)
    w.points_layer.add([[1, 0, 30, 30]])
    w.propagate()
    wait_idle(qtbot, w, timeout=120_000)
    out = viewer.layers["tz SAM 2"].data
    ref = VideoSession(model, data, axis=1)
    ref.add_points((1, 0), 1, np.array([[30.0, 30.0]]), np.array([1]))
    results = list(ref.propagate("forward", start=(1, 0)))
    assert [(r.index, r.frame) for r in results] == [((1,), z) for z in range(4)]
    for r in results:
        np.testing.assert_array_equal(out[1, r.frame], r.to_labels(out.dtype))
    assert not out[0].any()  # the other time point is untouched
    assert viewer.dims.current_step[:2] == (1, 3)  # followed along Z
