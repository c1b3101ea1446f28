"""Layer adapters: Points / Shapes / Labels layers -> PromptSet, in the image's data coordinates."""

import numpy as np
import pytest
from napari.layers import Image, Labels, Points, Shapes

from napari_sam2._napari.layers import labels_shape
from napari_sam2.layer_prompts import layer_obj_ids, mask_prompts, prompts_from_layers
from napari_sam2.errors import PromptError


def _points(data, obj, pos, **kw):
    return Points(
        np.asarray(data, float),
        features={"obj_id": np.asarray(obj, int), "positive": np.asarray(pos, bool)},
        **kw,
    )


def test_points_grouped_per_frame_and_object():
    pts = _points([[0, 10, 20], [0, 12, 22], [3, 5, 6], [0, 1, 1]], [1, 1, 1, 2], [True, False, True, True])
    ps = prompts_from_layers(points_layer=pts)
    got = {(p.frame, p.obj_id): (p.points.tolist(), p.labels.tolist()) for p in ps.points}
    assert got == {
        ((0,), 1): ([[10, 20], [12, 22]], [1, 0]),
        ((0,), 2): ([[1, 1]], [1]),
        ((3,), 1): ([[5, 6]], [1]),
    }
    only3 = prompts_from_layers(points_layer=pts, frame=3)
    assert [(p.frame, p.obj_id) for p in only3.points] == [((3,), 1)]
    assert ps.obj_ids == [1, 2] and ps.frames == [(0,), (3,)]


def test_points_in_4d_give_tuple_frames():
    pts = _points([[1, 2, 10, 20]], [4], [True])
    (p,) = prompts_from_layers(points_layer=pts).points
    assert p.frame == (1, 2) and p.points.tolist() == [[10, 20]]


def test_boxes_from_rectangles_with_obj_id():
    rect = np.array([[2, 10, 5], [2, 10, 25], [2, 30, 25], [2, 30, 5]], float)
    shapes = Shapes([rect], shape_type="rectangle", features={"obj_id": [3]})
    (b,) = prompts_from_layers(shapes_layer=shapes).boxes
    assert b.frame == (2,) and b.obj_id == 3 and b.box.tolist() == [10, 5, 30, 25]
    assert prompts_from_layers(shapes_layer=shapes, frame=1).boxes == []
    assert layer_obj_ids(shapes, None) == {3}


def test_labels_layer_as_mask_prompts():
    lab = np.zeros((3, 6, 6), np.int32)
    lab[1, :2, :2] = 4
    lab[1, 4:, 4:] = 7
    ms = mask_prompts(Labels(lab))
    assert [(m.frame, m.obj_id, int(m.mask.sum())) for m in ms] == [((1,), 4, 4), ((1,), 7, 4)]
    assert prompts_from_layers(labels_layer=Labels(lab), frame=0).masks == []


def test_coordinates_converted_to_image_data_space():
    image = Image(np.zeros((4, 32, 32)), scale=(1, 2, 2), translate=(0, 10, 10))
    pts = _points([[1, 30, 50]], [1], [True])  # world = data for this layer
    (p,) = prompts_from_layers(points_layer=pts, image_layer=image).points
    assert p.frame == (1,) and p.points.tolist() == [[10, 20]]
    assert labels_shape(Image(np.zeros((4, 8, 8, 3), np.uint8), rgb=True)) == (4, 8, 8)


def test_2d_prompt_layer_needs_a_frame():
    pts = _points([[3, 4]], [1], [True])
    with pytest.raises(PromptError, match="which frame"):
        prompts_from_layers(points_layer=pts)
    (p,) = prompts_from_layers(points_layer=pts, frame=5).points
    assert p.frame == (5,)
