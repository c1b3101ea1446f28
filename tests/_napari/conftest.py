"""Fixtures of the widget tests: a real viewer (Xvfb), the widget opened through the manifest."""

from __future__ import annotations

import numpy as np
import pytest
from app_model.types import KeyBinding

from napari_sam2._napari import messages
from napari_sam2._napari import workers as W

from .fakes import FakeSession


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


@pytest.fixture
def fake(monkeypatch):
    """Replace VideoSession by FakeSession; returns the settings dict and, later, the session."""
    cfg: dict = {"delay": 0.0, "absent": (), "session": None}

    def open_fake(model, data, axis, **kwargs):
        yield W.Status("fake session")
        cfg["session"] = FakeSession(model, data, axis, delay=cfg["delay"], absent=cfg["absent"])
        return cfg["session"]

    monkeypatch.setattr(W, "open_session_job", open_fake)
    return cfg
