"""A propagation is painted (and followed) a few times a second: frames written between two paints
are coalesced, the last state is always painted, and Follow lands on the last frame."""

import numpy as np
import pytest

from napari_sam2._napari.labels_writer import LabelsWriter
from napari_sam2._napari.refresh_throttle import RefreshThrottle

from .conftest import wait_idle


class FakeLoop:
    """A clock and a timer queue standing in for Qt's event loop."""

    def __init__(self):
        self.now = 0.0
        self.timers: list = []

    def later(self, delay, fn):
        self.timers.append((self.now + delay, fn))
        return True

    def advance(self, dt):
        self.now += dt
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in due:
            fn()


def test_frames_between_paints_are_coalesced():
    loop, paints = FakeLoop(), []
    th = RefreshThrottle(lambda keys, last, final: paints.append((sorted(keys), last, final)), 0.25,
                         later=loop.later, clock=lambda: loop.now)
    for t in range(20):  # 20 frames, 50 ms apart: 1 s
        th.written((t,))
        loop.advance(0.05)
    assert paints[0] == ([(0,)], (0,), False)  # the first frame at once
    assert 3 <= len(paints) <= 5  # then at most 4 a second
    th.finish()
    assert paints[-1][1] == (19,) and paints[-1][2]  # the final paint shows the last frame
    painted = {k for keys, _, _ in paints for k in keys}
    assert painted == {(t,) for t in range(20)}  # every frame written was in some paint
    n = len(paints)
    loop.advance(1.0)  # a timer still pending finds nothing to do
    assert len(paints) == n
    th.finish()  # nothing written since: nothing painted
    assert len(paints) == n


def test_without_an_event_loop_every_frame_is_painted():
    paints = []
    th = RefreshThrottle(lambda *a: paints.append(a), later=lambda d, fn: False, clock=lambda: 0.0)
    for t in range(3):
        th.written((t,))
    assert [p[1] for p in paints] == [(0,), (1,), (2,)]


@pytest.fixture
def w(cells_widget, model, viewer, qtbot):
    cells_widget.use_model(model, "random test model")
    viewer.dims.set_current_step(0, 0)
    cells_widget.points_layer.add([[0, 40, 40]])
    wait_idle(qtbot, cells_widget)
    cells_widget.range_check.setChecked(True)
    cells_widget.first_spin.setValue(0)
    cells_widget.last_spin.setValue(12)
    # a paint interval longer than the test: which paints happen no longer depends on the speed
    cells_widget.controller.refresher.interval = 3600.0
    return cells_widget


def _record(out, monkeypatch):
    """The frames written into the output layer and its paints, in order."""
    log = []
    real_write, real_refresh = LabelsWriter.write_labels, out.refresh
    monkeypatch.setattr(LabelsWriter, "write_labels", lambda *a, **k: (log.append("write"), real_write(*a, **k))[1])
    monkeypatch.setattr(out, "refresh", lambda *a, **k: (log.append("refresh"), real_refresh(*a, **k))[1])
    out.events.labels_update.connect(lambda e: log.append("labels_update"))
    return log


@pytest.mark.parametrize("follow", [False, True])
def test_propagation_paints_are_coalesced_and_end_on_the_last_frame(w, viewer, qtbot, monkeypatch, follow):
    w.follow_check.setChecked(follow)
    out = viewer.layers["cells SAM 2"]
    log = _record(out, monkeypatch)
    moves = []
    viewer.dims.events.current_step.connect(lambda e: moves.append(viewer.dims.current_step[0]))
    w.propagate()
    wait_idle(qtbot, w)
    writes = log.count("write")
    paints = [e for e in log if e != "write"]
    assert writes == 13  # every frame 0..12 went into the array at once
    assert 1 <= len(paints) <= 3 < writes  # painted: the first frame, then once at the end
    assert log[-1] == "refresh"  # the final state is painted after the last write
    assert w.controller.refresher.paints == 2
    if follow:
        assert viewer.dims.current_step[0] == 12 and moves == [12]  # one move, onto the last frame
    else:
        assert viewer.dims.current_step[0] == 0 and moves == []
    shown = out.data[viewer.dims.current_step[0]]
    assert shown.any()
    np.testing.assert_array_equal(out._slice.image.view, out._raw_to_displayed(shown))  # the colours shown
