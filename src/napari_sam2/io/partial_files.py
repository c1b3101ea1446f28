"""Outputs that appear complete or not at all: hidden temporary siblings, renamed at the end.

A batch job writes its labels TIFF, table and CTC folder under hidden names beside the final
ones (``.movie_labels.partial.tif``, ``.ctc.partial/``); :meth:`PartialOutputs.publish`
renames them into place, the labels last, and leaving the ``with`` block in any other way
(an error, Ctrl-C, SIGTERM) removes every temporary file, so no partial output is left under
any name.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Callable

from ..errors import OutputError


def hidden_sibling(path: Path, tag: str) -> Path:
    """``dir/.stem.tag.suffix`` (hidden, same folder: renaming it over ``path`` is atomic)."""
    return path.with_name(f".{path.stem}.{tag}{path.suffix}")


def output_error(path: Path, exc: OSError, what: str) -> OutputError:
    """One sentence for a failure to create or write ``path``, naming the option to change."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None and blocker != path:
        why = f"{blocker} is a file, not a folder"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "the disk is full (or your disk quota is used up); free some space"
    elif exc.errno == errno.EFBIG:
        why = "the file would be larger than allowed here (a file size limit such as `ulimit -f`)"
    elif isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "you have no permission to write there"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"Cannot write {path}: {why}; choose another {what}.")


#: errno values that always mean "the output cannot be written", whichever file was being read at the time
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def ensure_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and parents) or raise :class:`OutputError` naming ``what`` to change."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc, what) from None


def check_folder_writable(folder: Path, what: str) -> None:
    """Fail early, creating nothing, when ``folder`` cannot be created or written."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise OutputError(f"Cannot write into {folder}: {existing} is a file, not a folder; choose another {what}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write into {folder}: you have no permission to write in {existing}; choose "
                          f"another {what}.")


class PartialOutputs:
    """Temporary files and folders of one job; use as a context manager (see module docstring)."""

    def __init__(self) -> None:
        self._paths: list[Path] = []
        self._cleanups: list[Callable[[], None]] = []

    def file(self, final: Path, tag: str = "partial") -> Path:
        """A fresh temporary file name beside ``final`` (any stale one from a killed run is removed)."""
        path = hidden_sibling(final, tag)
        path.unlink(missing_ok=True)
        self._paths.append(path)
        return path

    def folder(self, final: Path) -> Path:
        """A fresh, empty temporary folder beside ``final``."""
        path = final.with_name(f".{final.name}.partial")
        shutil.rmtree(path, ignore_errors=True)
        self._paths.append(path)
        path.mkdir(parents=True)
        return path

    def on_cleanup(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (e.g. close a writer) before the temporary files are removed."""
        self._cleanups.append(fn)

    def publish(self, temp: Path, final: Path) -> None:
        """Rename a finished temporary file (or folder) over ``final`` (atomic on one file system for a file;
        a folder being replaced is removed first)."""
        if temp.is_dir() and final.is_dir():
            shutil.rmtree(final)
        os.replace(temp, final)
        if temp in self._paths:
            self._paths.remove(temp)

    def cleanup(self) -> None:
        """Close what was registered, then remove every temporary file not published."""
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                pass
        self._cleanups.clear()
        for path in self._paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._paths.clear()

    def __enter__(self) -> PartialOutputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()
