"""Segment everything, track everything and the object panel in a real viewer (real engine with the
random-weights model, real worker threads). Where the test needs known masks, the generator is a
stub segmenter injected through ``controller.mask_source_factory``: it thresholds the frame the
engine hands it and returns each bright connected part as a mask (so it sees what the model sees).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_sam2._napari.object_export import export_paths
from napari_sam2.engine.mask_generator import MaskGenerator

from .conftest import open_widget, wait_idle

T, H, W = 8, 64, 64


class Threshold:
    """A stub generator: every bright (> 128) connected part of the frame, in the official dict format."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, image):
        self.calls += 1
        lab, n = ndimage.label(np.asarray(image)[..., 0] > 128)
        return [{"segmentation": lab == i, "area": int((lab == i).sum()), "predicted_iou": 1.0 - 0.01 * i,
                 "stability_score": 1.0} for i in range(1, n + 1)]


def stack(late_from: int | None = None, blank: bool = False) -> np.ndarray:
    """uint8 (T, H, W): two discs (a third from ``late_from`` on); all zero with ``blank``."""
    data = np.full((T, H, W), 10, np.uint8)
    if blank:
        return data * 0
    yy, xx = np.mgrid[:H, :W]
    for t in range(T):
        data[t][(yy - 16) ** 2 + (xx - 16) ** 2 < 40] = 230
        data[t][(yy - 16) ** 2 + (xx - 46) ** 2 < 40] = 230
        if late_from is not None and t >= late_from:
            data[t][(yy - 48) ** 2 + (xx - 32) ** 2 < 50] = 230
    return data


@pytest.fixture
def open_stack(viewer, qtbot, model):
    widgets = []

    def make(data, stub=True):
        viewer.add_image(data, name="discs")
        w = open_widget(viewer)
        w.use_model(model, "random test model")
        w.follow_check.setChecked(False)
        viewer.dims.set_current_step(0, 0)  # segment everything on frame 0
        gen = Threshold()
        if stub:
            w.controller.mask_source_factory = lambda model, settings: gen
        widgets.append(w)
        return w, gen

    yield make
    for w in widgets:
        w.cancel()
        wait_idle(qtbot, w)


def settle(qtbot, w):
    wait_idle(qtbot, w)
    w.everything.objects.refresh()


def out(viewer):
    return viewer.layers["discs SAM 2"].data


def test_segment_everything_fills_the_labels_and_the_object_list(open_stack, viewer, qtbot):
    w, gen = open_stack(stack())
    assert w.everything.segment()
    settle(qtbot, w)
    assert gen.calls == 1 and sorted(w.session.obj_ids) == [1, 2]
    labels = out(viewer)[0]
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[16, 16] != labels[16, 46] and labels[16, 16] > 0
    panel = w.everything.objects
    assert [(r.obj_id, r.covered) for r in panel.rows] == [(1, 1), (2, 1)]
    swatch = panel.colour(1)
    assert swatch is not None and swatch[3] > 0
    assert "2 new objects" in w.status_label.text()
    # a second run adds nothing new: the masks are covered by the objects there
    w.everything.segment()
    settle(qtbot, w)
    assert sorted(w.session.obj_ids) == [1, 2]


