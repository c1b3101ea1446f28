"""The headless API (``napari_sam2.api``) and the console guide ``docs/console.md``.

The model is the random-weights test model (``model="test-random"``, built once per process
and cached by ``get_model``): masks carry no meaning, but every call runs the real engine, so
equal inputs must give equal labels. The guide's ``python`` blocks run in a real viewer with
the model loader swapped for the test model (the page explains this).
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from napari_sam2 import api
from napari_sam2.api import (
    TEST_MODEL,
    add_labels_to_viewer,
    add_tracks_to_viewer,
    object_table,
    prompts_from_layers,
    segment_video,
    tracks_from_labels,
)
from napari_sam2.engine.layout import StackLayout
from napari_sam2.engine.prompt_arrays import build_prompts
from napari_sam2.engine.prompts import PointPrompt, PromptSet
from napari_sam2.errors import PromptError


@pytest.fixture(scope="module")
def model():
    return api.get_model(TEST_MODEL, "cpu")


@pytest.fixture(scope="module")
def clip():
    """(4, 48, 64) uint16: two bright blobs drifting right over noise."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :64]
    frames = []
    for t in range(4):
        img = rng.normal(200, 20, (48, 64))
        img += 1500 * (((yy - 16) ** 2 + (xx - 14 - 2 * t) ** 2) < 49)
        img += 1500 * (((yy - 32) ** 2 + (xx - 42 - 2 * t) ** 2) < 36)
        frames.append(img)
    return np.clip(frames, 0, 65535).astype(np.uint16)


def test_points_array_matches_napari_points_layer(clip, model):
    from napari.layers import Points

    coords = np.array([[0, 16, 14], [0, 5, 5], [0, 32, 42]], float)
    ids, positive = [1, 1, 2], [True, False, True]
    from_arrays = segment_video(clip, coords, point_ids=ids, point_labels=positive, model=model, direction="forward")
    layer = Points(coords, features={"obj_id": ids, "positive": positive})
    from_layer = segment_video(clip, prompts=prompts_from_layers(layer), model=model, direction="forward")
    assert from_arrays.shape == clip.shape and from_arrays.dtype == np.uint8
    np.testing.assert_array_equal(from_arrays, from_layer)
    assert set(np.unique(from_arrays)) <= {0, 1, 2} and from_arrays.any()


def test_a_path_is_read_lazily_in_any_format(clip, model, tmp_path):
    """segment_video(path): an image-sequence folder and a channel-first (T, C, Y, X) OME-Zarr give the
    labels of the same frames passed as an array."""
    import zarr
    from PIL import Image

    grey8 = (clip // 8).astype(np.uint8)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, img in enumerate(grey8):
        Image.fromarray(np.stack([img] * 3, -1)).save(folder / f"{t:05d}.png")
    points = [[1, 16, 16]]
    expected = segment_video(np.stack([grey8] * 3, -1), points, model=model)
    np.testing.assert_array_equal(segment_video(folder, points, model=model), expected)
    group = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    group.create_array("0", shape=(4, 3, 48, 64), dtype=np.uint8)[...] = np.stack([grey8] * 3, 1)
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": n} for n in "tcyx"],
                                   "datasets": [{"path": "0"}]}]
    np.testing.assert_array_equal(segment_video(str(tmp_path / "img.zarr"), points, model=model), expected)


def _summary(ps: PromptSet) -> list:
    return sorted((b.frame, b.obj_id, tuple(np.round(b.box, 6))) for b in ps.boxes)


