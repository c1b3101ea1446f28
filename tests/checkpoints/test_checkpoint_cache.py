"""Offline-first cache behaviour: hits without network, hand-copied files, concurrency, local paths."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from napari_sam2.checkpoints import DownloadCancelled, is_cached, resolve_checkpoint, tqdm_progress
from napari_sam2.checkpoints.cache import FileLock, file_sha256, lock_file
from napari_sam2.errors import CheckpointError

N = 200_000


@pytest.fixture
def model(server, write_registry, make_bytes):  # type: ignore[no-untyped-def]
    data = make_bytes(N, seed=3)
    return write_registry(m=server.add("m.pt", data)), data


def test_cache_hit_makes_no_request_and_skips_reverification(server, model, ok_verify) -> None:
    reg, data = model
    first = resolve_checkpoint("m", registry=reg, verify=ok_verify)
    server.requests.clear()
    second = resolve_checkpoint("m", registry=reg, verify=ok_verify, download=False)
    third = resolve_checkpoint("m.pt", registry=reg, verify=ok_verify)  # the file name works too
    assert first == second == third and third.read_bytes() == data
    assert server.requests == []
    assert len(ok_verify.paths) == 1  # recorded in m.pt.verified, not re-checked
    assert is_cached("m", registry=reg)


def test_hand_copied_file_is_verified_once_without_network(
    server, model, isolated_cache: Path, ok_verify
) -> None:
    reg, data = model
    isolated_cache.mkdir()
    (isolated_cache / "m.pt").write_bytes(data)  # what an offline user does
    for _ in range(2):
        assert resolve_checkpoint("m", registry=reg, verify=ok_verify).read_bytes() == data
    assert server.requests == [] and len(ok_verify.paths) == 1


def test_file_changed_after_verification_is_checked_again(model, isolated_cache: Path, ok_verify) -> None:
    reg, _ = model
    path = resolve_checkpoint("m", registry=reg, verify=ok_verify)
    with open(path, "ab") as f:
        f.write(b"tampered")
    resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert len(ok_verify.paths) == 2


def test_concurrent_threads_download_once(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, data = model
    server.script.chunk_delay = 0.01  # keep the first download running while the others arrive
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(resolve_checkpoint("m", registry=reg, verify=ok_verify))
        except BaseException as exc:  # noqa: BLE001 (reported by the assert below)
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [isolated_cache / "m.pt"] * 4
    assert (isolated_cache / "m.pt").read_bytes() == data
    assert len(server.requests) == 1 and len(ok_verify.paths) == 1
    assert not (isolated_cache / "m.pt.part").exists()


def test_concurrent_processes_download_once(server, model, isolated_cache: Path) -> None:
    reg, data = model
    server.script.chunk_delay = 0.02
    code = textwrap.dedent(
        f"""
        from napari_sam2.checkpoints import resolve_checkpoint
        print(resolve_checkpoint("m", registry={str(reg)!r}, verify=lambda p: None))
        """
    )
    env = {**os.environ, "NAPARI_SAM2_WEIGHTS_DIR": str(isolated_cache)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(isolated_cache / "m.pt")] * 2
    assert (isolated_cache / "m.pt").read_bytes() == data
    assert len(server.requests) == 1


def test_cancel_while_waiting_for_another_download(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, _ = model
    isolated_cache.mkdir()
    with FileLock(lock_file(isolated_cache / "m.pt")):  # someone else is downloading
        with pytest.raises(DownloadCancelled, match="waiting for another download"):
            resolve_checkpoint("m", registry=reg, verify=ok_verify, cancel=lambda: True)
    assert server.requests == []


def test_not_cached_without_download_makes_no_request(server, model, isolated_cache: Path) -> None:
    reg, _ = model
    with pytest.raises(CheckpointError, match="downloading is turned off") as err:
        resolve_checkpoint("m", registry=reg, download=False)
    assert server.url("m.pt") in str(err.value) and str(isolated_cache) in str(err.value)
    assert server.requests == [] and not is_cached("m", registry=reg)


def test_existing_local_path_is_returned_as_is(tmp_path: Path, ok_verify) -> None:
    local = tmp_path / "my finetuned.pt"
    local.write_bytes(b"weights")
    assert resolve_checkpoint(local, verify=ok_verify) == local
    assert resolve_checkpoint(str(local)) == local
    assert ok_verify.paths == []  # a user's own file is loaded (and checked) by the model code


def test_missing_local_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(CheckpointError, match="does not exist") as err:
        resolve_checkpoint(str(missing))
    assert str(missing) in str(err.value)
    with pytest.raises(CheckpointError, match="is a folder"):
        resolve_checkpoint(tmp_path)


def test_unknown_plain_name_is_reported_as_a_typo(model) -> None:
    reg, _ = model
    with pytest.raises(CheckpointError, match=r"Unknown checkpoint 'n'.*Valid names: m"):
        resolve_checkpoint("n", registry=reg)


def test_default_verify_is_the_model_inspector(model, isolated_cache: Path, monkeypatch) -> None:
    reg, _ = model
    seen: list[Path] = []
    fake = types.ModuleType("napari_sam2.model.checkpoint")
    fake.inspect_checkpoint = lambda path: seen.append(Path(path))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "napari_sam2.model.checkpoint", fake)
    path = resolve_checkpoint("m", registry=reg)
    assert seen == [path]

    def reject(path: Path) -> None:
        raise CheckpointError("Not an official SAM 2 layout")

    fake.inspect_checkpoint = reject  # type: ignore[attr-defined]
    (isolated_cache / "m.pt.verified").unlink()
    with pytest.raises(CheckpointError, match="Not an official SAM 2 layout. It was moved aside"):
        resolve_checkpoint("m", registry=reg)


def test_tqdm_progress_follows_the_callbacks() -> None:
    out = io.StringIO()
    with tqdm_progress("m", file=out) as progress:
        progress(1000, 4000)  # e.g. a resumed download starts at 1000
        progress(2500, 4000)
        progress(4000, 4000)
        assert progress.n == 4000
    assert "m:" in out.getvalue() and "100%" in out.getvalue()


def test_sha256_matches_pooch(tmp_path: Path, make_bytes) -> None:
    pooch = pytest.importorskip("pooch")
    path = tmp_path / "x.pt"
    path.write_bytes(make_bytes(70_000))
    assert file_sha256(path, chunk=4096) == pooch.file_hash(str(path))
