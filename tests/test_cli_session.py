"""The command line replays session files (``--prompts x.sam2.json``, or ``<stem>.sam2.json`` in a prompt
folder): one real subprocess on a batch of three stacks, the random-weights model. The labels of the
stack the session was made on equal the live session's masks after its last propagation; a stack with
other pixels gets a note and is still segmented; a stack of another shape is refused with one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import tifffile

from napari_sam2 import api
from napari_sam2._cli_plan import match_prompts
from napari_sam2.api import TEST_MODEL
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.io import read_stack

from .test_cli import blobs, finish, start_cli


def test_cli_replays_session_files_in_a_batch(tmp_path):
    frames = blobs(6, 48, 64, np.uint16, seed=3)
    stacks, prompts, out = tmp_path / "stacks", tmp_path / "prompts", tmp_path / "out"
    stacks.mkdir(), prompts.mkdir()
    tifffile.imwrite(stacks / "movie.tif", frames, metadata={"axes": "TYX"})
    other = frames.copy()
    other[5, 0, 0] += 7  # the last frame differs: a note, still segmented
    tifffile.imwrite(stacks / "other.tif", other, metadata={"axes": "TYX"})
    tifffile.imwrite(stacks / "narrow.tif", frames[:, :, :60], metadata={"axes": "TYX"})
    with read_stack(stacks / "movie.tif") as stack:  # what the CLI will see
        data = np.asarray(stack.data)
    np.testing.assert_array_equal(data, frames)

    live = VideoSession(api.get_model(TEST_MODEL, "cpu"), frames)
    live.add_points(1, 1, np.array([[24, 21]]), [1])
    live.choose_candidate(1, 1, 1)
    live.add_box(1, 2, [2, 40, 20, 62])
    list(live.propagate("forward"))
    live.add_points(3, 1, np.array([[24, 27], [2, 2]]), [1, 0])  # a correction on a propagated frame
    mask = np.zeros((48, 64), bool)
    mask[30:44, 4:16] = True
    live.add_mask(2, 3, mask)
    path = live.save(prompts / "movie.sam2.json", model=TEST_MODEL, direction="forward")
    expected = [live.result(t).to_labels(np.uint8) for t in range(6)]  # before the CLI's own propagation
    for name in ("other", "narrow"):
        doc = json.loads(path.read_text())
        (prompts / f"{name}.sam2.json").write_text(json.dumps(doc))  # masks_file: movie.masks.npz, beside it
    (prompts / "movie.csv").write_text("index,axis-0,axis-1,axis-2,obj_id\n0,0,5,5,9\n")  # not used: .sam2.json first
    assert match_prompts(prompts, stacks / "movie.tif").name == "movie.sam2.json"

    proc = start_cli("segment", stacks, "--prompts", prompts, "--out", out, "--model", TEST_MODEL,
                     "--device", "cpu", "--direction", "forward")
    list(live.propagate("forward"))  # what the CLI does after replaying the prompt calls
    want = np.stack([live.result(t).to_labels(np.uint8) for t in range(6)])
    live.close()
    proc = finish(proc)
    assert proc.returncode == 3, proc.stderr  # the narrow stack is refused (input error)
    assert "narrow.tif: narrow.sam2.json was made on an image of shape (6, 48, 64)" in proc.stderr
    assert "not (6, 48, 60)" in proc.stderr
    assert "other.sam2.json: the pixels of frame(s) [5] differ" in proc.stderr
    assert "2 stack(s) segmented, 0 skipped, 1 failed." in proc.stderr
    got = tifffile.imread(out / "movie_labels.tif")
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == {0, 1, 2, 3} and not got[0].any()  # forward from frame 1
    assert not np.array_equal(want[4], expected[4])  # the CLI really propagated after the replay
    assert tifffile.imread(out / "other_labels.tif").shape == (6, 48, 64)
    assert not (out / "narrow_labels.tif").exists()
    shutil.rmtree(out)
