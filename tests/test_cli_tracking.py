"""``segment`` clean-up flags and track exports (--ctc, --geff) with a lineage, in process.

The segmenter is a stub (``api.iter_results`` replaced) that yields known masks, so that the
expected labels, tracks and divisions are exact; the session is the real one (random-weights
test model), and it carries the lineage as ``session.lineage``, where the division detector
puts it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2 import api, cli
from napari_sam2.api import TEST_MODEL
from napari_sam2.engine.cleanup import Cleanup
from napari_sam2.engine.lineage import Lineage
from napari_sam2.engine.results import FrameResult
from napari_sam2.io import read_stack

SHAPE = (40, 48)


def _movie() -> np.ndarray:
    """1 (with a hole and a speck) divides into 2 and 3 on frame 3; 4 shows on frame 1 only."""
    labels = np.zeros((6, *SHAPE), np.uint8)
    for t in range(3):
        labels[t, 10:22, 10:22] = 1
        labels[t, 14:16, 14:16] = 0  # a 4 px hole
        labels[t, 30, 40] = 1  # a 1 px speck
    for t in range(3, 6):
        labels[t, 8:16, 8:16] = 2
        labels[t, 18:26, 18:26] = 3
    labels[1, 30:34, 2:6] = 4
    return labels


def _stub(movie: np.ndarray, lineage: Lineage):
    def iter_results(session, prompts, direction, cancel=None):
        session.lineage = lineage
        order = range(len(movie)) if direction == "forward" else [1, 2, 3, 4, 5, 0]  # "both" from frame 1
        for t in order:
            ids = (1, 2, 3, 4)
            masks = np.stack([movie[t] == i for i in ids])
            n = len(ids)
            yield FrameResult(frame=t, obj_ids=ids, masks=masks, scores=np.ones(n, np.float32),
                              present=masks.any(axis=(1, 2)), iou=np.ones(n, np.float32),
                              object_score_logits=np.ones(n, np.float32))
    return iter_results


@pytest.fixture
def setup(tmp_path, monkeypatch):
    import npe2
    import napari.layers

    npe2.PluginManager.instance().discover()
    movie = _movie()
    stack = tmp_path / "movie.tif"
    tifffile.imwrite(stack, (movie > 0).astype(np.uint8) * 200 + 20, imagej=True, metadata={"axes": "TYX"})
    points = napari.layers.Points(np.array([[2, 15, 15], [3, 12, 12], [3, 22, 22], [1, 32, 4]], float),
                                  features={"obj_id": [1, 2, 3, 4], "positive": [True] * 4})
    prompts = Path(points.save(str(tmp_path / "clicks.csv"), plugin="napari")[0])
    lineage = Lineage()
    lineage.add_division(1, [2, 3], 3)
    monkeypatch.setattr(api, "iter_results", _stub(movie, lineage))
    return stack, prompts, movie, lineage


CLEANUP = ["--fill-holes", "10", "--min-island", "5", "--drop-flicker"]


@pytest.mark.parametrize("direction, suffix", [("forward", ".tif"), ("both", ".tif"), ("both", ".zarr")])
def test_cleanup_flags_and_exports_with_lineage(setup, tmp_path, direction, suffix):
    stack, prompts, movie, lineage = setup
    out, ctc, geff = tmp_path / f"labels{suffix}", tmp_path / "ctc", tmp_path / "tracks.geff"
    trackmate = tmp_path / "tracks.xml"
    code = cli.main(["segment", str(stack), "--prompts", str(prompts), "--out", str(out), "--model", TEST_MODEL,
                     "--device", "cpu", "--direction", direction, "--ctc", str(ctc), "--geff", str(geff),
                     "--trackmate", str(trackmate), "--quiet", *CLEANUP])
    assert code == 0
    expected = Cleanup(fill_holes=10, min_island=5, drop_flicker=True).clean_stack(movie.copy())
    assert (expected[:3, 14:16, 14:16] == 1).all() and not (expected == 4).any() and expected[0, 30, 40] == 0
    with read_stack(out) as labels:
        np.testing.assert_array_equal(np.asarray(labels.data[:]), expected)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files
    # CTC: daughters name the parent's track; masks are the cleaned labels
    rows = [tuple(map(int, line.split())) for line in (ctc / "man_track.txt").read_text().splitlines()]
    assert rows == [(1, 0, 2, 0), (2, 3, 5, 1), (3, 3, 5, 1)]
    np.testing.assert_array_equal(tifffile.imread(ctc / "mask001.tif"), expected[1])
    # TrackMate XML: 9 spots, one track that splits (1 -> 2, 3)
    import xml.etree.ElementTree as ET

    model = ET.parse(trackmate).getroot().find("Model")
    assert len(list(model.iter("Spot"))) == 9
    assert [t.get("NUMBER_SPLITS") for t in model.find("AllTracks")] == ["1"]
    # GEFF, read back by the geff package: nodes of the cleaned labels, division edges from the lineage
    pytest.importorskip("geff")
    from napari_sam2.io.geff import read_geff

    g = read_geff(geff, validate_data=True)
    assert len(g.node_ids) == 9 and (g.nodes["area"][g.nodes["seg_id"] == 1] == 144).all()
    t_of = dict(zip(g.node_ids.tolist(), g.nodes["t"].tolist()))
    seg_of = dict(zip(g.node_ids.tolist(), g.nodes["seg_id"].tolist()))
    division = [(seg_of[a], t_of[a], seg_of[b], t_of[b]) for (a, b), d in zip(g.edges.tolist(),
                                                                            g.edge_props["division"]) if d]
    assert sorted(division) == [(1, 2, 2, 3), (1, 2, 3, 3)]
    assert g.lineage() == lineage


def test_geff_output_is_skipped_when_it_exists_and_refused_in_batch_as_a_file(setup, tmp_path, capsys):
    stack, prompts, _, _ = setup
    geff = tmp_path / "tracks.geff"
    geff.mkdir()
    code = cli.main(["segment", str(stack), "--prompts", str(prompts), "--out", str(tmp_path / "l.tif"),
                     "--model", TEST_MODEL, "--geff", str(geff)])
    assert code == 0 and "skipped movie.tif" in capsys.readouterr().err and not (tmp_path / "l.tif").exists()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["segment", str(stack), str(stack.with_name("b.tif")), "--prompts", str(prompts),
                  "--out", str(tmp_path / "res"), "--geff", str(geff)])
    assert exit_info.value.code == 2 and "--geff is a folder" in capsys.readouterr().err


def test_geff_folder_gets_one_graph_per_stack(setup, tmp_path):
    stack, prompts, _, _ = setup
    folder = tmp_path / "graphs"
    code = cli.main(["segment", str(stack), "--prompts", str(prompts), "--out", str(tmp_path / "l.tif"),
                     "--model", TEST_MODEL, "--device", "cpu", "--direction", "forward", "--geff", str(folder),
                     "--quiet"])
    assert code == 0 and (folder / "movie_tracks.geff" / ".zattrs").exists()


@pytest.mark.parametrize("flag, value", [("--fill-holes", "0"), ("--open", "x"), ("--close", "-1")])
def test_bad_cleanup_values_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["segment", "movie.tif", "--prompts", "p.csv", "--out", "o.tif", flag, value])
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err
