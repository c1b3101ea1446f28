"""Fixtures of the widget tests: a real viewer (Xvfb), the widget opened through the manifest, and
one random-weights SAM 2 model shared by the whole test session (the real engine runs it)."""

from __future__ import annotations

import numpy as np
import pytest
from app_model.types import KeyBinding

from napari_sam2._napari import messages


def open_widget(viewer):
    """Dock the SAM 2 widget the way a user does (Plugins menu -> manifest command)."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    widget.reset_choices()
    return widget


def wait_idle(qtbot, widget, timeout=60_000):
    """Wait until the widget's worker and its queue are done (never leave a worker running)."""
    qtbot.waitUntil(lambda: not widget.runner.busy and not widget.runner.pending, timeout=timeout)


def press(layer, key):
    """Run the key binding of ``layer`` for ``key`` (as napari does on a key press)."""
    layer.keymap[KeyBinding.from_str(key)](layer)


def add_box(layer, frame, r0, c0, r1, c1):
    rect = np.array([[frame, r0, c0], [frame, r0, c1], [frame, r1, c1], [frame, r1, c0]], float)
    layer.add_rectangles(rect)


@pytest.fixture(autouse=True)
def settings_dir(tmp_path_factory, monkeypatch):
    """Each test's widgets remember their settings in a folder of its own (never the user's)."""
    path = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("NAPARI_SAM2_CONFIG_DIR", str(path))
    return path


@pytest.fixture
def notes(monkeypatch):
    """Every notification the widget shows, as (level, text)."""
    shown: list[tuple[str, str]] = []
    real = messages.show

    def record(level, text):
        shown.append((level, text))
        real(level, text)

    monkeypatch.setattr(messages, "show", record)
    return shown


@pytest.fixture(scope="session")
def model():
    """The small random-weights model (256 px), built once: ``widget.use_model(model)``."""
    from napari_sam2.model.testing import random_model

    return random_model(seed=0)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def cells_widget(viewer, qtbot):
    """Widget docked on the cells sample (image + ground truth); no model yet."""
    viewer.open_sample("napari-sam2", "cells_timelapse")
    widget = open_widget(viewer)
    yield widget
    widget.cancel()
    wait_idle(qtbot, widget)
