"""The widget's Live toggle in a real viewer (real engine, random-weights model, real Qt timers and worker).

An acquisition is played into an Image layer by a QTimer, the two ways acquisition plugins grow a
layer: ``layer.data`` replaced by a longer array, and a zarr array growing in place. The output labels
grow with the stack and equal, mask for mask, offline forward propagation over the same frames (a
fresh ``VideoSession`` on the whole stack: equal for T >= 16, engine/live.py). The status line shows
frames behind, skipped and the latency; Cancel and Live off end the follow; a shrinking stack ends it
with one message.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_sam2._napari.live_control import LIVE_STOPPED
from napari_sam2._napari.live_labels import GrowingLabels
from napari_sam2._napari.live_source import LayerStream
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import InputError

from .conftest import open_widget, wait_idle

T, H, W = 16, 96, 96
STATUS = re.compile(r"Live: frame (\d+) tracked \((\d+) arrived\): (\d+) behind, (\d+) skipped, latency (\d+) ms")


def blobs(n: int = T) -> np.ndarray:
    """uint8 (passed to the model as is, so live and offline see the same pixels): a disc drifting right."""
    yy, xx = np.mgrid[:H, :W]
    rng = np.random.default_rng(0)
    data = rng.integers(0, 40, (n, H, W)).astype(np.uint8)
    for t in range(n):
        data[t][(yy - 40) ** 2 + (xx - 30 - 2 * t) ** 2 < 120] = 220
    return data


@pytest.fixture
def offline(model):
    """Forward propagation over the whole stack at once from the same click: what live must give."""
    with VideoSession(model, blobs()) as session:
        session.add_points(0, 1, np.array([[40.0, 30.0]]), [1])
        yield {r.frame: r.to_labels(np.uint32) for r in session.propagate("forward")}


class Player:
    """Plays ``frames`` into ``grow(n)`` from a QTimer (the main thread, as napari requires)."""

    def __init__(self, qtbot, grow, interval_ms: int = 40) -> None:
        self.n, self.grow = 1, grow
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        if self.n >= T:
            self.timer.stop()
            return
        self.n += 1
        self.grow(self.n)


def start_live(viewer, qtbot, model, data, every_frame=True):
    layer = viewer.add_image(data, name="acq")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    w.live_skip_check.setChecked(not every_frame)
    w.live_check.setChecked(True)
    assert w.live.on and "Live: following 'acq'" in w.status_label.text()
    w.points_layer.add([[0, 40, 30]])
    wait_idle(qtbot, w)
    w.propagate()
    qtbot.waitUntil(lambda: w.controller.propagating, timeout=30_000)
    return layer, w


def tracked(w) -> int:
    return w.live.run.stats.last if w.live.run is not None else -1


def test_live_replaced_arrays_grow_the_labels_and_equal_offline(viewer, qtbot, model, offline):
    full = blobs()
    layer, w = start_live(viewer, qtbot, model, full[:1].copy())
    player = Player(qtbot, lambda n: setattr(layer, "data", full[:n].copy()))  # a new, longer array each time
    player.timer.start()
    qtbot.waitUntil(lambda: tracked(w) == T - 1, timeout=120_000)
    out = viewer.layers["acq SAM 2"]
    assert out.data.shape == (T, H, W)  # grew with the stack
    for t in range(T):
        np.testing.assert_array_equal(out.data[t], offline[t], err_msg=f"frame {t}")
    assert (out.data[T - 1] == 1).any()
    m = STATUS.search(w.status_label.text())
    assert m is not None, w.status_label.text()
    assert (int(m[1]), int(m[2]), int(m[3]), int(m[4])) == (T - 1, T, 0, 0)  # every frame: none skipped
    assert int(m[5]) >= 0 and w.live.run.stats.latency > 0
    w.live_check.setChecked(False)  # Live off ends the follow
    wait_idle(qtbot, w)
    assert not w.live.on and not w.controller.propagating and w.session is None
    assert w.status_label.text() == LIVE_STOPPED.format(n=T, skipped=0)


def test_live_zarr_growing_in_place(viewer, qtbot, model, offline):
    zarr = pytest.importorskip("zarr")
    full = blobs()
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(1, H, W), chunks=(1, H, W), dtype="uint8")
    z[0] = full[0]
    layer, w = start_live(viewer, qtbot, model, z)
    assert layer.data is z
    player = Player(qtbot, lambda n: z.append(full[n - 1 : n], axis=0))  # no napari event: found by the poll
    player.timer.start()
    qtbot.waitUntil(lambda: tracked(w) == T - 1, timeout=120_000)
    out = viewer.layers["acq SAM 2"]
    assert out.data.shape == (T, H, W) and layer.extent.data[1][0] == T - 1  # napari shows the new frames
    for t in range(T):
        np.testing.assert_array_equal(out.data[t], offline[t], err_msg=f"frame {t}")
    w.cancel()  # Cancel ends the follow; Live stays on
    wait_idle(qtbot, w)
    assert w.live.on and not w.controller.propagating


def test_skipping_when_behind_counts_frames_and_cancel_resumes_at_the_newest(viewer, qtbot, model):
    full = blobs()
    layer, w = start_live(viewer, qtbot, model, full[:1].copy(), every_frame=False)
    qtbot.waitUntil(lambda: tracked(w) == 0, timeout=60_000)
    layer.data = full.copy()  # 15 frames at once: the model skips to the newest
    qtbot.waitUntil(lambda: tracked(w) == T - 1, timeout=60_000)
    stats = w.live.run.stats
    assert stats.skipped > 0 and stats.tracked + stats.skipped == T
    m = STATUS.search(w.status_label.text())
    assert m is not None and int(m[4]) == stats.skipped and int(m[3]) == 0
    w.cancel()
    wait_idle(qtbot, w)
    assert w.live.on and "Live tracking stopped" in w.status_label.text()
    before = stats.tracked
    layer.data = np.concatenate([full, full[-1:]])
    w.propagate()  # again: goes on from the newest frame, not from frame 0
    qtbot.waitUntil(lambda: tracked(w) == T, timeout=60_000)
    assert w.live.run.stats.tracked <= before + 2
    assert viewer.layers["acq SAM 2"].data.shape[0] == T + 1
    w.live_check.setChecked(False)
    wait_idle(qtbot, w)


def test_an_object_clicked_while_following_joins_and_the_follow_goes_on(viewer, qtbot, model):
    full = blobs()
    full[:, 70:85, 60:75] = 220  # a second, still object
    layer, w = start_live(viewer, qtbot, model, full[:4].copy())
    qtbot.waitUntil(lambda: tracked(w) == 3, timeout=60_000)
    job = w.live.run.job
    w.obj_spin.setValue(2)
    w.points_layer.add([[3, 77, 67]])  # object 2 on frame 3, while the follow waits for frame 4
    qtbot.waitUntil(lambda: w.live.run.job is not job and w.controller.propagating, timeout=30_000)
    assert 2 in w.session.obj_ids
    player = Player(qtbot, lambda n: setattr(layer, "data", full[:n].copy()))
    player.n = 4
    player.timer.start()
    qtbot.waitUntil(lambda: tracked(w) == T - 1, timeout=120_000)
    out = viewer.layers["acq SAM 2"].data
    with VideoSession(model, full) as ref:  # the same calls on the whole stack at once
        ref.add_points(0, 1, np.array([[40.0, 30.0]]), [1])
        list(ref.propagate("forward", stop=3))
        ref.add_points(3, 2, np.array([[77.0, 67.0]]), [1])
        for r in ref.propagate("forward", start=3):  # the follow went on from frame 3, the newest there was
            np.testing.assert_array_equal(out[r.frame], r.to_labels(np.uint32), err_msg=f"frame {r.frame}")
    assert all((out[t] == 2).any() for t in range(3, T))
    # every frame once, frame 3 twice (again with object 2): none lost to the restart
    assert w.live.run.stats.tracked == T + 1 and w.live.run.stats.skipped == 0
    w.live_check.setChecked(False)
    wait_idle(qtbot, w)


def test_a_shrinking_stack_ends_live_with_one_message(viewer, qtbot, model, notes):
    full = blobs()
    layer, w = start_live(viewer, qtbot, model, full[:4].copy())
    qtbot.waitUntil(lambda: tracked(w) == 3, timeout=60_000)
    layer.data = full[:2].copy()
    wait_idle(qtbot, w)
    assert not w.live.on and not w.live_check.isChecked() and not w.controller.propagating
    said = [text for level, text in notes if level == "error"]
    assert len(said) == 1 and "got shorter during live tracking (4 -> 2 frames)" in said[0]


def test_live_refuses_an_image_it_cannot_follow(viewer, qtbot, model, notes):
    viewer.add_image(np.zeros((3, 4, 32, 32), np.uint8), name="tz")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.live_check.setChecked(True)
    assert not w.live.on and not w.live_check.isChecked()
    assert "Live mode follows a (T, Y, X) image" in notes[-1][1]


def test_layer_stream_and_growing_labels_without_qt():
    data = blobs(3)
    stream = LayerStream(data[:1], name="acq")
    assert len(stream) == 0 and stream.grow(data[:1]) == 1 and stream.grow(data) == 2
    np.testing.assert_array_equal(stream[2], data[2])  # read in place
    with pytest.raises(InputError, match="grow the layer's data"):
        stream.append(data[0])
    assert stream.grow(np.zeros((4, 8, 8), np.uint8)) == 0 and "changed from shape" in str(stream.error)

    class Layer:
        data = np.ones((2, 5, 5), np.uint32)

    layer, grow = Layer(), GrowingLabels()
    assert grow.grow(layer, 3) and layer.data.shape == (3, 5, 5) and layer.data[:2].all() and not layer.data[2].any()
    buffer = layer.data.base
    assert grow.grow(layer, 9) and layer.data.base is buffer  # within the capacity: no copy
    assert not grow.grow(layer, 4) and layer.data.shape[0] == 9  # never shrinks


# ---- the demo ------------------------------------------------------------------------------------
def test_demo_plays_an_acquisition_and_tracks_it_live(viewer, qtbot, model):
    from napari_sam2._napari.demo_live import first_cell, start_demo

    demo = start_demo(viewer, fps=20, frames=6, size=128, model=model, model_name="random test model",
                      model_text="Model: random test model")
    try:
        assert demo.widget.live.on and demo.layer.name == "acquisition"
        truth = demo_labels(128)
        cell, _point = first_cell(truth)
        (click,) = demo.widget.points_layer.data  # on frame 0, inside its largest cell
        assert click[0] == 0 and truth[int(round(click[1])), int(round(click[2]))] == cell
        qtbot.waitUntil(lambda: demo.played == 6 and demo.tracked == 5, timeout=120_000)
        out = viewer.layers["acquisition SAM 2"]
        assert out.data.shape == (6, 128, 128) and demo.layer.data.shape == (6, 128, 128)
        assert STATUS.search(demo.widget.status_label.text()) is not None
    finally:
        demo.stop()
        demo.widget.live_check.setChecked(False)
        wait_idle(qtbot, demo.widget)


def demo_labels(size):
    from napari_sam2._napari.synthetic import make_cells_timelapse

    return make_cells_timelapse(n_frames=6, size=size).labels[0]


def test_demo_live_command_runs_headless_and_says_which_model(qtbot, monkeypatch, tmp_path, capsys):
    from napari_sam2.checkpoints import ENV_WEIGHTS_DIR
    from napari_sam2.cli import main

    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(tmp_path))  # nothing cached: the offline random model
    assert main(["demo-live", "--frames", "3", "--fps", "20", "--size", "96", "--device", "cpu",
                 "--exit-when-done"]) == 0
    err = capsys.readouterr().err
    assert "Model: test-random" in err and "random-weights model" in err
    m = re.search(r"Tracked (\d+) frames of 3 \((\d+) skipped\)", err)
    assert m is not None and int(m[1]) + int(m[2]) == 3, err
