"""ObjectTable measurements, its CSV, and tracks for napari's Tracks layer."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_sam2.engine.results import FrameResult
from napari_sam2.errors import InputError
from napari_sam2.io import ObjectTable, Stack, tracks_from_table


def _result(frame, boxes, present=None, index=(), shape=(10, 12)):
    """FrameResult whose object k fills boxes[k] = (r0, c0, r1, c1) (half-open), or nothing."""
    ids = tuple(sorted(boxes))
    masks = np.zeros((len(ids), *shape), bool)
    for k, obj in enumerate(ids):
        if boxes[obj] is not None:
            r0, c0, r1, c1 = boxes[obj]
            masks[k, r0:r1, c0:c1] = True
    present = np.array([True] * len(ids) if present is None else present)
    n = len(ids)
    return FrameResult(
        frame=frame, obj_ids=ids, masks=masks, scores=np.linspace(0.9, 0.8, n, dtype=np.float32),
        present=present, iou=np.full(n, 0.75, np.float32), object_score_logits=np.zeros(n, np.float32),
        index=index,
    )


def test_measurements_of_a_frame():
    table = ObjectTable(pixel_size=(0.5, 0.25), unit="micron")
    table.add(_result(4, {1: (2, 3, 6, 8), 2: None}, present=[True, False]))
    assert table.columns == [
        "frame", "obj_id", "present", "score", "iou", "area_px", "area_um2", "centroid_row",
        "centroid_col", "min_row", "min_col", "max_row", "max_col",
    ]
    one, two = table.records()
    assert one == pytest.approx({
        "frame": 4, "obj_id": 1, "present": True, "score": 0.9, "iou": 0.75, "area_px": 20,
        "area_um2": 2.5, "centroid_row": 3.5, "centroid_col": 5.0,
        "min_row": 2, "min_col": 3, "max_row": 6, "max_col": 8,
    })
    assert (two["obj_id"], two["present"], two["area_px"], two["area_um2"]) == (2, False, 0, 0.0)
    assert all(np.isnan(two[k]) for k in ("centroid_row", "centroid_col", "min_row", "max_col"))


def test_irregular_mask_centroid_and_bbox_match_numpy():
    rng = np.random.default_rng(1)
    mask = rng.random((10, 12)) > 0.7
    result = _result(0, {5: None})
    result.masks[0] = mask
    table = ObjectTable()
    table.add(result)
    (row,) = table.records()
    rr, cc = np.nonzero(mask)
    assert row["area_px"] == mask.sum() and "area_um2" not in row
    assert (row["centroid_row"], row["centroid_col"]) == pytest.approx((rr.mean(), cc.mean()))
    assert (row["min_row"], row["min_col"], row["max_row"], row["max_col"]) == (
        rr.min(), cc.min(), rr.max() + 1, cc.max() + 1)


def test_csv_round_trip_with_empty_cells(tmp_path):
    table = ObjectTable.for_stack(
        Stack(data=np.zeros((1, 10, 12)), axes="TYX", scale=(1.0, 2.0, 2.0), unit="nm")
    )
    table.add(_result(0, {1: (0, 0, 2, 2), 3: None}))
    table.add(_result(1, {1: (1, 1, 3, 3), 3: (5, 5, 6, 6)}))
    path = table.write_csv(tmp_path / "objects.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(table) == 4
    assert rows[0]["area_nm2"] == "16" and rows[0]["present"] == "True"
    assert rows[1]["obj_id"] == "3" and rows[1]["centroid_row"] == "" and rows[1]["min_row"] == ""
    assert rows[3]["centroid_col"] == "5.000" and rows[3]["max_col"] == "6"
    frame = table.to_dataframe()
    assert list(frame.columns) == table.columns and frame["area_px"].tolist() == [4, 0, 4, 1]


def test_outer_index_columns():
    table = ObjectTable(index_names=["t"])
    table.add(_result(2, {1: (0, 0, 1, 1)}, index=(7,)))
    assert table.columns[:3] == ["t", "frame", "obj_id"]
    assert table["t"].tolist() == [7]
    with pytest.raises(InputError, match="index"):
        table.add(_result(3, {1: (0, 0, 1, 1)}))


def _tracked_table():
    table = ObjectTable()
    table.add(_result(0, {1: (0, 0, 2, 2), 2: (4, 4, 6, 6)}))
    table.add(_result(1, {1: (1, 1, 3, 3), 2: None}))  # object 2: present but empty
    table.add(_result(2, {1: (2, 2, 4, 4), 2: (6, 6, 8, 8)}, present=[False, True]))
    table.add(_result(3, {1: (3, 3, 5, 5), 2: (7, 7, 9, 9)}))
    return table


EXPECTED_TRACKS = [
    [1, 0, 0.5, 0.5], [1, 1, 1.5, 1.5], [1, 3, 3.5, 3.5],
    [2, 0, 4.5, 4.5], [2, 2, 6.5, 6.5], [2, 3, 7.5, 7.5],
]


def test_tracks_keep_present_non_empty_frames_sorted():
    tracks = tracks_from_table(_tracked_table())
    assert tracks.shape == (6, 4)
    np.testing.assert_allclose(tracks, EXPECTED_TRACKS)


def test_tracks_from_csv_and_dataframe_match_and_load_in_napari(tmp_path):
    table = _tracked_table()
    path = table.write_csv(tmp_path / "objects.csv")
    np.testing.assert_allclose(tracks_from_table(path), EXPECTED_TRACKS)
    np.testing.assert_allclose(tracks_from_table(table.to_dataframe()), EXPECTED_TRACKS)
    from napari.layers import Tracks

    layer = Tracks(tracks_from_table(table))
    assert sorted(np.unique(layer.data[:, 0]).tolist()) == [1, 2]


def test_tracks_refuse_duplicate_times():
    table = ObjectTable()
    table.add(_result(0, {1: (0, 0, 1, 1)}, index=(0,)))
    table.add(_result(0, {1: (0, 0, 1, 1)}, index=(1,)))
    with pytest.raises(InputError, match="several rows"):
        tracks_from_table(table)
    np.testing.assert_allclose(tracks_from_table(table, time="index_0")[:, :2], [[1, 0], [1, 1]])


def test_division_graph_goes_into_a_napari_tracks_layer(tmp_path):
    from napari.layers import Tracks

    from napari_sam2.engine.lineage import Lineage
    from napari_sam2.io.tracks import tracks_graph, tracks_layer_data

    table = ObjectTable()
    for t in range(3):
        table.add(_result(t, {1: (2, 2, 4, 4), 2: None, 3: None, 5: (8, 8, 9, 9)}, present=[True, False, False, True]))
    for t in range(3, 6):
        table.add(_result(t, {1: None, 2: (0, 0, 2, 2), 3: (5, 5, 7, 7), 5: (8, 8, 9, 9)},
                          present=[False, True, True, True]))
    lineage = Lineage()
    lineage.add_division(1, [2, 3], 3)
    lineage.add_division(7, [8, 9], 4)  # objects never tracked: left out of the graph
    path = table.write_csv(tmp_path / "objects.csv")
    data, graph = tracks_layer_data(path, lineage)
    assert graph == {2: [1], 3: [1]}
    layer = Tracks(data, graph=graph)
    assert layer.graph == {2: [1], 3: [1]}
    assert sorted(np.unique(layer.data[:, 0]).tolist()) == [1, 2, 3, 5]
    first = {int(tid): data[data[:, 0] == tid, 1].min() for tid in (2, 3)}
    last_parent = data[data[:, 0] == 1, 1].max()
    assert all(f > last_parent for f in first.values())  # daughters start after the parent ends
    assert tracks_graph(data, None) == {} and tracks_graph(data[:0], lineage) == {}
