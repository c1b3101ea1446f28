"""What goes beyond the official predictor (pruning, batching, caching) changes no result,
and per-object state stays bounded however long the stack is."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2 import VideoSession
from napari_sam2.engine import memory_bank
from napari_sam2.engine.memory_bank import ObjectTrack


def prompts(s):
    s.add_points(3, 1, [[36, 26]], [1])
    s.add_box(3, 2, (20, 40, 50, 70))
    s.add_points(10, 3, [[30, 60], [60, 10]], [1, 0])


def test_memory_pruning_changes_no_result(model, make_stack, monkeypatch):
    stack = make_stack(30)
    pruned = VideoSession(model, stack)
    prompts(pruned)
    a = {(r.frame, i): r.logits for i, r in enumerate(pruned.propagate("both", return_logits=True))}
    monkeypatch.setattr(ObjectTrack, "prune", lambda self, position: None)
    full = VideoSession(model, stack)
    prompts(full)
    b = {(r.frame, i): r.logits for i, r in enumerate(full.propagate("both", return_logits=True))}
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert pruned.state_bytes < 0.6 * full.state_bytes


def test_object_batching_matches_objects_run_one_by_one(model, make_stack, monkeypatch):
    stack = make_stack(10)
    calls = []
    batched = VideoSession(model, stack)
    orig = batched._clip(()).__class__._track_group

    def spy(self, feats, group, frame, reverse):
        calls.append(len(group))
        return orig(self, feats, group, frame, reverse)

    monkeypatch.setattr(batched._clip(()).__class__, "_track_group", spy)
    for obj, pt in ((1, [36, 26]), (2, [30, 60]), (3, [60, 80])):
        batched.add_points(0, obj, [pt], [1])
    together = {r.frame: r for r in batched.propagate(return_logits=True)}
    assert max(calls) == 3  # all three objects ran as one batch
    for obj, pt in ((1, [36, 26]), (2, [30, 60]), (3, [60, 80])):
        alone = VideoSession(model, stack)
        alone.add_points(0, obj, [pt], [1])
        for r in alone.propagate(return_logits=True):
            row = together[r.frame].obj_ids.index(obj)
            np.testing.assert_allclose(together[r.frame].logits[row], r.logits[0], atol=2e-3, rtol=1e-3)
            assert (together[r.frame].masks[row] != r.masks[0]).mean() < 1e-3


def test_image_encoder_runs_once_per_frame_whatever_the_number_of_objects(model, make_stack, monkeypatch):
    stack = make_stack(8)
    s = VideoSession(model, stack)
    count = {"n": 0}
    orig = type(model).encode_image

    def counting(self, x):
        count["n"] += 1
        return orig(self, x)

    monkeypatch.setattr(type(model), "encode_image", counting)
    for obj in range(1, 6):
        s.add_points(0, obj, [[36, 10 + 15 * obj]], [1])
    list(s.propagate())
    assert count["n"] == 8


@pytest.mark.parametrize("n_frames", [40, 120])
def test_per_object_state_is_bounded(model, make_stack, n_frames):
    s = VideoSession(model, np.repeat(make_stack(4), n_frames // 4, axis=0))
    s.add_points(0, 1, [[36, 20]], [1])
    sizes = []
    for r in s.propagate():
        tr = s._clip(()).tracks[1]
        sizes.append(len(tr.non_cond))
    # 15 pointers behind the tracking position plus 15 after the prompted frame, whatever the length
    assert max(sizes) <= 2 * (memory_bank.MAX_OBJ_PTRS - 1) + 1
    assert sizes[-1] == sizes[39]
    held = s._clip(()).tracks[1]
    with_mem = [f for f, st in held.non_cond.items() if st.maskmem is not None]
    assert len(with_mem) <= 2 * (memory_bank.NUM_MASKMEM - 1) + 1


def test_feature_cache_respects_its_budget(model, make_stack):
    s = VideoSession(model, make_stack(10), feature_cache_bytes=1)
    s.add_points(0, 1, [[36, 20]], [1])
    list(s.propagate())
    cache = s._clip(()).features
    assert len(cache._items) == 1  # only the newest frame is kept
    roomy = VideoSession(model, make_stack(10))
    roomy.add_points(0, 1, [[36, 20]], [1])
    list(roomy.propagate())
    assert len(roomy._clip(()).features._items) == 10
