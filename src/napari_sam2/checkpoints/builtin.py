"""The built-in demo model, ``napari-sam2-demo``: shipped with the package, no download.

It is *not* Meta's SAM 2: a miniature SAM 2.1 architecture (``sam2.1_test_micro``, 256 px) trained
here from scratch on synthetic cells and ultrasound-like clips (``benchmarks/train_demo_model.py``,
quality in ``weights/README.md``). It is for demos, tests and offline trials, and it is what the widget
falls back to when no official checkpoint is cached and the network is unreachable. The file lives
in ``weights/`` (``src/napari_sam2/checkpoints/napari-sam2-demo.pt`` is a symlink to it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError

DEMO_MODEL = "napari-sam2-demo"
DEMO_NOTE = ("the built-in demo model napari-sam2-demo (not Meta's SAM 2: a small model trained on synthetic "
             "cells and ultrasound clips, for demos and offline trials)")
_FILE = Path(__file__).with_name(DEMO_MODEL + ".pt")


def is_demo_name(name_or_path: str | os.PathLike[str]) -> bool:
    """True for ``"napari-sam2-demo"`` (or its file name, when no such file is in the working folder)."""
    if isinstance(name_or_path, os.PathLike):
        return False
    text = str(name_or_path)
    return text == DEMO_MODEL or (text == DEMO_MODEL + ".pt" and not Path(text).exists())


def demo_checkpoint() -> Path:
    """The shipped demo checkpoint file; a CheckpointError if this installation lacks it."""
    path = _FILE.resolve()
    if not path.is_file():
        raise CheckpointError(
            f"The built-in demo model file is missing from this installation ({_FILE}). Reinstall napari-sam2, "
            "or choose an official model such as sam2.1_hiera_tiny."
        )
    return path
