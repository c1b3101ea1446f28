"""Top-level pytest configuration shared by every test directory (keep it small and generic).

napari's own pytest plugin provides ``make_napari_viewer``; pytest-qt provides ``qtbot``; pytest-xvfb
starts a virtual X display for the whole session when no display is available.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The source checkout the tests run from."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Reference fixtures computed with the official SAM 2 code (not committed to this repo).

    ``$NAPARI_SAM2_REFERENCE_DIR`` if set, else ``shared/reference`` beside the checkout (where CI
    puts it). Tests that need it are skipped when it is absent.
    """
    env = os.environ.get("NAPARI_SAM2_REFERENCE_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "reference"
    if not path.is_dir():
        pytest.skip(f"reference fixtures not found at {path} (set NAPARI_SAM2_REFERENCE_DIR)")
    return path
