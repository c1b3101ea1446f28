"""MaskGenerator ("segment everything") beyond the reference fixture: its parts worked out by hand,
its filters against brute force, its agreement with ImagePredictor, and its bad inputs."""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np
import pytest
import torch

from napari_sam2 import ImagePredictor, InputError, MaskGenerator
from napari_sam2.engine._amg_filter import (
    mask_boxes,
    nms,
    nms_one_class,
    remove_small_regions,
    stability_score,
)
from napari_sam2.engine._amg_grid import crop_boxes, layer_grids, point_grid

KEEP_ALL = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)


def disc_image(shape=(96, 128), dtype=np.uint8) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 30 + 180 * (((yy - 40) ** 2 + (xx - 60) ** 2) < 18**2) + 60 * ((yy > 70) & (xx < 30))
    return img.astype(dtype)


# ------------------------------------------------------------------ NMS
def brute_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Plain-loop greedy NMS written from the rule (float32 scalars, strict '>', ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    f = np.float32
    area = [f(f(b[2] - b[0]) * f(b[3] - b[1])) for b in boxes]
    removed, keep = set(), []
    for a, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            w = max(f(0), f(min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0])))
            h = max(f(0), f(min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1])))
            inter = f(w * h)
            den = f(f(area[i] + area[j]) - inter)
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = f(inter / den)
            if float(iou) > thr:
                removed.add(j)
    return keep


def test_nms_hand_cases():
    t = lambda *rows: torch.tensor(rows, dtype=torch.float32)  # noqa: E731
    same = t([0, 0, 10, 10], [0, 0, 10, 10])
    assert nms(same, t(0.5, 0.9), 0.7).tolist() == [1]  # the better one survives
    assert nms(same, t(0.5, 0.9), 1.0).tolist() == [1, 0]  # IoU 1 is not above 1: nothing is suppressed
    half = t([0, 0, 4, 1], [0, 0, 2, 1])  # intersection 2, union 4: IoU exactly 0.5
    assert nms(half, t(0.9, 0.8), 0.5).tolist() == [0, 1]  # equal to the threshold: kept
    assert nms(half, t(0.9, 0.8), 0.49).tolist() == [0]
    assert nms(t([0, 0, 5, 5], [0, 0, 5, 5], [9, 9, 12, 12]), t(0.7, 0.7, 0.7), 0.5).tolist() == [0, 2]  # ties
    flat = t([3, 0, 3, 5], [3, 0, 3, 5])  # zero area: IoU 0/0 suppresses nothing
    assert nms(flat, t(0.2, 0.1), 0.0).tolist() == [0, 1]
    # greedy: A removes B; C overlaps only B, so C stays
    chain = t([0, 0, 10, 10], [5, 0, 15, 10], [12, 0, 22, 10])
    assert nms(chain, t(0.9, 0.8, 0.7), 0.3).tolist() == [0, 2]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_brute_force(thr):
    rng = np.random.default_rng(int(thr * 10))
    for trial in range(12):
        n = int(rng.integers(1, 60))
        if trial % 3 == 0:  # integer boxes on a small grid: exact ties, zero areas
            xy = rng.integers(0, 12, (n, 2, 2)).astype(np.float32)
            scores = rng.integers(0, 4, n).astype(np.float32) / 4
        else:
            xy = (rng.random((n, 2, 2)) * 100).astype(np.float32)
            scores = rng.random(n).astype(np.float32)
        boxes = np.concatenate([xy.min(1), xy.max(1)], axis=1)
        got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
        assert got == brute_nms(boxes, scores, thr), (trial, thr)


def test_many_boxes_take_torchvisions_per_category_path_with_the_same_set():
    rng = np.random.default_rng(3)
    xy = rng.integers(0, 400, (1200, 2, 2)).astype(np.float32)
    boxes = torch.from_numpy(np.concatenate([xy.min(1), xy.max(1)], axis=1))
    scores = torch.from_numpy(rng.random(1200).astype(np.float32))
    keep = nms_one_class(boxes, scores, 0.5)  # 4800 coordinates > 4000
    assert set(keep.tolist()) == set(brute_nms(boxes.numpy(), scores.numpy(), 0.5))
    assert (np.diff(scores[keep].numpy()) <= 0).all()


