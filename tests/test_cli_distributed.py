"""Batch mode on a real Dask cluster (``--workers N`` / ``--scheduler ADDRESS``), on loopback only.

The CLI runs in a subprocess with the random-weights test model; its labels must equal those of
the in-process batch (the single-process CLI) on the same stacks. One test kills (SIGKILL) the
worker process that is writing a stack: the scheduler reruns the stack on another worker and
the outputs are complete, equal, and no temporary file is left.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2 import cli
from napari_sam2._cli_batch import import_distributed, local_worker_environ, parse_resources, worker_device
from napari_sam2.api import TEST_MODEL
from napari_sam2.errors import InputError

from .test_cli import blobs, finish, run_cli, start_cli, write_imagej

distributed = pytest.importorskip("distributed")
HEADER = "index,axis-0,axis-1,axis-2,obj_id,positive\n"  # what napari writes for a Points layer


def write_batch(root: Path, names: dict[str, int], bad: str | None = None) -> tuple[Path, Path]:
    """Stacks ``name.tif`` (frames each) with a two-object click file each; ``bad`` gets a prompt past the end."""
    data, prompts = root / "data", root / "prompts"
    data.mkdir(parents=True), prompts.mkdir(parents=True)
    for seed, (name, frames) in enumerate(names.items()):
        write_imagej(data / f"{name}.tif", blobs(frames, 48, 64, np.uint8, seed=seed))
        frame = 9 if name == bad else min(2, frames - 1)
        (prompts / f"{name}_prompts.csv").write_text(HEADER + f"0,{frame},24,21,1,True\n1,0,6,50,2,True\n")
    return data, prompts


def read_summary(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "batch_summary.csv", newline="") as fh:
        return {row["stack"]: row for row in csv.DictReader(fh)}


def labels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: tifffile.imread(p) for p in sorted(folder.glob("*_labels.tif"))}


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory):
    """Three stacks and one with a bad prompt file, segmented by the in-process CLI (the reference)."""
    root = tmp_path_factory.mktemp("batch")
    data, prompts = write_batch(root, {"a": 5, "b": 5, "bad": 5, "c": 5}, bad="bad")
    ref = root / "ref"
    code = cli.main(["segment", str(data), "--prompts", str(prompts), "--out", str(ref), "--model", TEST_MODEL,
                     "--device", "cpu", "--quiet"])
    return root, data, prompts, ref, code


def test_in_process_batch_writes_the_summary(small_batch):
    _, _, _, ref, code = small_batch
    assert code == 4  # the bad prompt file: the exit code of its PromptError, the others still run
    rows = read_summary(ref)
    assert list(rows) == ["a.tif", "b.tif", "bad.tif", "c.tif"]
    assert [rows[s]["status"] for s in rows] == ["done", "done", "failed", "done"]
    assert rows["a.tif"]["frames"] == "5" and rows["a.tif"]["objects"] == "2" and rows["a.tif"]["worker"] == "local"
    assert "frame 9" in rows["bad.tif"]["error"] and rows["bad.tif"]["frames"] == ""
    assert sorted(p.name for p in ref.iterdir()) == ["a_labels.tif", "b_labels.tif", "batch_summary.csv",
                                                      "c_labels.tif"]


def test_local_cluster_matches_single_process(small_batch):
    """--workers 2 starts a LocalCluster of 2 processes; labels equal the in-process run's, bit for bit."""
    root, data, prompts, ref, ref_code = small_batch
    out = root / "cluster"
    proc = run_cli("segment", data, "--prompts", prompts, "--out", out, "--model", TEST_MODEL, "--device", "cpu",
                   "--workers", "2")
    assert proc.returncode == ref_code == 4, proc.stderr
    assert "starting a local Dask cluster of 2" in proc.stderr and "Dask dashboard" in proc.stderr
    assert "bad.tif: bad_prompts.csv: A prompt is on frame 9" in proc.stderr and "Traceback" not in proc.stderr
    assert "3 stack(s) segmented, 0 skipped, 1 failed." in proc.stderr
    assert 1 <= proc.stderr.count("loading model") <= 2  # once per worker process, not once per stack
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())  # no temporary files
    got, expected = labels(out), labels(ref)
    assert list(got) == ["a_labels.tif", "b_labels.tif", "c_labels.tif"]
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
        assert got[name].any()
    rows = read_summary(out)
    assert [(s, r["status"], r["frames"], r["objects"]) for s, r in rows.items()] == [
        ("a.tif", "done", "5", "2"), ("b.tif", "done", "5", "2"), ("bad.tif", "failed", "", ""),
        ("c.tif", "done", "5", "2")]
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in rows.values())
    assert "frame 9" in rows["bad.tif"]["error"] and all(float(r["seconds"]) >= 0 for r in rows.values())

    # the rerun: every output exists, so nothing runs (no cluster is started) and nothing is touched
    stacks = [data / f"{n}.tif" for n in "abc"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*_labels.tif")}
    again = run_cli("segment", *stacks, "--prompts", prompts, "--out", out, "--model", TEST_MODEL, "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("napari-sam2: skipped") == 3 and "starting a local Dask cluster" not in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_labels.tif")} == before
    rows = read_summary(out)
    assert list(rows) == ["a.tif", "b.tif", "c.tif"] and {r["status"] for r in rows.values()} == {"skipped"}


