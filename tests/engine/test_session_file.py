"""Session files (``*.sam2.json``): a real ``VideoSession`` (random-weights model) is driven through a
sequence of prompt calls and propagations, saved, and replayed by ``VideoSession.load``; the replayed
session must hold the same masks, scores and presence on every frame. Also: schema and version checks,
the mask file, the image identity check (refusal, warning) and a replay error naming the operation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam2.engine.prompts import PromptSet, mask_prompts_from_planes
from napari_sam2.engine.session_file import FORMAT, VERSION, read_session
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import InputError, PromptError

from .conftest import blob_stack


def same_masks(a: VideoSession, b: VideoSession) -> None:
    """Mask for mask, score for score, on every frame."""
    for t in range(a.num_frames):
        ra, rb = a.result(t), b.result(t)
        assert ra.obj_ids == rb.obj_ids, t
        np.testing.assert_array_equal(ra.masks, rb.masks, err_msg=f"frame {t}")
        np.testing.assert_array_equal(ra.scores, rb.scores)
        np.testing.assert_array_equal(ra.present, rb.present)


@pytest.fixture
def frames():
    return blob_stack(6, (48, 64), dtype=np.uint16, seed=1)  # uint16: the intensity range is restored too


def drive(session: VideoSession) -> None:
    """Clicks, a candidate, a box, a propagation, a correction on a propagated frame, a mask prompt,
    a cleared prompt, a propagation in both directions from a later frame."""
    session.add_points(0, 1, np.array([[24, 22]]), [1])
    session.choose_candidate(0, 1, 2)
    session.add_box(1, 2, [4, 36, 20, 60])
    list(session.propagate("forward"))
    session.add_points(3, 1, np.array([[24, 28], [4, 4]], np.float32), [1, 0])  # a correction click
    mask = np.zeros(session.frame_shape, bool)
    mask[30:42, 40:54] = True
    session.add_mask(2, 3, mask)
    session.clear_prompts(1, 2)
    list(session.propagate("both", start=2))


def test_replay_gives_identical_masks(model, frames, tmp_path):
    live = VideoSession(model, frames, fill_hole_area=4)
    drive(live)
    path = live.save(tmp_path / "movie", model="test-random", direction="both", objects={1: {"name": "cell"}})
    assert path.name == "movie.sam2.json" and (tmp_path / "movie.masks.npz").is_file()
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == VERSION
    assert [op["op"] for op in doc["operations"]] == ["add_points", "choose_candidate", "add_box", "propagate",
                                                      "add_points", "add_mask", "clear_prompts", "propagate"]
    assert doc["operations"][3]["frames"] == 6 and doc["operations"][-1]["start"] == [2]
    assert doc["settings"]["fill_hole_area"] == 4 and doc["settings"]["intensity_range"] == list(live.intensity_range)
    assert doc["image"]["shape"] == [6, 48, 64] and doc["image"]["frames"] == [[0], [3], [5]]
    assert doc["objects"] == {"1": {"name": "cell", "parent": None}}

    with VideoSession.load(path, model, frames) as replayed:
        assert replayed.fill_hole_area == 4 and replayed.intensity_range == live.intensity_range
        assert replayed.replay_mismatch == []
        same_masks(live, replayed)
        assert replayed.recorder.ops == live.recorder.ops  # saving the replay writes the same file
        got = read_session(path)
        assert got.frames == live.prompted_frames() and got.obj_ids == live.obj_ids
        prompts, masked = got.prompts()
        assert masked == {3} and [(p.frame, p.obj_id) for p in prompts.points] == [((0,), 1), ((3,), 1)]
        assert prompts.boxes == []  # the box was cleared
    live.close()


def test_abandoned_propagation_replays_as_far_as_it_went(model, frames, tmp_path):
    live = VideoSession(model, frames[:5])
    live.add_points(0, 1, np.array([[24, 22]]), [1])
    it = live.propagate("forward")
    for n, _ in enumerate(it, 1):
        if n == 3:
            break
    it.close()
    live.add_points(2, 1, np.array([[24, 25]]), [1])  # a correction on a propagated frame
    plane = np.zeros(live.frame_shape, np.uint8)
    plane[30:40, 40:50], plane[2:8, 2:12] = 4, 5
    PromptSet(masks=mask_prompts_from_planes([(3, plane)])).apply(live)  # LabelMasks, kept by reference
    path = live.save(tmp_path / "part.sam2.json")
    assert json.loads(path.read_text())["operations"][1]["frames"] == 3
    with np.load(tmp_path / "part.masks.npz") as z:
        assert sorted(z.files) == ["m0", "m1"]
        np.testing.assert_array_equal(z["m1"], plane == 5)
    with VideoSession.load(path, model, frames[:5]) as replayed:
        same_masks(live, replayed)
        assert replayed.result(3).obj_ids == (1, 4, 5)
    live.close()


def _write(path, **changes):
    doc = {"format": FORMAT, "version": VERSION, "image": {"shape": [2, 8, 8], "dtype": "uint8"}, "operations": []}
    doc.update(changes)
    path.write_text(json.dumps(doc))
    return path


def test_other_format_version_and_missing_mask_file_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a napari-sam2 session file"):
        read_session(_write(tmp_path / "a.sam2.json", format="something else"))
    with pytest.raises(InputError, match="newer napari-sam2"):
        read_session(_write(tmp_path / "b.sam2.json", version=VERSION + 1))
    with pytest.raises(InputError, match="not a napari-sam2 session file"):
        (tmp_path / "c.sam2.json").write_text("{nope")
        read_session(tmp_path / "c.sam2.json")
    with pytest.raises(InputError, match="unknown kind 'paint'"):
        read_session(_write(tmp_path / "d.sam2.json", operations=[{"op": "paint"}]))
    op = {"op": "add_mask", "frame": [0], "obj_id": 1, "mask": "m0"}
    with pytest.raises(InputError, match="mask file e.masks.npz is missing"):
        read_session(_write(tmp_path / "e.sam2.json", operations=[op], masks_file="e.masks.npz"))
    with pytest.raises(InputError, match="no session file"):
        read_session(tmp_path / "missing.sam2.json")


def test_identity_refuses_other_shapes_and_warns_on_other_pixels(model, frames, tmp_path):
    live = VideoSession(model, frames[:4])
    live.add_points(1, 1, np.array([[24, 22]]), [1])
    path = live.save(tmp_path / "s.sam2.json")
    with pytest.raises(InputError, match=r"shape \(4, 48, 64\) \(uint16\), not \(4, 48, 60\)"):
        VideoSession.load(path, model, frames[:4, :, :60])
    with pytest.raises(InputError, match="uint8"):
        VideoSession.load(path, model, frames[:4].astype(np.uint8))
    other = frames[:4].copy()
    other[3, 0, 0] += 1  # the last frame: hashed
    with pytest.warns(UserWarning, match=r"pixels of frame\(s\) \[3\] differ"):
        replayed = VideoSession.load(path, model, other)
    assert len(replayed.replay_mismatch) == 1 and "[3]" in replayed.replay_mismatch[0]
    same_masks(live, replayed)  # frame 1 is unchanged: the same mask there
    replayed.close()
    live.close()


def test_a_call_that_cannot_be_replayed_names_the_operation(model, frames, tmp_path):
    live = VideoSession(model, frames[:3])
    live.add_points(0, 1, np.array([[24, 22]]), [1])
    path = live.save(tmp_path / "s.sam2.json")
    doc = json.loads(path.read_text())
    doc["operations"].append({"op": "remove_object", "obj_id": 7})
    path.write_text(json.dumps(doc))
    with pytest.raises(PromptError, match=r"operation 2 \(remove_object\) cannot be replayed: There is no object 7"):
        VideoSession.load(path, model, frames[:3])
    live.close()
