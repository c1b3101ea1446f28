"""GEFF export: nodes per (object, frame), track and division edges, read back by the geff package."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from napari_sam2.engine.lineage import Lineage
from napari_sam2.errors import InputError, OutputError

geff = pytest.importorskip("geff")

from napari_sam2.io.geff import read_geff, write_geff  # noqa: E402

# object 1 divides into 2 and 3 on frame 3; 3 is missing on frame 4; 4 is there throughout
DIVIDING = [{1: (1, 1), 4: (6, 6)}] * 3 + [{2: (0, 0), 3: (2, 2), 4: (6, 6)}, {2: (0, 0), 4: (6, 6)},
                                             {2: (0, 0), 3: (2, 3), 4: (6, 6)}]


def _frames(depth=None):
    for spots in DIVIDING:
        labels = np.zeros((8, 8), np.uint16)
        for obj, (r, c) in spots.items():
            labels[r:r + 2, c:c + 2] = obj
        yield labels if depth is None else np.stack([labels] * depth)


def _lineage():
    lineage = Lineage()
    lineage.add_division(1, [2, 3], 3)
    return lineage


def _node_of(g, seg_id, t):
    hit = np.flatnonzero((g.nodes["seg_id"] == seg_id) & (g.nodes["t"] == t))
    assert hit.size == 1
    return int(g.node_ids[hit[0]])


def test_nodes_edges_and_lineage_round_trip(tmp_path):
    path = tmp_path / "tracks.geff"
    summary = write_geff(path, _frames(), lineage=_lineage(), scale=(0.5, 0.25), unit="µm", frame_interval=3.0)
    g = read_geff(path, validate_data=True)  # the geff package checks graph, tracklets and lineages
    assert summary.nodes == sum(len(s) for s in DIVIDING) == len(g.node_ids)
    # nodes: centroid, area and ids measured from the labels
    for t, spots in enumerate(DIVIDING):
        for obj, (r, c) in spots.items():
            k = np.flatnonzero(g.node_ids == _node_of(g, obj, t))[0]
            assert (g.nodes["y"][k], g.nodes["x"][k]) == (r + 0.5, c + 0.5)
            assert g.nodes["area"][k] == 4 and g.nodes["track_id"][k] == obj
            assert g.nodes["lineage_id"][k] == (1 if obj in (1, 2, 3) else 4)
    edges = {tuple(int(v) for v in e) for e in g.edges}
    kinds = dict(zip(map(tuple, g.edges.tolist()), g.edge_props["division"].tolist()))
    divisions = {(_node_of(g, 1, 2), _node_of(g, 2, 3)), (_node_of(g, 1, 2), _node_of(g, 3, 3))}
    track = {(_node_of(g, o, t), _node_of(g, o, t + 1)) for o, ts in ((1, range(2)), (2, range(3, 5)),
                                                                       (4, range(5))) for t in ts}
    track.add((_node_of(g, 3, 3), _node_of(g, 3, 5)))  # across the frame where 3 is missing
    assert edges == divisions | track and summary.edges == len(edges) and summary.divisions == 2
    assert all(kinds[e] for e in divisions) and not any(kinds[e] for e in track)
    # metadata: axes with calibration, tracklet / lineage props, the lineage itself
    axes = {a.name: a for a in g.metadata.axes}
    assert (axes["t"].type, axes["t"].scale, axes["t"].scaled_unit) == ("time", 3.0, "second")
    assert (axes["y"].scale, axes["x"].scale, axes["x"].scaled_unit) == (0.5, 0.25, "micrometer")
    assert g.metadata.track_node_props == {"tracklet": "track_id", "lineage": "lineage_id"}
    assert g.lineage() == _lineage()


def test_networkx_view_from_the_geff_package(tmp_path):
    path = tmp_path / "tracks.geff"
    write_geff(path, _frames(), lineage=_lineage())
    graph, meta = geff.read(str(path))
    assert meta.directed and graph.number_of_nodes() == 14 and graph.number_of_edges() == 12
    parent_last = next(n for n, d in graph.nodes(data=True) if d["seg_id"] == 1 and d["t"] == 2)
    assert sorted(graph.nodes[n]["seg_id"] for n in graph.successors(parent_last)) == [2, 3]


def test_3d_frames_and_no_lineage(tmp_path):
    path = tmp_path / "t3d.geff"
    write_geff(path, _frames(depth=3), scale=(2.0, 0.5, 0.5), unit="um")
    g = read_geff(path, validate_data=True)
    assert {"z", "y", "x"} <= set(g.nodes) and (g.nodes["z"] == 1.0).all() and (g.nodes["area"] == 12).all()
    assert not g.edge_props["division"].any() and len(g.lineage()) == 0
    # without a lineage the daughters are roots of their own
    assert (g.nodes["lineage_id"] == g.nodes["seg_id"]).all()


def test_empty_movie_writes_a_valid_empty_graph(tmp_path):
    path = tmp_path / "empty.geff"
    summary = write_geff(path, [np.zeros((4, 4), np.uint8)] * 3)
    assert (summary.nodes, summary.edges) == (0, 0)
    assert len(read_geff(path).node_ids) == 0


def test_existing_output_and_bad_input(tmp_path):
    path = tmp_path / "tracks.geff"
    write_geff(path, _frames())
    with pytest.raises(OutputError, match="overwrite=True"):
        write_geff(path, _frames())
    write_geff(path, list(_frames())[:2], overwrite=True)
    assert len(read_geff(path).node_ids) == 4
    with pytest.raises(InputError, match="integer label image"):
        write_geff(tmp_path / "a.geff", [np.zeros((4, 4), np.float32)])
    with pytest.raises(InputError, match="frame 1: negative"):
        write_geff(tmp_path / "b.geff", [np.zeros((4, 4), np.int16), np.full((4, 4), -2, np.int16)])
    with pytest.raises(InputError, match="dimensions"):
        write_geff(tmp_path / "c.geff", [np.zeros((4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8)])
    with pytest.raises(InputError, match="one value per spatial axis"):
        write_geff(tmp_path / "d.geff", _frames(), scale=(1.0,))
    with pytest.raises(InputError, match="does not exist"):
        read_geff(tmp_path / "nothing.geff")


def test_missing_geff_package_says_how_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_geff(name, *args, **kwargs):
        if name.split(".")[0] in ("geff", "geff_spec"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_geff)
    with pytest.raises(OutputError, match=r"napari-sam2\[tracks\]"):
        write_geff(tmp_path / "x.geff", _frames())
    assert not (tmp_path / "x.geff").exists()


def test_daughters_of_a_parent_that_never_appears_are_separate_lineages(tmp_path):
    lineage = Lineage()
    lineage.add_division(9, [2, 3], 3)  # 9 has no pixels anywhere
    path = tmp_path / "orphans.geff"
    summary = write_geff(path, _frames(), lineage=lineage)
    g = read_geff(path, validate_data=True)  # lineage ids must match the weakly connected components
    assert summary.divisions == 0
    ids = {int(s): int(lin) for s, lin in zip(g.nodes["seg_id"], g.nodes["lineage_id"])}
    assert ids == {1: 1, 2: 2, 3: 3, 4: 4}
