"""The ``napari-sam2`` command line, run as a real subprocess on real files.

Stacks are small TIFFs / .npy files written here; prompt CSVs are written by napari's own
layer writers. ``--model test-random`` (the random-weights test model) makes the subprocess
run the real engine; its output must equal :func:`napari_sam2.segment_video` on the same
data and prompts. Error paths fail before the model is loaded, so they are quick.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2 import api, cli
from napari_sam2._cli_plan import expand_stacks, match_prompts
from napari_sam2._cli_stacks import describe_stack
from napari_sam2.api import TEST_MODEL, object_table, segment_video
from napari_sam2.io import read_stack


# ---------------------------------------------------------------------------- helpers
def start_cli(*args, weights=None):
    """Start ``python -m napari_sam2.cli ARGS``; the test computes its expectation meanwhile."""
    env = dict(os.environ)
    if weights is not None:
        env["NAPARI_SAM2_WEIGHTS_DIR"] = str(weights)
    return subprocess.Popen([sys.executable, "-m", "napari_sam2.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc):
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_cli(*args, weights=None):
    return finish(start_cli(*args, weights=weights))


@pytest.fixture(scope="module")
def napari_layers():
    """napari layers whose ``save`` uses napari's builtin CSV writers (no viewer needed)."""
    import npe2

    npe2.PluginManager.instance().discover()
    import napari.layers

    return napari.layers


def save_points(layers, path, coords, obj_ids, positive=None):
    feats = {"obj_id": obj_ids, "positive": positive if positive is not None else [True] * len(obj_ids)}
    written = layers.Points(np.asarray(coords, float), features=feats).save(str(path), plugin="napari")
    return Path(written[0])


def save_rectangles(layers, path, rows):
    rects = [np.array([[f, r0, c0], [f, r0, c1], [f, r1, c1], [f, r1, c0]], float) for f, r0, c0, r1, c1 in rows]
    written = layers.Shapes(rects, shape_type="rectangle").save(str(path), plugin="napari")
    return Path(written[0])


