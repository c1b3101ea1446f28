"""Widget mechanics with a deterministic fake session: preview, candidates, propagation, cancel,
review list, corrections, deletions, mask prompts, preserving other labels, undo, prefetch, OOM."""

import numpy as np
import torch

from napari_sam2._napari import messages
from napari_sam2._napari.ui import NEW_OUTPUT

from .conftest import add_box, press, wait_idle


def _setup(w, fake, **cfg):
    fake.update(cfg)
    w.use_model(object(), "fake")
    w.follow_check.setChecked(False)


def _out(viewer):
    return viewer.layers["cells SAM 2"].data


def test_click_and_box_preview_the_current_frame(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    viewer.dims.set_current_step(0, 3)
    w.points_layer.add([[3, 40, 40]])
    wait_idle(qtbot, w)
    out = _out(viewer)
    assert w.output_combo.currentText() == "cells SAM 2"
    assert out[3, 40, 40] == 1 and out[3].astype(bool).sum() == fake["session"]._result(3).masks.sum()
    assert not out[[0, 1, 2, 4]].any()
    w.obj_spin.setValue(2)
    add_box(w.boxes_layer, 3, 100, 100, 120, 130)
    wait_idle(qtbot, w)
    assert fake["session"].calls[-1] == ("box", 3, 2, [100.0, 100.0, 120.0, 130.0])
    assert (out[3, 100:121, 100:131] == 2).all()
    assert w.state.owned_ids == {1, 2}


def test_candidate_cycling_key(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 60, 60]])
    wait_idle(qtbot, w)
    area = _out(viewer)[0].astype(bool).sum()
    press(w.points_layer, "c")
    wait_idle(qtbot, w)
    assert _out(viewer)[0].astype(bool).sum() > area
    assert "candidate 2 of 3" in w.status_label.text()


def test_propagate_forward_progress_and_review_list(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake, absent=(8, 9))
    viewer.dims.set_current_step(0, 5)
    w.points_layer.add([[5, 40, 40]])
    w.obj_spin.setValue(2)
    w.points_layer.add([[5, 150, 150]])
    wait_idle(qtbot, w)
    w.follow_check.setChecked(True)
    w.propagate()
    assert not w.propagate_btn.isEnabled() and w.cancel_btn.isEnabled()  # running state shown
    wait_idle(qtbot, w)
    out = _out(viewer)
    assert not out[:5].any() and all(out[t].any() for t in range(5, 40))
    assert not (out[8] == 2).any() and (out[10] == 2).any()
    assert w.progress_bar.value() == 100 and "35 frames" in w.progress_label.text()
    assert "frames/s" in w.progress_label.text()
    assert fake["session"].calls[-1] == ("propagate", "forward", 5, None)
    assert viewer.dims.current_step[0] == 39  # followed the propagation
    items = [w.lost_list.item(i).text() for i in range(w.lost_list.count())]
    assert items == ["object 2 - frame 8 - absent", "object 2 - frame 9 - absent"]
    w.lost_list.itemDoubleClicked.emit(w.lost_list.item(1))
    assert viewer.dims.current_step[0] == 9
    assert w.propagate_btn.isEnabled() and not w.cancel_btn.isEnabled()


def test_backward_with_stop_frame(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    viewer.dims.set_current_step(0, 20)
    w.points_layer.add([[20, 40, 40]])
    w.direction_combo.setCurrentText("backward")
    w.range_check.setChecked(True)
    w.first_spin.setValue(15)
    w.last_spin.setValue(30)
    w.propagate()
    wait_idle(qtbot, w)
    out = _out(viewer)
    assert [t for t in range(40) if out[t].any()] == [15, 16, 17, 18, 19, 20]
    assert fake["session"].calls[-1] == ("propagate", "backward", 20, 15)


def test_both_directions_within_a_range(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    viewer.dims.set_current_step(0, 20)
    w.points_layer.add([[20, 40, 40]])
    w.direction_combo.setCurrentText("both")
    w.range_check.setChecked(True)
    w.first_spin.setValue(17)
    w.last_spin.setValue(24)
    w.propagate()
    wait_idle(qtbot, w)
    assert [t for t in range(40) if _out(viewer)[t].any()] == list(range(17, 25))
    assert fake["session"].calls[-1] == ("propagate", "both", 20, (17, 24))
    assert w.meter.total == 8


def test_clicks_during_a_propagation_wait_for_it(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake, delay=0.03)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 40, 40]])
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 2, timeout=10_000)
    w.obj_spin.setValue(3)
    w.points_layer.add([[30, 100, 100]])  # one worker at a time: this sync is queued
    assert w.runner.job.name == "propagate" and w.runner.pending == ["sync"]
    wait_idle(qtbot, w)
    calls = [c[0] for c in fake["session"].calls]
    assert calls.index("propagate") < len(calls) - 1 and fake["session"].calls[-1][:3] == ("points", 30, 3)
    assert (_out(viewer)[30] == 3).any()


