"""Session files in the widget, on the real engine (random-weights model): clicks, a box, a propagation
and a correction are saved with "Save session"; a new viewer with the same image opens the file with
"Open session" and gets the same labels and prompt layers, and its next click is sent alone. Also:
opening a file on an image of another shape is refused with one message, and nothing to save is said."""

from __future__ import annotations

import json

import numpy as np

from napari_sam2._napari.session_io import NOTHING_TO_SAVE, fill_prompt_layers
from napari_sam2.engine.prompts import BoxPrompt, PointPrompt, PromptSet

from .conftest import add_box, open_widget, wait_idle


def movie(n=6, h=48, w=64):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:h, :w]
    frames = [40 + 150 * (((yy - h // 2) ** 2 + (xx - 18 - 2 * t) ** 2) < 100) + rng.normal(0, 8, (h, w))
              for t in range(n)]
    return np.clip(frames, 0, 255).astype(np.uint8)


def docked(viewer, model, data):
    viewer.add_image(data, name="movie")
    widget = open_widget(viewer)
    widget.use_model(model, "random test model")
    widget.follow_check.setChecked(False)
    return widget


def test_save_then_open_in_a_new_viewer_gives_the_same_labels(make_napari_viewer, qtbot, model, tmp_path, notes):
    data = movie()
    v1 = make_napari_viewer()
    w1 = docked(v1, model, data)
    assert w1.save_session(str(tmp_path / "none.sam2.json")) is None  # no session yet
    assert notes[-1][1].endswith(NOTHING_TO_SAVE)
    v1.dims.set_current_step(0, 0)
    w1.points_layer.add([[0, 24, 18]])
    wait_idle(qtbot, w1)
    w1.obj_spin.setValue(2)
    add_box(w1.boxes_layer, 0, 2, 40, 20, 62)
    wait_idle(qtbot, w1)
    w1.propagate()
    wait_idle(qtbot, w1)
    v1.dims.set_current_step(0, 3)
    w1.obj_spin.setValue(1)
    w1.points_layer.add([[3, 24, 26]])  # a correction on a propagated frame
    wait_idle(qtbot, w1)
    path = w1.save_session(str(tmp_path / "movie.sam2.json"))
    assert path is not None and "Session saved" in w1.status_label.text()
    live = v1.layers["movie SAM 2"].data.copy()
    assert live[5].any() and set(np.unique(live)) == {0, 1, 2}
    ops = [op["op"] for op in json.loads(path.read_text())["operations"]]
    assert ops == ["add_points", "add_box", "propagate", "add_points"]

    v2 = make_napari_viewer()
    w2 = docked(v2, model, data)
    w2.open_session(str(path))
    wait_idle(qtbot, w2)
    np.testing.assert_array_equal(v2.layers["movie SAM 2"].data, live)
    np.testing.assert_array_equal(w2.points_layer.data, w1.points_layer.data)
    assert w2.points_layer.features["obj_id"].tolist() == [1, 1]
    np.testing.assert_array_equal(np.sort(w2.boxes_layer.data[0], 0), np.sort(w1.boxes_layer.data[0], 0))
    assert w2.boxes_layer.features["obj_id"].tolist() == [2]
    assert w2.session.recorder.ops == w1.session.recorder.ops
    assert "replayed: 2 object(s)" in w2.status_label.text()

    v2.dims.set_current_step(0, 4)
    w2.points_layer.add([[4, 24, 30]])  # only this click goes to the replayed session
    wait_idle(qtbot, w2)
    assert [op["op"] for op in w2.session.recorder.ops] == ops + ["add_points"]
    assert w2.session.recorder.ops[-1]["frame"] == [4]

    v3 = make_napari_viewer()
    w3 = docked(v3, model, data[:, :, :60])
    w3.open_session(str(path))
    wait_idle(qtbot, w3)
    assert notes[-1][0] == "error" and "not (6, 48, 60)" in notes[-1][1]
    assert w3.session is None
    for w in (w1, w2, w3):
        w.cancel()
        wait_idle(qtbot, w)


def test_fill_prompt_layers_round_trips_through_the_layers(make_napari_viewer, qtbot, model):
    v = make_napari_viewer()
    w = docked(v, model, movie(3))
    ps = PromptSet(points=[PointPrompt((1,), 3, np.array([[10.0, 12.0], [5.0, 6.0]]), np.array([1, 0]))],
                   boxes=[BoxPrompt((2,), 4, np.array([2.0, 3.0, 20.0, 30.0]))])
    fill_prompt_layers(w.points_layer, w.boxes_layer, ps)
    back = w.view.prompts()
    got = sorted((p.frame, p.obj_id, rc, int(lbl)) for p in back.points
                 for rc, lbl in zip(np.asarray(p.points).tolist(), np.asarray(p.labels).tolist()))
    assert got == [((1,), 3, [5.0, 6.0], 0), ((1,), 3, [10.0, 12.0], 1)]
    assert [(b.frame, b.obj_id, np.asarray(b.box).tolist()) for b in back.boxes] == [((2,), 4, [2.0, 3.0, 20.0, 30.0])]
    assert w.session is None and not w.runner.busy  # filling the layers sent nothing
    wait_idle(qtbot, w)
