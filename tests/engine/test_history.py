"""Every tracked frame's state is kept exactly (corrections and re-propagation anywhere match a
session that never moves anything off the device), while device state, host RAM and the number
of conditioning frames attention uses stay bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sam2 import VideoSession
from napari_sam2.engine.history import FrameStates, HistoryStore
from napari_sam2.engine.memory_bank import FrameState, ObjectTrack, closest_cond_frames
from napari_sam2.model.sam2 import MAX_OBJ_PTRS


def interactive_flow(session: VideoSession) -> dict:
    """Track, add an object late, correct a frame in the middle, re-propagate both ways."""
    out = {}

    def run(tag, *args, **kw):
        for r in session.propagate(*args, return_logits=True, **kw):
            out[(tag, r.frame)] = r.logits.copy()

    session.add_points(0, 1, [[36, 26]], [1])
    session.add_points(0, 2, [[30, 70]], [1])
    run("first")
    out["late"] = session.add_box(14, 3, (20, 40, 50, 70), return_logits=True).logits
    run("from 14", start=14)
    # 18 frames behind the last position: beyond the device window, so its history comes from the store
    out["fix"] = session.add_points(5, 1, [[36, 30], [10, 10]], [1, 0], return_logits=True).logits
    run("from 5", start=5)
    run("back from 5", "backward", start=5)
    return out


@pytest.mark.parametrize("as_cond", [True, False])
def test_corrections_in_the_middle_see_the_whole_history(model, make_stack, monkeypatch, as_cond):
    stack = make_stack(24)
    spilled = VideoSession(model, stack, history_ram_bytes=0, corrections_as_conditioning=as_cond)
    a = interactive_flow(spilled)
    assert spilled.history_bytes["disk"] > 0  # the old frames really went to the spill file
    with monkeypatch.context() as m:
        m.setattr(ObjectTrack, "prune", lambda self, position, max_cond: None)
        everything_on_device = VideoSession(model, stack, corrections_as_conditioning=as_cond)
        b = interactive_flow(everything_on_device)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))


def test_history_ram_stays_under_its_budget_and_spills_to_an_unnamed_file(model, make_stack):
    budget = 200_000  # about four 256-px frame states
    s = VideoSession(model, np.repeat(make_stack(4), 15, axis=0), history_ram_bytes=budget)
    s.add_points(0, 1, [[36, 20]], [1])
    ram = []
    for _ in s.propagate():
        ram.append(s.history_bytes["ram"])
    assert 0 < max(ram) <= budget
    tracked = s._clip(()).tracks[1].non_cond
    one_frame = next(iter(tracked.hot.values())).nbytes
    assert len(tracked) == 59 and len(tracked.hot) == MAX_OBJ_PTRS
    assert s.history_bytes["disk"] >= (59 - MAX_OBJ_PTRS - budget // one_frame) * one_frame
    files = [f.file for f in s._history._by_id]
    assert files and all(not f.closed for f in files)
    s.close()
    assert all(f.closed for f in files) and s.history_bytes == {"ram": 0, "disk": 0}


def test_store_round_trips_states_bit_for_bit_and_reuses_freed_records():
    store = HistoryStore(ram_bytes=0)
    states = FrameStates(10, store, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    made = {}
    for f in range(10):
        st = FrameState(torch.randn(1, 1, 8, 8, generator=g), torch.randn(1, 256, generator=g),
                        torch.randn(1, 1, generator=g), 0.25 * f,
                        maskmem=torch.randn(1, 64, 2, 2, generator=g).to(torch.bfloat16))
        if f == 4:  # a single click's candidates travel too
            st.candidates, st.choice = torch.randn(1, 3, 8, 8, generator=g), 2
        made[f] = st
        states[f] = st
    states.cool(lambda f: f == 9)
    assert list(states.hot) == [9] and len(states) == 10 and states.frames() == list(range(10))
    disk_full = store.disk_bytes
    for f in range(9):
        back = states.get(f)
        for name in ("low_res", "obj_ptr", "score", "maskmem", "candidates"):
            want, got = getattr(made[f], name), getattr(back, name)
            assert (want is None) == (got is None)
            if want is not None:
                assert got.dtype == want.dtype and torch.equal(got, want)
        assert back.iou == made[f].iou and back.choice == made[f].choice
    assert store.disk_bytes == 0
    states.cool(lambda f: f == 9)
    assert store.disk_bytes == disk_full
    assert all(f.count == len(set(range(f.count))) for f in store._by_id)
    assert sum(f.count for f in store._by_id) == 9  # freed records were reused, the files did not grow
    states.clear()
    assert len(states) == 0 and store.disk_bytes == 0


def test_closest_conditioning_frames_follow_the_official_rule():
    cond = [0, 40, 10, 25, 30, 5]
    assert closest_cond_frames(12, cond, -1) == (cond, [])
    assert closest_cond_frames(12, cond, 6) == (cond, [])
    chosen, rest = closest_cond_frames(12, cond, 3)
    assert chosen[:2] == [10, 25]  # closest before, closest at or after
    assert chosen == [10, 25, 5] and rest == [0, 40, 30]
    assert closest_cond_frames(30, cond, 2) == ([25, 30], [0, 40, 10, 5])


def test_many_corrections_keep_attention_and_device_memory_bounded(model, make_stack, monkeypatch):
    """More prompted frames than ``max_cond_frames_in_attn``: attention sees a bounded memory."""
    cap, n_prompted = 4, 40
    stack = np.repeat(make_stack(4), (n_prompted + 12) // 4, axis=0)
    s = VideoSession(model, stack, max_cond_frames_in_attn=cap, feature_cache_bytes=0)
    tokens = []
    orig = type(model).condition_on_memory

    def spy(self, feats, memory, memory_pos, num_ptr_tokens):
        tokens.append((memory.shape[1] - num_ptr_tokens, num_ptr_tokens))
        return orig(self, feats, memory, memory_pos, num_ptr_tokens)

    monkeypatch.setattr(type(model), "condition_on_memory", spy)
    for f in range(n_prompted):
        s.add_points(f, 1, [[36, 20 + f % 30]], [1])
    device = []
    for r in s.propagate(start=n_prompted - 1):
        device.append(s.state_bytes)
    hw = (model.image_size // 16) ** 2
    mem_frames = [m // hw for m, _ in tokens]
    assert len(mem_frames) == len(stack) - n_prompted
    assert max(mem_frames) <= cap + 6  # selected conditioning frames + the 6 recent memories
    assert max(p for _, p in tokens) <= (cap + MAX_OBJ_PTRS - 1) * 4
    tr = s._clip(()).tracks[1]
    assert len(tr.cond) == n_prompted and len(tr.cond.hot) <= cap
    biggest = max(st.nbytes for st in [*tr.cond.hot.values(), *tr.non_cond.hot.values()])
    assert max(device) <= (cap + MAX_OBJ_PTRS) * biggest
    with_all = VideoSession(model, stack[:8], max_cond_frames_in_attn=-1)
    assert with_all.max_cond_frames_in_attn == -1


@pytest.mark.parametrize("value", [0, 1, -2, 2.5])
def test_max_cond_frames_must_be_all_or_at_least_two(model, make_stack, value):
    from napari_sam2.errors import InputError

    with pytest.raises(InputError, match="-1 .all. or at least 2"):
        VideoSession(model, make_stack(4), max_cond_frames_in_attn=value)


def test_reading_results_and_clicking_far_frames_keep_device_state_bounded(model, make_stack):
    s = VideoSession(model, np.repeat(make_stack(4), 10, axis=0), history_ram_bytes=0)
    s.add_points(0, 1, [[36, 20]], [1])
    tracked = {r.frame: r.masks for r in s.propagate()}
    after_tracking = s.state_bytes
    for f in range(40):  # showing every frame again reads the stored outputs in place
        np.testing.assert_array_equal(s.result(f).masks, tracked[f])
    assert s.state_bytes == after_tracking
    tr = s._clip(()).tracks[1]
    for f in (5, 12, 20, 27):  # corrections far apart, no propagation in between
        s.add_points(f, 1, [[36, 24]], [1])
        assert len(tr.non_cond.hot) <= MAX_OBJ_PTRS * 2 - 1
    assert len(tr.non_cond) + len(tr.cond) >= 39  # nothing was lost
