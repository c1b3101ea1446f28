"""Bad-input catalogue for the command line and file reading/writing (issue 9).

Every case: one error line naming the fix, the documented exit code, no traceback, the
user's files unchanged and no output (not even a hidden temporary file) left behind.
Error paths run ``cli.main`` in-process (fast); signals are sent to a real subprocess.
The model is the random-weights test model (``--model test-random``) or a real ``.pt``
file of its configuration.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2 import cli, load_model, segment_video
from napari_sam2.api import TEST_MODEL
from napari_sam2.errors import InputError
from napari_sam2.io import read_stack
from napari_sam2.model.configs import TEST_CONFIG
from napari_sam2.model.testing import rule_state_dict

CLICK = "index,axis-0,axis-1,axis-2\n0,1,10,10\n"


# ----------------------------------------------------------------------------------- helpers
def snapshot(*folders: Path) -> dict[str, str]:
    """Every file (hidden ones too) under ``folders`` -> SHA-256 of its bytes."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(capsys, *args) -> tuple[int, list[str]]:
    """``cli.main(args)`` in-process -> (exit status, non-empty stderr lines)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if line.strip()]


def one_error(lines: list[str]) -> str:
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, lines
    return errors[0]


def noise(n: int, h: int = 32, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, h, w), dtype=np.uint8)


def cut(path: Path, n_bytes: int) -> Path:
    data = path.read_bytes()
    out = path.with_name(path.stem + "_cut" + path.suffix)
    out.write_bytes(data[:n_bytes])
    return out


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with a 6-frame stack ``s.tif`` and a click on frame 1 in ``p.csv``."""
    tifffile.imwrite(tmp_path / "s.tif", noise(6), imagej=True, metadata={"axes": "TYX"})
    (tmp_path / "p.csv").write_text(CLICK)
    return tmp_path


# --------------------------------------------------------------------------- truncated TIFFs
@pytest.fixture
def cut_imagej_zlib(tmp_path: Path) -> Path:
    """An ImageJ zlib TIFF of 40 frames cut inside the data of page 20."""
    path = tmp_path / "zl.tif"
    tifffile.imwrite(path, noise(40, 64, 64), imagej=True, compression="zlib", metadata={"axes": "TYX"})
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[20]
        end = page.dataoffsets[0] + page.databytecounts[0] // 2
    cut_path = cut(path, end)
    path.unlink()
    return cut_path


