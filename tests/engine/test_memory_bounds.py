"""What goes beyond the official predictor (moving history off the device, batching, caching)
changes no result, and device state per object stays bounded however long the stack is."""

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
    """Moving frames off the device (to RAM, or straight to the spill file) is bit-exact."""
    stack = make_stack(30)
    runs = {}
    for name, ram in (("ram", 2**30), ("disk", 0)):
        pruned = VideoSession(model, stack, history_ram_bytes=ram)
        prompts(pruned)
        runs[name] = {(r.frame, i): r.logits for i, r in enumerate(pruned.propagate("both", return_logits=True))}
        runs[name + "_bytes"] = pruned.state_bytes
        runs[name + "_history"] = pruned.history_bytes
    monkeypatch.setattr(ObjectTrack, "prune", lambda self, position, max_cond: None)
    full = VideoSession(model, stack)
    prompts(full)
    b = {(r.frame, i): r.logits for i, r in enumerate(full.propagate("both", return_logits=True))}
    for name in ("ram", "disk"):
        a = runs[name]
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        assert runs[name + "_bytes"] < 0.6 * full.state_bytes
    assert runs["ram_history"]["ram"] > 0 and runs["ram_history"]["disk"] == 0
    assert runs["disk_history"]["ram"] == 0 and runs["disk_history"]["disk"] > 0
    assert full.history_bytes == {"ram": 0, "disk": 0}


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
    sizes, device_bytes = [], []
    for r in s.propagate():
        tr = s._clip(()).tracks[1]
        sizes.append(len(tr.non_cond.hot))
        device_bytes.append(s.state_bytes)
    # on the device: the 15 pointer frames behind the tracking position, whatever the length
    assert max(sizes) == memory_bank.MAX_OBJ_PTRS
    assert sizes[-1] == sizes[39] and device_bytes[-1] == device_bytes[39]
    held = s._clip(()).tracks[1]
    # ... and every tracked frame is still held (off the device), as in the official predictor
    assert held.non_cond.frames() == list(range(1, n_frames))


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
