"""The review part of the widget in a real viewer, real threads, random-weights model: ranges,
a threshold that re-checks finished frames, Next to review (wrapping), the timeline and its clicks."""

import numpy as np
from app_model.types import KeyBinding
from qtpy.QtCore import QPoint, Qt

from napari_sam2._napari.review_panel import MARGIN
from napari_sam2.engine.video_session import VideoSession

from .conftest import wait_idle
from .test_widget_flow import _latest, _review, _threshold_splitting


def test_review_ranges_threshold_next_and_timeline(cells_widget, model, viewer, qtbot, monkeypatch):
    w = cells_widget
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    results, real = [], VideoSession.propagate

    def spy(session, *a, **k):
        for r in real(session, *a, **k):
            results.append(r)
            yield r

    monkeypatch.setattr(VideoSession, "propagate", spy)
    w.threshold_spin.setValue(1.0)  # every present frame scores below 1: all doubtful
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 40, 40]])
    w.obj_spin.setValue(2)
    w.points_layer.add([[0, 150, 150]])
    wait_idle(qtbot, w)
    w.range_check.setChecked(True)
    w.first_spin.setValue(0)
    w.last_spin.setValue(9)
    rebuilds, built = w.review.rebuilds, w.review.rows_built
    w.propagate()
    wait_idle(qtbot, w)
    rows, doubtful, pairs = _review(results, 1.0)
    assert doubtful == pairs == 20 and len(rows) == 2  # two rows: object 1 and 2, frames 0-9
    assert w.review.rows() == [t for t, _ in rows]
    assert w.review.rebuilds == rebuilds  # 10 frames updated the rows in place, no refill
    assert w.review.rows_built - built <= 2

    # a lower threshold re-checks the finished frames without propagating again
    n_results = len(results)
    split = _threshold_splitting(results)
    w.threshold_spin.setValue(split)
    expect, doubtful, _ = _review(results, split)
    assert len(results) == n_results and w.review.rows() == [t for t, _ in expect] and 0 < doubtful < 20

    # Next to review visits the doubtful (frame, object) pairs in order after the frame shown, wrapping
    latest = _latest(results)
    order = sorted((f, o) for (o, f), (s, p) in latest.items() if not p or np.float32(s) < np.float32(split))
    viewer.dims.set_current_step(0, 0)
    after0 = [p for p in order if p[0] > 0] + [p for p in order if p[0] <= 0]
    seen = []
    for _ in range(len(order) + 1):
        qtbot.mouseClick(w.review.next_btn, Qt.MouseButton.LeftButton)
        seen.append((viewer.dims.current_step[0], w.obj_spin.value()))
    assert seen == after0 + after0[:1]
    viewer.keymap[KeyBinding.from_str("Shift-N")](viewer)  # the key does the same
    assert (viewer.dims.current_step[0], w.obj_spin.value()) == (after0 * 2)[len(order) + 1]

    # the timeline paints a strip per object; a click goes to that frame and object
    tl = w.review.timeline
    tl.resize(400, tl.height())
    paints = tl.paints
    img = tl.grab().toImage()
    assert tl.paints > paints and tl.strip() * 2 <= tl.height()
    n = w.review.n_frames()
    x = lambda f: int(MARGIN + (f + 0.5) * (tl.width() - MARGIN) / n)  # noqa: E731
    y = tl.strip() + tl.strip() - 2  # bottom row of object 2's strip
    computed = img.pixelColor(x(5), y).getRgb()[:3]
    untouched = img.pixelColor(x(n - 1), y).getRgb()[:3]
    assert computed != untouched and untouched == (60, 60, 60)
    w.obj_spin.setValue(1)
    qtbot.mouseClick(tl, Qt.MouseButton.LeftButton, pos=QPoint(x(7), y))
    assert viewer.dims.current_step[0] == 7 and w.obj_spin.value() == 2