@pytest.fixture
def cut_plain(tmp_path: Path) -> Path:
    """A plain uncompressed 40-frame TIFF cut in half."""
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, noise(40, 64, 64))
    cut_path = cut(path, path.stat().st_size // 2)
    path.unlink()
    return cut_path


@pytest.mark.parametrize("which", ["cut_imagej_zlib", "cut_plain"])
def test_cli_refuses_a_truncated_tiff_naming_the_last_good_frame(which, request, tmp_path, capsys) -> None:
    stack = request.getfixturevalue(which)
    (tmp_path / "p.csv").write_text(CLICK)
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code, lines = run(capsys, "segment", stack, "--prompts", tmp_path / "p.csv", "--out", out / "l.tif",
                      "--model", TEST_MODEL, "--quiet")
    msg = one_error(lines)
    assert code == cli.EXIT_INPUT, lines
    assert "truncated or corrupt" in msg and "should hold 40 frames" in msg and "last good frame is 19" in msg
    assert "imagecodecs" not in msg and len(lines) == 1  # tifffile's own warnings are not printed
    assert snapshot(tmp_path) == before and not out.exists()


def _tiff_forms(tmp_path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """Intact TIFF files of several layouts and the data each holds."""
    d = noise(30, 64, 64, seed=5)
    forms: dict[str, tuple[Path, np.ndarray]] = {}
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:  # one IFD per write, IFD before its data
        for frame in d:
            tw.write(frame, metadata=None, compression="zlib")
    forms["page by page"] = (tmp_path / "pages.tif", d)
    tifffile.imwrite(tmp_path / "shaped_zlib.tif", d, compression="zlib")
    forms["tifffile zlib"] = (tmp_path / "shaped_zlib.tif", d)
    tifffile.imwrite(tmp_path / "bigtiff.tif", d, bigtiff=True, compression="zlib")
    forms["bigtiff"] = (tmp_path / "bigtiff.tif", d)
    tifffile.imwrite(tmp_path / "o.ome.tif", d, ome=True, metadata={"axes": "TYX"})
    forms["ome"] = (tmp_path / "o.ome.tif", d)
    tifffile.imwrite(tmp_path / "oz.ome.tif", d, ome=True, compression="zlib", metadata={"axes": "TYX"})
    forms["ome zlib"] = (tmp_path / "oz.ome.tif", d)
    tifffile.imwrite(tmp_path / "ij.tif", d, imagej=True, metadata={"axes": "TYX"})
    forms["imagej plain"] = (tmp_path / "ij.tif", d)
    rgb = np.random.default_rng(6).integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, imagej=True, metadata={"axes": "TYXS"})
    forms["imagej rgb"] = (tmp_path / "rgb.tif", rgb)
    tz = np.random.default_rng(7).integers(0, 255, (4, 5, 32, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "tz.tif", tz, imagej=True, compression="zlib", metadata={"axes": "TZYX"})
    forms["imagej tzyx zlib"] = (tmp_path / "tz.tif", tz)
    return forms


def test_truncated_tiffs_of_every_layout_are_refused_and_intact_ones_read_exactly(tmp_path: Path) -> None:
    for name, (path, data) in _tiff_forms(tmp_path).items():
        with read_stack(path) as stack:  # no false alarm on the intact file
            np.testing.assert_array_equal(np.asarray(stack.data[...]), data, err_msg=name)
        cuts = [path.stat().st_size // 2]
        if name == "page by page":
            with tifffile.TiffFile(path) as tif:
                cuts.append(tif.pages[15].offset)  # exactly at an IFD: only the IFD chain shows it
        for n in cuts:
            short = cut(path, n)
            with pytest.raises(InputError) as err:
                read_stack(short)
            msg = str(err.value)
            assert "truncated or corrupt" in msg and "last good" in msg and "\n" not in msg, (name, msg)


def test_cut_tiff_prompt_labels_are_refused_as_prompts(work: Path, capsys) -> None:
    labels = np.zeros((6, 32, 40), np.uint8)
    labels[:, 5:15, 5:15] = 1
    tifffile.imwrite(work / "seed.tif", labels, imagej=True, metadata={"axes": "TYX"})
    short = cut(work / "seed.tif", (work / "seed.tif").stat().st_size // 2)
    code, lines = run(capsys, "segment", work / "s.tif", "--prompts", short, "--out", work / "o.tif",
                      "--model", TEST_MODEL, "--quiet")
    msg = one_error(lines)
    assert code == cli.EXIT_PROMPTS and "mask prompts" in msg and "truncated or corrupt" in msg
    assert not (work / "o.tif").exists()


def test_a_page_that_fails_to_decode_mid_run_stops_with_no_output(tmp_path: Path, capsys) -> None:
    path = tmp_path / "damaged.tif"
    tifffile.imwrite(path, noise(12, 64, 64), imagej=True, compression="zlib", metadata={"axes": "TYX"})
    with tifffile.TiffFile(path) as tif:  # damage page 7 in place: the file keeps its size and offsets
        offset, count = tif.pages[7].dataoffsets[0], tif.pages[7].databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[offset:offset + count] = bytes(count)
    path.write_bytes(bytes(raw))
    (tmp_path / "p.csv").write_text(CLICK)
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code, lines = run(capsys, "segment", path, "--prompts", tmp_path / "p.csv", "--out", out / "l.tif",
                      "--table", out / "t.csv", "--model", TEST_MODEL, "--quiet")
    msg = one_error(lines)
    assert code == cli.EXIT_INPUT
    assert "Cannot decode page 7" in msg and "truncated or corrupt" in msg and "frame 7" in msg
    assert "imagecodecs" not in msg
    assert snapshot(tmp_path) == before and list(out.iterdir()) == []  # no partial file under any name


def test_a_missing_codec_still_names_imagecodecs(tmp_path: Path) -> None:
    path = tmp_path / "lerc.tif"
    tifffile.imwrite(path, noise(2, 8, 8), compression="zlib", metadata=None, photometric="minisblack")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            page.tags["Compression"].overwrite(34887)  # LERC: needs the imagecodecs package
    with pytest.raises(InputError) as err:
        read_stack(path)
    assert "install the imagecodecs package" in str(err.value) and "truncated" not in str(err.value)


# ------------------------------------------------------------------------------------- outputs
def test_existing_output_is_skipped_untouched_and_replaced_only_with_overwrite(work: Path, capsys) -> None:
    out = work / "o.tif"
    out.write_bytes(b"the user's old result")
    args = ["segment", work / "s.tif", "--prompts", work / "p.csv", "--out", out, "--model", TEST_MODEL]
    code, lines = run(capsys, *args)
    assert code == cli.EXIT_OK and any("skipped s.tif" in x and "--overwrite" in x for x in lines), lines
    assert not any("loading model" in x for x in lines)  # nothing was run
    assert out.read_bytes() == b"the user's old result"
    code, lines = run(capsys, *args, "--overwrite", "--quiet")
    assert code == cli.EXIT_OK, lines
    with tifffile.TiffFile(out) as tif:
        assert tif.series[0].shape == (6, 32, 40)
    assert sorted(p.name for p in work.iterdir()) == ["o.tif", "p.csv", "s.tif"]  # no temporary files left


@pytest.mark.parametrize("target", ["s.tif", "./sub/../s.tif", "p.csv"])
def test_output_equal_to_an_input_is_refused(work: Path, capsys, target: str) -> None:
    (work / "sub").mkdir()
    before = snapshot(work)
    out = work / target
    option = "--table" if target == "p.csv" else "--out"
    args = ["segment", work / "s.tif", "--prompts", work / "p.csv", "--model", TEST_MODEL]
    args += ["--out", work / "o.tif", "--table", out] if option == "--table" else ["--out", out]
    code, lines = run(capsys, *args)
    assert code == cli.EXIT_USAGE and "would overwrite an input" in lines[-1], lines
    assert snapshot(work) == before


@pytest.mark.parametrize("option", ["--out", "--table", "--ctc"])
def test_output_folder_blocked_by_a_file_is_refused_before_the_model_loads(work: Path, capsys, option) -> None:
    blocker = work / "results"
    blocker.write_text("not a folder")
    target = {"--out": blocker / "o.tif", "--table": blocker / "t.csv", "--ctc": blocker / "ctc"}[option]
    args = ["segment", work / "s.tif", "--prompts", work / "p.csv", "--model", TEST_MODEL]
    args += ["--out", target] if option == "--out" else ["--out", work / "o.tif", option, target]
    before = snapshot(work)
    code, lines = run(capsys, *args)
    msg = one_error(lines)
    assert code == cli.EXIT_ERROR and f"{blocker} is a file, not a folder" in msg and option in msg
    assert not any("loading model" in x for x in lines)
    assert snapshot(work) == before


# ------------------------------------------------------------------------------------- prompts
@pytest.mark.parametrize(
    ("csv", "fragment"),
    [
        (CLICK + "1,1,abc,10\n", "line 3: column 'axis-1' holds 'abc', which is not a number"),
        (CLICK + "1,1,10\n", "line 3: 3 values for 4 columns"),
        ("index,axis-0,axis-1,axis-2\n0,1,nan,10\n", "line 2: column 'axis-1' holds 'nan'; give a finite"),
        ("index,axis-0,axis-1,axis-2,obj_id\n0,1,10,10,0\n", "line 2: object id 0 must be 1 or more"),
        ("index,axis-0,axis-1,axis-2,obj_id\n0,1,10,10,99999999999\n", "line 2: object id 99999999999 is too"),
        ("index,axis-0,axis-1,axis-2,positive\n0,1,10,10,maybe\n", "line 2: column 'positive' holds 'maybe'"),
        ("index,axis-0,axis-1,axis-2\n0,1.5,10,10\n", "line 2: frame index '1.5'"),
        ("index,axis-0,axis-1,axis-2\n0,9,10,10\n", "frame 9 but the stack has 6 frames"),
        ("index,axis-0,axis-1,axis-2\n0,1,10,99\n", "outside the 32 x 40 image"),
        ("index,axis-0,axis-1,axis-2\n", "has a header but no prompts"),
    ],
    ids=["text", "ragged", "nan", "id-0", "id-too-large", "flag", "frame-fraction", "frame-outside",
         "click-outside", "no-rows"],
)
def test_prompt_file_with_a_bad_row_names_the_row(work: Path, capsys, csv: str, fragment: str) -> None:
    bad = work / "bad prompts é.csv"
    bad.write_text(csv)
    before = snapshot(work)
    code, lines = run(capsys, "segment", work / "s.tif", "--prompts", bad, "--out", work / "o.tif",
                      "--model", TEST_MODEL, "--quiet")
    msg = one_error(lines)
    assert code == cli.EXIT_PROMPTS and fragment in msg and bad.name in msg, msg
    assert snapshot(work) == before


# ------------------------------------------------------------------------------- model, device
@pytest.mark.parametrize(
    ("model", "code", "fragment"),
    [
        ("sam2.1_hiera_tinny", cli.EXIT_MODEL, "Unknown model 'sam2.1_hiera_tinny'; did you mean 'sam2.1_hiera_tiny'?"),
        ("sam2_hiera_larg", cli.EXIT_MODEL, "did you mean 'sam2_hiera_large'?"),
        ("weights/sam2.1_hiera_tinny.pt", cli.EXIT_MODEL, "does not exist; check the path"),
        ("model.safetensors", cli.EXIT_MODEL, "does not load safetensors"),
    ],
)
def test_model_errors_fail_before_any_stack_is_read(work: Path, capsys, model, code, fragment) -> None:
    if model.endswith(".safetensors"):
        (work / model).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1} ")
        model = work / model
    code_, lines = run(capsys, "segment", work / "missing.tif", "--prompts", work / "p.csv", "--out",
                       work / "o.tif", "--model", model)
    assert code_ == code and fragment in one_error(lines), lines


def test_devices_that_do_not_exist(work: Path, capsys) -> None:
    base = ["segment", work / "s.tif", "--prompts", work / "p.csv", "--out", work / "o.tif", "--model", TEST_MODEL]
    code, lines = run(capsys, *base, "--device", "nonsense")
    assert code == cli.EXIT_USAGE and "not one of auto, cpu, cuda, cuda:N, mps" in lines[-1]
    if torch.cuda.device_count() <= 3:
        code, lines = run(capsys, *base, "--device", "cuda:3", "--quiet")
        msg = one_error(lines)
        assert code == cli.EXIT_MODEL and "auto, cpu" in msg and ("GPU 3" in msg or "no usable CUDA" in msg), lines
    assert not (work / "o.tif").exists()


def test_channel_on_a_stack_without_channels(work: Path, capsys) -> None:
    code, lines = run(capsys, "segment", work / "s.tif", "--prompts", work / "p.csv", "--out", work / "o.tif",
                      "--model", TEST_MODEL, "--channel", "0")
    assert code == cli.EXIT_INPUT and "has no channel axis (axes TYX); leave out --channel" in one_error(lines)


# ------------------------------------------------------------------- spaces and non-ASCII paths
def test_paths_with_spaces_and_non_ascii_everywhere(tmp_path: Path, capsys) -> None:
    data = tmp_path / "Données brutes ü"
    data.mkdir()
    frames = noise(5, 32, 40, seed=3)
    stack = data / "movie é 1.tif"
    tifffile.imwrite(stack, frames, imagej=True, metadata={"axes": "TYX"})
    prompts = data / "clicks ñ.csv"
    prompts.write_text("index,axis-0,axis-1,axis-2,obj_id,positive\n0,2,16,12,1,1\n")
    weights = tmp_path / "weights ä" / "my model ö.pt"
    weights.parent.mkdir()
    torch.save({"model": rule_state_dict(TEST_CONFIG)}, weights)
    out = tmp_path / "résultats neu" / "sub dir" / "labels ø.tif"  # the folders do not exist yet
    before = snapshot(data, weights.parent)
    code, lines = run(capsys, "segment", stack, "--prompts", prompts, "--out", out, "--model", weights,
                      "--device", "cpu", "--quiet")
    assert code == cli.EXIT_OK, lines
    expected = segment_video(frames, points=[[2, 16, 12]], point_ids=[1], model=load_model(weights, device="cpu"))
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert expected[2].any()
    assert snapshot(data, weights.parent) == before
    assert [p.name for p in out.parent.iterdir()] == [out.name]


# ----------------------------------------------------------------------------------- signals
def _start(args: list, **kw) -> subprocess.Popen:
    def default_signals() -> None:  # a test runner started in the background may ignore SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "napari_sam2.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signals, **kw)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("sig", "status", "how"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_signal_mid_run_leaves_no_partial_output_under_any_name(tmp_path: Path, sig, status, how) -> None:
    data, out_dir = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    np.save(data / "long.npy", noise(300, 96, 96, seed=8))  # 9 KiB frames: each spooled frame hits the disk
    (data / "p.csv").write_text("index,axis-0,axis-1,axis-2\n0,150,40,40\n")  # mid-stack: "both" spools
    before = snapshot(data)
    proc = _start(["segment", data / "long.npy", "--prompts", data / "p.csv", "--out", out_dir / "long_labels.tif",
                   "--table", out_dir / "t.csv", "--model", TEST_MODEL, "--quiet"])
    spool, partial = out_dir / ".long_labels.spool.tif", out_dir / ".long_labels.partial.tif"
    deadline = time.monotonic() + 600  # only keeps a broken run from hanging the suite
    while not (spool.exists() and os.stat(spool).st_blocks > 0):  # propagation has written a frame
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended before it was signalled: {proc.communicate()[1]}")
        time.sleep(0.05)
    assert partial.exists()
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines == [f"napari-sam2: error: interrupted ({how}); unfinished outputs were removed."], err
    assert list(out_dir.iterdir()) == []
    assert snapshot(data) == before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_file_size_limit_while_writing_gives_one_message_and_no_partial_file(tmp_path: Path) -> None:
    import resource

    data, out_dir = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    np.save(data / "long.npy", noise(300, 96, 96, seed=8))
    (data / "p.csv").write_text("index,axis-0,axis-1,axis-2\n0,150,40,40\n")  # needs a 2.7 MB spool file
    limit = 1 << 20  # like a full disk: the process may not write a file beyond 1 MiB

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "napari_sam2.cli", "segment", data / "long.npy", "--prompts",
                           data / "p.csv", "--out", out_dir / "long_labels.tif", "--model", TEST_MODEL, "--quiet"],
                          capture_output=True, text=True, preexec_fn=limited, timeout=600)
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == cli.EXIT_ERROR, proc.stderr
    assert len(lines) == 1 and "larger than allowed here" in lines[0] and "choose another --out" in lines[0], lines
    assert list(out_dir.iterdir()) == []


def test_models_lists_an_unusable_cache_folder(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "weights.txt"
    blocker.write_text("x")
    monkeypatch.setenv("NAPARI_SAM2_WEIGHTS_DIR", str(blocker / "weights"))
    assert cli.main(["models"]) == cli.EXIT_OK
    last = capsys.readouterr().out.splitlines()[-1]
    assert f"{blocker} is a file" in last and "NAPARI_SAM2_WEIGHTS_DIR" in last
    assert blocker.read_text() == "x"
