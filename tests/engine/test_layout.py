"""The one stack geometry (``engine.layout``): frame keys, the colour rule, frame counting, and the
same prompt rules for arrays, napari layers and the session."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Points, Shapes
from napari.layers.image._image_utils import guess_rgb as napari_guess_rgb

from napari_sam2 import VideoSession
from napari_sam2.engine.layout import StackLayout, coords_key, frame_key, guess_layout, guess_rgb
from napari_sam2.engine.prompt_arrays import build_prompts
from napari_sam2.engine.prompts import BoxPrompt, PointPrompt, PromptSet
from napari_sam2.errors import PromptError
from napari_sam2.layer_prompts import invalid_prompt_rows, prompts_from_layers


def test_frame_keys_are_tuples_of_all_leading_indices():
    assert frame_key(3) == (3,) and frame_key(np.int64(3)) == (3,) and frame_key((1, 2.0)) == (1, 2)
    assert PointPrompt(2, 1, np.zeros((1, 2)), np.ones(1)).frame == (2,)
    for bad in (0.5, "a", (1, np.nan), ()):
        with pytest.raises(PromptError, match="not an integer"):
            frame_key(bad)
    lay = StackLayout((2, 5, 16, 16), axis=1, rgb=False)
    assert lay.key((1, 4)) == (1, 4) and lay.split((1, 4)) == ((1,), 4) and lay.index((1,), 4) == (1, 4)
    with pytest.raises(PromptError, match="tuple of 2 indices"):
        lay.key(3)
    with pytest.raises(PromptError, match="Frame 5 is outside the stack"):
        lay.key((0, 5))
    with pytest.raises(PromptError, match="A prompt is on frame 5 but the stack has 5 frames"):
        lay.key((0, 5), prompt=True)
    with pytest.raises(PromptError, match="leading axis 0"):
        lay.key((2, 0))


def test_coords_key_refuses_shapes_across_frames_and_positions_between_frames():
    assert coords_key([2.004, 7.0], "point 0") == (2, 7)  # float noise of napari transforms
    assert coords_key([[1, 5], [1, 5], [1, 5]], "box 0") == (1, 5)
    with pytest.raises(PromptError, match="box 0 has vertices on different frames"):
        coords_key([[1, 5], [2, 5]], "box 0")
    with pytest.raises(PromptError, match="point 3 is between frames"):
        coords_key([1.4], "point 3")


@pytest.mark.parametrize("shape", [(40, 40, 3), (40, 40, 4), (5, 40, 40, 3), (40, 40, 5), (40, 3, 3),
                                   (10, 20, 64, 64), (3, 8, 64, 64, 3)])
def test_colour_rule_agrees_with_napari_on_real_frame_sizes(shape):
    assert guess_rgb(shape) == napari_guess_rgb(shape)


def test_colour_rule_keeps_small_colour_stacks_and_is_used_for_arrays():
    assert guess_rgb((4, 8, 8, 3))  # a (T, Y, X, C) stack of tiny frames is still colour
    assert not guess_rgb((4, 8, 3))  # 3-D with small axes: a stack of 8 x 3 frames, as napari says
    assert guess_layout(np.zeros((4, 8, 8, 3)), 0, None, None).rgb
    assert guess_layout(np.zeros((4, 8, 8, 3)), 0, False, None).leading == (0, 1)


@pytest.mark.parametrize(("direction", "start", "stop"), [("forward", 2, None), ("backward", 2, None),
                                                          ("both", 2, None), ("forward", 1, 3),
                                                          ("backward", 3, 1), ("both", 2, (1, 4))])
def test_counted_frames_are_the_frames_a_propagation_yields(model, direction, start, stop):
    stack = np.random.default_rng(0).integers(0, 255, (6, 32, 32), dtype=np.uint8)
    with VideoSession(model, stack) as session:
        session.add_points(start, 1, [[10, 10]], [1])
        keys = [r.key for r in session.propagate(direction, stop=stop)]
    assert len(keys) == session.layout.count_visits(direction, start, stop)
    assert all(len(k) == 1 for k in keys)


def test_in_page_order_and_counts_over_several_sequences():
    lay = StackLayout((2, 4, 16, 16), axis=1, rgb=False)  # (T, Z, Y, X) along Z
    ps = PromptSet(points=[PointPrompt((0, 1), 1, np.ones((1, 2)), np.ones(1)),
                           PointPrompt((1, 0), 1, np.ones((1, 2)), np.ones(1))])
    assert lay.starts(ps) == {(0,): 1, (1,): 0}
    assert lay.count_frames(ps, "forward") == 3 + 4 and lay.in_page_order(ps, "forward")
    across = StackLayout((2, 4, 16, 16), axis=0, rgb=False)  # along T: two Z sequences interleave pages
    ps_t = PromptSet(points=[PointPrompt((0, 1), 1, np.ones((1, 2)), np.ones(1)),
                             PointPrompt((0, 2), 1, np.ones((1, 2)), np.ones(1))])
    assert not across.in_page_order(ps_t, "forward")


def test_one_box_rule_for_arrays_layers_and_the_session(model):
    lay = StackLayout((3, 48, 64), 0, False)
    checked = lay.check_prompts(PromptSet(boxes=[BoxPrompt(1, 1, np.array([-5, -5, 10, 99.0]))]))
    np.testing.assert_array_equal(checked.boxes[0].box, [-0.5, -0.5, 10, 63.5])  # clipped, as arrays are
    stack = np.random.default_rng(1).integers(0, 255, (3, 48, 64), dtype=np.uint8)
    clipped = VideoSession(model, stack).add_box(1, 1, (-5, -5, 10, 99))
    same = VideoSession(model, stack).add_box(1, 1, (-0.5, -0.5, 10, 63.5))
    np.testing.assert_array_equal(clipped.masks, same.masks)
    for box in ([5, 5, 5, 9.0], [60, 70, 80, 90.0]):  # zero area; entirely outside
        with pytest.raises(PromptError):
            lay.check_prompts(PromptSet(boxes=[BoxPrompt(0, 1, np.array(box))]))


def test_only_rectangles_are_box_prompts_in_layers_and_arrays():
    tri = np.array([[0, 1, 1], [0, 5, 1], [0, 3, 6]], float)
    rect = np.array([[0, 1, 1], [0, 1, 6], [0, 5, 6], [0, 5, 1]], float)
    shapes = Shapes([rect, tri], shape_type=["rectangle", "polygon"], features={"obj_id": [1, 2]})
    rows, reasons = invalid_prompt_rows(shapes, (3, 48, 64))
    assert rows == [1] and "only rectangles can be box prompts" in reasons[0]
    with pytest.raises(PromptError, match="shape 1 is a polygon; only rectangles"):
        prompts_from_layers(shapes_layer=shapes)
    spanning = Shapes([np.array([[0, 1, 1], [0, 1, 6], [1, 5, 6], [1, 5, 1]], float)], shape_type="rectangle")
    rows, reasons = invalid_prompt_rows(spanning, (3, 48, 64))
    assert rows == [0] and "different frames" in reasons[0]
    with pytest.raises(PromptError, match="different frames"):
        build_prompts(StackLayout((3, 48, 64), 0, False), boxes=[spanning.data[0]])


def test_points_between_frames_are_flagged_not_rounded():
    pts = Points(np.array([[1.0, 5, 5], [1.5, 5, 5]]), features={"obj_id": [1, 1], "positive": [True, True]})
    rows, reasons = invalid_prompt_rows(pts, (3, 48, 64))
    assert rows == [1] and "between frames" in reasons[0]
    with pytest.raises(PromptError, match="between frames"):
        prompts_from_layers(points_layer=pts)