def blobs(n, h, w, dtype, seed):
    """A moving bright disc over noise, scaled to the dtype."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    top = 200 if dtype == np.uint8 else 4000
    out = []
    for t in range(n):
        img = rng.normal(0.1, 0.03, (h, w)) + 0.7 * (((yy - h // 2) ** 2 + (xx - w // 3 - 2 * t) ** 2) < 80)
        out.append(np.clip(img * top, 0, top))
    return np.asarray(out).astype(dtype)


def write_imagej(path, data, pixel=0.5, unit="um"):
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / pixel, 1 / pixel),
                     metadata={"axes": "TYX", "unit": unit})
    return path


@pytest.fixture(scope="module")
def model():
    return api.get_model(TEST_MODEL, "cpu")


# ------------------------------------------------------------------ the main run
def test_cli_matches_api_with_table_and_ctc(tmp_path, napari_layers, model):
    frames = blobs(6, 64, 96, np.uint16, seed=0)
    stack = write_imagej(tmp_path / "movie.tif", frames, pixel=0.5)
    # prompts on frame 2, direction both: the CLI spools frames to disk, then writes them in order
    prompts = save_points(napari_layers, tmp_path / "clicks.csv",
                          [[2, 32, 38], [2, 5, 5], [2, 50, 80]], [1, 1, 2], [True, False, True])
    out, table, ctc = tmp_path / "out" / "movie_labels.tif", tmp_path / "objects.csv", tmp_path / "ctc"
    proc = start_cli("segment", stack, "--prompts", prompts, "--out", out, "--model", TEST_MODEL,
                     "--table", table, "--ctc", ctc, "--device", "cpu")
    expected_table = object_table(pixel_size=(0.5, 0.5), unit="um")
    expected = segment_video(frames, points=[[2, 32, 38], [2, 5, 5], [2, 50, 80]], point_ids=[1, 1, 2],
                             point_labels=[1, 0, 1], model=model, table=expected_table)
    proc = finish(proc)
    assert proc.returncode == 0, proc.stderr
    assert "2 object(s), 6 frame(s)" in proc.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["movie_labels.tif"]  # no temporary files left
    with tifffile.TiffFile(out) as tif:
        got = tif.asarray()
        assert tif.is_imagej and tif.series[0].axes == "TYX" and len(tif.pages) == 6
        assert tif.imagej_metadata["unit"] in ("um", "micron")
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE  # zlib: Fiji and napari read it
        assert page.dtype == np.uint8
        assert page.tags["XResolution"].value == (2, 1) and page.tags["YResolution"].value == (2, 1)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype == np.uint8 and got[0].any() and got[5].any()
    with read_stack(out) as labels:  # what the plugin (and napari's tifffile reader) sees
        assert labels.axes == "TYX" and labels.scale == (1.0, 0.5, 0.5) and labels.unit == "µm"

    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(expected_table) == 12
    assert "area_um2" in rows[0]
    order = np.lexsort([expected_table["obj_id"], expected_table["frame"]])  # the CSV is sorted by frame, object
    assert [(int(r["frame"]), int(r["obj_id"])) for r in rows] == sorted(
        zip(expected_table["frame"].tolist(), expected_table["obj_id"].tolist()))
    np.testing.assert_array_equal([int(r["area_px"]) for r in rows], expected_table["area_px"][order])
    np.testing.assert_array_equal([int(r["frame"]) for r in rows], expected_table["frame"][order])
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected_table["score"][order], rtol=1e-5)

    masks = sorted(p.name for p in ctc.glob("mask*.tif"))
    assert masks == [f"mask{t:03d}.tif" for t in range(6)]
    np.testing.assert_array_equal(tifffile.imread(ctc / "mask005.tif"), expected[5])
    assert (ctc / "man_track.txt").read_text().split("\n")[0].split()[0] == "1"

    # the same command again: every output exists -> skipped, nothing touched, no model loaded
    before = out.stat().st_mtime_ns
    again = run_cli("segment", stack, "--prompts", prompts, "--out", out, "--model", TEST_MODEL,
                    "--table", table, "--ctc", ctc)
    assert again.returncode == 0 and "skipped movie.tif" in again.stderr and "--overwrite" in again.stderr
    assert "loading model" not in again.stderr and out.stat().st_mtime_ns == before


def test_cli_batch_folder(tmp_path, napari_layers, model):
    data, prompt_dir, out = tmp_path / "data", tmp_path / "prompts", tmp_path / "results"
    data.mkdir(), prompt_dir.mkdir()
    a = blobs(5, 64, 64, np.uint8, seed=1)
    b = blobs(5, 48, 64, np.uint16, seed=2)
    write_imagej(data / "a.tif", a, pixel=0.25)
    np.save(data / "b.npy", b)
    write_imagej(data / "c.tif", a)  # no prompt file: reported, the others still run
    save_rectangles(napari_layers, prompt_dir / "a_prompts.csv", [[0, 20, 10, 44, 40]])  # box -> object 1
    seed = np.zeros((48, 64), np.uint16)
    seed[20:30, 15:30] = 7
    tifffile.imwrite(prompt_dir / "b.tif", seed)  # a labels image: mask prompt for object 7 on frame 0

    proc = start_cli("segment", data, "--prompts", prompt_dir, "--out", out, "--model", TEST_MODEL,
                     "--direction", "forward", "--table", out, "--quiet")
    masks = np.zeros(b.shape, np.uint16)
    masks[0] = seed
    expected_b = segment_video(b, masks=masks, model=model, direction="forward")
    proc = finish(proc)
    assert proc.returncode == 4, proc.stderr  # c.tif had no prompts
    assert "c.tif: No prompt file for c.tif" in proc.stderr and "%" not in proc.stderr  # --quiet: no bars
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.tif", "a_objects.csv", "b_labels.tif", "b_objects.csv",
                                                      "batch_summary.csv"]
    with open(out / "batch_summary.csv", newline="") as fh:
        summary = {r["stack"]: r for r in csv.DictReader(fh)}
    assert [summary[n]["status"] for n in ("a.tif", "b.npy", "c.tif")] == ["done", "done", "failed"], summary
    assert "No prompt file" in summary["c.tif"]["error"] and summary["b.npy"]["worker"] == "local"

    got_b = tifffile.imread(out / "b_labels.tif")
    np.testing.assert_array_equal(got_b, expected_b)
    assert got_b.dtype == np.uint8 and set(np.unique(got_b)) <= {0, 7}
    with read_stack(out / "a_labels.tif") as labels_a:
        assert labels_a.scale == (1.0, 0.25, 0.25) and labels_a.shape == (5, 64, 64)
    with read_stack(out / "b_labels.tif") as labels_b:
        assert labels_b.scale is None  # .npy: no calibration to keep

    again = run_cli("segment", data / "a.tif", data / "b.npy", "--prompts", prompt_dir, "--out", out,
                    "--model", TEST_MODEL, "--table", out)
    assert again.returncode == 0
    assert again.stderr.count("napari-sam2: skipped") == 2 and "0 stack(s) segmented, 2 skipped" in again.stderr


def test_cli_nd_stack_in_process(tmp_path, napari_layers, model, capsys):
    """(T, Z, Y, X) propagated along Z for each prompted time point (in-process to save time)."""
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 255, (3, 3, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "tz.npy", stack)
    prompts = save_points(napari_layers, tmp_path / "tz.csv", [[0, 1, 10, 10], [2, 0, 20, 20]], [1, 2])
    code = cli.main(["segment", str(tmp_path / "tz.npy"), "--prompts", str(prompts), "--out",
                     str(tmp_path / "tz_labels.tif"), "--model", TEST_MODEL, "--axis", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    expected = segment_video(stack, points=[[0, 1, 10, 10], [2, 0, 20, 20]], point_ids=[1, 2], axis=1, model=model)
    with tifffile.TiffFile(tmp_path / "tz_labels.tif") as tif:
        assert tif.series[0].axes == "TZYX"
        np.testing.assert_array_equal(tif.asarray(), expected)
    assert expected[0].any() and expected[2].any() and not expected[1].any()


# ---------------------------------------------------------------------- error paths
@pytest.fixture
def small(tmp_path, napari_layers):
    stack = write_imagej(tmp_path / "s.tif", blobs(4, 32, 40, np.uint8, seed=4))
    prompts = save_points(napari_layers, tmp_path / "p.csv", [[1, 10, 10]], [1])
    return tmp_path, stack, prompts


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("missing stack", 3, "Image file not found"),
        ("unreadable stack", 3, "Cannot read"),
        ("2D image", 3, "single 2D image"),
        ("empty folder", 3, "is empty; give a folder of stacks"),
        ("missing prompts", 4, "Prompt file not found"),
        ("bad prompt csv", 4, "no coordinate columns"),
        ("prompt outside", 4, "outside the 32 x 40 image"),
        ("prompt frame", 4, "frame 9 but the stack has 4"),
        ("unknown model", 5, "Unknown model 'sam3_huge'"),
        ("missing checkpoint", 5, "does not exist"),
        ("no prompts option", 2, "--prompts"),
        ("bad direction", 2, "invalid choice"),
        ("bad image size", 2, "multiple of 64"),
        ("batch out file", 2, "--out is a folder"),
    ],
)
def test_cli_errors(small, case, code, message):
    tmp, stack, prompts = small
    out = tmp / "o.tif"
    args = ["segment", stack, "--prompts", prompts, "--out", out, "--model", TEST_MODEL]
    if case == "missing stack":
        args[1] = tmp / "nope.tif"
    elif case == "unreadable stack":
        (tmp / "junk.tif").write_bytes(b"this is not a tiff")
        args[1] = tmp / "junk.tif"
    elif case == "2D image":
        tifffile.imwrite(tmp / "flat.tif", np.zeros((32, 40), np.uint8))
        args[1] = tmp / "flat.tif"
    elif case == "empty folder":
        (tmp / "empty").mkdir()
        args[1] = tmp / "empty"
        args[5] = tmp / "outdir"
    elif case == "missing prompts":
        args[3] = tmp / "nope.csv"
    elif case == "bad prompt csv":
        (tmp / "bad.csv").write_text("a,b\n1,2\n")
        args[3] = tmp / "bad.csv"
    elif case == "prompt outside":
        (tmp / "far.csv").write_text("index,axis-0,axis-1,axis-2\n0,1,10,55\n")
        args[3] = tmp / "far.csv"
    elif case == "prompt frame":
        (tmp / "late.csv").write_text("index,axis-0,axis-1,axis-2\n0,9,10,10\n")
        args[3] = tmp / "late.csv"
    elif case == "unknown model":
        args[-1] = "sam3_huge"
    elif case == "missing checkpoint":
        args[-1] = tmp / "weights" / "mine.pt"
    elif case == "no prompts option":
        del args[2:4]
    elif case == "bad direction":
        args += ["--direction", "sideways"]
    elif case == "bad image size":
        args += ["--image-size", "300"]
    elif case == "batch out file":
        args.insert(2, stack)
        args[1] = tmp / "other.tif"
    proc = run_cli(*args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    if code != 2:  # one clear line, never a traceback
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("napari-sam2: error: ")
    assert not out.exists()


def test_cli_debug_shows_traceback(small):
    tmp, stack, _ = small
    proc = run_cli("segment", stack, "--prompts", tmp / "nope.csv", "--out", tmp / "o.tif", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "PromptError" in proc.stderr


def test_cli_models_lists_registry_and_cache(tmp_path):
    (tmp_path / "sam2.1_hiera_tiny.pt").write_bytes(b"")
    proc = run_cli("models", weights=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:-1]}
    assert lines["sam2.1_hiera_tiny"][-1] == "yes" and lines["sam2.1_hiera_large"][-1] == "no"
    demo = lines["napari-sam2-demo"]  # e.g. napari-sam2-demo  24 MB  built in (not Meta's SAM 2: ...)
    assert demo[1].isdigit() and demo[2:5] == ["MB", "built", "in"] and "not Meta's" in proc.stdout
    assert str(tmp_path) in proc.stdout.splitlines()[-1]


def test_console_script_help():
    proc = run_cli("segment", "--help")
    assert proc.returncode == 0
    for option in ("--prompts", "--out", "--model", "--direction", "--table", "--ctc", "--overwrite", "--quiet"):
        assert option in proc.stdout


# ------------------------------------------------------------------- pieces (no model)
def test_labels_sink_spools_out_of_order_frames(tmp_path):
    from napari_sam2.io import LabelsTiffWriter
    from napari_sam2.io.labels_sink import LabelsSink

    frames = np.arange(5 * 4 * 6, dtype=np.uint8).reshape(5, 4, 6) % 9
    writer = LabelsTiffWriter(tmp_path / "x.tif", frames.shape, max_label=9)
    sink = LabelsSink(writer, (5,), tmp_path / ".spool")
    for t in (3, 4, 2, 1):  # the order of direction="both" from frame 3; frame 0 never comes
        sink.put((t,), frames[t])
    sink.finish()
    sink.close()
    expected = frames.copy()
    expected[0] = 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "x.tif"), expected)
    assert not (tmp_path / ".spool").exists()


def test_channel_axis_moved_last(tmp_path):
    data = np.arange(3 * 2 * 5 * 6, dtype=np.uint16).reshape(3, 2, 5, 6)  # T C Y X
    tifffile.imwrite(tmp_path / "tc.tif", data, imagej=True, metadata={"axes": "TCYX"})
    with read_stack(tmp_path / "tc.tif") as stack:
        info = describe_stack(stack, axis=0, channel=1)
        assert info.axes == "TYX" and info.layout.rgb and info.data.shape == (3, 5, 6, 2)
        np.testing.assert_array_equal(info.data[2], np.moveaxis(data[2], 0, -1))
        assert info.layout.leading_shape == (3,) and info.layout.frame_shape == (5, 6)
    tifffile.imwrite(tmp_path / "noaxes.tif", data[:, 0], imagej=True)  # tifffile calls these "channels"
    with read_stack(tmp_path / "noaxes.tif") as stack:
        assert stack.axes == "CYX"
        info = describe_stack(stack, axis=0, channel=None)
        assert info.axes == "TYX" and not info.layout.rgb and info.layout.leading_shape == (3,)
        assert "as frames" in info.note


def test_prompt_folder_matching_rule(tmp_path):
    stack = tmp_path / "cells.ome.tif"
    stack.write_bytes(b"")
    (tmp_path / "cells.csv").write_text("")
    assert match_prompts(tmp_path, stack).name == "cells.csv"
    (tmp_path / "cells_prompts.tif").write_bytes(b"")
    assert match_prompts(tmp_path, stack).name == "cells_prompts.tif"
    (tmp_path / "cells_prompts.csv").write_text("")
    assert match_prompts(tmp_path, stack).name == "cells_prompts.csv"
    files, batch, _ = expand_stacks([str(tmp_path)])
    assert [f.name for f in files] == ["cells.ome.tif"] and batch  # prompt files are not stacks