def test_box_forms_are_equivalent(clip, model):
    from napari.layers import Shapes

    geo = StackLayout((4, 48, 64), 0, False)
    pairs = np.array([[[1, 8, 6], [1, 24, 24]], [[1, 25, 34], [1, 40, 50]]], float)
    rows = np.array([[1, 8, 6, 24, 24], [1, 25, 34, 40, 50]], float)
    rects = [np.array([[f, r0, c0], [f, r0, c1], [f, r1, c1], [f, r1, c0]]) for f, r0, c0, r1, c1 in rows]
    shapes = Shapes(rects, shape_type="rectangle", features={"obj_id": [1, 2]})
    expected = [((1,), 1, (8.0, 6.0, 24.0, 24.0)), ((1,), 2, (25.0, 34.0, 40.0, 50.0))]
    assert _summary(build_prompts(geo, boxes=pairs)) == expected  # default ids 1, 2
    assert _summary(build_prompts(geo, boxes=rows, box_ids=[1, 2])) == expected
    assert _summary(build_prompts(geo, boxes=np.asarray(shapes.data))) == expected  # (N, 4, 3)
    assert _summary(build_prompts(geo, boxes=list(shapes.data))) == expected  # a list, as napari holds it
    assert _summary(build_prompts(geo, prompts=prompts_from_layers(shapes_layer=shapes))) == expected
    clipped = build_prompts(geo, boxes=[[1, -5, -5, 10, 99]])  # drawn past the border: clipped
    assert _summary(clipped) == [((1,), 1, (-0.5, -0.5, 10.0, 63.5))]
    labels = segment_video(clip, boxes=rows, model=model)
    assert labels[0].any() and labels[3].any(), "direction='both' fills the frames before the prompt"


def test_masks_prompt_dtype_and_table(clip, model):
    seed = np.zeros(clip.shape, np.uint16)
    seed[0, 10:22, 8:20] = 300  # a large id: labels come back as uint16
    table = object_table(pixel_size=(0.5, 0.5), unit="um")
    labels = segment_video(clip, masks=seed, model=model, direction="forward", table=table)
    assert labels.dtype == np.uint16 and set(np.unique(labels)) <= {0, 300}
    assert len(table) == 4 and table.area_column == "area_um2"
    np.testing.assert_array_equal(table["area_px"], [(labels[t] == 300).sum() for t in range(4)])
    np.testing.assert_allclose(table["area_um2"], table["area_px"] * 0.25)
    tracks = tracks_from_labels(labels)
    assert tracks.shape[1] == 4 and set(tracks[:, 0]) <= {300.0}


def test_progress_and_cancel(clip, model):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 2:
            cancel.set()

    labels = segment_video(clip, points=[[1, 16, 14]], model=model, direction="forward", progress=progress,
                           cancel=cancel)
    assert seen == [(1, 3), (2, 3)]
    assert labels[1:3].any() and not labels[3].any() and not labels[0].any()


