"""Point and box prompts from CSV files written by napari itself (and hand-edited)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2.engine.layout import StackLayout
from napari_sam2.errors import PromptError
from napari_sam2.io import read_points_csv, read_prompts, read_shapes_csv


def test_napari_points_csv_with_features(save_points):
    path = save_points(
        [[0, 10.5, 20], [2, 30, 40], [0, 12, 22], [2, 31, 41]],
        features={"obj_id": [1, 2, 1, 2], "positive": [True, True, False, True]},
    )
    header = path.read_text().splitlines()[0]
    assert header == "index,axis-0,axis-1,axis-2,obj_id,positive"  # napari's layout
    prompts = read_prompts(path)
    assert not prompts.boxes and not prompts.masks
    by_key = {(p.frame, p.obj_id): p for p in prompts.points}
    assert set(by_key) == {((0,), 1), ((2,), 2)}
    np.testing.assert_allclose(by_key[(0,), 1].points, [[10.5, 20], [12, 22]])
    np.testing.assert_array_equal(by_key[(0,), 1].labels, [1, 0])
    np.testing.assert_allclose(by_key[(2,), 2].points, [[30, 40], [31, 41]])
    np.testing.assert_array_equal(by_key[(2,), 2].labels, [1, 1])


def test_points_without_features_are_positive_clicks_of_object_1(save_points):
    path = save_points([[3, 5.0, 6.0], [3, 7.0, 8.0], [4, 1.0, 2.0]])
    prompts = read_points_csv(path, ndim=3)
    assert [(p.frame, p.obj_id) for p in prompts.points] == [((3,), 1), ((4,), 1)]
    assert all(p.labels.tolist() == [1] * len(p.labels) for p in prompts.points)


def test_2d_points_layer_prompts_frame_0(save_points):
    prompts = read_prompts(save_points([[5.0, 6.0]], features={"obj_id": [4]}))
    (point,) = prompts.points
    assert (point.frame, point.obj_id) == ((0,), 4)
    np.testing.assert_allclose(point.points, [[5.0, 6.0]])


def test_label_column_and_hand_written_columns(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("frame,row,col,obj_id,label\n1,5,6,3,1\n1,7,8,3,0\n")
    (point,) = read_prompts(path).points
    assert (point.frame, point.obj_id) == ((1,), 3)
    np.testing.assert_array_equal(point.labels, [1, 0])
    np.testing.assert_allclose(point.points, [[5, 6], [7, 8]])


def test_frame_positions_follow_the_layout_tolerance(tmp_path):
    """napari transforms leave float noise on frame coordinates: the file reader rounds it as the widget does."""
    path = tmp_path / "noisy.csv"
    path.write_text("index,axis-0,axis-1,axis-2\n0,2.004,5,6\n1,2.5,5,6\n")
    with pytest.raises(PromptError, match="line 3: frame index '2.5'"):
        read_prompts(path)
    path.write_text("index,axis-0,axis-1,axis-2\n0,2.004,5,6\n")
    assert [p.frame for p in read_prompts(path).points] == [(2,)]


def test_4d_points_select_outer_index(save_points):
    path = save_points(
        [[0, 2, 5, 6], [1, 3, 7, 8], [1, 3, 9, 9]], features={"obj_id": [1, 1, 2]}
    )
    prompts = read_prompts(path, index=(1,))
    assert sorted((p.frame, p.obj_id, len(p.points)) for p in prompts.points) == [((1, 3), 1, 1), ((1, 3), 2, 1)]
    with pytest.raises(PromptError, match="outer"):
        read_prompts(path)  # two outer positions: ambiguous without index
    every = read_prompts(path, StackLayout((2, 4, 16, 16), 1, False))  # the stack known: all of them, once
    assert sorted((p.frame, p.obj_id, len(p.points)) for p in every.points) == [
        ((0, 2), 1, 1), ((1, 3), 1, 1), ((1, 3), 2, 1)]


def test_points_are_checked_against_the_stack(save_points):
    path = save_points([[5, 10.0, 20.0]])
    with pytest.raises(PromptError, match="frame 5 but the stack has 5 frames"):
        read_prompts(path, StackLayout((5, 64, 64), 0, False))
    click = "object 1 on frame 5: The click at \\(row 10, col 20\\) is outside the 8 x 32 image"
    with pytest.raises(PromptError, match=click):
        read_prompts(path, StackLayout((6, 8, 32), 0, False))
    assert read_prompts(path, StackLayout((6, 21, 32), 0, False))
    with pytest.raises(PromptError, match=click):  # the (T, Y, X) shorthand is the same layout
        read_prompts(path, n_frames=6, frame_shape=(8, 32))
    with pytest.raises(TypeError, match="together"):
        read_prompts(path, n_frames=6)


def test_ndim_mismatch_is_reported(save_points):
    path = save_points([[5.0, 6.0]])
    with pytest.raises(PromptError, match="2 coordinate columns but the image has 3"):
        read_prompts(path, StackLayout((4, 16, 16), 0, False))  # ndim 3
    with pytest.raises(PromptError, match="2 coordinate columns but the image has 3"):
        read_prompts(path, ndim=3)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("\n  \n", "empty"),
        ("index,axis-0,axis-1,axis-2\n", "no prompts"),
        ("index,obj_id,positive\n0,1,1\n", "no coordinate columns"),
        ("index,axis-0,axis-1,axis-2\n0,0,abc,3\n", "line 2: column 'axis-1' holds 'abc'"),
        ("index,axis-0,axis-1,axis-2\n0,0,1,2\n1,2.5,1,2\n", "line 3: frame index '2.5'"),
        ("index,axis-0,axis-1,axis-2\n0,-1,1,2\n", "negative"),
        ("index,axis-0,axis-1,axis-2,obj_id\n0,0,1,2,0\n", "object id 0"),
        ("index,axis-0,axis-1,axis-2,obj_id\n0,0,1,2,1.5\n", "object id '1.5'"),
        ("index,axis-0,axis-1,axis-2,positive\n0,0,1,2,maybe\n", "use 1 \\(positive\\)"),
        ("index,axis-0,axis-1,axis-2\n0,0,1\n", "line 2: 3 values for 4 columns"),
        ("index,axis-0,axis-2,axis-3\n0,0,1,2\n", "without gaps"),
        ("index,axis-0,axis-1,axis-2\n0,0,nan,2\n", "finite"),
    ],
)
def test_bad_points_files_raise_prompt_error_naming_the_file(tmp_path, text, match):
    path = tmp_path / "bad_points.csv"
    path.write_text(text)
    with pytest.raises(PromptError, match=match) as info:
        read_prompts(path)
    assert "bad_points.csv" in str(info.value)


def test_missing_and_unsupported_prompt_files(tmp_path):
    with pytest.raises(PromptError, match="not found"):
        read_prompts(tmp_path / "nope.csv")
    other = tmp_path / "prompts.json"
    other.write_text("{}")
    with pytest.raises(PromptError, match="Unsupported prompt file type"):
        read_prompts(other)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(PromptError, match="not a text CSV"):
        read_prompts(binary)


# -- shapes ------------------------------------------------------------------------


def _rect(frame, r0, c0, r1, c1):
    return [[frame, r0, c0], [frame, r0, c1], [frame, r1, c1], [frame, r1, c0]]


def test_napari_shapes_csv_rectangles_become_boxes(save_shapes):
    path = save_shapes([_rect(1, 10, 20, 30, 45), _rect(4, 5, 6, 7, 8)])
    assert path.read_text().splitlines()[0] == "index,shape-type,vertex-index,axis-0,axis-1,axis-2"
    prompts = read_prompts(path)
    assert not prompts.points
    assert [(b.frame, b.obj_id) for b in prompts.boxes] == [((1,), 1), ((4,), 2)]  # index + 1
    np.testing.assert_allclose(prompts.boxes[0].box, [10, 20, 30, 45])
    np.testing.assert_allclose(prompts.boxes[1].box, [5, 6, 7, 8])


def test_shapes_csv_obj_id_column_is_used(save_shapes):
    path = save_shapes([_rect(0, 1, 2, 3, 4), _rect(0, 5, 6, 9, 9)])
    lines = path.read_text().splitlines()
    ids = ["obj_id"] + ["7"] * 4 + ["9"] * 4
    path.write_text("\n".join(f"{line},{i}" for line, i in zip(lines, ids)) + "\n")
    prompts = read_shapes_csv(path)
    assert [b.obj_id for b in prompts.boxes] == [7, 9]


def test_2d_shapes_prompt_frame_0(save_shapes):
    prompts = read_prompts(save_shapes([[[1, 2], [1, 8], [6, 8], [6, 2]]]))
    assert [(b.frame, b.obj_id) for b in prompts.boxes] == [((0,), 1)]
    np.testing.assert_allclose(prompts.boxes[0].box, [1, 2, 6, 8])


def test_non_rectangles_are_rejected(save_shapes):
    path = save_shapes([[[0, 1, 1], [0, 5, 1], [0, 3, 6]]], shape_type="polygon")
    with pytest.raises(PromptError, match="shape 0 is a polygon; only rectangles can be box prompts"):
        read_prompts(path)


def test_box_outside_the_image_is_rejected(save_shapes):
    path = save_shapes([_rect(0, 100, 100, 120, 130)])
    with pytest.raises(PromptError, match="object 1 on frame 0: The box .* lies outside the 50 x 50 image"):
        read_prompts(path, StackLayout((1, 50, 50), 0, False))


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["0,rectangle,0,0,1,1", "0,rectangle,1,1,5,5"], "spans frames"),
        (["0,rectangle,0,0,1,1", "0,rectangle,1,0,1,5"], "zero area"),
        (["0,rectangle,0,0,1,1,2", "0,rectangle,1,0,5,5,2", "1,rectangle,0,0,2,2,2", "1,rectangle,1,0,6,6,2"],
         "both for object 2 on frame 0"),
    ],
)
def test_bad_shapes_files(tmp_path, rows, match):
    header = "index,shape-type,vertex-index,axis-0,axis-1,axis-2"
    if len(rows[0].split(",")) == 7:
        header += ",obj_id"
    path = tmp_path / "boxes.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(PromptError, match=match):
        read_prompts(path)


def test_read_shapes_csv_refuses_points_files(save_points):
    with pytest.raises(PromptError, match="not a Shapes CSV"):
        read_shapes_csv(save_points([[0, 1.0, 2.0]]))
