"""The local checkpoint cache: where files live, an inter-process lock, verification records, quarantine.

Layout inside :func:`cache_dir` for a checkpoint ``x.pt``:
``x.pt`` (complete, verified), ``x.pt.part`` (download in progress, resumable), ``x.pt.lock`` (lock file,
left in place on purpose: deleting lock files races), ``x.pt.verified`` (JSON record of a successful check),
``x.pt.bad-<time>`` (a file that failed verification, moved aside).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from ..errors import CheckpointError, DownloadCancelled

from .progress import CancelToken, is_cancelled
from .registry import CheckpointEntry, check_filename_safe

#: Environment variable that overrides the cache folder.
ENV_WEIGHTS_DIR = "NAPARI_SAM2_WEIGHTS_DIR"

def cache_dir() -> Path:
    """Folder for downloaded checkpoints: ``$NAPARI_SAM2_WEIGHTS_DIR`` or the per-user cache folder.

    Uses platformdirs directly (a napari dependency; ``pooch.os_cache`` is the same call) so no extra
    runtime dependency is needed. The folder is not created here.
    """
    env = os.environ.get(ENV_WEIGHTS_DIR, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    return platformdirs.user_cache_path("napari-sam2", appauthor=False) / "weights"


def cached_file(entry: CheckpointEntry, folder: Path | None = None) -> Path:
    """Path of ``entry`` in the cache, guaranteed to stay inside the cache folder."""
    check_filename_safe(entry.filename)
    folder = (folder or cache_dir()).absolute()
    path = folder / entry.filename
    if path.parent != folder:  # belt and braces after check_filename_safe
        raise CheckpointError(f"Refusing checkpoint file name {entry.filename!r}: it leaves {folder}.")
    return path


def part_file(path: Path) -> Path:
    """The in-progress download of ``path``."""
    return path.with_name(path.name + ".part")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (same value as ``pooch.file_hash(path)``; hashlib avoids a pooch dependency)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a rename durable on POSIX; silently a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- verification records ----------------------------------------------------------------------------------


def marker_file(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def write_marker(path: Path, sha256: str, source: str) -> None:
    """Record that ``path`` (as it is now: size + mtime) passed verification, atomically."""
    st = path.stat()
    record = {
        "file": path.name,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256,
        "source": source,
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    target = marker_file(path)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, target)


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(marker_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_verified(path: Path, entry: CheckpointEntry) -> bool:
    """True when ``path`` exists unchanged since it passed verification against ``entry``."""
    record = read_marker(path)
    if record is None:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    if record.get("size") != st.st_size or record.get("mtime_ns") != st.st_mtime_ns:
        return False
    if entry.bytes is not None and st.st_size != entry.bytes:
        return False
    return entry.sha256 is None or record.get("sha256") == entry.sha256


def quarantine(path: Path) -> Path:
    """Move a file that failed verification aside (``<file>.bad-<UTC time>``) and drop its record."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    bad = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while bad.exists():
        bad = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    os.replace(path, bad)
    marker_file(path).unlink(missing_ok=True)
    return bad


# --- inter-process / inter-thread lock ---------------------------------------------------------------------


class FileLock:
    """Exclusive lock on ``<file>.lock`` via ``flock`` (POSIX) or ``msvcrt.locking`` (Windows).

    OS locks vanish when their process dies, so there are no stale locks (an O_EXCL lock file would need
    stale-lock guessing). Each acquisition opens its own descriptor, so threads exclude each other too.
    Waiting polls and honours ``cancel``.
    """

    def __init__(self, path: Path, *, cancel: CancelToken = None, poll_s: float = 0.05) -> None:
        self.path = path
        self.cancel = cancel
        self.poll_s = poll_s
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while not _try_lock(fd):
                if is_cancelled(self.cancel):
                    raise DownloadCancelled(
                        f"Cancelled while waiting for another download of {self.path.name[:-5]} to finish."
                    )
                time.sleep(self.poll_s)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