def test_nd_stack_points_need_all_leading_indices(model):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 255, (2, 3, 32, 32), dtype=np.uint8)  # (T, Z, Y, X), propagate along Z
    labels = segment_video(stack, points=[[1, 0, 10, 10]], axis=1, direction="forward", model=model)
    assert labels.shape == stack.shape
    assert labels[1].any() and not labels[0].any()  # only time point 1 was prompted
    with pytest.raises(PromptError, match=r"\(N, 4\)"):
        segment_video(stack, points=[[0, 10, 10]], axis=1, model=model)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no prompts"),
        ({"points": [[9, 5, 5]]}, "frame 9 but the stack has 4 frames"),
        ({"points": [[0, 60, 5]]}, "outside the 48 x 64 image"),
        ({"points": [[5, 5]]}, r"shape \(N, 3\)"),
        ({"points": [[0.5, 5, 5]]}, "between frames"),
        ({"points": [[0, 5, 5]], "point_ids": [0]}, "whole numbers >= 1"),
        ({"points": [[0, 5, 5]], "point_labels": [2]}, "1/True"),
        ({"points": [[0, np.nan, 5]]}, "NaN"),
        ({"boxes": [[[0, 5, 5], [1, 9, 9]]]}, "different frames"),
        ({"boxes": [[0, 5, 5, 5, 9]]}, "zero area"),
        ({"boxes": [[0, 5, 5, 9, 9], [0, 1, 1, 3, 3]], "box_ids": [1, 1]}, "already has a box"),
        ({"boxes": [1, 2, 3]}, "boxes must be"),
        ({"masks": np.zeros((4, 48, 63), np.uint8)}, "masks must be a labels array of shape"),
        ({"masks": np.ones((4, 48, 64), np.float32)}, "integer labels"),
        ({"prompts": [1, 2]}, "PromptSet"),
        ({"prompts": PromptSet(points=[PointPrompt(7, 1, np.zeros((1, 2)), np.ones(1))])}, "frame 7"),
        ({"points": [[0, 5, 5]], "direction": "sideways"}, "direction must be"),
    ],
)
def test_bad_prompts_raise_prompt_error_before_loading(clip, kwargs, message, monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("the model must not be loaded for bad prompts")

    monkeypatch.setattr(api, "_load", no_model)
    monkeypatch.setattr(api, "_model_cache", {})
    with pytest.raises(PromptError, match=message):
        segment_video(clip, model="sam2.1_hiera_tiny", **kwargs)


def test_unknown_session_option_is_a_type_error(clip):
    with pytest.raises(TypeError, match="obj_ids"):
        segment_video(clip, points=[[0, 5, 5]], obj_ids=[1], model=TEST_MODEL)


def test_object_table_from_labels_and_tracks():
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[0, 2:4, 2:4] = 1
    labels[2, 6:8, 6:10] = 1
    labels[1:, 0:2, 0:2] = 5
    table = object_table(labels)
    rec = {(r["frame"], r["obj_id"]): r for r in table.records()}
    assert len(rec) == 6
    assert rec[(0, 1)]["area_px"] == 4 and rec[(1, 1)]["present"] is False and rec[(2, 1)]["area_px"] == 8
    assert rec[(2, 1)]["centroid_col"] == pytest.approx(7.5) and np.isnan(rec[(2, 1)]["score"])
    np.testing.assert_allclose(
        tracks_from_labels(labels),
        [[1, 0, 2.5, 2.5], [1, 2, 6.5, 7.5], [5, 1, 0.5, 0.5], [5, 2, 0.5, 0.5]],
    )


# ------------------------------------------------------------------------- napari
@pytest.mark.gui
def test_viewer_helpers(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((3, 10, 10)), scale=(1, 0.5, 0.5))
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[:, 2:5, 3:6] = 2
    layer = add_labels_to_viewer(viewer, labels, name="out", image_layer=image)
    assert tuple(layer.scale) == (1, 0.5, 0.5)
    again = add_labels_to_viewer(viewer, labels * 2, name="out")
    assert again is layer and layer.data.max() == 4 and len(viewer.layers) == 2
    tracks = add_tracks_to_viewer(viewer, labels, image_layer=image)
    assert tracks.data.shape == (3, 4) and tuple(tracks.scale) == (1, 0.5, 0.5)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.gui
@pytest.mark.slow
def test_console_guide_runs(make_napari_viewer, repo_root, tmp_path, monkeypatch, model):
    """Run every python block of docs/console.md, in order, in one namespace with a viewer."""
    blocks = _python_blocks((repo_root / "docs" / "console.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    from napari_sam2._napari import sample_data

    short = sample_data.make_cells_timelapse
    monkeypatch.setattr(sample_data, "make_cells_timelapse", lambda: short(n_frames=8))  # 40 frames: too slow
    loaded = []
    monkeypatch.setattr(api, "_model_cache", {})
    monkeypatch.setattr(api, "_load", lambda name, *a, **k: loaded.append(name) or model)
    monkeypatch.chdir(tmp_path)
    ns = {"viewer": make_napari_viewer()}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/console.md[python block {i}]", "exec"), ns)
    viewer = ns["viewer"]
    assert set(loaded) == {"sam2.1_hiera_tiny"} and len(loaded) == 1  # loaded once, then reused
    out = viewer.layers["cells SAM 2"]
    assert out.data.shape == (8, 256, 256) and out.data.dtype == np.uint8
    assert set(np.unique(out.data)) <= {0, 1, 2, 3, 4}
    assert len(ns["table"]) == 8 * 4
    assert viewer.layers["cells tracks"].data.shape[1] == 4
    assert (tmp_path / "cells_objects.csv").is_file() and (tmp_path / "clicks.csv").is_file()
    assert ns["labels"].shape == (5, 256, 256)  # the file-based script of section 5
    np.testing.assert_array_equal(ns["labels5"].shape, (5, 256, 256))
