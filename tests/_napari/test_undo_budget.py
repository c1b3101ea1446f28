"""The widget's undo history: compressed per-frame diffs in napari's own history, exact undo/redo,
a byte budget that drops the oldest steps, and the user's labels left alone."""

import numpy as np
import pytest
from napari.layers import Labels

from napari_sam2._napari.labels_writer import LabelsWriter
from napari_sam2._napari.undo_history import FrameDiff, atom_bytes, history_bytes

from .conftest import wait_idle


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r


def _propagate(writer, frames, shape, shift, obj=1):
    """One grouped write of ``frames`` frames (a propagation): a disk moving with ``shift``."""
    writer.begin_group()
    for t in range(frames):
        labels = (_disk(shape, shape[0] / 2, 10 + t + shift, shape[0] / 4) * obj).astype(np.uint32)
        writer.write_labels((t,), labels, [obj])
    return writer.end_group()


def test_frame_diff_unpacks_to_napari_atom():
    rng = np.random.default_rng(1)
    before = rng.integers(0, 4, (40, 50)).astype(np.uint16)
    after = before.copy()
    after[5:20, 7:30] = 9
    after[35, 49] = 2
    changed = after != before
    diff = FrameDiff((3, 1), changed, before[changed], after[changed])
    idx, old, new = diff  # napari's _load_history unpacks atoms like this
    want = (np.full(changed.sum(), 3), np.full(changed.sum(), 1)) + np.nonzero(changed)
    for a, b in zip(idx, want, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(old, before[changed])
    np.testing.assert_array_equal(new, after[changed])
    assert new.dtype == np.uint16 and diff[1].tolist() == old.tolist() and len(diff) == 3
    assert diff.box == (5, 36, 7, 50)


def test_propagation_undo_redo_exact_and_compressed(make_napari_viewer):
    viewer = make_napari_viewer()
    user = np.zeros((30, 64, 64), np.uint32)
    user[:, 50:60, 5:15] = 40  # the user's own label, in the disks' way
    layer = viewer.add_labels(user.copy())
    w = LabelsWriter(layer)
    _propagate(w, 30, (64, 64), 0)
    first = layer.data.copy()
    _propagate(w, 30, (64, 64), 5)
    second = layer.data.copy()
    assert (second != first).sum() > 30 * 50
    np.testing.assert_array_equal(second[:, 50:60, 5:15], 40)  # never painted over
    assert all(isinstance(a, FrameDiff) for item in layer._undo_history for a in item)
    changed = int((first != user).sum() + (second != first).sum())
    assert history_bytes(layer) < changed  # napari's atoms held ~30 bytes per changed pixel
    layer.undo()
    np.testing.assert_array_equal(layer.data, first)
    layer.undo()
    np.testing.assert_array_equal(layer.data, user)
    layer.redo()
    layer.redo()
    np.testing.assert_array_equal(layer.data, second)


def test_history_stays_under_budget_and_drops_oldest(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.zeros((60, 96, 96), np.uint32))
    probe = LabelsWriter(Labels(np.zeros((60, 96, 96), np.uint32)))
    _propagate(probe, 60, (96, 96), 0)
    one_step = history_bytes(probe.layer)  # the measured size of one propagation's step
    budget = int(2.5 * one_step)
    w = LabelsWriter(layer, budget_bytes=budget)
    notes, states = [], []
    for p in range(6):
        states.append(layer.data.copy())
        notes.append(_propagate(w, 60, (96, 96), 9 * p))
        assert history_bytes(layer) <= budget
    kept = len(layer._undo_history)
    assert 1 <= kept < 6  # the oldest steps were dropped, the newest kept
    assert notes[0] == "" and any("older ones were dropped" in n for n in notes[1:])  # said when it shrank
    after = layer.data.copy()
    for k in range(1, kept + 1):
        layer.undo()
        np.testing.assert_array_equal(layer.data, states[-k])  # the kept steps undo exactly
    layer.undo()  # nothing older is left
    np.testing.assert_array_equal(layer.data, states[-kept])
    for _ in range(kept):
        layer.redo()
    np.testing.assert_array_equal(layer.data, after)


def test_a_step_over_the_budget_clears_history_and_says_so(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.zeros((20, 64, 64), np.uint32))
    w = LabelsWriter(layer, budget_bytes=10**9)
    _propagate(w, 20, (64, 64), 0)
    assert len(layer._undo_history) == 1
    w.history.limit = 2 * atom_bytes(layer._undo_history[0][0])  # two frames' worth
    note = _propagate(w, 20, (64, 64), 7)
    assert "cannot be undone" in note and "NAPARI_SAM2_UNDO_MIB" in note
    assert history_bytes(layer) == 0 and not layer._undo_history
    written = layer.data.copy()
    layer.undo()  # nothing to undo: no half-undone propagation
    np.testing.assert_array_equal(layer.data, written)
    w.history.limit = 10**9
    w.write_labels((0,), np.zeros((64, 64), np.uint32), [1])  # later writes are recorded again
    layer.undo()
    np.testing.assert_array_equal(layer.data, written)


def test_user_labels_survive_and_overwrite_is_undone(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    user = (rng.integers(0, 3, (8, 32, 32)) * 20).astype(np.uint32)
    layer = viewer.add_labels(user.copy())
    w = LabelsWriter(layer)
    _propagate(w, 8, (32, 32), 0)
    keep = user != 0
    np.testing.assert_array_equal(layer.data[keep], user[keep])  # nothing of the user's touched
    w.overwrite_other = True  # asked to: the user's pixels are in the undo step
    _propagate(w, 8, (32, 32), 2, obj=2)
    assert (layer.data[keep] != user[keep]).any()
    layer.undo()
    layer.undo()
    np.testing.assert_array_equal(layer.data, user)


def test_widget_propagation_undoes_exactly(cells_widget, model, qtbot, viewer):
    w = cells_widget
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 40, 40]])
    wait_idle(qtbot, w)
    out = viewer.layers["cells SAM 2"]
    before = out.data.copy()
    w.range_check.setChecked(True)
    w.first_spin.setValue(0)
    w.last_spin.setValue(15)
    w.propagate()
    wait_idle(qtbot, w)
    after = out.data.copy()
    assert (after != before).sum() > 0
    assert all(isinstance(a, FrameDiff) for a in out._undo_history[-1])
    assert history_bytes(out) <= w.controller.output.budget_bytes
    out.undo()
    np.testing.assert_array_equal(out.data, before)
    out.redo()
    np.testing.assert_array_equal(out.data, after)


@pytest.mark.parametrize("value,expected", [("1", 2**20), ("nonsense", 256 * 2**20), ("-3", 0)])
def test_budget_from_environment(monkeypatch, value, expected):
    from napari_sam2._napari.undo_history import default_budget

    monkeypatch.setenv("NAPARI_SAM2_UNDO_MIB", value)
    assert default_budget() == expected
