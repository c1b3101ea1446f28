"""Recognise files that are not PyTorch checkpoints from their first bytes (no torch needed).

Catches what users commonly pass instead of the official ``.pt``: a Git LFS pointer, an HTML
page saved by a proxy, an empty file, a safetensors file, a compressed archive.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import CheckpointError

OFFICIAL_PT_HINT = (
    "Use an official SAM 2 .pt checkpoint: give a model name such as 'sam2.1_hiera_tiny' (downloaded once, "
    "see `napari-sam2 models`), or download the .pt file from https://github.com/facebookresearch/sam2 "
    "(section 'Download Checkpoints')."
)
_ARCHIVES = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"7z\xbc\xaf\x27\x1c": "7-Zip",
             b"Rar!": "RAR"}


def _is_safetensors(head: bytes, path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def sniff_checkpoint(path: str | Path) -> None:
    """Raise CheckpointError naming the fix when ``path`` cannot be a PyTorch checkpoint."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint file not found: {path} does not exist; check the path, or pick a model by name "
            "(e.g. 'sam2.1_hiera_tiny') to download it."
        )
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; choose the .pt checkpoint file inside it.")
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path} ({exc.strerror or exc}); check its permissions.") from None
    if len(head) == 0:
        raise CheckpointError(f"{path} is empty. Delete it and download the checkpoint again.")
    if head.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"{path} is a Git LFS pointer, not the checkpoint itself. Run 'git lfs pull' in "
            "that repository, or download the .pt file directly."
        )
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        raise CheckpointError(
            f"{path} is an HTML page (a proxy or login page saved instead of the checkpoint). "
            "Delete it and download the .pt file again."
        )
    if _is_safetensors(head, path):
        raise CheckpointError(f"{path} is a safetensors file; napari-sam2 does not load safetensors. "
                              + OFFICIAL_PT_HINT)
    for magic, kind in _ARCHIVES.items():
        if head.startswith(magic):
            raise CheckpointError(f"{path} is a {kind}-compressed archive, not a checkpoint; extract the .pt file "
                                  "from it and give that file.")
