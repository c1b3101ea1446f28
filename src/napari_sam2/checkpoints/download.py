"""Resumable, cancellable HTTP download of one checkpoint into ``<file>.part`` (stdlib urllib only).

Written by hand because pooch.retrieve cannot resume with a Range request, cannot be cancelled between chunks,
reports progress only through tqdm, and would pull in ``requests`` (not a napari dependency). Every failure
becomes one DownloadError paragraph naming the URL, the file name and the cache folder, so that offline users
can fetch the file by hand.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ..errors import CheckpointError, DownloadCancelled, DownloadError

from ._cancellable import call_cancellable, shutdown_on_cancel
from .cache import ENV_WEIGHTS_DIR, part_file
from .progress import CancelToken, ProgressCallback, is_cancelled
from .registry import LOOPBACK_HOSTS, check_url_allowed

CHUNK_SIZE = 64 * 1024
TIMEOUT_S = 30.0
MAX_ATTEMPTS = 3
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSAT_RE = re.compile(r"bytes\s+\*/(\d+)")


class _Retry(Exception):
    """Internal: this attempt ended early; ``restart`` means retry even without new bytes."""

    def __init__(self, reason: str, restart: bool = False) -> None:
        super().__init__(reason)
        self.restart = restart


def manual_hint(url: str, dest: Path) -> str:
    """The sentence telling an offline user exactly what to fetch and where to put it."""
    return (
        f"If this computer has no internet access, download {url} on another computer and copy the file, named "
        f"exactly '{dest.name}', into the folder {dest.parent} (or set {ENV_WEIGHTS_DIR} to a folder that holds "
        "it), then try again."
    )


def _fail(url: str, dest: Path, reason: str) -> DownloadError:
    return DownloadError(f"Could not download the checkpoint '{dest.name}' from {url}: {reason}. "
                         + manual_hint(url, dest))


def describe_network_error(exc: BaseException) -> str:
    """A short human reason for a urllib/socket failure (no traceback, no errno soup)."""
    if isinstance(exc, urllib.error.HTTPError):
        meaning = {
            403: "access denied, often a proxy or firewall",
            404: "the file is not on the server",
            407: "the proxy requires authentication",
        }.get(exc.code, "a server error, try again later" if exc.code >= 500 else "")
        return f"the server answered HTTP {exc.code} {exc.reason}" + (f" ({meaning})" if meaning else "")
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return describe_network_error(exc.reason)
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (no network, the server is down, or a firewall blocks it)"
    if isinstance(exc, socket.gaierror):
        return "the host name could not be resolved (no network or no DNS)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ("the server's HTTPS certificate could not be verified (a proxy that inspects traffic may be in "
                "the way)")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "the connection timed out"
    text = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    if "tunnel connection failed" in text.lower():
        return f"the proxy refused the connection ({text})"
    return text


def cancelled_error(dest: Path, done: int | None = None, total: int | None = None) -> DownloadCancelled:
    """The cancellation message; it says what is kept for the next attempt."""
    part = part_file(dest)
    kept = part.stat().st_size if part.exists() else 0
    done = kept if done is None else done
    if done:
        return DownloadCancelled(
            f"The download of '{dest.name}' was cancelled after {done} of {total or '?'} bytes; the partial file "
            f"{part} is kept and the next attempt resumes from there."
        )
    return DownloadCancelled(f"The download of '{dest.name}' was cancelled before any data arrived; nothing was "
                             "written.")


def _looks_like_html(first: bytes) -> bool:
    head = first[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body"))


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs we would accept in the registry (no HTTPS -> HTTP downgrade)."""

    def redirect_request(self, req: Any, fp: IO[bytes], code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        check_url_allowed(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    handlers: list[Any] = [_SafeRedirect()]
    if (urlsplit(url).hostname or "") in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback traffic through a proxy
    opener = urllib.request.build_opener(*handlers)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"napari-sam2/{version('napari-sam2')}"
    except Exception:
        return "napari-sam2"


def fetch(url: str, dest: Path, *, expected_bytes: int | None = None, progress: ProgressCallback | None = None,
          cancel: CancelToken = None) -> Path:
    """Download ``url`` into ``<dest>.part``, resuming what is there; return the complete, fsynced part file.

    Retries (resuming) up to MAX_ATTEMPTS times while attempts make progress. The caller holds the cache lock
    and moves the part file into place after verification.
    """
    check_url_allowed(url)
    part = part_file(dest)
    for attempt in range(MAX_ATTEMPTS):
        before = part.stat().st_size if part.exists() else 0
        try:
            _attempt(url, dest, part, expected_bytes, progress, cancel)
            return part
        except _Retry as exc:
            if is_cancelled(cancel):  # the connection was shut down by the cancel watcher
                raise cancelled_error(dest) from None
            now = part.stat().st_size if part.exists() else 0
            if attempt + 1 < MAX_ATTEMPTS and (exc.restart or now > before):
                continue
            raise _fail(url, dest, f"{exc}; {now} bytes are kept in {part} and the next attempt resumes "
                                   "from there") from None
    raise AssertionError("unreachable")


def _attempt(url: str, dest: Path, part: Path, expected: int | None, progress: ProgressCallback | None,
             cancel: CancelToken) -> None:
    start = part.stat().st_size if part.exists() else 0
    if expected is not None and start > expected:
        part.unlink()
        start = 0
    if is_cancelled(cancel):
        raise cancelled_error(dest)
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = call_cancellable(lambda: _open(url, headers), cancel, lambda: cancelled_error(dest))
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and start:
                m = _CONTENT_RANGE_UNSAT_RE.search(exc.headers.get("Content-Range", ""))
                if m and int(m.group(1)) == start:  # the part file is already complete
                    if progress:
                        progress(start, start)
                    return
                part.unlink()
                raise _Retry("the server refused to resume", restart=True) from None
            raise _fail(url, dest, describe_network_error(exc)) from None
    except CheckpointError as exc:  # redirect to a refused URL
        raise _fail(url, dest, f"the server redirected to a refused address ({exc})") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise _fail(url, dest, describe_network_error(exc)) from None
    with resp, shutdown_on_cancel(resp, cancel):
        _receive(resp, url, dest, part, start, expected, progress, cancel)


def _receive(resp: http.client.HTTPResponse, url: str, dest: Path, part: Path, start: int,
             expected: int | None, progress: ProgressCallback | None, cancel: CancelToken) -> None:
    ctype = (resp.headers.get("Content-Type") or "").lower()
    if ctype.startswith("text/"):
        raise _fail(url, dest, f"the network returned a web page ({ctype.split(';')[0]}) instead of the "
                               "checkpoint, probably a login page of a proxy or guest Wi-Fi")
    if resp.status == 206:
        m = _CONTENT_RANGE_RE.search(resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != start:
            part.unlink(missing_ok=True)
            raise _Retry("the server resumed at the wrong offset", restart=True)
        total = None if m.group(3) == "*" else int(m.group(3))
    elif resp.status == 200:  # a fresh download, or a server that ignored our Range header: start over
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        start = 0
    else:
        raise _fail(url, dest, f"the server answered HTTP {resp.status} {resp.reason}")
    if expected is not None and total is not None and total != expected:
        raise _fail(url, dest, f"the server offers {total} bytes but the checkpoint is {expected} bytes, so it "
                               "is not the expected file")
    try:
        first = resp.read(CHUNK_SIZE)
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(f"the connection broke ({describe_network_error(exc)})") from None
    if start == 0 and _looks_like_html(first):
        raise _fail(url, dest, "the network returned a web page instead of the checkpoint, probably a login "
                               "page of a proxy or guest Wi-Fi")
    done = start
    with open(part, "ab" if start else "wb") as f:
        try:
            if progress:
                progress(done, total)
            chunk = first
            while chunk:
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
                if is_cancelled(cancel):
                    raise cancelled_error(dest, done, total)
                try:
                    chunk = resp.read(CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"the connection broke after {done} of {total or '?'} bytes "
                                 f"({describe_network_error(exc)})") from None
        finally:
            f.flush()
            os.fsync(f.fileno())
    if total is not None and done < total:
        raise _Retry(f"the connection was interrupted after {done} of {total} bytes")
