"""Qt-free session state: owned ids, next free id, frames to review, candidates, prompt sync."""

import numpy as np

from napari_sam2._napari.controller import SessionState
from napari_sam2._napari.prompt_sync import CLEAR, REMOVE, SET, PromptTracker
from napari_sam2.engine.prompts import BoxPrompt, PointPrompt, PromptSet
from napari_sam2.engine.results import FrameResult


def _result(frame, ids, scores, present):
    n = len(ids)
    return FrameResult(
        frame=frame,
        obj_ids=tuple(ids),
        masks=np.zeros((n, 4, 4), bool),
        scores=np.asarray(scores, np.float32),
        present=np.asarray(present, bool),
        iou=np.ones(n, np.float32),
        object_score_logits=np.zeros(n, np.float32),
    )


def test_next_free_id_over_labels_session_and_layers():
    st = SessionState()
    assert st.next_free_id() == 1
    st.own([2, 5])
    assert st.next_free_id() == 6
    assert st.next_free_id(9) == 10  # max of the output labels
    assert st.next_free_id(3, {4, 12}) == 13  # ids used by prompt layers


def test_lost_frames_listed_and_cleared_by_a_good_result():
    st = SessionState(score_threshold=0.7)
    assert st.record(_result(3, [1, 2], [0.9, 0.2], [True, False]), (3,))
    assert st.record(_result(4, [1, 2], [0.6, 0.9], [True, True]), (4,))
    lost = st.lost_frames()
    assert [(f.obj_id, f.key, f.reason) for f in lost] == [(1, (4,), "low score 0.60"), (2, (3,), "absent")]
    assert lost[1].describe() == "object 2 - frame 3 - absent"
    assert not st.record(_result(3, [1, 2], [0.9, 0.2], [True, False]), (3,))  # nothing new
    assert st.record(_result(3, [2], [0.95], [True]), (3,))  # corrected
    assert [(f.obj_id, f.key) for f in st.lost_frames()] == [(1, (4,))]
    assert st.lost_frames(obj_id=2) == []


def test_candidates_cycle_and_reset():
    st = SessionState()
    assert [st.next_candidate((0,), 1, 3) for _ in range(4)] == [1, 2, 0, 1]
    st.reset_candidate((0,), 1)
    assert st.next_candidate((0,), 1, 3) == 1


def test_forget_and_reset():
    st = SessionState()
    st.own([1, 2])
    st.record(_result(0, [1, 2], [0.1, 0.1], [False, False]), (0,))
    st.forget_object(1)
    assert st.owned_ids == {2} and [f.obj_id for f in st.lost_frames()] == [2]
    st.running = True
    st.reset()
    assert not st.owned_ids and not st.lost_frames() and not st.running


def _pts(frame, obj, pts, labels):
    return PointPrompt(frame, obj, np.asarray(pts, np.float32), np.asarray(labels, np.int32))


def test_tracker_sends_only_changes():
    tr = PromptTracker()
    ps = PromptSet(points=[_pts(0, 1, [[5, 5]], [1]), _pts(4, 2, [[1, 1]], [1])])
    ops = tr.diff(ps)
    assert [(o.kind, o.key, o.obj_id) for o in ops] == [(SET, (0,), 1), (SET, (4,), 2)]
    tr.commit(ops)
    assert tr.diff(ps) == []
    # a second click of object 1 on frame 0 re-sends that (frame, object) only, both clicks together
    ps.points.append(_pts(0, 1, [[7, 7]], [0]))
    ops = tr.diff(ps)
    assert len(ops) == 1 and ops[0].kind == SET and ops[0].points.shape == (2, 2)
    assert ops[0].labels.tolist() == [1, 0] and ops[0].frame == 0
    tr.commit(ops)


def test_tracker_box_with_clicks_and_deletions():
    tr = PromptTracker()
    box = BoxPrompt(2, 1, np.array([0, 0, 5, 5], np.float32))
    ps = PromptSet(points=[_pts(2, 1, [[1, 1]], [1])], boxes=[box])
    ops = tr.diff(ps)
    assert ops[0].box is not None and ops[0].points is not None
    tr.commit(ops)
    # box deleted: re-send the clicks alone, telling the worker a box was there before
    ps.boxes.clear()
    (op,) = tr.diff(ps)
    assert op.kind == SET and op.box is None and op.had_box
    tr.commit([op])
    # all prompts of object 1 deleted: clear the frame, then remove the object
    ops = tr.diff(PromptSet())
    assert [(o.kind, o.obj_id) for o in ops] == [(CLEAR, 1), (REMOVE, 1)]
    tr.commit(ops)
    assert tr.sent_keys == []


def test_tracker_keeps_objects_with_mask_prompts_and_uncommits():
    tr = PromptTracker()
    tr.note_mask(3)
    ps = PromptSet(points=[_pts((1, 2), 3, [[1, 1]], [1])])
    ops = tr.diff(ps)
    assert ops[0].key == (1, 2) and ops[0].frame == (1, 2)
    tr.commit(ops)
    assert [o.kind for o in tr.diff(PromptSet())] == [CLEAR]  # no REMOVE: 3 has a mask prompt
    tr.uncommit(ops)
    assert tr.sent_keys == []
