"""VideoSession behaviour: prompting, propagation ranges, corrections, objects, cancel."""

from __future__ import annotations

import threading

import numpy as np

from napari_sam2 import VideoSession


def run(session, **kw):
    return {r.frame: r for r in session.propagate(**kw)}


def test_click_returns_masks_of_all_objects_at_stack_resolution(model, stack):
    s = VideoSession(model, stack)
    r = s.add_points(3, 1, [[36, 26]], [1])
    assert r.frame == 3 and r.obj_ids == (1,)
    assert r.masks.shape == (1, 72, 96) and r.masks.dtype == bool and r.masks.any()
    r2 = s.add_box(3, 2, (20, 10, 50, 40))
    assert r2.obj_ids == (1, 2)
    np.testing.assert_array_equal(r2.masks[0], r.masks[0])  # object 1 unchanged
    assert r2.scores.shape == (2,) and ((0 <= r2.scores) & (r2.scores <= 1)).all()
    assert r2.present.dtype == bool and r2.iou.shape == (2,)


def test_forward_backward_both_cover_the_stack_once(model, stack):
    s = VideoSession(model, stack)
    s.add_points(5, 1, [[36, 30]], [1])
    fwd = [r.frame for r in s.propagate("forward")]
    assert fwd == list(range(5, 12))
    bwd = [r.frame for r in s.propagate("backward")]
    assert bwd == [5, 4, 3, 2, 1, 0]
    s2 = VideoSession(model, stack)
    s2.add_points(5, 1, [[36, 30]], [1])
    both = [r.frame for r in s2.propagate("both")]
    assert both == [5, 6, 7, 8, 9, 10, 11, 4, 3, 2, 1, 0]
    assert len(both) == len(set(both))


def test_both_equals_forward_then_backward(model, stack):
    a = VideoSession(model, stack)
    a.add_points(4, 1, [[36, 28]], [1])
    both = run(a, direction="both", return_logits=True)
    b = VideoSession(model, stack)
    b.add_points(4, 1, [[36, 28]], [1])
    sep = run(b, direction="forward", return_logits=True)
    sep.update({f: r for f, r in run(b, direction="backward", return_logits=True).items() if f != 4})
    for f in both:
        np.testing.assert_array_equal(both[f].logits, sep[f].logits)


def test_start_and_stop_limit_the_range(model, stack):
    s = VideoSession(model, stack)
    s.add_points(2, 1, [[36, 24]], [1])
    assert [r.frame for r in s.propagate("forward", start=2, stop=6)] == [2, 3, 4, 5, 6]
    assert [r.frame for r in s.propagate("forward", start=6)] == list(range(6, 12))
    assert [r.frame for r in s.propagate("backward", start=6, stop=4)] == [6, 5, 4]
    assert [r.frame for r in s.propagate("both", start=2, stop=(1, 3))] == [2, 3, 1]


def test_cancel_event_stops_before_the_next_frame_and_keeps_finished_work(model, stack):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    cancel = threading.Event()
    seen = []
    for r in s.propagate(cancel=cancel):
        seen.append(r.frame)
        if r.frame == 3:
            cancel.set()
    assert seen == [0, 1, 2, 3]
    # the session stays usable: continuing from frame 4 works and uses the kept memories
    rest = [r.frame for r in s.propagate(start=4)]
    assert rest == list(range(4, 12))


def test_stopping_iteration_leaves_a_consistent_session(model, stack):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    for r in s.propagate():
        if r.frame == 2:
            break
    assert s.frame_state(2, 1) is not None and s.frame_state(3, 1) is None
    ref = VideoSession(model, stack)
    ref.add_points(0, 1, [[36, 20]], [1])
    full = run(ref, return_logits=True)
    again = run(s, start=3, return_logits=True)
    np.testing.assert_allclose(again[5].logits, full[5].logits, atol=1e-4)


def test_corrections_stick_as_conditioning_frames(model, stack):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    run(s)
    corrected = s.add_points(6, 1, [[36, 32], [10, 10]], [1, 0])
    again = run(s, start=6, return_logits=True)
    np.testing.assert_array_equal(again[6].masks, corrected.masks)
    # the official default (corrections not conditioning) recomputes, and so overwrites, it
    o = VideoSession(model, stack, corrections_as_conditioning=False)
    o.add_points(0, 1, [[36, 20]], [1])
    run(o)
    corr = o.add_points(6, 1, [[36, 32], [10, 10]], [1, 0], return_logits=True)
    np.testing.assert_array_equal(corr.masks, corrected.masks)  # same correction result
    redo = run(o, return_logits=True)  # official start: the first prompted frame
    assert not np.array_equal(redo[6].logits, corr.logits)


