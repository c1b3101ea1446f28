"""Qt-free parts of the widget: session state (owned ids, next free id, frames to review, candidates),
prompt sync, and the Sam2Controller driven through InlineWorkers on the real engine."""

import logging
from itertools import islice

import numpy as np
from napari.layers import Labels  # a layer object: no viewer, no Qt

from napari_sam2._napari import messages as M
from napari_sam2._napari.controller import Sam2Controller
from napari_sam2._napari.controller_view import ControllerView
from napari_sam2._napari.prompt_sync import CLEAR, REMOVE, SET, PromptTracker
from napari_sam2._napari.runner import InlineWorkers
from napari_sam2._napari.state import SessionState
from napari_sam2.engine.prompts import BoxPrompt, PointPrompt, PromptSet
from napari_sam2.engine.results import FrameResult
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import Cancelled, PromptError


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
    st.reset()  # (what runs is the job runner's to know, see the controller tests)
    assert not st.owned_ids and not st.lost_frames()


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
    assert ops[0].labels.tolist() == [1, 0] and ops[0].key == (0,)
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
    assert ops[0].key == (1, 2)
    tr.commit(ops)
    assert [o.kind for o in tr.diff(PromptSet())] == [CLEAR]  # no REMOVE: 3 has a mask prompt
    tr.uncommit(ops)
    assert tr.sent_keys == []


# ---- Sam2Controller without Qt: InlineWorkers run its jobs on this thread, on the real engine ------


def _stack(shape=(6, 48, 48)):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 0.05, shape).astype(np.float32)
    data[..., 14:30, 10:26] += 1.0
    return data


class View(ControllerView):
    """A view of plain objects: an array to segment, a PromptSet, a napari Labels layer; records reports."""

    def __init__(self, data, axis=0, output=None):
        self.data, self.axis, self.prompt_set = data, axis, PromptSet()
        lead = data.shape[:-2]
        self.layer = Labels(np.zeros(data.shape, np.uint32)) if output is None else output
        self.key = (0,) * len(lead)
        self.messages, self.statuses, self.phases, self.written_keys = [], [], [], []

    def stack(self):
        return self.data, self.axis, {}

    def prompts(self):
        return self.prompt_set

    def output(self, create):
        return self.layer

    def view_key(self):
        return self.key

    def status(self, text):
        self.statuses.append(text)

    def message(self, level, text):
        self.messages.append((level, text))

    def progress(self, done, total, text, phase):
        self.phases.append((phase, done, total, text))

    def written(self, result):
        self.written_keys.append(tuple(result.key))

    def go_to(self, key):
        self.key = key


def _controller(model, data, **kw):
    workers = InlineWorkers()
    view = View(data, **kw)
    ctrl = Sam2Controller(view, start=workers)
    ctrl.use_model(model)
    return ctrl, view, workers


def _click(frame, obj, row, col):
    return PointPrompt(frame, obj, np.array([[row, col]], np.float32), np.array([1], np.int32))


def test_controller_syncs_prompts_and_propagates_into_the_labels_at_result_keys(model):
    data = _stack()
    ctrl, view, workers = _controller(model, data)
    view.prompt_set = PromptSet(points=[_click((1,), 1, 20, 18)])
    ctrl.sync()
    assert ctrl.runner.running("open") and ctrl.runner.pending == ["sync"]
    workers.run()
    assert ctrl.session.obj_ids == [1] and ctrl.state.owned_ids == {1} and not ctrl.busy
    with VideoSession(model, data) as ref:
        preview = ref.add_points((1,), 1, np.array([[20.0, 18.0]]), [1])
        np.testing.assert_array_equal(view.layer.data[1], preview.to_labels())
        assert not np.delete(view.layer.data, 1, axis=0).any()
        view.key, ctrl.follow = (1,), True
        assert ctrl.propagate("forward", (1,), stop=4)
        workers.run()
        expected = list(ref.propagate("forward", start=(1,), stop=4))
    assert [r.key for r in expected] == [(1,), (2,), (3,), (4,)]
    for r in expected:
        np.testing.assert_array_equal(view.layer.data[r.key], r.to_labels(), err_msg=f"frame {r.key}")
    assert not view.layer.data[[0, 5]].any() and view.written_keys[-4:] == [(1,), (2,), (3,), (4,)]
    assert view.key == (4,)  # the view followed the propagation
    phases = [p for p, *_ in view.phases]
    assert phases == ["start", "frame", "frame", "frame", "frame", "done"]
    assert ctrl.meter.total == ctrl.meter.done == 4 and view.phases[-1][3].startswith("Propagated 4 frames")
    assert not ctrl.propagating and not ctrl.busy and view.messages == []
    view.layer.undo()  # the propagation is one undo step: the preview stays
    np.testing.assert_array_equal(view.layer.data[1], preview.to_labels())
    assert not np.delete(view.layer.data, 1, axis=0).any()


def test_controller_writes_nd_results_at_their_keys(model):
    data = _stack((2, 3, 40, 40))  # T, Z, Y, X propagated along Z
    ctrl, view, workers = _controller(model, data, axis=1)
    view.prompt_set = PromptSet(points=[_click((1, 0), 4, 20, 18)])
    ctrl.propagate("forward", (1, 0))
    workers.run()
    with VideoSession(model, data, axis=1) as ref:
        ref.add_points((1, 0), 4, np.array([[20.0, 18.0]]), [1])
        expected = list(ref.propagate("forward", start=(1, 0)))
    assert [r.key for r in expected] == [(1, 0), (1, 1), (1, 2)]
    for r in expected:
        np.testing.assert_array_equal(view.layer.data[r.key], r.to_labels())
    assert not view.layer.data[0].any() and ctrl.meter.done == 3


