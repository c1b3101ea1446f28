"""The randomised training / held-out scenes, the learning-rate schedule and the quality protocol's parts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2.train.finetune import TrainSettings, learning_rate
from napari_sam2.train.quality import innermost, lineage_targets
from napari_sam2.train.synthetic import HELD_OUT_SCENES, TRAIN_SCENES, random_cells_clip, random_ultrasound_clip


def _frames_of(labels: np.ndarray, i: int) -> np.ndarray:
    return np.flatnonzero((labels == i).reshape(len(labels), -1).any(axis=1))


def test_scenes_are_deterministic_and_differ_by_seed():
    a, b, c = random_cells_clip(3, n_frames=4), random_cells_clip(3, n_frames=4), random_cells_clip(4, n_frames=4)
    assert a.image.dtype == np.uint16 and a.labels.dtype == np.int32 and a.image.shape == (4, 256, 256)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    u, v = random_ultrasound_clip(3, n_frames=4), random_ultrasound_clip(3, n_frames=4)
    assert u.image.dtype == np.uint8 and np.array_equal(u.image, v.image)
    assert TRAIN_SCENES != HELD_OUT_SCENES


def test_cells_are_brighter_than_background_and_keep_their_ids():
    v = random_cells_clip(7, n_frames=8, size=192)
    assert v.image.shape == (8, 192, 192)
    cells, background = v.image[v.labels > 0].mean(), v.image[v.labels == 0].mean()
    assert cells > background * 1.2
    for i in np.unique(v.labels)[1:]:
        t = _frames_of(v.labels, i)
        assert np.all(np.diff(t) == 1), f"id {i} disappears and comes back: {t}"  # one contiguous life


def test_a_division_ends_the_parent_where_two_daughters_start():
    seeds = [s for s in range(40) if random_cells_clip(s, n_frames=3, size=64).events["divides"]]
    assert seeds, "some scenes must divide (divide_p = 0.3)"
    v = random_cells_clip(seeds[0], n_frames=10)
    ((parent, d1, d2, t_div),) = v.events["divides"]
    if _frames_of(v.labels, parent).size:  # the parent may be off-frame
        assert _frames_of(v.labels, parent).max() < t_div
    for d in (d1, d2):
        t = _frames_of(v.labels, d)
        assert t.size == 0 or t.min() >= t_div
    assert parent not in (d1, d2) and d1 != d2


def test_ultrasound_cavities_are_dark_and_inside_the_fan():
    for seed in range(4):
        v = random_ultrasound_clip(seed, n_frames=4, settings=HELD_OUT_SCENES)
        fan = v.events["fan_mask"]
        ids = np.unique(v.labels)[1:]
        assert 1 <= len(ids) <= 2
        assert not (v.labels[:, ~fan] > 0).any()
        inside, tissue = v.image[v.labels > 0].mean(), v.image[:, fan][v.labels[:, fan] == 0].mean()
        assert inside < tissue * 0.6


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    s = TrainSettings(steps=100, lr=1e-3, warmup=10, schedule="cosine")
    rates = [learning_rate(s, k) for k in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert learning_rate(TrainSettings(lr=2e-5), 500) == 2e-5  # constant by default
    with pytest.raises(Exception, match="schedule"):
        TrainSettings(schedule="linear")


def test_innermost_point_and_lineage_targets():
    m = np.zeros((20, 30), bool)
    m[2:8, 2:8] = True  # a small square and a large one: the point is in the large one's middle
    m[5:18, 12:28] = True
    r, c = innermost(m)
    assert r == 11 and 18 <= c <= 21  # as far as can be from every edge (7 px); ties along the row
    labels = np.zeros((3, 4, 4), np.int32)
    labels[0, 0, 0] = 4
    labels[1:, 0, 0], labels[1:, 3, 3] = 8, 9
    t = lineage_targets(labels, 4, [(4, 8, 9, 1)])
    assert t[0, 0, 0] and t[1, 0, 0] and t[2, 3, 3] and t.sum() == 5
