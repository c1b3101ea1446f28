"""The widget's clean-up group and the object panel's exports with lineage, in a real viewer (real engine
with the random-weights model, real worker threads; the stub generator of test_everything_widget).

The random-weights model tracks nothing meaningful, so after segment everything made the output layer
the tests paint known labels into it, as a user editing by hand would (and, for the exports, record
a division in the session's lineage as "Split here" or the division watch do).
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile

from napari_sam2.engine.cleanup import Cleanup

from .conftest import wait_idle
from .test_everything_widget import T, open_stack, out, settle, stack  # noqa: F401 - open_stack is a fixture

YY, XX = np.mgrid[:64, :64]


def disc(row, col, r2=40):
    return (YY - row) ** 2 + (XX - col) ** 2 < r2


def painted(w, viewer, qtbot, frames):
    """Segment everything on frame 0 (the output layer and objects 1, 2), then paint ``frames`` into it:
    a list of {obj_id: mask} per frame."""
    w.everything.segment()
    settle(qtbot, w)
    layer = viewer.layers["discs SAM 2"]
    data = np.zeros_like(layer.data)
    for t, objects in enumerate(frames):
        for obj_id, mask in objects.items():
            data[t][mask] = obj_id
    layer.data = data
    return layer


def two_discs():
    return [{1: disc(16, 16), 2: disc(16, 46)} for _ in range(T)]


def test_clean_up_all_frames_fixes_holes_islands_and_flickers_as_one_undo_step(open_stack, viewer, qtbot):
    w, _ = open_stack(stack())
    layer = painted(w, viewer, qtbot, two_discs())
    dirty = layer.data.copy()
    one, other = 1, 2
    dirty[2, 15:18, 15:18] = 0  # a hole inside the first disc
    dirty[3, 60:62, 2:4] = other  # a 4-pixel island of the second object far from it
    dirty[5, 40:44, 40:44] = 9  # an object present on frame 5 only
    layer.data = dirty
    before = dirty.copy()
    panel = w.everything.cleanup
    panel.fill_holes.setValue(20)
    panel.min_island.setValue(10)
    panel.drop_flicker.setChecked(True)
    panel.all_btn.click()
    wait_idle(qtbot, w)
    got = layer.data
    assert (got[2, 15:18, 15:18] == one).all()
    assert not (got[3, 60:62, 2:4]).any()
    assert not (got == 9).any()
    want = Cleanup(fill_holes=20, min_island=10, drop_flicker=True).clean_stack(before.copy())
    np.testing.assert_array_equal(got, want)  # the widget does what the API does
    assert "Clean-up done: 3 frames changed" in w.status_label.text()
    layer.undo()  # one undo step takes all of it back
    np.testing.assert_array_equal(layer.data, before)


def test_clean_up_this_frame_changes_only_the_frame_shown(open_stack, viewer, qtbot, notes):
    w, _ = open_stack(stack())
    layer = painted(w, viewer, qtbot, two_discs())
    dirty = layer.data.copy()
    one = 1
    dirty[2:4, 15:18, 15:18] = 0  # holes on frames 2 and 3
    layer.data = dirty
    panel = w.everything.cleanup
    panel.all_btn.click()  # every step off: refused with one message, nothing changed
    wait_idle(qtbot, w)
    assert any("every clean-up step is off" in text for _, text in notes)
    panel.fill_holes.setValue(20)
    viewer.dims.set_current_step(0, 3)
    panel.frame_btn.click()
    wait_idle(qtbot, w)
    assert (layer.data[3, 15:18, 15:18] == one).all()
    assert not layer.data[2, 15:18, 15:18].any()  # another frame: untouched
    assert "1 frame changed" in w.status_label.text()


def divided(w, viewer, qtbot):
    """Object 1 (two discs) on frames 0-2 divides into 3 and 4 on frame 3; object 2 is elsewhere throughout."""
    cell = disc(16, 16) | disc(16, 46)
    frames = [{1: cell, 2: disc(48, 32)} if t < 3 else {3: disc(16, 16), 4: disc(16, 46), 2: disc(48, 32)}
              for t in range(T)]
    painted(w, viewer, qtbot, frames)
    w.session.lineage.add_division(1, (3, 4), 3)
    return (3, 4)


def test_every_export_carries_the_lineage_and_the_tracks_layer_links_the_daughters(open_stack, viewer, qtbot,
                                                                                     tmp_path):
    w, _ = open_stack(stack())
    daughters = divided(w, viewer, qtbot)
    labels = out(viewer)
    assert (labels[:3] == 1).any() and not (labels[3:] == 1).any()
    assert all((labels[3:] == d).any(axis=(1, 2)).all() for d in daughters)
    panel = w.everything.objects

    tif, objects, lineage_csv = panel.export(str(tmp_path / "cells.tif"), "tiff")
    np.testing.assert_array_equal(tifffile.imread(tif), labels)
    with open(lineage_csv, newline="") as fh:
        rows = [(int(r["parent_id"]), int(r["daughter_id"]), int(r["frame"])) for r in csv.DictReader(fh)]
    assert rows == [(1, d, 3) for d in daughters]

    ctc = tmp_path / "ctc"
    ctc.mkdir()
    panel.export(str(ctc), "ctc")
    tracks = {int(a): (int(b), int(c), int(p)) for a, b, c, p in
              (line.split() for line in (ctc / "man_track.txt").read_text().splitlines())}
    first = {v for v in np.unique(tifffile.imread(ctc / "mask000.tif")) if v}
    parent_label = [label for label in first if tracks[label][1] == 2][0]  # the track that ends on frame 2
    children = [label for label, (b, _e, p) in tracks.items() if p == parent_label]
    assert len(children) == 2 and all(tracks[c][0] == 3 for c in children)
    assert len(list(ctc.glob("mask*.tif"))) == T

    xml = panel.export(str(tmp_path / "cells.xml"), "trackmate")[0]
    spots = ET.parse(xml).getroot().findall(".//Spot")
    assert len(spots) == sum(len(set(np.unique(labels[t])) - {0}) for t in range(T))

    layer = panel.add_tracks_layer()
    assert layer is viewer.layers["discs SAM 2 tracks"]
    assert layer.graph == {d: [1] for d in daughters}
    assert set(np.unique(layer.data[:, 0]).astype(int)) == set(np.unique(labels)) - {0}
    panel.add_tracks_layer()  # again: replaced, not duplicated
    assert sum(ly.name.startswith("discs SAM 2 tracks") for ly in viewer.layers) == 1


def test_geff_export_reads_back_with_the_lineage(open_stack, viewer, qtbot, tmp_path):
    pytest.importorskip("geff")
    from napari_sam2.io.geff import read_geff

    w, _ = open_stack(stack())
    daughters = divided(w, viewer, qtbot)
    path = w.everything.objects.export(str(tmp_path / "cells.geff"), "geff")[0]
    back = read_geff(path)
    assert sorted(back.lineage().daughters_of(1)) == sorted(daughters)


def test_exports_are_refused_with_one_message_without_labels_or_over_existing_files(open_stack, viewer, qtbot,
                                                                                       tmp_path, notes):
    w, _ = open_stack(stack())
    panel = w.everything.objects
    assert panel.export(str(tmp_path / "x.tif"), "tiff") is None
    assert panel.add_tracks_layer() is None
    assert sum("no output labels" in text for _, text in notes) == 2
    painted(w, viewer, qtbot, two_discs())
    (tmp_path / "cells_lineage.csv").write_text("mine")
    assert panel.export(str(tmp_path / "cells.tif"), "tiff") is None
    assert "already exists" in w.status_label.text()
    assert (tmp_path / "cells_lineage.csv").read_text() == "mine" and not (tmp_path / "cells.tif").exists()
