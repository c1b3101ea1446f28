"""Fixtures: a real HTTP server on loopback with Range support and scripted failures, an isolated cache."""

from __future__ import annotations

import json
import random
import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from napari_sam2.checkpoints import ENV_REGISTRY, ENV_WEIGHTS_DIR

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Guest Wi-Fi</title></head><body>Please log in</body></html>"


def make_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-checkpoint bytes (zip magic first, like a torch.save file)."""
    return b"PK\x03\x04" + random.Random(seed).randbytes(n - 4)


@dataclass
class Script:
    """What the server does; every field applies to every request unless noted."""

    status: int | None = None  # answer this HTTP error instead of the file
    html: bool = False  # answer an HTML page with Content-Type text/html
    html_as_binary: bool = False  # answer an HTML page labelled application/octet-stream
    cut_after: int | None = None  # close the connection after this many body bytes, once
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    redirect_to: str | None = None  # answer 302 to this URL
    chunk_delay: float = 0.0  # seconds between 16 KiB pieces (to make requests overlap)
    stall_after: int | None = None  # send the headers and this many body bytes, then go silent
    stall_before_headers: bool = False  # accept the request, then send nothing at all
    stall_s: float = 60.0  # how long a stall lasts (the fixture ends it at teardown)


@dataclass
class FakeServer:
    """Serves ``files`` at ``/<name>``; records (path, Range header, status) of every request."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)  # ends stalls at teardown

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return self.url(name)


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeServer  # set per server class
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def _record(self, status: int) -> None:
        with self.server_state.lock:
            self.server_state.requests.append(
                {"path": self.path, "range": self.headers.get("Range"), "status": status}
            )

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        st = self.server_state
        sc = st.script
        name = self.path.lstrip("/")
        if sc.stall_before_headers:
            self._record(0)
            st.release.wait(sc.stall_s)
            self.close_connection = True
            return
        if sc.redirect_to:
            self._record(302)
            self.send_response(302)
            self.send_header("Location", sc.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if sc.status is not None or name not in st.files:
            code = sc.status or 404
            self._record(code)
            self.send_error(code)
            return
        if sc.html or sc.html_as_binary:
            self._record(200)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8" if sc.html else "application/octet-stream")
            self.send_header("Content-Length", str(len(HTML_PAGE)))
            self.end_headers()
            self.wfile.write(HTML_PAGE)
            return
        data = st.files[name]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and not sc.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self._record(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._record(206)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self._record(200)
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if sc.stall_after is not None:
            self._send(body[: sc.stall_after])
            self.wfile.flush()
            st.release.wait(sc.stall_s)
            self.close_connection = True
            return
        if sc.cut_after is not None:
            body, sc.cut_after = body[: sc.cut_after], None  # only once
            self.close_connection = True
            self._send(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(body)

    def _send(self, body: bytes) -> None:
        try:
            for i in range(0, len(body), 16 * 1024):
                self.wfile.write(body[i : i + 16 * 1024])
                if self.server_state.script.chunk_delay:
                    time.sleep(self.server_state.script.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):  # the client cancelled
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # skip HTTPServer's socket.getfqdn(): a slow reverse DNS lookup offline
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = _Server(("127.0.0.1", 0), handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was bound and closed: connecting to it is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache folder, and an empty registry by default: the real URLs are never used."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(folder))
    empty = tmp_path / "empty-registry.json"
    empty.write_text('{"checkpoints": []}')
    monkeypatch.setenv(ENV_REGISTRY, str(empty))
    return folder


@pytest.fixture
def write_registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``write_registry(name=url, ...)`` or ``write_registry(entries=[...])`` -> path of a registry JSON."""

    def _write(entries: list[dict[str, Any]] | None = None, **urls: str) -> Path:
        items = list(entries or [])
        items += [{"name": n, "version": "2.1", "size": "tiny", "url": u} for n, u in urls.items()]
        path = tmp_path / f"registry-{len(list(tmp_path.glob('registry-*.json')))}.json"
        path.write_text(json.dumps({"checkpoints": items}))
        return path

    return _write


class Calls:
    """A verify= callable that records its calls and can be told to reject the file."""

    def __init__(self, error: Exception | None = None) -> None:
        self.paths: list[Path] = []
        self.error = error

    def __call__(self, path: Path) -> None:
        self.paths.append(Path(path))
        if self.error is not None:
            raise self.error


@pytest.fixture(name="make_bytes")
def make_bytes_fixture():  # type: ignore[no-untyped-def]
    """The make_bytes(n, seed=0) helper, as a fixture (test modules here cannot import conftest safely)."""
    return make_bytes


@pytest.fixture(name="html_page")
def html_page_fixture() -> bytes:
    return HTML_PAGE


@pytest.fixture
def ok_verify() -> Calls:
    """A verify= callable that accepts every file and records the calls."""
    return Calls()


@pytest.fixture
def rejecting_verify() -> type[Calls]:
    """The Calls class, to build verify= callables that raise a given error."""
    return Calls
