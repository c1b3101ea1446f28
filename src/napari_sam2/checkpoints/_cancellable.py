"""Make blocking network calls give way to a cancel token within a fraction of a second.

A socket read blocks until data arrives or the socket timeout (30 s) passes, so checking the
token between chunks is not enough when a server sends its headers and then stalls. Connecting
runs in a helper thread that the caller stops waiting for on cancel; while a body is read, a
watcher thread shuts the connection down on cancel, which ends a blocked read at once.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from .progress import CancelToken, is_cancelled

POLL_S = 0.1
T = TypeVar("T")


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except Exception:
        pass


def call_cancellable(fn: Callable[[], T], cancel: CancelToken, cancelled: Callable[[], BaseException]) -> T:
    """``fn()``, or ``raise cancelled()`` as soon as ``cancel`` is set (a late result is closed)."""
    if cancel is None:
        return fn()
    box: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        with lock:
            done.set()
            if box.get("abandoned") and "result" in box:
                _close_quietly(box["result"])

    threading.Thread(target=run, name="napari-sam2-connect", daemon=True).start()
    while not done.wait(POLL_S):
        if is_cancelled(cancel):
            with lock:
                if not done.is_set():
                    box["abandoned"] = True
                    raise cancelled()
    if "error" in box:
        raise box["error"]
    return box["result"]


def shutdown_connection(resp: Any) -> None:
    """Shut the response's socket down for both directions (a blocked read returns at once)."""
    try:
        fd = resp.fileno()
        sock = socket.socket(fileno=os.dup(fd))
    except (OSError, ValueError, AttributeError):
        return  # no socket (already closed) or a platform where descriptors cannot be duplicated
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


@contextmanager
def shutdown_on_cancel(resp: Any, cancel: CancelToken) -> Iterator[None]:
    """While the block runs, shut ``resp``'s connection down as soon as ``cancel`` is set."""
    if cancel is None:
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_S):
            if is_cancelled(cancel):
                shutdown_connection(resp)
                return

    watcher = threading.Thread(target=watch, name="napari-sam2-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
