"""With the built-in demo model the masks mean something: tests of what a user sees, not only of
the plumbing (the random test model tracks noise). The thresholds sit below the measured values
(in the comments) by a margin for other CPUs' arithmetic; the quality itself is in docs/benchmarks.md."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2 import MaskGenerator, VideoSession
from napari_sam2._napari.synthetic import make_cells_timelapse, make_ultrasound_clip
from napari_sam2.checkpoints import DEMO_MODEL
from napari_sam2.model.loading import load_model
from napari_sam2.train.quality import innermost, track_quality


@pytest.fixture(scope="module")
def demo():
    return load_model(DEMO_MODEL, device="cpu")


@pytest.fixture(scope="module")
def cells():
    return make_cells_timelapse(n_frames=12, seed=0)


def _j(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_click_on_a_cell_segments_that_cell_and_not_its_neighbours(demo, cells):
    labels = cells.labels[0]
    ids = [int(i) for i in np.unique(labels) if i]
    with VideoSession(demo, cells.image[:1]) as session:
        js = []
        for obj in ids:
            res = session.add_points(0, obj, np.array([innermost(labels == obj)]), [1])
            mask = res.masks[list(res.obj_ids).index(obj)]
            overlaps = {other: _j(mask, labels == other) for other in ids}
            assert max(overlaps, key=overlaps.get) == obj, (obj, overlaps)  # that cell, not a neighbour
            js.append(overlaps[obj])
    assert min(js) > THRESH["click_min"] and np.mean(js) > THRESH["click_mean"], js


def test_tracking_follows_the_clicked_cells_through_the_time_lapse(demo, cells):
    d = cells.events["divides"]
    q = track_quality(demo, cells.image, cells.labels, [(d["parent"], *d["daughters"], d["frame"])])
    assert q.mean_j > THRESH["track_cells"], q.j.mean(axis=1)


def test_tracking_follows_the_ultrasound_cavity(demo):
    clip = make_ultrasound_clip(n_frames=12, seed=0)
    q = track_quality(demo, clip.image, clip.labels)
    assert q.obj_ids == [1] and q.mean_j > THRESH["track_us"], q.j


def test_a_negative_click_removes_the_neighbour_a_loose_box_took(demo, cells):
    labels = cells.labels[0]
    a, b = 2, 3  # touching cells of the sample
    rows, cols = np.nonzero((labels == a) | (labels == b))
    box = [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]  # (row0, col0, row1, col1): both cells
    with VideoSession(demo, cells.image[:1]) as session:
        loose = session.add_box(0, a, box).masks[0]
        fixed = session.add_box(0, a, box, points=np.array([innermost(labels == b)]), labels=[0]).masks[0]
    spill_before, spill_after = (loose & (labels == b)).sum(), (fixed & (labels == b)).sum()
    assert spill_before > 0.2 * (labels == b).sum()  # measured: 166 of 529 px of the neighbour
    assert spill_after <= 0.1 * spill_before  # measured: 0
    assert _j(fixed, labels == a) > _j(loose, labels == a)  # measured: 0.645 -> 0.683


def test_segment_everything_finds_the_cells_of_the_sample(demo, cells):
    labels = cells.labels[0]
    found = MaskGenerator(demo, points_per_side=16, pred_iou_thresh=0.5, stability_score_thresh=0.8).generate(
        cells.image[0])
    ids = [int(i) for i in np.unique(labels) if i]
    matched = [obj for obj in ids if any(_j(o["segmentation"], labels == obj) > 0.5 for o in found)]
    assert len(matched) >= THRESH["everything"] * len(ids), (matched, ids, len(found))


# measured with the shipped model (2026-12-04, this CPU): click J min 0.918 / mean 0.947 (6 cells); tracking over
# 12 frames 0.667 on the cells (one cell divides; the model follows one daughter) and 0.960 on the cavity;
# segment everything (16 x 16 points) finds all 6 cells
THRESH = {"click_min": 0.85, "click_mean": 0.9, "track_cells": 0.55, "track_us": 0.85, "everything": 0.8}
