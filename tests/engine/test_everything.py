"""Segment everything and track it all with the real engine (random-weights model): the masks a
generator finds become objects, later ones join where they appear, ended objects cost nothing,
and a session file replays the whole run. The generator here thresholds the frame it is given
(a real segmenter of these synthetic discs); SAM 2's own generator is tested in test_mask_generator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.measure import label

from napari_sam2.engine.everything import EverythingNotice, MaskFilter, uncovered
from napari_sam2.engine.video_session import VideoSession

T, H, W = 10, 64, 80
YY, XX = np.mgrid[:H, :W]


def two_cells(late: int = 5) -> np.ndarray:
    """A disc drifting right from frame 0, a second one that appears on frame ``late``."""
    rng = np.random.default_rng(3)
    frames = []
    for t in range(T):
        img = 30 + rng.normal(0, 5, (H, W))
        img[(YY - 20) ** 2 + (XX - 15 - 2 * t) ** 2 < 9**2] += 160
        if t >= late:
            img[(YY - 45) ** 2 + (XX - 55) ** 2 < 8**2] += 160
        frames.append(img)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


class Threshold:
    """Bright connected regions of the image it is given, largest first."""

    def __init__(self):
        self.seen = []

    def generate(self, image):
        self.seen.append(image.shape)
        lab = label(image[..., 0] > 120)
        return [{"segmentation": lab == k, "predicted_iou": float((lab == k).sum()) / lab.size}
                for k in range(1, lab.max() + 1)]


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_segment_everything_adds_each_mask_once(model):
    stack = two_cells(late=0)
    with VideoSession(model, stack) as s:
        gen = Threshold()
        ids = s.segment_everything(3, generator=gen)
        assert ids == [1, 2] and s.obj_ids == [1, 2]
        assert gen.seen == [(H, W, 3)]  # the frame at the stack's resolution, as RGB
        res = s.result(3)
        truth = [lab for lab in (label(stack[3] > 120) == k for k in (1, 2))]
        for m in res.masks:  # the mask prompts are the objects on that frame
            assert max(iou(m, t) for t in truth) > 0.8
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert s.segment_everything(3, generator=gen) == []  # all covered: nothing new
        assert any(issubclass(w.category, EverythingNotice) for w in caught)


def test_a_blank_frame_gives_a_notice_not_an_error(model):
    stack = np.full((4, 32, 32), 10, np.uint8)
    stack[0, 0, 0] = 11
    with VideoSession(model, stack) as s, pytest.warns(EverythingNotice, match="No new objects"):
        assert s.segment_everything(1, generator=Threshold()) == []


def test_mask_filter_rules():
    big = np.zeros((30, 30), bool)
    big[5:25, 5:25] = True
    small = np.zeros_like(big)
    small[8:12, 8:12] = True
    edge = np.zeros_like(big)
    edge[0:6, 10:20] = True
    objs = [{"segmentation": m, "predicted_iou": p} for m, p in ((big, 0.9), (small, 0.8), (edge, 0.95))]
    assert [m.sum() for m in MaskFilter().select(objs)] == [60, 400, 16]  # best predicted IoU first
    assert [m.sum() for m in MaskFilter(min_area=20, max_area=100).select(objs)] == [60]
    assert [m.sum() for m in MaskFilter(drop_border=True).select(objs)] == [400, 16]
    assert [m.sum() for m in MaskFilter(drop_nested=True).select(objs)] == [60, 16]  # the container goes
    with pytest.warns(EverythingNotice, match="max_objects"):
        assert len(MaskFilter(max_objects=2).select(objs)) == 2
    # a second mask of the same new object does not become an object of its own
    assert len(uncovered([big, small], np.zeros_like(big))) == 1


class LateCellOnly(Threshold):
    """Only the region where the second cell appears: the random-weights model's tracks are
    arbitrary, so the generator must not offer the first cell again for this test to be exact."""

    def generate(self, image):
        return [o for o in super().generate(image) if o["segmentation"][:, 40:].any()]


def test_discovery_finds_the_late_cell_and_leaves_the_first_track_unchanged(model, tmp_path):
    stack = two_cells(late=4)
    with VideoSession(model, stack) as plain:
        plain.add_mask(0, 1, label(stack[0] > 120) == 1)
        reference = [r.masks[0] for r in plain.propagate()]
    with VideoSession(model, stack) as s:
        s.add_mask(0, 1, label(stack[0] > 120) == 1)
        gen = LateCellOnly()
        out = list(s.propagate(discover_every=6, generator=gen))
        assert [r.frame for r in out] == list(range(T)) and len(gen.seen) == 1
        assert s.obj_ids == [1, 2]
        assert s.prompted_frames(2) == [(6,)]  # found on the discovery frame (6), not where it appeared (4)
        for r in out:
            assert np.array_equal(r.masks[0], reference[r.frame])  # the new object changes nothing else
            assert r.obj_ids == ((1, 2) if r.frame >= 6 else (1,)) or not r.masks[1].any()
        assert iou(out[6].masks[1], label(stack[6] > 120) == 2) > 0.8
        path = s.save(tmp_path / "run.sam2.json")
        final = [s.result(f).masks for f in range(T)]
    with VideoSession.load(path, model, stack) as again:  # the discovery run replays mask for mask
        for f in range(T):
            assert np.array_equal(again.result(f).masks, final[f])


def test_an_ended_object_is_skipped_and_a_new_prompt_resumes_it(model):
    stack = two_cells(late=0)
    with VideoSession(model, stack) as s:
        s.segment_everything(0, generator=Threshold())
        list(s.propagate())
        s.end_object(4, 2)
        assert not s.result(6).masks[1].any() and s.result(3).masks[1].any() == s.result(3).present[1]
        list(s.propagate(start=0))
        assert all(not s.result(f).masks[1].any() for f in range(4, T))  # not tracked any more
        s.add_points(7, 2, [[45, 55]], [1])
        list(s.propagate(start=7))
        assert s.result(8).obj_ids == (1, 2) and s.frame_state(8, 2) is not None  # tracked again


def test_filter_keywords_reach_the_filter_and_mixed_settings_are_refused(model):
    from napari_sam2.errors import InputError

    stack = two_cells(late=0)
    with VideoSession(model, stack) as s:
        sizes = sorted(int((label(stack[2] > 120) == k).sum()) for k in (1, 2))
        assert s.segment_everything(2, generator=Threshold(), min_area=sizes[0] + 1) == [1]  # the small one goes
        with pytest.raises(InputError, match="not both"):
            s.segment_everything(2, generator=Threshold(), mask_filter=MaskFilter(), min_area=5)
        with pytest.raises(InputError, match="to your generator"):
            s.segment_everything(2, generator=Threshold(), points_per_side=8)


def test_segment_video_everything_tracks_what_the_generator_finds(model):
    from napari_sam2.api import segment_video
    from napari_sam2.engine.lineage import Lineage
    from napari_sam2.engine.track_all import Everything
    from napari_sam2.errors import InputError

    stack = two_cells(late=4)
    lineage = Lineage()
    labels = segment_video(stack, model=model, lineage=lineage,
                           everything=Everything(generator=Threshold(), discover_every=6, divisions=True))
    assert labels.shape == stack.shape and labels.dtype == np.uint32
    with VideoSession(model, stack) as s:  # the same run by hand
        s.segment_everything(0, generator=Threshold())
        by_hand = list(s.propagate(discover_every=6, generator=Threshold(), divisions=True))
    assert len(by_hand) == T
    for r in by_hand:
        assert np.array_equal(labels[r.frame], r.to_labels(labels.dtype))
    assert not (labels[:6] == 2).any()  # the late cell is an object from frame 6 on
    with pytest.raises(InputError, match="forward"):
        segment_video(stack, model=model, direction="backward", everything=Everything(discover_every=3))
