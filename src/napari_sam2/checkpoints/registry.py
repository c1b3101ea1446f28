"""The checkpoint registry: which SAM 2 / 2.1 models exist, where to get them, how to check them.

The data lives in ``weights/registry.json`` (shipped inside the package through a symlink). Every entry is
validated on load: registry URLs must be HTTPS (plain HTTP only for loopback test servers) and file names must
be plain ``*.pt`` names, so a registry can never make us write outside the cache folder.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlsplit

from ..errors import CheckpointError

#: Environment variable naming another registry JSON file (tests, mirrors, custom checkpoints).
ENV_REGISTRY = "NAPARI_SAM2_REGISTRY"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.pt$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CheckpointEntry:
    """One downloadable checkpoint. ``sha256``/``bytes`` are enforced when not None."""

    name: str
    version: str
    size: str
    config: str
    filename: str
    url: str
    sha256: str | None = None
    bytes: int | None = None
    approx_bytes: int | None = None
    sha256_unverified: str | None = None

    @property
    def display_size(self) -> str:
        """Human size for messages and menus, e.g. ``"156 MB"`` (``"?"`` when unknown)."""
        n = self.bytes if self.bytes is not None else self.approx_bytes
        return "?" if n is None else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class Registry:
    """A validated set of entries, keyed by name, plus where it came from (for messages)."""

    entries: dict[str, CheckpointEntry] = field(default_factory=dict)
    source: str = "<memory>"

    def names(self) -> list[str]:
        """Entry names in file order."""
        return list(self.entries)

    def get(self, name: str) -> CheckpointEntry:
        """The entry called ``name``; a typo gives a CheckpointError listing the valid names."""
        try:
            return self.entries[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise CheckpointError(
            f"Unknown checkpoint '{name}'.{hint} Valid names: {', '.join(self.names()) or '(none)'}"
            f" (registry: {self.source}). You can also give the path to a local .pt checkpoint file."
        )


RegistryLike = Union[Registry, str, "os.PathLike[str]", None]


def check_url_allowed(url: str) -> None:
    """Refuse anything but HTTPS, except plain HTTP to a loopback host (local test servers)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return
    raise CheckpointError(
        f"Refusing to download from '{url}': checkpoint URLs must use https:// (plain http:// is allowed only "
        "for 127.0.0.1, localhost and ::1). Fix the URL in the checkpoint registry."
    )


def check_filename_safe(filename: str) -> None:
    """Refuse names that could leave the cache folder (``/``, ``\\``, ``..``, absolute) or are not ``.pt``."""
    if (
        not isinstance(filename, str)
        or not _FILENAME_RE.match(filename)
        or ".." in filename
        or Path(filename).name != filename
    ):
        raise CheckpointError(
            f"Refusing checkpoint file name {filename!r}: it must be a plain file name ending in .pt, without "
            "folders, '..' or an absolute path. Fix the file name in the checkpoint registry."
        )


def _parse_entry(raw: Any, where: str) -> CheckpointEntry:
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: expected a JSON object, got {type(raw).__name__}.")
    try:
        entry = CheckpointEntry(
            name=str(raw["name"]),
            version=str(raw.get("version", "")),
            size=str(raw.get("size", "")),
            config=str(raw.get("config") or raw["name"]),
            filename=str(raw.get("filename") or f"{raw['name']}.pt"),
            url=str(raw["url"]),
            sha256=raw.get("sha256"),
            bytes=raw.get("bytes"),
            approx_bytes=raw.get("approx_bytes"),
            sha256_unverified=raw.get("sha256_unverified"),
        )
    except KeyError as exc:
        raise CheckpointError(f"{where}: the required field {exc} is missing.") from None
    if not _NAME_RE.match(entry.name):
        raise CheckpointError(f"{where}: invalid name {entry.name!r} (letters, digits, '.', '_', '-').")
    if entry.sha256 is not None and not (isinstance(entry.sha256, str) and _SHA256_RE.match(entry.sha256)):
        raise CheckpointError(f"{where}: sha256 must be null or 64 lowercase hex digits.")
    for key in ("bytes", "approx_bytes"):
        value = getattr(entry, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise CheckpointError(f"{where}: {key} must be null or a positive integer.")
    check_filename_safe(entry.filename)
    check_url_allowed(entry.url)
    return entry


def parse_registry(data: Any, source: str = "<memory>") -> Registry:
    """Validate registry JSON data (``{"checkpoints": [...]}`` or a bare list) into a :class:`Registry`."""
    items = data.get("checkpoints") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CheckpointError(f"The checkpoint registry {source} has no 'checkpoints' list.")
    entries: dict[str, CheckpointEntry] = {}
    try:
        for i, raw in enumerate(items):
            entry = _parse_entry(raw, f"entry {i}")
            if entry.name in entries:
                raise CheckpointError(f"entry {i}: the name '{entry.name}' appears twice.")
            entries[entry.name] = entry
    except CheckpointError as exc:
        raise CheckpointError(f"The checkpoint registry {source} is invalid: {exc}") from None
    return Registry(entries=entries, source=source)


def _read_packaged() -> tuple[str, str]:
    res = resources.files("napari_sam2.checkpoints").joinpath("registry.json")
    text = res.read_text(encoding="utf-8")
    if not text.lstrip().startswith("{") and text.strip().endswith("registry.json"):
        # A git checkout without symlink support (Windows, core.symlinks=false) stores the link as its target.
        target = Path(str(res)).parent / text.strip()
        return target.read_text(encoding="utf-8"), str(target)
    return text, str(res)


def load_registry(source: str | os.PathLike[str] | None = None) -> Registry:
    """Load a registry: ``source`` if given, else ``$NAPARI_SAM2_REGISTRY``, else the packaged one."""
    if source is None:
        source = os.environ.get(ENV_REGISTRY) or None
    if source is None:
        text, where = _read_packaged()
    else:
        path = Path(source).expanduser()
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(
                f"Cannot read the checkpoint registry {where} ({exc.strerror or exc}). Check the path, or unset "
                f"{ENV_REGISTRY} to use the built-in registry."
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"The checkpoint registry {where} is not valid JSON ({exc}).") from None
    return parse_registry(data, where)


def as_registry(registry: RegistryLike = None) -> Registry:
    """Accept a Registry, a JSON path, or None (env var / packaged) and return a Registry."""
    return registry if isinstance(registry, Registry) else load_registry(registry)


def registry_names(registry: RegistryLike = None) -> list[str]:
    """Names of all known checkpoints, e.g. ``["sam2_hiera_tiny", ..., "sam2.1_hiera_large"]``."""
    return as_registry(registry).names()


def get_entry(name: str, registry: RegistryLike = None) -> CheckpointEntry:
    """The registry entry for ``name``; CheckpointError listing the valid names on a typo."""
    return as_registry(registry).get(name)
