"""SAM 2 / 2.1 checkpoints by name: registry, offline-first cache, verified resumable download.

Typical use::

    from napari_sam2.checkpoints import resolve_checkpoint, tqdm_progress

    with tqdm_progress("sam2.1_hiera_tiny") as progress:
        path = resolve_checkpoint("sam2.1_hiera_tiny", progress=progress)

Types and helpers used inside (``CheckpointEntry``, ``Registry``, progress callbacks, cancel
tokens) live in their modules. See docs/weights.md for the cache folder, environment variables and offline installation.
"""

from __future__ import annotations

from ..errors import DownloadCancelled
from .builtin import DEMO_MODEL, demo_checkpoint
from .cache import ENV_WEIGHTS_DIR, cache_dir
from .progress import tqdm_progress
from .registry import ENV_REGISTRY, get_entry, load_registry, registry_names
from .resolve import is_cached, resolve_checkpoint

__all__ = [
    "DEMO_MODEL",
    "ENV_REGISTRY",
    "ENV_WEIGHTS_DIR",
    "DownloadCancelled",
    "cache_dir",
    "demo_checkpoint",
    "get_entry",
    "is_cached",
    "load_registry",
    "registry_names",
    "resolve_checkpoint",
    "tqdm_progress",
]