def test_cancel_keeps_finished_frames_only(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake, delay=0.05)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 40, 40]])
    wait_idle(qtbot, w)
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 4, timeout=10_000)
    assert all(_out(viewer)[t].any() for t in range(4))  # written as they arrive, not at the end
    w.cancel()
    wait_idle(qtbot, w)
    got = [t for t in range(40) if _out(viewer)[t].any()]
    assert 4 <= len(got) < 15 and got == list(range(len(got)))
    assert w.meter.done == len(got)
    assert "Cancelled after" in w.progress_label.text()
    assert w.propagate_btn.isEnabled() and not w.cancel_btn.isEnabled()


def test_correction_on_a_propagated_frame_then_propagate_again(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 40, 40]])
    w.propagate()
    wait_idle(qtbot, w)
    drifted = _out(viewer)[12].copy()
    viewer.dims.set_current_step(0, 12)
    w.points_layer.add([[12, 200, 200]])  # correction click on frame 12
    wait_idle(qtbot, w)
    s = fake["session"]
    assert s.calls[-1][:3] == ("points", 12, 1)
    assert _out(viewer)[12, 200, 200] == 1 and not np.array_equal(_out(viewer)[12], drifted)
    w.propagate()
    wait_idle(qtbot, w)
    assert s.calls[-1] == ("propagate", "forward", 12, None)
    assert _out(viewer)[20, 200, 208] == 1  # carried on from the corrected frame


def test_deleting_prompts_clears_and_removes_objects(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    w.points_layer.add([[0, 40, 40]])
    w.obj_spin.setValue(2)
    w.points_layer.add([[0, 100, 100]])
    wait_idle(qtbot, w)
    w.points_layer.selected_data = {1}
    w.points_layer.remove_selected()
    wait_idle(qtbot, w)
    # clearing the last prompt removes the object in the engine; no separate remove_object call
    assert fake["session"].calls[-1] == ("clear", 0, 2) and fake["session"].obj_ids == [1]
    assert set(np.unique(_out(viewer)[0])) == {0, 1}
    assert w.state.owned_ids == {1}


def test_mask_prompts_from_a_labels_layer(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    gt = viewer.layers["cells ground truth"].data
    viewer.dims.set_current_step(0, 0)
    w.mask_combo.setCurrentIndex(w.mask_combo.findText("cells ground truth"))
    w.use_mask_prompts()
    wait_idle(qtbot, w)
    ids = sorted(int(i) for i in np.unique(gt[0]) if i)
    assert [c[2] for c in fake["session"].calls if c[0] == "mask"] == ids
    np.testing.assert_array_equal(_out(viewer)[0], gt[0])
    assert w.new_object() == max(ids) + 1


def test_other_labels_preserved_overwrite_option_and_undo(viewer, qtbot, fake):
    from .conftest import open_widget

    viewer.open_sample("napari-sam2", "cells_timelapse")
    existing = np.zeros((40, 256, 256), np.uint32)
    existing[:, 30:50, 30:50] = 7  # someone else's label under our object
    viewer.add_labels(existing, name="curated")
    w = open_widget(viewer)
    _setup(w, fake)
    w.output_combo.setCurrentIndex(w.output_combo.findText("curated"))
    viewer.dims.set_current_step(0, 0)
    w.obj_spin.setValue(8)
    w.points_layer.add([[0, 40, 52]])  # the object's disc overlaps label 7 on its left
    w.propagate()
    wait_idle(qtbot, w)
    out = viewer.layers["curated"].data
    assert (out[:, 30:50, 30:50] == 7).all()  # never painted over
    assert (out == 8).any() and set(np.unique(out)) == {0, 7, 8}
    before_undo = out.copy()
    layer = viewer.layers["curated"]
    layer.undo()  # the whole propagation is one undo step
    after = layer.data
    assert (after[1:] != 8).all() and (after[0] == 8).any()  # only the preview click remains
    layer.redo()
    np.testing.assert_array_equal(layer.data, before_undo)
    w.overwrite_check.setChecked(True)
    w.points_layer.add([[0, 36, 36]])
    wait_idle(qtbot, w)
    assert layer.data[0, 40, 36] == 8  # painted over 7 when asked
    assert w.output_combo.findText(NEW_OUTPUT) == 0


def test_prefetch_when_moving_to_a_frame(cells_widget, viewer, fake, qtbot):
    w = cells_widget
    _setup(w, fake)
    w.points_layer.add([[0, 40, 40]])
    wait_idle(qtbot, w)
    viewer.dims.set_current_step(0, 17)
    qtbot.waitUntil(lambda: 17 in fake["session"].prefetched, timeout=5000)
    wait_idle(qtbot, w)


def test_out_of_memory_is_explained_and_widget_recovers(cells_widget, viewer, fake, qtbot, notes, monkeypatch):
    w = cells_widget
    _setup(w, fake)
    w.points_layer.add([[0, 40, 40]])
    wait_idle(qtbot, w)

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        yield

    monkeypatch.setattr(fake["session"], "propagate", oom)
    w.propagate()
    wait_idle(qtbot, w)
    assert notes[-1][0] == "error" and "ran out of memory" in notes[-1][1] and "smaller model" in notes[-1][1]
    assert messages.OOM.split("(")[0] in w.status_label.text()
    assert w.propagate_btn.isEnabled() and not w.cancel_btn.isEnabled() and not w.state.running
