"""The Qt-free review model: threshold applied on read, ranges, next to review, incremental updates."""

import numpy as np

from napari_sam2._napari.review import BYTES_PER_OBJECT_FRAME, ReviewModel, doubtful_pairs
from napari_sam2._napari.state import SessionState
from napari_sam2.engine.results import FrameResult


def _result(frame, ids, scores, present=None, index=(), key=()):
    n = len(ids)
    present = [s > 0.5 for s in scores] if present is None else present
    return FrameResult(frame=frame, obj_ids=tuple(ids), masks=np.zeros((n, 2, 2), bool),
                       scores=np.asarray(scores, np.float32), present=np.asarray(present, bool),
                       iou=np.full(n, 0.8, np.float32), object_score_logits=np.zeros(n, np.float32),
                       index=tuple(index), key=tuple(key))


def _brute(latest, threshold):
    """Doubtful (obj, (frame,)) pairs from {(obj, frame): (score, present)}."""
    return sorted((o, (f,)) for (o, f), (s, p) in latest.items() if not p or np.float32(s) < np.float32(threshold))


def test_threshold_rechecks_every_finished_frame_and_matches_a_full_recount():
    rng = np.random.default_rng(3)
    model, latest = ReviewModel(0.5), {}
    for _ in range(600):  # frames in any order, some written again (a correction, a second propagation)
        f = int(rng.integers(0, 150))
        ids = sorted(rng.choice(6, size=int(rng.integers(1, 6)), replace=False) + 1)
        scores = rng.random(len(ids))
        present = rng.random(len(ids)) > 0.1
        model.update(_result(f, ids, scores, present))
        latest.update({(int(o), f): (float(s), bool(p)) for o, s, p in zip(ids, scores, present)})
        if _ % 97 == 0:  # the incremental ranges equal the ranges recounted from the scores
            assert doubtful_pairs(model) == _brute(latest, model.threshold)
    for thr in (0.05, 0.3, 0.77, 1.0, 0.5):
        model.threshold = thr  # re-checks every finished frame, no new results
        assert doubtful_pairs(model) == _brute(latest, thr)
        assert model.take_changes() is None  # the view redraws everything once
    assert model.doubtful_count() == len(_brute(latest, 0.5))


def test_ranges_are_grouped_per_object_and_worded():
    model = ReviewModel(0.7)
    for f in range(100):
        s3 = 0.4 if 40 <= f <= 52 or f == 90 else 0.9
        model.update(_result(f, [3, 4], [s3, 0.9], [f != 45, True]))
    rows = [r.describe() for r in model.all_ranges()]
    assert rows == ["object 3 - frames 40-52 (13) - 1 absent, lowest score 0.40", "object 3 - frame 90 - low score 0.40"]
    model.update(_result(46, [3], [0.95]))  # a corrected frame splits the range
    assert [(r.first, r.last, r.count) for r in model.all_ranges()] == [(40, 45, 6), (47, 52, 6), (90, 90, 1)]
    model.update(_result(46, [3], [0.1], [False]))  # and merges it again
    assert [(r.first, r.last) for r in model.all_ranges()] == [(40, 52), (90, 90)]
    model.threshold = 0.3  # only absent frames are left
    assert [r.describe() for r in model.all_ranges()] == ["object 3 - frames 45-46 (2) - absent"]


def test_next_to_review_after_the_current_frame_wrapping():
    model = ReviewModel(0.5)
    for f in range(20):
        model.update(_result(f, [1, 2], [0.2 if f in (3, 4) else 0.9, 0.2 if f in (4, 15) else 0.9], [True, True]))
    assert model.next_to_review((0,)) == ((3,), 1)
    assert model.next_to_review((3,), after_obj=1) == ((4,), 1)
    assert model.next_to_review((4,), after_obj=1) == ((4,), 2)  # the other object on the same frame
    assert model.next_to_review((4,), after_obj=2) == ((15,), 2)
    assert model.next_to_review((15,), after_obj=2) == ((3,), 1)  # wraps to the first one
    assert model.next_to_review((4,)) == ((15,), 2)  # strictly after the frame shown
    model.threshold = 0.1
    assert model.next_to_review((0,)) is None


def test_update_is_incremental_and_memory_is_a_few_bytes_per_object_frame():
    model = ReviewModel(0.5)
    model.update(_result(0, [1, 2, 3], [0.2, 0.9, 0.9]))
    assert model.take_changes() == {(1, ())}  # only the object whose review changed
    model.update(_result(1, [1, 2, 3], [0.3, 0.9, 0.9]))
    assert model.take_changes() == {(1, ())}
    assert not model.update(_result(1, [1, 2, 3], [0.3, 0.9, 0.9]))  # the same scores again: nothing changed
    assert model.take_changes() == set()
    for f in range(2, 1000):
        model.update(_result(f, [1, 2, 3], [0.9, 0.9, 0.9]))
    assert model.tracks[(1, ())].length == 1024  # doubled from 16
    assert model.nbytes() <= 3 * 1000 * 2 * BYTES_PER_OBJECT_FRAME
    model.forget_object(1)
    assert model.take_changes() == {(1, ())}
    assert doubtful_pairs(model) == []


def test_nd_keys_and_the_session_state_view():
    model = ReviewModel(0.5)  # T x Z stack propagated along Z (axis 1): the key is (t, z)
    for z in range(5):
        model.update(_result(z, [1], [0.1 if z == 2 else 0.9], index=(7,), key=(7, z)))
    (r,) = model.all_ranges()
    assert (r.outer, r.first, r.key) == ((7,), 2, (7, 2)) and "sequence 7" in r.describe()
    assert model.next_to_review((7, 4)) == ((7, 2), 1)
    st = SessionState(score_threshold=0.7)
    st.record(_result(4, [1, 2], [0.6, 0.9]), (4,))
    assert [(f.obj_id, f.key, f.reason) for f in st.lost_frames()] == [(1, (4,), "low score 0.60")]
    st.score_threshold = 0.5
    assert st.review.threshold == 0.5 and st.lost_frames() == []
