"""``resolve_checkpoint``: turn a model name or a file path into a verified local checkpoint file.

Offline first: a verified cached file is returned without any network access; a file copied by hand into the
cache is verified on first use; only a missing file is downloaded (under a lock, resumable, then verified).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable

from ..errors import CheckpointError
from . import cache
from .builtin import demo_checkpoint, is_demo_name
from .cache import ENV_WEIGHTS_DIR
from .download import fetch, manual_hint
from .filecheck import sniff_checkpoint
from .names import registry_name_of, unknown_model
from .progress import CancelToken, ProgressCallback
from .registry import CheckpointEntry, RegistryLike, as_registry

Verifier = Callable[[Path], Any]


def default_verify(path: Path) -> None:
    """Strict load check by the model package (raises CheckpointError for anything not an official layout)."""
    from ..model.checkpoint import inspect_checkpoint  # lazy: pulls in torch

    inspect_checkpoint(path)


def resolve_checkpoint(
    name_or_path: str | os.PathLike[str],
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken = None,
    verify: Verifier | None = None,
    registry: RegistryLike = None,
) -> Path:
    """Local path of a checkpoint given a registry name (cached, downloaded if needed) or a file path.

    An existing file path is returned as is; a missing one raises CheckpointError naming it. A registry name
    (or its file name, ``"sam2.1_hiera_tiny.pt"``) gives the verified cached file, downloading it first when
    ``download`` is true. ``progress(done, total)`` and ``cancel`` (Event or callable) apply to the download;
    ``verify(path)`` (default: :func:`default_verify`) runs once per file, its success is recorded on disk.
    Raises DownloadError (network), DownloadCancelled, or CheckpointError (bad or missing file).
    """
    if is_demo_name(name_or_path):
        return demo_checkpoint()
    reg = as_registry(registry)
    name = registry_name_of(name_or_path, reg.names())
    if name is None:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            sniff_checkpoint(path)  # "does not exist" / "is a folder"
        return path
    entry = reg.get(name)
    folder = cache.cache_dir()
    dest = cache.cached_file(entry, folder)
    if cache.is_verified(dest, entry):  # fast path, no lock, no network
        return dest
    if not download and not dest.exists():  # checked before the lock: a query must not create folders
        raise _not_cached(entry, dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with cache.FileLock(cache.lock_file(dest), cancel=cancel):
            if cache.is_verified(dest, entry):  # another thread or process finished it while we waited
                return dest
            if not dest.exists():
                if not download:
                    raise _not_cached(entry, dest)
                part = fetch(entry.url, dest, expected_bytes=entry.bytes, progress=progress, cancel=cancel)
                os.replace(part, dest)  # atomic: `dest` only ever names a complete file
                cache.fsync_dir(folder)
            _verify_or_quarantine(dest, entry, verify or default_verify)
    except OSError as exc:  # network failures are DownloadErrors already: this is the local folder
        raise cache_unusable(folder, entry, exc) from None
    return dest


def cache_unusable(folder: Path, entry: CheckpointEntry, exc: OSError) -> CheckpointError:
    """The cache folder cannot be created or written: say why and how to choose another one."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        why = f"{blocker} is a file, not a folder"
    elif exc.errno == errno.ENOSPC:
        why = f"the disk is full (the checkpoint needs about {entry.display_size})"
    elif isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "you have no permission to write there"
    else:
        why = exc.strerror or str(exc)
    return CheckpointError(
        f"The checkpoint cache folder {folder} cannot be used: {why}. Set the environment variable "
        f"{ENV_WEIGHTS_DIR} to a folder you can write to (or fix that folder), then try again."
    )


def is_cached(name: str, registry: RegistryLike = None) -> bool:
    """True when the named checkpoint's file is in the cache (verified or not); never touches the network."""
    return cache.cached_file(as_registry(registry).get(name)).is_file()


def _not_cached(entry: CheckpointEntry, dest: Path) -> CheckpointError:
    return CheckpointError(
        f"The checkpoint '{entry.name}' ({entry.display_size}) is not in the cache folder {dest.parent} and "
        "downloading is turned off. " + manual_hint(entry.url, dest)
    )


def checkpoint_source(name_or_path: Any, registry: RegistryLike = None) -> str | Path:
    """The registry name (a str) or the checkpoint file (a Path) meant by ``name_or_path``, checked
    without any download or loading, so a caller can fail fast before other work.

    A mistyped name raises "Unknown model ...; did you mean ...?"; a path that cannot be a checkpoint
    (missing, a folder, empty, an LFS pointer, HTML, safetensors, an archive) a CheckpointError naming
    the fix. ``load_model`` and the command line both use it. ``"napari-sam2-demo"`` is the shipped
    demo checkpoint's file (:mod:`.builtin`).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise CheckpointError(f"The model must be a model name (e.g. 'sam2.1_hiera_tiny') or the path of a .pt "
                              f"checkpoint, not a {type(name_or_path).__name__}.")
    if is_demo_name(name_or_path):
        return demo_checkpoint()
    reg = as_registry(registry)
    name = registry_name_of(name_or_path, reg.names())
    if name is None:
        path = Path(name_or_path).expanduser()
        sniff_checkpoint(path)
        return path
    if name not in reg.entries:
        raise unknown_model(name, reg.names())
    return name


def _verify_or_quarantine(dest: Path, entry: CheckpointEntry, verify: Verifier) -> None:
    """Check size, sha256 and loadability; record success, or move the file aside and raise."""
    size = dest.stat().st_size
    digest = ""
    problem: str | None = None
    if entry.bytes is not None and size != entry.bytes:
        problem = f"it is {size} bytes but should be {entry.bytes} bytes"
    else:
        digest = cache.file_sha256(dest)
        if entry.sha256 is not None and digest != entry.sha256:
            problem = f"its SHA-256 is {digest} but should be {entry.sha256}"
        else:
            try:
                verify(dest)  # other exceptions (a bug, a missing module) propagate: the file is not blamed
            except CheckpointError as exc:
                problem = str(exc).rstrip(".")
    if problem is not None:
        bad = cache.quarantine(dest)
        raise CheckpointError(
            f"The checkpoint file '{dest.name}' failed verification: {problem}. It was moved aside to {bad} and "
            f"will not be used (delete it when you like). Run again to download a fresh copy from {entry.url}, "
            f"or put a good copy of that file into {dest.parent}."
        )
    cache.write_marker(dest, digest, entry.url)
