"""``napari-sam2 segment --everything``: SAM 2's own mask generator (random-weights test model, a
coarse grid, filters off so that it finds masks) seeds every object, and the usual outputs follow."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile

from napari_sam2 import cli

LOOSE = ["--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


def movie(tmp_path, blank=False):
    rng = np.random.default_rng(0)
    frames = 30 + rng.normal(0, 4, (5, 48, 64))
    if not blank:
        frames[:, 10:24, 10:24] += 150
        frames[:, 30:42, 40:52] += 150
    else:
        frames[:] = 30
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.clip(frames, 0, 255).astype(np.uint8), imagej=True, metadata={"axes": "TYX"})
    return path


def test_everything_without_prompts_writes_labels_and_a_graph(tmp_path, capsys):
    stack, out, geff = movie(tmp_path), tmp_path / "labels.tif", tmp_path / "tracks.geff"
    rc = cli.main(["segment", str(stack), "--everything", *LOOSE, "--discover-every", "2", "--min-area", "4",
                   "--model", "test-random", "--out", str(out), "--geff", str(geff)])
    err = capsys.readouterr().err
    assert rc == 0, err
    n = int(re.search(r"(\d+) object\(s\), 5 frame\(s\)", err).group(1))
    labels = tifffile.imread(out)
    assert labels.shape == (5, 48, 64) and n >= 1
    ids = set(np.unique(labels)) - {0}
    assert ids and ids <= set(range(1, n + 1))
    assert geff.is_dir()


def test_a_blank_movie_finds_nothing_and_says_so(tmp_path, capsys):
    stack, out = movie(tmp_path, blank=True), tmp_path / "labels.tif"
    rc = cli.main(["segment", str(stack), "--everything", "--model", "test-random", "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "No objects found on frame 0" in err and "Warning" not in err  # a note, not a Python warning
    assert not tifffile.imread(out).any()


@pytest.mark.parametrize("args, message", [
    ([], "give --prompts"),
    (["--discover-every", "3", "--prompts", "p.csv"], "need --everything"),
    (["--everything", "--discover-every", "0"], "discover_every must be"),
])
def test_usage_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["segment", str(movie(tmp_path)), "--out", str(tmp_path / "l.tif"), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