# ---------------------------------------------------- grids, crops, filters
def test_point_grid_is_cell_centres_x_fastest():
    np.testing.assert_allclose(point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    assert [len(g) for g in layer_grids(5, 2, 2)] == [25, 4, 1]  # int(5 / 2**i) points a side


def test_crop_boxes_follow_the_official_formula():
    # 1024 x 1024, ratio 512/1500: layer 1 overlap int(0.3413 * 1024) = 349, side ceil((349 + 1024) / 2) = 687
    boxes, layers = crop_boxes(1024, 1024, 1, 512 / 1500)
    assert boxes == [[0, 0, 1024, 1024], [0, 0, 687, 687], [0, 338, 687, 1024],
                     [338, 0, 1024, 687], [338, 338, 1024, 1024]]
    assert layers == [0, 1, 1, 1, 1]
    # layer 2: overlap int(0.3413 * 1024 * 0.5) = 174, side ceil((3 * 174 + 1024) / 4) = 387, step 213
    boxes, layers = crop_boxes(1024, 1024, 2, 512 / 1500)
    assert len(boxes) == 21 and layers.count(2) == 16
    layer2 = [b for b, k in zip(boxes, layers) if k == 2]
    assert sorted({b[0] for b in layer2}) == [0, 213, 426, 639]
    assert sorted({b[2] for b in layer2}) == [387, 600, 813, 1024]  # the last crop is clipped at the image
    # 683 x 1024 (H x W): overlap int(0.3413 * 683) = 233, crop 458 high and 629 wide
    boxes, _ = crop_boxes(683, 1024, 1, 512 / 1500)
    assert boxes[1:] == [[0, 0, 629, 458], [0, 225, 629, 683], [396, 0, 1024, 458], [396, 225, 1024, 683]]


def test_stability_score_by_hand():
    logits = torch.tensor([[[2.0, 0.5], [-0.5, -2.0]], [[-3.0, -3.0], [-3.0, -3.0]]])
    s = stability_score(logits, 0.0, 1.0)
    assert s[0].item() == pytest.approx(1 / 3)  # one pixel above +1, three above -1
    assert torch.isnan(s[1])  # nothing above -1: 0 / 0, which no threshold keeps
    assert stability_score(logits[:1], 0.3, 0.4).item() == 0.5  # above 0.7: one pixel; above -0.1: two


def test_mask_boxes_are_inclusive_and_zero_when_empty():
    m = torch.zeros(2, 8, 9, dtype=torch.bool)
    m[0, 2, 3] = m[0, 5, 1] = True
    assert mask_boxes(m).tolist() == [[1, 2, 3, 5], [0, 0, 0, 0]]


def test_small_regions_fill_holes_and_drop_specks_8_connected():
    low = torch.full((1, 12, 12), -5.0)
    low[0, 2:9, 2:9] = 5.0
    low[0, 4, 4] = low[0, 5, 5] = -5.0  # a 2-pixel hole, diagonal: one 8-connected component
    low[0, 10, 10] = 5.0  # a 1-pixel speck
    out = remove_small_regions(low, 2, 0.0)
    assert out[0, 4, 4] == 10.0 and out[0, 5, 5] == 10.0 and out[0, 10, 10] == -10.0
    unchanged = torch.ones(12, 12, dtype=torch.bool)
    unchanged[4, 4] = unchanged[5, 5] = unchanged[10, 10] = False
    assert torch.equal(out[0][unchanged], low[0][unchanged])  # the big blob and background stay
    assert torch.equal(remove_small_regions(low, 1, 0.0)[0, 4, 4], low[0, 4, 4])  # a 2-px hole > 1
    assert remove_small_regions(low, 0, 0.0) is low


# ---------------------------------------------------------- the generator
@pytest.fixture(scope="module")
def keep_all(model):
    return MaskGenerator(model, points_per_side=3, **KEEP_ALL).generate(disc_image())


def test_records_are_consistent_napari_objects(keep_all):
    from skimage.measure import regionprops

    assert len(keep_all) == 27  # 9 clicks x 3 masks, nothing filtered
    for o in keep_all:
        seg = o["segmentation"]
        assert seg.dtype == bool and seg.shape == (96, 128)
        assert o["area"] == int(seg.sum())
        if o["area"]:
            assert o["bbox"] == regionprops(seg.astype(np.uint8))[0].bbox  # scikit-image convention
        assert o["crop_box"] == (0, 0, 96, 128)
        assert isinstance(o["predicted_iou"], float) and isinstance(o["stability_score"], float)
    ious = [o["predicted_iou"] for o in keep_all]
    assert ious == sorted(ious, reverse=True)  # NMS order: best first
    points = sorted({o["point"] for o in keep_all})
    want = sorted((96 * r, 128 * c) for r in (1 / 6, 1 / 2, 5 / 6) for c in (1 / 6, 1 / 2, 5 / 6))
    np.testing.assert_allclose(points, want, rtol=1e-6)  # grid cell centres, float32 like the official


def test_candidates_equal_the_image_predictor_at_each_click(model, keep_all):
    pred = ImagePredictor(model)
    pred.set_image(disc_image())
    for point in [(48.0, 64.0), (16.0, 21.333333333333332)]:
        mine = [o for o in keep_all if np.allclose(o["point"], point)]
        ref = pred.predict(np.array([point]), np.array([1]))
        assert len(mine) == 3
        for k in range(3):
            o = min(mine, key=lambda o: abs(o["predicted_iou"] - ref.iou[k]))
            assert abs(o["predicted_iou"] - float(ref.iou[k])) < 1e-5
            inter = (o["segmentation"] & ref.masks[k]).sum()
            union = (o["segmentation"] | ref.masks[k]).sum()
            assert union == 0 or inter / union > 0.99


def test_score_filters_and_nms_select_exactly_the_candidates_they_should(model, keep_all):
    ious = np.array([o["predicted_iou"] for o in keep_all])
    stab = np.array([o["stability_score"] for o in keep_all])
    t_iou, t_stab = float(np.median(ious)), float(np.median(stab))
    got = MaskGenerator(model, points_per_side=3, pred_iou_thresh=t_iou, stability_score_thresh=t_stab,
                        box_nms_thresh=1.0).generate(disc_image())
    want = {(o["point"], o["predicted_iou"]) for o in keep_all
            if o["predicted_iou"] > t_iou and o["stability_score"] >= t_stab}
    assert 0 < len(want) < len(keep_all)
    assert {(o["point"], o["predicted_iou"]) for o in got} == want
    boxes = np.array([[c0, r0, c1 - 1, r1 - 1] for r0, c0, r1, c1 in (o["bbox"] for o in keep_all)], np.float32)
    kept = brute_nms(boxes, ious.astype(np.float32), 0.7)
    got = MaskGenerator(model, points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                        box_nms_thresh=0.7).generate(disc_image())
    assert [(o["point"], o["predicted_iou"]) for o in got] == [(keep_all[i]["point"], keep_all[i]["predicted_iou"])
                                                               for i in kept]


def test_crops_m2m_grids_and_dtypes(model):
    img = disc_image((80, 112), np.uint16) * 50
    gen = MaskGenerator(model, points_per_side=2, crop_n_layers=1, use_m2m=True, pred_iou_thresh=0.0,
                        stability_score_thresh=0.0, box_nms_thresh=0.7, crop_nms_thresh=0.7)
    objs = gen.generate(img)
    boxes = {(y0, x0, y1, x1) for x0, y0, x1, y1 in crop_boxes(80, 112, 1, 512 / 1500)[0]}
    assert objs and len(gen.last_nms_calls) == 6  # one per crop, one across crops
    for o in objs:
        r0, c0, r1, c1 = o["crop_box"]
        assert (r0, c0, r1, c1) in boxes
        outside = o["segmentation"].copy()
        outside[r0:r1, c0:c1] = False
        assert not outside.any()  # a crop's mask lies inside its crop
    grid = MaskGenerator(model, points_per_side=None, point_grids=[np.array([[0.5, 0.25]])], **KEEP_ALL)
    assert {o["point"] for o in grid.generate(img)} == {(40.0, 28.0)}  # (row, col) fractions of the image


def test_constant_image_gives_no_objects_and_says_so(model, caplog):
    gen = MaskGenerator(model, points_per_side=2, **KEEP_ALL)
    with caplog.at_level(logging.INFO, logger="napari_sam2"):
        assert gen.generate(np.full((40, 50), 7, np.uint16)) == []
    assert "nothing to segment" in caplog.text
    assert gen.generate(np.zeros((40, 50, 3), np.uint8)) == []


def test_a_long_run_says_so_with_an_estimate_after_its_first_batch(model, monkeypatch):
    from napari_sam2.engine import mask_generator
    from napari_sam2.engine.everything import EverythingNotice

    gen = MaskGenerator(model, points_per_side=4, points_per_batch=4, **KEEP_ALL)
    with warnings_as_list() as caught:
        gen.generate(disc_image())  # quick: no notice
    assert not [w for w in caught if issubclass(w.category, EverythingNotice)]
    monkeypatch.setattr(mask_generator, "LONG_RUN_S", 0.0)  # every run is "long" now
    with pytest.warns(EverythingNotice, match=r"decodes 16 clicks in 1 crop\(s\): about \d+ min") as caught:
        gen.generate(disc_image())
    assert len([w for w in caught if issubclass(w.category, EverythingNotice)]) == 1  # said once per call


@contextlib.contextmanager
def warnings_as_list():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


@pytest.mark.parametrize("kwargs, words", [
    (dict(points_per_side=None), "exactly one of points_per_side"),
    (dict(point_grids=[np.array([[0.5, 0.5]])]), "exactly one of points_per_side"),
    (dict(output_mode="coco_rle"), "binary_mask"),
    (dict(points_per_side=0), "points_per_side must be >= 1"),
    (dict(points_per_side=2.5), "whole number"),
    (dict(points_per_batch=0), "points_per_batch"),
    (dict(pred_iou_thresh=80), "between 0 and 1"),
    (dict(box_nms_thresh=float("nan")), "box_nms_thresh"),
    (dict(crop_overlap_ratio=1.0), "below 1"),
    (dict(use_m2m="yes"), "True or False"),
    (dict(points_per_side=4, crop_n_layers=3, crop_n_points_downscale_factor=2), "no points"),
    (dict(points_per_side=None, point_grids=[np.array([[0.5, 0.5]])], crop_n_layers=1), "needs 2"),
    (dict(points_per_side=None, point_grids=[np.array([0.5, 0.5])]), "(N, 2)"),
    (dict(points_per_side=None, point_grids=[np.array([[1.5, 0.5]])]), "[0, 1]"),
])
def test_bad_settings_are_input_errors(model, kwargs, words):
    with pytest.raises(InputError, match=None) as err:
        MaskGenerator(model, **kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize("image, words", [
    (np.zeros(10), "2D image"),
    (np.zeros((2, 3, 40, 40)), "2D image"),
    (np.zeros((5, 40, 40)), "stack of 5 frames"),
    (np.array([["a"] * 4] * 4), "numeric"),
    (np.zeros((0, 40)), "non-empty"),
])
def test_bad_images_are_input_errors(model, image, words):
    with pytest.raises(InputError) as err:
        MaskGenerator(model, points_per_side=2).generate(image)
    assert words in str(err.value)
