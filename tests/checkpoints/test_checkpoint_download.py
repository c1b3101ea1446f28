"""Downloads against a real loopback HTTP server: full, resumed, cancelled, verified, refused, offline."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from napari_sam2.checkpoints import DownloadCancelled, resolve_checkpoint
from napari_sam2.errors import Cancelled, CheckpointError, DownloadError, Sam2Error

N = 300_000  # about 5 chunks of 64 KiB


@pytest.fixture
def model(server, write_registry, make_bytes):  # type: ignore[no-untyped-def]
    """A registry with one model 'm' served by the loopback server; returns (registry path, data)."""
    data = make_bytes(N)
    return write_registry(m=server.add("m.pt", data)), data


def assert_offline_message(err: BaseException, url: str, cache: Path, *fragments: str) -> None:
    msg = str(err)
    assert url in msg and "'m.pt'" in msg and str(cache) in msg, msg
    assert "\n" not in msg and "Traceback" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_full_download_with_progress(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, data = model
    seen: list[tuple[int, int | None]] = []
    path = resolve_checkpoint("m", registry=reg, verify=ok_verify, progress=lambda d, t: seen.append((d, t)))
    assert path == isolated_cache / "m.pt"
    assert path.read_bytes() == data
    assert [r["range"] for r in server.requests] == [None]
    assert seen[0] == (0, N) and seen[-1] == (N, N)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert ok_verify.paths == [path]
    assert not (isolated_cache / "m.pt.part").exists()
    assert (isolated_cache / "m.pt.verified").exists()


def test_interrupted_download_resumes_with_range(server, model, ok_verify) -> None:
    reg, data = model
    server.script.cut_after = 100_000
    path = resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert path.read_bytes() == data
    assert [(r["range"], r["status"]) for r in server.requests] == [(None, 200), ("bytes=100000-", 206)]


def test_cancel_keeps_partial_file_and_next_call_resumes(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, data = model
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= 64 * 1024:
            cancel.set()

    with pytest.raises(DownloadCancelled) as err:
        resolve_checkpoint("m", registry=reg, verify=ok_verify, progress=progress, cancel=cancel)
    # a cancel is the user's choice, reported as a notice: a Cancelled, not a failed download
    assert isinstance(err.value, Cancelled) and isinstance(err.value, Sam2Error)
    assert not isinstance(err.value, DownloadError)
    part = isolated_cache / "m.pt.part"
    kept = part.stat().st_size
    assert 0 < kept < N and str(part) in str(err.value)
    assert part.read_bytes() == data[:kept]
    assert not (isolated_cache / "m.pt").exists()
    assert ok_verify.paths == []

    path = resolve_checkpoint("m", registry=reg, verify=ok_verify, cancel=lambda: False)  # callable token
    assert path.read_bytes() == data
    assert server.requests[-1]["range"] == f"bytes={kept}-"
    assert server.requests[-1]["status"] == 206


def test_server_ignoring_range_restarts_from_zero(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, data = model
    isolated_cache.mkdir()
    (isolated_cache / "m.pt.part").write_bytes(b"\0" * 50_000)  # a stale partial file
    server.script.ignore_range = True
    path = resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert path.read_bytes() == data
    assert [(r["range"], r["status"]) for r in server.requests] == [("bytes=50000-", 200)]


def test_complete_partial_file_is_finished_without_body(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, data = model
    isolated_cache.mkdir()
    (isolated_cache / "m.pt.part").write_bytes(data)  # e.g. killed between download and rename
    assert resolve_checkpoint("m", registry=reg, verify=ok_verify).read_bytes() == data
    assert [r["status"] for r in server.requests] == [416]


def test_wrong_sha256_moves_file_aside(make_bytes, server, write_registry, isolated_cache: Path, ok_verify) -> None:
    data = make_bytes(N, seed=1)
    wrong = hashlib.sha256(b"something else").hexdigest()
    reg = write_registry([{"name": "m", "url": server.add("m.pt", data), "sha256": wrong}])
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    bad = list(isolated_cache.glob("m.pt.bad-*"))
    assert len(bad) == 1 and bad[0].read_bytes() == data
    msg = str(err.value)
    assert "moved aside" in msg and str(bad[0]) in msg and wrong in msg
    assert hashlib.sha256(data).hexdigest() in msg
    assert not (isolated_cache / "m.pt").exists() and not (isolated_cache / "m.pt.verified").exists()
    assert ok_verify.paths == []  # the strict load is not even attempted


def test_correct_sha256_is_accepted_and_recorded(
    make_bytes, server, write_registry, isolated_cache: Path, ok_verify
) -> None:
    data = make_bytes(N, seed=2)
    digest = hashlib.sha256(data).hexdigest()
    reg = write_registry([{"name": "m", "url": server.add("m.pt", data), "sha256": digest, "bytes": N}])
    resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert f'"sha256": "{digest}"' in (isolated_cache / "m.pt.verified").read_text()


def test_failed_strict_load_moves_file_aside_and_next_call_downloads_again(
    server, model, isolated_cache: Path, rejecting_verify
) -> None:
    reg, data = model
    verify = rejecting_verify(CheckpointError("This is not a SAM 2 checkpoint: key 'model' is missing."))
    with pytest.raises(CheckpointError, match="key 'model' is missing. It was moved aside to "):
        resolve_checkpoint("m", registry=reg, verify=verify)
    assert len(list(isolated_cache.glob("m.pt.bad-*"))) == 1
    verify.error = None
    assert resolve_checkpoint("m", registry=reg, verify=verify).read_bytes() == data
    assert len(server.requests) == 2


def test_verifier_bug_is_not_blamed_on_the_file(model, isolated_cache: Path, rejecting_verify) -> None:
    reg, _ = model
    verify = rejecting_verify(ImportError("napari_sam2.model.checkpoint not installed"))
    with pytest.raises(ImportError):
        resolve_checkpoint("m", registry=reg, verify=verify)
    assert (isolated_cache / "m.pt").exists()  # kept, not quarantined ...
    assert not (isolated_cache / "m.pt.verified").exists()  # ... but not trusted either
    verify.error = None
    resolve_checkpoint("m", registry=reg, verify=verify)
    assert len(verify.paths) == 2


def test_size_mismatch_with_registry_is_refused_before_writing(
    make_bytes, server, write_registry, isolated_cache: Path, ok_verify
) -> None:
    url = server.add("m.pt", make_bytes(N))
    reg = write_registry([{"name": "m", "url": url, "bytes": N + 1}])
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert_offline_message(err.value, url, isolated_cache, f"offers {N} bytes", f"is {N + 1} bytes")
    assert not (isolated_cache / "m.pt.part").exists() and not (isolated_cache / "m.pt").exists()


def test_copied_file_of_wrong_size_is_moved_aside(server, write_registry, isolated_cache: Path, ok_verify) -> None:
    reg = write_registry([{"name": "m", "url": server.url("m.pt"), "bytes": N}])
    isolated_cache.mkdir()
    (isolated_cache / "m.pt").write_bytes(b"x" * 10)
    with pytest.raises(CheckpointError, match=f"it is 10 bytes but should be {N} bytes"):
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert server.requests == [] and len(list(isolated_cache.glob("m.pt.bad-*"))) == 1


@pytest.mark.parametrize("status, words", [(404, "not on the server"), (403, "access denied"), (500, "server error")])
def test_http_errors_give_one_offline_message(
    server, model, isolated_cache: Path, ok_verify, status: int, words: str
) -> None:
    reg, _ = model
    server.script.status = status
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert_offline_message(err.value, server.url("m.pt"), isolated_cache, f"HTTP {status}", words)
    assert not (isolated_cache / "m.pt").exists()


def test_connection_refused(write_registry, closed_port: int, isolated_cache: Path, ok_verify) -> None:
    url = f"http://127.0.0.1:{closed_port}/m.pt"
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=write_registry(m=url), verify=ok_verify)
    assert_offline_message(err.value, url, isolated_cache, "connection was refused", "download")


def test_dns_failure(write_registry, isolated_cache: Path, ok_verify) -> None:
    url = "https://checkpoints.does-not-exist.invalid/m.pt"  # .invalid never resolves (RFC 2606)
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=write_registry(m=url), verify=ok_verify)
    assert_offline_message(err.value, url, isolated_cache, "could not be resolved")


@pytest.mark.parametrize("labelled_html", [True, False])
def test_captive_portal_html_is_not_saved(
    html_page, server, model, isolated_cache: Path, ok_verify, labelled_html: bool
) -> None:
    reg, _ = model
    server.script.html, server.script.html_as_binary = labelled_html, not labelled_html
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert_offline_message(err.value, server.url("m.pt"), isolated_cache, "web page")
    assert not (isolated_cache / "m.pt").exists()
    part = isolated_cache / "m.pt.part"
    assert not part.exists() or html_page not in part.read_bytes()


def test_redirect_to_plain_http_is_refused(server, model, isolated_cache: Path, ok_verify) -> None:
    reg, _ = model
    server.script.redirect_to = "http://example.org/evil.pt"
    with pytest.raises(DownloadError, match="redirected to a refused address"):
        resolve_checkpoint("m", registry=reg, verify=ok_verify)
    assert [r["status"] for r in server.requests] == [302]



def test_garbage_is_rejected_by_the_real_model_inspector(model, isolated_cache: Path) -> None:
    """Integration with napari_sam2.model.checkpoint: random bytes are not a checkpoint."""
    pytest.importorskip("napari_sam2.model.checkpoint")
    reg, _ = model
    with pytest.raises(CheckpointError, match="moved aside"):
        resolve_checkpoint("m", registry=reg)  # default verify=inspect_checkpoint
    assert len(list(isolated_cache.glob("m.pt.bad-*"))) == 1 and not (isolated_cache / "m.pt").exists()
