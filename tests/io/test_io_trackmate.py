"""TrackMate XML export: spots, edges, tracks that split; read back by XML and by geff's TrackMate reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from napari_sam2.engine.lineage import Lineage
from napari_sam2.errors import InputError, OutputError
from napari_sam2.io.trackmate import write_trackmate

# object 1 divides into 2 and 3 on frame 3; 3 is missing on frame 4; 4 is there throughout
DIVIDING = [{1: (1, 1), 4: (6, 6)}] * 3 + [{2: (0, 0), 3: (2, 2), 4: (6, 6)}, {2: (0, 0), 4: (6, 6)},
                                             {2: (0, 0), 3: (2, 3), 4: (6, 6)}]


def _frames():
    for spots in DIVIDING:
        labels = np.zeros((8, 10), np.uint16)
        for obj, (r, c) in spots.items():
            labels[r:r + 2, c:c + 2] = obj
        yield labels


def _lineage():
    lineage = Lineage()
    lineage.add_division(1, [2, 3], 3)
    return lineage


def test_spots_tracks_and_division_in_the_xml(tmp_path):
    path = tmp_path / "tracks.xml"
    n = write_trackmate(path, _frames(), lineage=_lineage(), scale=(0.5, 0.25), unit="um", frame_interval=3.0)
    root = ET.parse(path).getroot()
    model = root.find("Model")
    assert root.tag == "TrackMate" and model.get("spatialunits") == "µm" and model.get("timeunits") == "sec"
    spots = {int(s.get("ID")): s.attrib for s in model.iter("Spot")}
    assert n == len(spots) == sum(len(s) for s in DIVIDING) == int(model.find("AllSpots").get("nspots"))
    for frame in model.find("AllSpots"):
        assert all(s.get("FRAME") == frame.get("frame") for s in frame)
    by_key = {(int(a["SEG_ID"]), int(a["FRAME"])): int(i) for i, a in spots.items()}
    one = spots[by_key[(1, 0)]]
    assert (float(one["POSITION_Y"]), float(one["POSITION_X"])) == (1.5 * 0.5, 1.5 * 0.25)
    assert float(spots[by_key[(2, 4)]]["POSITION_T"]) == 12.0 and float(one["AREA"]) == 4 * 0.5 * 0.25
    tracks = model.find("AllTracks").findall("Track")
    assert len(tracks) == 2  # the lineage 1 -> 2, 3 is one track that splits; 4 is another
    edges = {t.get("TRACK_ID"): [(int(e.get("SPOT_SOURCE_ID")), int(e.get("SPOT_TARGET_ID")), e.get("DIVISION"))
                                 for e in t.findall("Edge")] for t in tracks}
    tree = next(es for es in edges.values() if len(es) == 7)  # 1: 2, 2: 2, 3: 1, divisions: 2
    assert {(s, d) for s, d, div in tree if div == "1"} == {(by_key[(1, 2)], by_key[(2, 3)]),
                                                            (by_key[(1, 2)], by_key[(3, 3)])}
    assert (by_key[(3, 3)], by_key[(3, 5)], "0") in tree  # a gap-closing edge
    assert {t.get("NUMBER_SPLITS") for t in tracks} == {"0", "1"}
    assert [t.get("TRACK_ID") for t in model.find("FilteredTracks")] == sorted(edges)
    image = root.find("Settings/ImageData")
    assert (image.get("width"), image.get("height"), image.get("nframes")) == ("10", "8", "6")
    assert float(image.get("pixelwidth")) == 0.25 and float(image.get("timeinterval")) == 3.0


@pytest.mark.filterwarnings("ignore:Missing tag", "ignore:No image path")  # optional GUI parts, not written
def test_geffs_trackmate_reader_reads_it(tmp_path):
    pytest.importorskip("geff")
    from geff.convert import from_trackmate_xml_to_geff

    from napari_sam2.io.geff import read_geff

    xml = tmp_path / "tracks.xml"
    write_trackmate(xml, _frames(), lineage=_lineage())
    from_trackmate_xml_to_geff(xml, tmp_path / "from_tm.geff")
    g = read_geff(tmp_path / "from_tm.geff")
    assert len(g.node_ids) == 14 and len(g.edges) == 12
    seg = dict(zip(g.nodes["ID"].tolist(), g.nodes["SEG_ID"].tolist()))
    out_degree = np.bincount(g.edges[:, 0], minlength=int(g.node_ids.max()) + 1)
    splitting = [seg[int(n)] for n in np.flatnonzero(out_degree == 2)]
    assert splitting == [1]
    assert len(set(g.nodes["TRACK_ID"].tolist())) == 2


def test_3d_and_bad_input(tmp_path):
    frames = [np.stack([f] * 3) for f in _frames()]
    write_trackmate(tmp_path / "t3d.xml", frames, scale=(2.0, 1.0, 1.0))
    root = ET.parse(tmp_path / "t3d.xml").getroot()
    assert {s.get("POSITION_Z") for s in root.iter("Spot")} == {"2"}  # slice 1 of 3, 2 units thick
    assert root.find("Settings/ImageData").get("nslices") == "3"
    with pytest.raises(OutputError, match="overwrite=True"):
        write_trackmate(tmp_path / "t3d.xml", frames)
    with pytest.raises(InputError, match="one value per spatial axis"):
        write_trackmate(tmp_path / "x.xml", _frames(), scale=(1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="integer label image"):
        write_trackmate(tmp_path / "y.xml", [np.zeros((4, 4), np.float32)])
    assert not (tmp_path / "x.xml").exists() and not (tmp_path / "y.xml").exists()
