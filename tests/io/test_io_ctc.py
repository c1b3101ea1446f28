"""Cell Tracking Challenge export: masks, man_track.txt and the gap rule."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam2.engine.results import FrameResult
from napari_sam2.errors import InputError, OutputError
from napari_sam2.io import CtcTrack, write_ctc

SPOTS = {1: (slice(0, 2), slice(0, 2)), 2: (slice(4, 6), slice(4, 6)), 3: (slice(0, 2), slice(6, 8))}
PRESENCE = [{1, 2}, {1, 2}, {2}, {1, 2}, {1, 3}]  # object 1 vanishes on frame 2


def _frames():
    for ids in PRESENCE:  # a generator: write_ctc must stream it
        labels = np.zeros((8, 8), np.uint32)
        for obj in ids:
            labels[SPOTS[obj]] = obj
        yield labels


def _read_masks(out_dir, n, digits=3):
    return [tifffile.imread(out_dir / f"mask{t:0{digits}d}.tif") for t in range(n)]


def test_gap_starts_a_new_track_with_the_old_one_as_parent(tmp_path):
    tracks = write_ctc(tmp_path, _frames())
    assert tracks == [
        CtcTrack(label=1, begin=0, end=1, parent=0, obj_id=1),
        CtcTrack(label=2, begin=0, end=3, parent=0, obj_id=2),
        CtcTrack(label=3, begin=3, end=4, parent=1, obj_id=1),  # re-appearance of object 1
        CtcTrack(label=4, begin=4, end=4, parent=0, obj_id=3),  # id 3 already taken
    ]
    assert (tmp_path / "man_track.txt").read_text() == "1 0 1 0\n2 0 3 0\n3 3 4 1\n4 4 4 0\n"
    masks = _read_masks(tmp_path, 5)
    assert all(m.dtype == np.uint16 and m.shape == (8, 8) for m in masks)
    assert masks[3][SPOTS[1]].tolist() == [[3, 3], [3, 3]] and masks[0][SPOTS[1]].min() == 1
    assert masks[4][SPOTS[3]].min() == 4
    # CTC consistency: each label is on exactly the frames begin..end of its line
    for tr in tracks:
        on = [t for t, m in enumerate(masks) if (m == tr.label).any()]
        assert on == list(range(tr.begin, tr.end + 1))


def test_frame_results_are_accepted(tmp_path):
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    result = FrameResult(frame=0, obj_ids=(9,), masks=masks, scores=np.ones(1, np.float32),
                         present=np.ones(1, bool), iou=np.ones(1, np.float32),
                         object_score_logits=np.ones(1, np.float32))
    tracks = write_ctc(tmp_path, [result, result], track_file="res_track.txt")
    assert tracks == [CtcTrack(9, 0, 1, 0, 9)]
    assert (tmp_path / "res_track.txt").read_text() == "9 0 1 0\n"
    assert int(tifffile.imread(tmp_path / "mask001.tif").sum()) == 9 * 4


def test_more_than_1000_frames_use_four_digits(tmp_path):
    frames = (np.full((1, 1), 1 if t % 500 else 0, np.uint8) for t in range(1001))
    tracks = write_ctc(tmp_path, frames)
    names = sorted(p.name for p in tmp_path.glob("mask*.tif"))
    assert len(names) == 1001 and names[0] == "mask0000.tif" and names[-1] == "mask1000.tif"
    assert [(t.label, t.begin, t.end, t.parent) for t in tracks] == [
        (1, 1, 499, 0), (2, 501, 999, 1)]
    assert write_ctc(tmp_path / "known", (np.zeros((1, 1), np.uint8) for _ in range(2)),
                     n_frames=1001) == []
    assert (tmp_path / "known" / "mask0001.tif").exists()


def test_existing_export_is_protected(tmp_path):
    write_ctc(tmp_path, _frames())
    with pytest.raises(OutputError, match="overwrite=True"):
        write_ctc(tmp_path, _frames())
    write_ctc(tmp_path, [np.zeros((8, 8), np.uint8)], overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["man_track.txt", "mask000.tif"]


def test_bad_frames(tmp_path):
    with pytest.raises(InputError, match="integer label image"):
        write_ctc(tmp_path / "a", [np.zeros((4, 4), np.float32)])
    with pytest.raises(InputError, match="negative"):
        write_ctc(tmp_path / "b", [np.full((4, 4), -1, np.int16)])


# ----------------------------------------------------------------------------- divisions
DIVIDING = [{1: (1, 1), 4: (6, 6)}] * 3 + [{2: (0, 0), 3: (2, 2), 4: (6, 6)}, {2: (0, 0), 4: (6, 6)},
                                             {2: (0, 0), 3: (2, 3), 4: (6, 6)}]  # 1 -> 2 + 3 on frame 3; 3 gaps


def _dividing_frames():
    for spots in DIVIDING:
        labels = np.zeros((8, 8), np.uint16)
        for obj, (r, c) in spots.items():
            labels[r:r + 2, c:c + 2] = obj
        yield labels


def _read_man_track(path):
    rows = [tuple(int(v) for v in line.split()) for line in path.read_text().splitlines() if line.strip()]
    assert all(len(r) == 4 for r in rows)
    return rows


def test_lineage_gives_daughters_their_parents_track(tmp_path):
    from napari_sam2.engine.lineage import Lineage

    lineage = Lineage()
    lineage.add_division(1, [2, 3], 3)
    tracks = write_ctc(tmp_path, _dividing_frames(), lineage=lineage)
    rows = _read_man_track(tmp_path / "man_track.txt")
    assert rows == [(t.label, t.begin, t.end, t.parent) for t in tracks]
    assert rows == [(1, 0, 2, 0), (2, 3, 5, 1), (3, 3, 3, 1), (4, 0, 5, 0), (5, 5, 5, 3)]
    by_label = {t.label: t.obj_id for t in tracks}
    assert by_label == {1: 1, 2: 2, 3: 3, 4: 4, 5: 3}  # label 5: object 3 after its gap (the gap rule)
    masks = _read_masks(tmp_path, len(DIVIDING))
    for label, begin, end, parent in rows:  # CTC rules: consecutive frames, parents end first
        assert [t for t, m in enumerate(masks) if (m == label).any()] == list(range(begin, end + 1))
        if parent:
            assert next(r for r in rows if r[0] == parent)[2] < begin
    # without the lineage the daughters are roots
    plain = write_ctc(tmp_path / "plain", _dividing_frames())
    assert [t.parent for t in plain if t.obj_id in (2, 3)] == [0, 0, 3]


def test_a_parent_that_never_appears_gives_no_parent(tmp_path):
    from napari_sam2.engine.lineage import Lineage

    lineage = Lineage()
    lineage.add_division(9, [2, 3], 3)
    tracks = write_ctc(tmp_path, _dividing_frames(), lineage=lineage)
    assert [(t.label, t.parent) for t in tracks] == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 3)]