def test_worker_killed_mid_stack_is_rerun_elsewhere(tmp_path):
    data, prompts = write_batch(tmp_path, {"long": 40})
    ref, out = tmp_path / "ref", tmp_path / "out"
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0")
    client = distributed.Client(cluster)
    try:
        proc = start_cli("segment", data, "--prompts", prompts, "--out", out, "--model", TEST_MODEL, "--device",
                         "cpu", "--scheduler", cluster.scheduler_address, "--quiet")
        partial, final = out / ".long_labels.partial.tif", out / "long_labels.tif"
        victim = None
        deadline = time.monotonic() + 240  # a safety net only: the job is seconds long
        while victim is None and proc.poll() is None and time.monotonic() < deadline:
            if partial.exists():  # a worker is writing the stack (the only task): kill its process
                busy = [addr for addr, keys in client.processing().items() if any("long.tif" in k for k in keys)]
                pids = client.run(os.getpid, workers=busy) if busy else {}
                victim = next(iter(pids.items()), None)
            time.sleep(0.05)
        if victim is None:
            proc.kill()
            pytest.fail(f"the stack ended before its worker could be killed: {finish(proc).stderr}")
        assert not final.exists()
        os.kill(victim[1], signal.SIGKILL)
        proc = finish(proc)
    finally:
        client.close()
        cluster.close()
    assert cli.main(["segment", str(data), "--prompts", str(prompts), "--out", str(ref), "--model", TEST_MODEL,
                     "--device", "cpu", "--quiet"]) == 0  # the single-process reference
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(tifffile.imread(final), tifffile.imread(ref / "long_labels.tif"))
    assert sorted(p.name for p in out.iterdir()) == ["batch_summary.csv", "long_labels.tif"]  # no temp files
    row = read_summary(out)["long.tif"]
    assert row["status"] == "done" and row["frames"] == "40" and row["worker"] != victim[0]


def test_sigterm_stops_local_workers_and_leaves_no_temporary_file(tmp_path):
    data, prompts = write_batch(tmp_path, {"long": 40})
    out = tmp_path / "out"

    def default_signals() -> None:  # a test runner started in the background may ignore them
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "napari_sam2.cli", "segment", str(data), "--prompts", str(prompts),
                             "--out", str(out), "--model", TEST_MODEL, "--device", "cpu", "--workers", "1", "--quiet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    deadline = time.monotonic() + 240  # a safety net only
    while not (out / ".long_labels.partial.tif").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended before it was signalled: {proc.communicate()[1]}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # as SLURM does: the worker is killed at once, not waited for
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM); unfinished outputs were removed." in err
    assert list(out.iterdir()) == []  # no partial file, no labels, no summary (nothing was finished)


# ------------------------------------------------------------------ pieces (no cluster)
def test_missing_distributed_names_the_extra(tmp_path, monkeypatch, capsys):
    data, prompts = write_batch(tmp_path, {"x": 3, "y": 3})
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(InputError, match=r'pip install "napari-sam2\[cluster\]"'):
        import_distributed()
    code = cli.main(["segment", str(data), "--prompts", str(prompts), "--out", str(tmp_path / "o"),
                     "--model", TEST_MODEL, "--workers", "1"])
    assert code == 3 and 'pip install "napari-sam2[cluster]"' in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # it stopped before anything ran: no folder, no table


def test_option_parsing(monkeypatch):
    assert parse_resources("GPU=1") == {"GPU": 1.0}
    assert parse_resources("GPU=1,MEM=4e9") == parse_resources("GPU=1 MEM=4e9") == {"GPU": 1.0, "MEM": 4e9}
    parser = cli.build_parser()
    for bad in (["--workers", "0"], ["--workers", "1", "--scheduler", "tcp://x:1"], ["--resources", "GPU"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["segment", "s.tif", "--prompts", "p.csv", "--out", "o", *bad])
    assert worker_device("cpu", 3) == "cpu" and worker_device("cuda:1", 0) == "cuda:1"
    assert worker_device("auto", "not-local") == "auto"  # a named external worker keeps the device
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # local worker i -> GPU i mod 2
    assert worker_device("auto", 3) == "cuda:1" and worker_device("cuda", 0) == "cuda:0"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one visible GPU (CUDA_VISIBLE_DEVICES): as given
    assert worker_device("cuda", 3) == "cuda"


def test_local_workers_get_fast_malloc_and_a_share_of_the_cores():
    import dask

    with dask.config.set(local_worker_environ(2)):
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))  # a copy: the block restores it
    assert environ["MALLOC_TRIM_THRESHOLD_"] is None  # dropped: Dask's 65536 makes torch 1.5x slower
    assert environ["OMP_NUM_THREADS"] == max(1, (os.cpu_count() or 1) // 2)


def test_resources_need_a_cluster(tmp_path, capsys):
    data, prompts = write_batch(tmp_path, {"x": 3})
    with pytest.raises(SystemExit) as stop:
        cli.main(["segment", str(data), "--prompts", str(prompts), "--out", str(tmp_path / "o"), "--resources", "GPU=1"])
    assert stop.value.code == 2 and "--resources needs --workers or --scheduler" in capsys.readouterr().err
