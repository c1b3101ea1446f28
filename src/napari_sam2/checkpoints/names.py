"""Is an argument a model name or a file path, and which name did a typo mean?

Shared by ``resolve_checkpoint``, ``load_model`` and the CLI, so all three agree: a string
with a folder separator, a leading ``~`` or ``.``, a checkpoint-like suffix or an existing
file is a path (a missing one is "file not found"); any other word is a model name (an
unknown one is "unknown model ...; did you mean ...?").
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Sequence

from ..errors import CheckpointError

PATH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pkl", ".pickle", ".tar", ".zip", ".gz")


def looks_like_path(text: str) -> bool:
    """True for strings a user means as a file path rather than a model name."""
    return (
        "/" in text
        or "\\" in text
        or text.startswith(("~", "."))
        or text.lower().endswith(PATH_SUFFIXES)
        or Path(text).expanduser().exists()
    )


def registry_name_of(name_or_path: str | os.PathLike[str], names: Sequence[str]) -> str | None:
    """The model name meant by the argument (maybe a typo), or None when it is a file path.

    A bare registry file name that is not an existing file (``"sam2.1_hiera_tiny.pt"``) means
    that model.
    """
    if isinstance(name_or_path, os.PathLike):
        return None
    text = str(name_or_path)
    if text in names:
        return text
    stem, _, ext = text.rpartition(".")
    if ext == "pt" and stem in names and not Path(text).exists() and "/" not in text and os.sep not in text:
        return stem
    return None if looks_like_path(text) else text


def closest_name(name: str, names: Sequence[str]) -> str | None:
    """The valid name a typo most likely meant (case-insensitive; "tiny" -> the newest tiny)."""
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower().replace("-", "_"), list(lowered), n=1, cutoff=0.6)
    if close:
        return lowered[close[0]]
    containing = [n for n in names if name and name.lower() in n.lower()]
    return containing[-1] if containing else None  # registry order: SAM 2.1 after SAM 2


def unknown_model(name: str, names: Sequence[str], extra_hint: str = "") -> CheckpointError:
    """``unknown model 'x'; did you mean 'y'?`` plus the valid names and the path alternative."""
    guess = closest_name(name, names)
    hint = f"; did you mean '{guess}'?" if guess else "."
    return CheckpointError(
        f"Unknown model '{name}'{hint} It is neither a model name nor an existing file. Valid names: "
        f"{', '.join(names) or '(none)'}{extra_hint}; or give the path of a .pt checkpoint file."
    )