def test_real_mask_generator_runs_and_writes_labels(open_stack, viewer, qtbot):
    w, _ = open_stack(stack(), stub=False)
    w.everything.points.setValue(4)
    w.everything.extra_generator_settings.update(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    made = []
    w.controller.mask_source_factory = lambda model, settings: made.append(settings) or MaskGenerator(model,
                                                                                                       **settings)
    w.everything.segment()
    wait_idle(qtbot, w)
    assert made == [{"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}]
    assert w.session.obj_ids and out(viewer)[0].any()
    assert set(np.unique(out(viewer)[0])) - {0} <= set(w.session.obj_ids)


def test_blank_frame_says_no_objects(open_stack, viewer, qtbot, notes):
    w, gen = open_stack(stack(blank=True))
    w.everything.segment()
    wait_idle(qtbot, w)
    assert gen.calls == 1 and not w.session.obj_ids
    assert any(level == "info" and "No new objects found on frame 0" in text for level, text in notes)
    assert not any(level == "error" for level, _ in notes)


def test_discovery_adds_an_object_that_appears_later(open_stack, viewer, qtbot):
    w, gen = open_stack(stack(late_from=4))
    w.everything.segment()
    wait_idle(qtbot, w)
    assert sorted(w.session.obj_ids) == [1, 2]
    w.everything.discover.setValue(2)
    w.propagate()
    settle(qtbot, w)
    new = [i for i in w.session.obj_ids if i not in (1, 2)]
    assert gen.calls >= 3  # frame 0, then every 2 frames
    assert new and any(w.session.prompted_frames(i) == [(4,)] for i in new)
    born = out(viewer)[4][48, 32]
    assert born in new and w.session.prompted_frames(born) == [(4,)] and not (out(viewer)[:4] == born).any()
    assert "Propagated" in w.progress_label.text()
    assert born in {r.obj_id for r in w.everything.objects.rows}


def test_backward_with_tracking_options_is_refused(open_stack, qtbot, notes):
    w, _ = open_stack(stack())
    w.everything.segment()
    wait_idle(qtbot, w)
    w.everything.divisions.setChecked(True)
    w.direction_combo.setCurrentText("backward")
    w.propagate()
    wait_idle(qtbot, w)
    assert any("run forward" in text for _, text in notes)


def test_merge_then_split_gives_two_daughters_with_lineage(open_stack, viewer, qtbot):
    w, _ = open_stack(stack())
    w.everything.segment()
    settle(qtbot, w)
    panel = w.everything.objects
    panel.select_row(2)
    panel.merge_combo.setCurrentIndex(panel.merge_combo.findData(1))
    panel.merge_btn.click()
    settle(qtbot, w)
    labels = out(viewer)[0]
    assert labels[16, 16] == 1 and labels[16, 46] == 1, w.status_label.text() and not (labels == 2).any()
    panel.select_row(1)
    panel.split_btn.click()
    settle(qtbot, w)
    lineage = w.session.lineage
    daughters = lineage.daughters_of(1)
    assert len(daughters) == 2 and all(lineage.parent_of(d) == 1 for d in daughters)
    labels = out(viewer)[0]
    assert not (labels == 1).any() and {labels[16, 16], labels[16, 46]} == set(daughters)
    rows = {r.obj_id: r for r in panel.rows}
    assert rows[1].lineage_text == f"-> {daughters[0]}, {daughters[1]}"
    assert rows[daughters[0]].lineage_text == "from 1"
    colours = {tuple(panel.colour(d)) for d in daughters}
    assert len(colours) == 2  # own ids, own colours
    # a split of an object in one piece is refused with one message
    panel.select_row(daughters[0])
    panel.split_btn.click()
    wait_idle(qtbot, w)
    assert "nothing to split" in w.status_label.text()


def test_select_clear_hide_and_delete(open_stack, viewer, qtbot):
    w, _ = open_stack(stack())
    w.everything.segment()
    settle(qtbot, w)
    panel = w.everything.objects
    panel.select_row(2)
    panel.select_btn.click()
    assert w.obj_spin.value() == 2
    panel.hide_btn.click()
    layer = viewer.layers["discs SAM 2"]
    assert layer.colormap.map(np.array([2], layer.data.dtype))[0][3] == 0
    assert layer.colormap.map(np.array([1], layer.data.dtype))[0][3] > 0
    panel.select_row(2)
    panel.hide_btn.click()
    assert layer.colormap.map(np.array([2], layer.data.dtype))[0][3] > 0
    panel.select_row(1)
    panel.clear_btn.click()
    settle(qtbot, w)
    assert not (out(viewer)[0] == 1).any() and (out(viewer)[0] == 2).any()
    assert 1 in w.session.obj_ids  # cleared on this frame only
    panel.select_row(2)
    panel.delete_btn.click()
    settle(qtbot, w)
    assert 2 not in w.session.obj_ids and not (out(viewer) == 2).any()
    assert [r.obj_id for r in panel.rows] == [1]


def test_export_writes_labels_and_objects_that_read_back(open_stack, viewer, qtbot, tmp_path):
    w, _ = open_stack(stack())
    w.everything.segment()
    settle(qtbot, w)
    w.direction_combo.setCurrentText("forward")
    w.propagate()
    settle(qtbot, w)
    tif, table, lineage = w.everything.objects.export(str(tmp_path / "result.tif"))
    assert (tif, table) == export_paths(tmp_path / "result.tif")
    assert lineage.read_text().splitlines() == ["parent_id,daughter_id,frame"]  # nothing divided
    np.testing.assert_array_equal(tifffile.imread(tif), out(viewer))
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    data = out(viewer)
    expected = sum(len(set(np.unique(data[t])) - {0}) for t in range(T))
    assert len(rows) == expected
    first = [r for r in rows if r["frame"] == "0" and r["obj_id"] == "1"][0]
    assert int(first["area_px"]) == int((data[0] == 1).sum()) and first["present"] == "True"
    w.everything.objects.export(str(tmp_path / "result.tif"))  # exists: refused, nothing overwritten
    assert "already exists" in w.status_label.text()


def test_cancel_a_track_everything_run(open_stack, viewer, qtbot):
    w, gen = open_stack(np.concatenate([stack(late_from=4)] * 4))
    w.everything.segment()
    wait_idle(qtbot, w)
    w.everything.discover.setValue(1)
    w.propagate()
    qtbot.waitUntil(lambda: w.meter is not None and w.meter.done >= 1, timeout=60_000)
    w.cancel_btn.click()
    wait_idle(qtbot, w)
    assert "Cancelled after" in w.progress_label.text()
    done = w.meter.done
    assert done < 4 * T and not out(viewer)[done + 2:].any()
    assert w.propagate_btn.isEnabled() and not w.controller.propagating