def test_cancel_mid_propagation_stops_at_once_and_the_session_is_reusable(model):
    data = _stack()
    ctrl, view, workers = _controller(model, data)
    view.prompt_set = PromptSet(points=[_click((0,), 1, 20, 18)])
    ctrl.propagate("forward", (0,))
    while ctrl.meter is None or ctrl.meter.done < 2:
        assert workers.step()
    assert ctrl.propagating
    ctrl.cancel()
    workers.run()
    written = [t for t in range(6) if view.layer.data[t].any()]
    assert ctrl.meter.done == 2 and written == [0, 1]  # not one frame more
    assert view.phases[-1][0] == "stopped" and view.phases[-1][3].startswith("Cancelled after 2 frames")
    assert not ctrl.propagating and not ctrl.busy and view.messages == []
    session = ctrl.session
    ctrl.propagate("forward", (0,))  # again, on the same session: runs through
    workers.run()
    assert ctrl.session is session and ctrl.meter.done == 6 and view.phases[-1][0] == "done"
    with VideoSession(model, data) as ref:
        ref.add_points((0,), 1, np.array([[20.0, 18.0]]), [1])
        list(islice(ref.propagate("forward", start=(0,)), 2))  # the same calls: broken off, then again
        for r in ref.propagate("forward", start=(0,)):
            np.testing.assert_array_equal(view.layer.data[r.key], r.to_labels())


def test_user_errors_arrive_as_their_own_message(model):
    data = _stack()
    wrong = Labels(np.zeros((6, 20, 20), np.uint32), name="other stack")
    ctrl, view, workers = _controller(model, data, output=wrong)
    view.prompt_set = PromptSet(points=[_click((0,), 1, 20, 18)])
    ctrl.sync()
    workers.run()
    ((level, text),) = view.messages
    assert level == "error" and "'other stack' has shape (6, 20, 20)" in text and "(6, 48, 48)" in text
    assert "unexpectedly" not in text and ctrl.session.obj_ids == []  # refused before the session was told
    assert not ctrl.propagate("forward", (0,))  # refused at once, one more message, no job
    assert len(view.messages) == 2 and not ctrl.busy and not ctrl.runner.pending

    view.layer = Labels(np.zeros(data.shape, np.uint32))  # the fix: a layer of the image's shape
    view.prompt_set = PromptSet(points=[_click((0,), 1, 20, 18), _click((0,), 2, 30, 60)])  # col 60: outside
    ctrl.sync()
    workers.run()
    level, text = view.messages[-1]
    assert level == "error" and text.startswith("SAM 2: ") and "unexpectedly" not in text
    assert ctrl.session.obj_ids == [1] and view.layer.data[0].any()  # the good click went through
    ctrl.propagate("forward", (9,))  # a start frame off the stack
    workers.run()
    level, text = view.messages[-1]
    assert level == "error" and "Frame 9 is outside the stack" in text and "unexpectedly" not in text
    assert view.phases == [] and not ctrl.busy


class BrokenView(View):
    """A view with a bug: it fails on the second frame written."""

    def written(self, result):
        super().written(result)
        if len(self.written_keys) == 2:
            raise RuntimeError("boom")


def test_a_bug_says_failed_unexpectedly_once_and_is_logged(model, caplog):
    data = _stack()
    workers = InlineWorkers()
    view = BrokenView(data)
    ctrl = Sam2Controller(view, start=workers)
    ctrl.use_model(model)
    view.prompt_set = PromptSet(points=[_click((0,), 1, 20, 18)])
    ctrl.sync()
    workers.run()
    with caplog.at_level(logging.ERROR, logger="napari_sam2"):
        ctrl.propagate("forward", (0,))
        workers.run()
    assert view.messages == [("error", "SAM 2 failed unexpectedly: RuntimeError: boom")]  # once, not per frame
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)
    assert view.phases[-1][0] == "stopped" and "Stopped by an error after" in view.phases[-1][3]
    assert view.written_keys == [(0,), (0,)] and not ctrl.busy  # stopped at once


def test_prompt_and_cancelled_errors_are_not_bugs():
    assert M.describe(PromptError("move the click")) == ("error", "SAM 2: move the click")
    assert M.describe(Cancelled("stopped"))[0] == "info"
    assert not M.is_bug(PromptError("x")) and M.is_bug(KeyError("x"))


def test_controller_reset_and_shutdown_release_the_session(model):
    ctrl, view, workers = _controller(model, _stack())
    view.prompt_set = PromptSet(points=[_click((0,), 3, 20, 18)])
    ctrl.sync()
    workers.run()
    session = ctrl.session
    assert ctrl.new_object_id() == 4 and ctrl.new_object_id(9) == 10
    ctrl.reset()
    assert ctrl.session is None and not ctrl.state.owned_ids and view.statuses[-1].startswith("Session reset")
    ctrl.sync()  # the prompts are sent again to a new session
    workers.run()
    assert ctrl.session is not session and ctrl.session.obj_ids == [3]
    ctrl.shutdown()
    assert ctrl.session is None and ctrl.closed
    ctrl.sync()
    workers.run()
    assert ctrl.session is None  # a closed controller reports nothing and opens nothing
