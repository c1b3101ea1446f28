"""FrameResult -> Labels layer: only the session's ids are touched, other labels survive, undo works."""

import numpy as np
import pytest
from napari.layers import Labels

from napari_sam2._napari.labels_writer import LabelsWriter, merge_frame
from napari_sam2.engine.results import FrameResult


def _result(frame, masks: dict, index=(), key=()):
    ids = tuple(masks)
    stack = np.stack([masks[i] for i in ids]) if ids else np.zeros((0, 8, 8), bool)
    n = len(ids)
    return FrameResult(
        frame=frame,
        obj_ids=ids,
        masks=stack,
        scores=np.ones(n, np.float32),
        present=stack.reshape(n, -1).any(axis=1),
        iou=np.ones(n, np.float32),
        object_score_logits=np.ones(n, np.float32),
        index=index,
        key=key,
    )


def _box(r0, c0, r1, c1, shape=(8, 8)):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def test_merge_frame_keeps_other_ids_unless_asked():
    cur = np.zeros((4, 4), np.uint32)
    cur[0, :] = 7  # someone else's label
    cur[3, :] = 1  # our object's old pixels
    new = np.zeros((4, 4), np.uint32)
    new[0:2, 0:2] = 1
    out = merge_frame(cur, new, [1])
    assert out[0].tolist() == [7, 7, 7, 7]  # not painted over
    assert out[1].tolist() == [1, 1, 0, 0]
    assert out[3].tolist() == [0, 0, 0, 0]  # old pixels of object 1 cleared
    out = merge_frame(cur, new, [1], overwrite_other=True)
    assert out[0].tolist() == [1, 1, 7, 7]


def test_write_only_touches_owned_ids_and_preserves_others():
    data = np.zeros((5, 8, 8), np.uint32)
    data[2, 6:, 6:] = 9  # a Cellpose label
    data[2, 0, 0] = 1  # a stale pixel of object 1
    layer = Labels(data)
    w = LabelsWriter(layer)
    n = w.write(_result(2, {1: _box(1, 1, 3, 3), 2: _box(5, 5, 8, 8)}))
    frame = layer.data[2]
    assert frame[0, 0] == 0 and (frame[1:3, 1:3] == 1).all()
    assert (frame[6:, 6:] == 9).all()  # overlapped by object 2 but preserved
    assert frame[5, 5] == 2
    assert n == 1 + 4 + 5  # cleared stale pixel, object 1, object 2 where free
    assert (layer.data[[0, 1, 3, 4]] == 0).all()  # other frames untouched


def test_absent_object_is_erased_and_erase():
    data = np.zeros((3, 8, 8), np.uint32)
    layer = Labels(data)
    w = LabelsWriter(layer)
    w.write(_result(1, {3: _box(0, 0, 4, 4)}))
    w.write(_result(1, {3: np.zeros((8, 8), bool)}))
    assert not layer.data[1].any()
    w.write(_result(1, {3: _box(0, 0, 4, 4), 4: _box(4, 4, 6, 6)}))
    w.erase((1,), [3])
    assert set(np.unique(layer.data[1])) == {0, 4}


def test_nd_result_goes_to_its_outer_index():
    data = np.zeros((2, 3, 8, 8), np.uint16)  # T, Z, Y, X propagated along Z
    layer = Labels(data)
    w = LabelsWriter(layer)
    w.write(_result(2, {5: _box(0, 0, 2, 2)}, index=(1,), key=(1, 2)))  # frame 2 of time point 1
    assert layer.data[1, 2, 0, 0] == 5 and layer.data.sum() == 4 * 5


def test_shape_mismatch_is_an_error():
    layer = Labels(np.zeros((3, 8, 8), np.uint32))
    with pytest.raises(ValueError, match="does not fit"):
        LabelsWriter(layer).write(_result(0, {1: np.ones((6, 6), bool)}))


def test_undo_single_write_and_grouped_propagation():
    data = np.zeros((4, 8, 8), np.uint32)
    data[:, 7, 7] = 9
    layer = Labels(data)
    w = LabelsWriter(layer)
    w.write(_result(0, {1: _box(0, 0, 2, 2)}))  # a preview: its own undo step
    before = layer.data.copy()
    w.begin_group()
    for t in range(1, 4):
        w.write(_result(t, {1: _box(t, t, t + 2, t + 2)}))
    assert w.grouping
    w.end_group()
    assert layer.data[1:].astype(bool).sum() > 3
    layer.undo()  # one step undoes the whole propagation
    np.testing.assert_array_equal(layer.data, before)
    layer.undo()  # then the preview
    assert set(np.unique(layer.data)) == {0, 9}
    layer.redo()
    assert layer.data[0, 0, 0] == 1


def test_ids_beyond_the_layer_dtype_are_refused():
    layer = Labels(np.zeros((2, 8, 8), np.uint8), name="small")
    with pytest.raises(ValueError, match="does not fit the uint8 labels of 'small'"):
        LabelsWriter(layer).write(_result(0, {300: _box(0, 0, 2, 2)}))
    assert not layer.data.any()


def test_grouped_multi_frame_write_is_one_undo_step_and_redo_reapplies():
    """napari's public undo (``data_setitem`` inside ``block_history``), on every supported napari."""
    rng = np.random.default_rng(0)
    user = rng.integers(0, 3, size=(5, 8, 8)).astype(np.uint32) * 20  # the user's own labels 0 / 20 / 40
    layer = Labels(user.copy())
    layer.undo()  # nothing to undo yet: no change
    np.testing.assert_array_equal(layer.data, user)
    w = LabelsWriter(layer, overwrite_other=True)  # overwriting: the user's labels are in the undo items
    w.begin_group()
    for t in range(5):
        w.write(_result(t, {1: _box(t, 0, t + 3, 8), 2: _box(0, 5, 8, 7)}))
    w.end_group()
    after = layer.data.copy()
    assert (after != user).sum() > 5 * 8 and not w.grouping
    layer.undo()  # ONE step takes every frame back, exactly
    np.testing.assert_array_equal(layer.data, user)
    layer.undo()  # and there was no other step
    np.testing.assert_array_equal(layer.data, user)
    layer.redo()
    np.testing.assert_array_equal(layer.data, after)
    layer.redo()  # nothing more to redo
    np.testing.assert_array_equal(layer.data, after)
    w.end_group()  # closing a group twice is harmless
    w.write(_result(2, {1: np.zeros((8, 8), bool)}))  # outside a group: a step of its own
    layer.undo()
    np.testing.assert_array_equal(layer.data, after)
    layer.undo()
    np.testing.assert_array_equal(layer.data, user)
