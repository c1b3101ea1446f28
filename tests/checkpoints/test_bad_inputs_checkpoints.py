"""Bad-input catalogue for checkpoints, downloads and ``load_model`` (issue 9).

Each case gives one Sam2Error whose message names the fix, and leaves the user's files as
they were. Downloads run against the real loopback HTTP server of ``conftest.py``; model
files are real ``torch.save`` files of the miniature test configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
import time
from pathlib import Path

import pytest
import torch

from napari_sam2 import load_model
from napari_sam2.checkpoints import ENV_REGISTRY, ENV_WEIGHTS_DIR, DownloadCancelled, resolve_checkpoint
from napari_sam2.errors import CheckpointError, DeviceError, DownloadError, InputError
from napari_sam2.model.configs import TEST_CONFIG
from napari_sam2.model.testing import random_model, rule_state_dict

N = 300_000
STALL_S = 3600.0  # the server stays silent until the test ends (the fixture releases it at teardown)
HANG_GUARD_S = 300.0  # not a speed bound: the socket timeout is raised to an hour, so a cancel that
#                       waited for the socket would never return; this only stops such a test hanging


@pytest.fixture
def served(server, write_registry, make_bytes):  # type: ignore[no-untyped-def]
    data = make_bytes(N, seed=9)
    return write_registry(m=server.add("m.pt", data)), data


@pytest.fixture(scope="module")
def micro_state() -> dict:
    return {"model": rule_state_dict(TEST_CONFIG)}


def one_line(err: BaseException) -> str:
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------- downloads
def _cancel_during_stall(served, server, after_bytes: int | None, monkeypatch) -> BaseException:
    """Cancel a download stuck on a server that stays silent for the rest of the test.

    The client's socket timeout is an hour here, so the download returns only if cancelling
    really interrupts the blocked read."""
    from napari_sam2.checkpoints import download

    monkeypatch.setattr(download, "TIMEOUT_S", STALL_S)
    reg, _ = served
    if after_bytes is None:
        server.script.stall_before_headers = True
    else:
        server.script.stall_after = after_bytes
    server.script.stall_s = STALL_S
    cancel = threading.Event()
    first_chunk = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= 64 * 1024:
            first_chunk.set()

    def cancel_when_stuck() -> None:
        if after_bytes is None:
            while not server.requests:  # the request reached the server, which now says nothing
                time.sleep(0.02)
        else:
            first_chunk.wait(STALL_S)  # one chunk arrived; the next read blocks on the silent server
        time.sleep(0.3)
        cancel.set()

    threading.Thread(target=cancel_when_stuck, daemon=True).start()
    outcome: list[BaseException] = []

    def download_it() -> None:
        try:
            resolve_checkpoint("m", registry=reg, progress=progress, cancel=cancel, verify=lambda p: None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=download_it, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), "cancel did not interrupt the read blocked on the silent server"
    assert len(outcome) == 1 and isinstance(outcome[0], DownloadCancelled), outcome
    return outcome[0]


def test_cancel_during_a_stall_after_headers_acts_at_once_and_keeps_the_part(
        served, server, isolated_cache: Path, monkeypatch) -> None:
    err = _cancel_during_stall(served, server, 100_000, monkeypatch)
    msg = one_line(err)
    part = isolated_cache / "m.pt.part"
    assert "cancelled" in msg and "before it started" not in msg
    assert str(part) in msg and "kept" in msg and "resumes" in msg
    assert part.stat().st_size >= 64 * 1024 and part.read_bytes() == served[1][: part.stat().st_size]
    assert not (isolated_cache / "m.pt").exists()


def test_cancel_while_the_server_sends_no_headers_acts_at_once(served, server, isolated_cache: Path,
                                                              monkeypatch) -> None:
    err = _cancel_during_stall(served, server, None, monkeypatch)
    msg = one_line(err)
    assert "cancelled before any data arrived" in msg
    assert not (isolated_cache / "m.pt").exists() and not (isolated_cache / "m.pt.part").exists()


def test_interrupted_download_resumes_with_a_range_request(served, server, isolated_cache: Path) -> None:
    reg, data = served
    server.script.cut_after = 120_000
    path = resolve_checkpoint("m", registry=reg, verify=lambda p: None)
    assert path.read_bytes() == data
    assert [r["range"] for r in server.requests] == [None, "bytes=120000-"]


def test_size_mismatch_is_refused_and_nothing_is_kept_under_the_final_name(
        server, write_registry, make_bytes, isolated_cache: Path) -> None:
    url = server.add("m.pt", make_bytes(N))
    reg = write_registry(entries=[{"name": "m", "version": "2.1", "size": "tiny", "url": url, "bytes": N + 1}])
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=reg, verify=lambda p: None)
    msg = one_line(err.value)
    assert f"offers {N} bytes" in msg and f"{N + 1} bytes" in msg and url in msg
    assert not (isolated_cache / "m.pt").exists()


def test_hash_mismatch_is_refused_and_the_bad_file_moved_aside(
        server, write_registry, make_bytes, isolated_cache: Path) -> None:
    url = server.add("m.pt", make_bytes(N))
    reg = write_registry(entries=[{"name": "m", "version": "2.1", "size": "tiny", "url": url, "sha256": "0" * 64}])
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("m", registry=reg, verify=lambda p: None)
    msg = one_line(err.value)
    bad = list(isolated_cache.glob("m.pt.bad-*"))
    assert "failed verification" in msg and "SHA-256" in msg and len(bad) == 1 and str(bad[0]) in msg
    assert "Run again to download a fresh copy" in msg
    assert not (isolated_cache / "m.pt").exists()


# ------------------------------------------------------------------------------------------ cache folder
@pytest.mark.parametrize("where", ["is a file", "under a file"])
def test_cache_folder_that_cannot_be_written_names_the_variable(
        where: str, served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _ = served
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the user's own file")
    folder = blocker if where == "is a file" else blocker / "weights"
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(folder))  # root ignores chmod: a file in the way blocks everyone
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("m", registry=reg, verify=lambda p: None)
    msg = one_line(err.value)
    assert ENV_WEIGHTS_DIR in msg and str(folder) in msg and f"{blocker} is a file, not a folder" in msg
    assert blocker.read_text() == "the user's own file"


def test_load_model_with_a_blocked_cache_gives_the_same_message(
        served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _ = served
    blocker = tmp_path / "cache-file"
    blocker.write_bytes(b"x")
    monkeypatch.setenv(ENV_REGISTRY, str(reg))
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(blocker / "weights"))
    with pytest.raises(CheckpointError, match=f"{ENV_WEIGHTS_DIR} to a folder you can write to"):
        load_model("m", device="cpu")


# ------------------------------------------------------------------------------------ names and paths
@pytest.fixture
def official_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_REGISTRY, raising=False)


@pytest.mark.parametrize(("typo", "meant"), [("sam2.1_hiera_tinny", "sam2.1_hiera_tiny"),
                                             ("SAM2.1_Hiera_Large", "sam2.1_hiera_large"),
                                             ("sam2.1-hiera-small", "sam2.1_hiera_small"),
                                             ("tiny", "sam2.1_hiera_tiny")])
def test_mistyped_model_name_suggests_the_closest(official_registry, typo: str, meant: str) -> None:
    with pytest.raises(CheckpointError) as err:
        load_model(typo, device="cpu")
    msg = one_line(err.value)
    assert f"Unknown model '{typo}'; did you mean '{meant}'?" in msg
    assert "not found" not in msg


@pytest.mark.parametrize("spec", ["weights/sam2.1_hiera_tinny.pt", "./sam2.1_hiera_tinny", "~/nope/model.pth"])
def test_a_missing_path_is_still_file_not_found(official_registry, spec: str) -> None:
    with pytest.raises(CheckpointError) as err:
        load_model(spec, device="cpu")
    msg = one_line(err.value)
    assert "not found" in msg and "Unknown model" not in msg


def test_a_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder; choose the .pt checkpoint file inside it"):
        load_model(tmp_path, device="cpu")


def test_a_non_path_model_argument(official_registry) -> None:
    with pytest.raises(CheckpointError, match="model name .* or the path of a .pt checkpoint, not a int"):
        load_model(42, device="cpu")  # type: ignore[arg-type]


def test_paths_with_spaces_and_non_ascii_characters_load(tmp_path: Path, micro_state: dict) -> None:
    folder = tmp_path / "Modèle files ü"
    folder.mkdir()
    path = folder / "mein Prüf modell ñ.pt"
    torch.save(micro_state, path)
    before = digest(path)
    model = load_model(path, device="cpu")
    assert model.cfg.name == TEST_CONFIG.name and digest(path) == before
    model = load_model(str(path), device="cpu")  # as a string too
    assert model.cfg.name == TEST_CONFIG.name


# --------------------------------------------------------------------------------------- file contents
class _RunsCode:
    """Unpickling this would create ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("container", ["torch.save", "plain pickle"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path, container: str) -> None:
    marker = tmp_path / "code-ran.txt"
    path = tmp_path / "evil.pt"
    payload = {"model": {"w": torch.zeros(1)}, "extra": _RunsCode(marker)}
    if container == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    assert not marker.exists()
    with pytest.raises(CheckpointError) as err:
        load_model(path, device="cpu")
    msg = one_line(err.value)
    assert not marker.exists(), "loading the checkpoint ran pickled code"
    assert "refuses to run pickled code" in msg or "not a readable PyTorch checkpoint" in msg


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty. Delete it and download the checkpoint again"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n", "git lfs pull"),
        (b"<!DOCTYPE html><html><body>login</body></html>", "HTML page"),
        (b"\x1f\x8b\x08\x00" + bytes(64), "gzip-compressed archive"),
        (os.urandom(4096), "not a readable PyTorch checkpoint"),
    ],
    ids=["empty", "lfs-pointer", "html", "gzip", "junk"],
)
def test_files_that_are_not_checkpoints(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_model(path, device="cpu")
    assert fragment in one_line(err.value)
    assert path.read_bytes() == content  # never deleted or changed by us


@pytest.mark.parametrize("name", ["model.safetensors", "model.bin"])
def test_safetensors_is_named_and_the_official_pt_suggested(tmp_path: Path, name: str) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / name
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(CheckpointError) as err:
        load_model(path, device="cpu")
    msg = one_line(err.value)
    assert "safetensors file" in msg and "does not load safetensors" in msg
    assert "sam2.1_hiera_tiny" in msg and "facebookresearch/sam2" in msg and ".pt" in msg
    assert "corrupt" not in msg


# ------------------------------------------------------------------------------------- sizes, devices
@pytest.mark.parametrize(
    ("size", "fragment"),
    [(100, "multiple of 64"), (300, "multiple of 64"), (2048, "multiple of 64"), (0, "multiple of 64"),
     (-64, "multiple of 64"), (512.5, "whole number"), ("512", "whole number"), (True, "whole number")],
)
def test_image_size_is_checked_before_anything_loads(tmp_path: Path, size: object, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        load_model(tmp_path / "never-read.pt", device="cpu", image_size=size)  # type: ignore[arg-type]
    msg = one_line(err.value)
    assert fragment in msg and "between 256 and 1024" in msg
    assert "np." not in msg
    with pytest.raises(InputError, match=fragment):
        random_model(image_size=size)  # type: ignore[arg-type]


def test_image_size_accepts_whole_numbers_of_any_type(micro_state: dict, tmp_path: Path) -> None:
    import numpy as np

    torch.save(micro_state, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt", device="cpu", image_size=np.int64(320)).cfg.image_size == 320
    assert random_model(image_size=384.0).cfg.image_size == 384  # type: ignore[arg-type]


@pytest.mark.parametrize("device", ["nonsense", "gpu", "cuda:x", "cpu:3", "meta", ""])
def test_unknown_device_lists_the_valid_ones(tmp_path: Path, device: str) -> None:
    with pytest.raises(DeviceError) as err:
        load_model(tmp_path / "never-read.pt", device=device)
    msg = one_line(err.value)
    assert f"Unknown device '{device}'" in msg and "choose one of: auto, cpu" in msg


@pytest.mark.skipif(torch.cuda.device_count() > 3, reason="this machine has a GPU 3")
def test_a_gpu_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as err:
        load_model(tmp_path / "never-read.pt", device="cuda:3")
    msg = one_line(err.value)
    assert "auto, cpu" in msg and ("GPU 3 does not exist" in msg or "no usable CUDA GPU" in msg)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_apple_gpu(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="Apple MPS was requested but is not available here; choose one of: auto"):
        load_model(tmp_path / "never-read.pt", device="mps")