def test_correction_updates_the_frame_at_once_using_memory(model, stack):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    tracked = run(s, return_logits=True)
    r = s.add_points(5, 1, [[36, 30]], [1], return_logits=True)
    fresh = VideoSession(model, stack)
    init = fresh.add_points(5, 1, [[36, 30]], [1], return_logits=True)
    # a click on a tracked frame uses the memory (and the previous mask), unlike a first click
    assert not np.allclose(r.logits, init.logits)
    assert not np.allclose(r.logits, tracked[5].logits)


def test_objects_can_be_added_removed_and_reprompted_any_time(model, stack):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    run(s, stop=5)
    s.add_box(4, 2, (20, 40, 50, 70))  # new object after tracking started
    res = run(s, start=4)
    assert all(r.obj_ids == (1, 2) for r in res.values())
    s.add_points(8, 2, [[30, 50]], [1])  # re-prompt object 2 later on
    s.remove_object(1)
    assert s.obj_ids == [2]
    res = run(s, start=8)
    assert all(r.obj_ids == (2,) for r in res.values())
    s.clear_prompts(4, 2)
    s.clear_prompts(8, 2)
    assert s.obj_ids == []


def test_multimask_candidates_of_a_single_click_can_be_cycled(model, stack):
    s = VideoSession(model, stack)
    first = s.add_points(3, 1, [[36, 26]], [1], return_logits=True)
    assert s.num_candidates(3, 1) == 3
    masks = {s.choose_candidate(3, 1, k).masks.tobytes() for k in range(3)}
    assert len(masks) > 1
    back = s.choose_candidate(3, 1, s.frame_state(3, 1).choice)
    assert back.masks.shape == first.masks.shape
    s.add_points(3, 1, [[36, 26], [36, 30]], [1, 1])
    assert s.num_candidates(3, 1) == 0  # two clicks give one mask


def test_mask_prompt_is_the_output_and_marks_the_object_present(model, stack):
    s = VideoSession(model, stack)
    mask = np.zeros(stack.shape[1:], bool)
    mask[26:46, 12:32] = True
    r = s.add_mask(2, 7, mask)
    assert r.present.tolist() == [True] and r.scores[0] > 0.99
    inter = (r.masks[0] & mask).sum() / mask.sum()
    assert inter > 0.95
    res = run(s)
    assert sorted(res) == list(range(2, 12)) and res[2].present[0]


def test_one_frame_stack_segments_and_propagates_trivially(model, stack):
    s = VideoSession(model, stack[:1])
    r = s.add_points(0, 1, [[36, 20]], [1])
    assert [x.frame for x in s.propagate("both")] == [0]
    assert r.masks.shape == (1, 72, 96)


def test_four_d_stack_propagates_along_z_for_each_time_point(model, make_stack):
    vol = np.stack([make_stack(6, seed=t) for t in range(3)])  # (T=3, Z=6, Y, X)
    s = VideoSession(model, vol, axis=1)
    assert s.num_frames == 6
    s.add_points((1, 2), 1, [[36, 24]], [1])
    s.add_points((2, 0), 1, [[36, 20]], [1])
    res = list(s.propagate("both"))
    by_index = {}
    for r in res:
        by_index.setdefault(r.index, []).append(r.frame)
    assert by_index == {(1,): [2, 3, 4, 5, 1, 0], (2,): [0, 1, 2, 3, 4, 5]}
    only = [(r.index, r.frame) for r in s.propagate("forward", start=(1, 4))]
    assert only == [((1,), 4), ((1,), 5)]


def test_result_reads_current_masks_without_computing(model, stack, monkeypatch):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    s.add_box(0, 2, (20, 40, 50, 70))
    tracked = run(s, stop=3, return_logits=True)
    monkeypatch.setattr(type(model), "encode_image", lambda *a: (_ for _ in ()).throw(AssertionError("computed")))
    again = s.result(2, return_logits=True)
    np.testing.assert_array_equal(again.logits, tracked[2].logits)
    only2 = s.result(2, [2])
    assert only2.obj_ids == (2,) and np.array_equal(only2.masks[0], tracked[2].masks[1])
    untracked = s.result(9)
    assert untracked.obj_ids == (1, 2) and not untracked.masks.any() and not untracked.present.any()
