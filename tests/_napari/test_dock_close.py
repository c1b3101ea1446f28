"""Issue 17 point 3 in a real viewer: closing the dock (its own close button), closing the viewer, or
removing the image or output layer during a propagation, ordinary or live, cancels the job at once:
no label keeps filling afterwards, nothing is raised in a Qt slot, nothing is logged about deleted
Qt objects, and a live stack growing on afterwards is no longer followed.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from napari_sam2._napari import guards

from .conftest import wait_idle

T, H, W = 16, 96, 96


def blobs(n: int = T) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    data = np.random.default_rng(0).integers(0, 40, (n, H, W)).astype(np.uint8)
    for t in range(n):
        data[t][(yy - 40) ** 2 + (xx - 30 - 2 * t) ** 2 < 120] = 220
    return data


@pytest.fixture
def stray(monkeypatch, caplog):
    """Exceptions that reached ``sys.excepthook`` (an error in a Qt slot) and WARNING+ log records."""
    hooked: list = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: hooked.append(exc))
    caplog.set_level(logging.WARNING)
    return lambda: [f"{e[0].__name__}: {e[1]}" for e in hooked] + [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def dock(viewer, qtbot, model, data, live: bool):
    """The widget docked (as the Plugins menu does) on ``data`` with a click on frame 0, propagating."""
    image = viewer.add_image(data, name="acq")
    dock_widget, w = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    w.reset_choices()
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    if live:
        w.live_skip_check.setChecked(False)
        w.live_check.setChecked(True)
    w.points_layer.add([[0, 40, 30]])
    wait_idle(qtbot, w)
    return image, dock_widget, w


def gate(monkeypatch, session) -> list[int]:
    """After its first frame the ordinary propagation waits for its cancel (60 s at most), so the
    close cannot lose a race against the end. Returns the frames the engine yielded."""
    real, frames = session.propagate, []

    def gated(*args, cancel=None, **kwargs):
        for result in real(*args, cancel=cancel, **kwargs):
            frames.append(result.frame)
            yield result
            if len(frames) == 1:
                cancel.wait(60)

    monkeypatch.setattr(session, "propagate", gated)
    return frames


def written(out) -> list[int]:
    return [t for t in range(out.shape[0]) if out[t].any()]


def start(w, qtbot, monkeypatch, live: bool):
    frames = [] if live else gate(monkeypatch, w.session)
    w.propagate()
    if live:
        qtbot.waitUntil(lambda: w.live.run.stats.last >= 1, timeout=60_000)
    else:
        qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 1, timeout=60_000)
    return frames


@pytest.mark.parametrize("live", [False, True], ids=["propagation", "live"])
def test_the_dock_close_button_cancels_the_job(viewer, qtbot, model, monkeypatch, notes, stray, live):
    full = blobs()
    image, dock_widget, w = dock(viewer, qtbot, model, full[:2].copy() if live else full, live)
    frames = start(w, qtbot, monkeypatch, live)
    out = viewer.layers["acq SAM 2"]
    runner = w.runner
    dock_widget.title.close_button.click()  # the dock's own "x"
    qtbot.waitUntil(lambda: not runner.busy and not runner.pending, timeout=30_000)
    assert ("info", guards.PANEL_CLOSED) in notes and stray() == []
    assert not w.controller.propagating and w.session is None and not w.live.on
    before = out.data.copy()
    if live:
        image.data = full.copy()  # the acquisition goes on: nothing follows it any more
        qtbot.wait(3 * 200)  # three polls of the closed panel's timer, had it kept running
        assert w.live.run is None and out.data.shape[0] == 2
    else:
        assert len(frames) <= 2
    qtbot.wait(100)  # queued results of the worker, if any, must be dropped
    np.testing.assert_array_equal(out.data, before)
    assert written(out.data) in ([0], [0, 1])


@pytest.mark.parametrize("live", [False, True], ids=["propagation", "live"])
def test_closing_the_viewer_cancels_the_job_quietly(make_napari_viewer, qtbot, model, monkeypatch, stray, qtlog, live):
    viewer = make_napari_viewer()
    full = blobs()
    image, _dock, w = dock(viewer, qtbot, model, full[:2].copy() if live else full, live)
    frames = start(w, qtbot, monkeypatch, live)
    runner, session = w.runner, w.session
    viewer.close()
    qtbot.waitUntil(lambda: not runner.busy and not runner.pending, timeout=30_000)
    if live:
        image.data = full.copy()  # the layer outlives the viewer here: its growth reaches no deleted widget
    qtbot.wait(300)
    assert stray() == [] and not [m for m in qtlog.records if "deleted" in m.message]
    assert w.controller.closed and w.session is None and session is not None
    assert len(frames) <= 2


@pytest.mark.parametrize("which", ["image", "output"])
@pytest.mark.parametrize("live", [False, True], ids=["propagation", "live"])
def test_removing_the_image_or_output_cancels_the_job(viewer, qtbot, model, monkeypatch, notes, stray, live, which):
    full = blobs()
    image, _dock, w = dock(viewer, qtbot, model, full[:2].copy() if live else full, live)
    frames = start(w, qtbot, monkeypatch, live)
    out = viewer.layers["acq SAM 2"]
    before = out.data.copy()
    viewer.layers.remove(image if which == "image" else out)
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: any("was removed" in text for _, text in notes), timeout=5000)
    assert stray() == [] and not w.controller.propagating
    if live and which == "output":
        assert w.live.on  # Live stays on; the next Propagate makes a new output layer
        image.data = full.copy()
        qtbot.wait(3 * 200)
        assert "acq SAM 2" not in viewer.layers
    if live and which == "image":
        assert not w.live.on and not w.live_check.isChecked()
    if not live:
        assert len(frames) <= 2
    np.testing.assert_array_equal(out.data, before)  # nothing reached the layer after its removal
