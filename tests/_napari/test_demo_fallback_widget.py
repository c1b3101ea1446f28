"""Offline, with no official checkpoint cached: the widget falls back to the built-in demo model and
says so (real viewer, real loopback networking with nothing listening)."""

from __future__ import annotations

import json
import socket

import numpy as np

from napari_sam2.checkpoints import DEMO_MODEL, ENV_REGISTRY, ENV_WEIGHTS_DIR

from .conftest import open_widget, wait_idle


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused, as with no network)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_without_weights_the_demo_model_segments_and_a_note_says_so(viewer, qtbot, notes, monkeypatch,
                                                                           tmp_path):
    registry = tmp_path / "registry.json"
    url = f"http://127.0.0.1:{_closed_port()}/sam2.1_hiera_tiny.pt"
    registry.write_text(json.dumps({"checkpoints": [
        {"name": "sam2.1_hiera_tiny", "version": "2.1", "size": "tiny", "url": url}]}))
    monkeypatch.setenv(ENV_REGISTRY, str(registry))
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(tmp_path / "weights"))
    viewer.open_sample("napari-sam2", "cells_timelapse")
    w = open_widget(viewer)
    assert w.model_combo.currentData() == "sam2.1_hiera_tiny" and w.model_combo.findData(DEMO_MODEL) >= 0
    truth = viewer.layers["cells ground truth"].data
    cell = int(truth[0, 60, 60])
    assert cell > 0

    w.points_layer.add([[0, 60, 60]])  # the first click loads the model: the download cannot connect
    wait_idle(qtbot, w, timeout=120_000)

    warnings = [text for level, text in notes if level == "warning"]
    assert len(warnings) == 1 and not [n for n in notes if n[0] == "error"]
    (note,) = warnings
    assert "sam2.1_hiera_tiny is not cached and could not be downloaded" in note
    assert "napari-sam2-demo" in note and "not Meta's SAM 2" in note and "Connect to the network" in note
    assert url in note  # the download error, with its manual steps, is part of the warning
    assert w.model_note_label.text() in note and not w.model_note_label.isHidden()  # it stays, unlike status
    assert "napari-sam2-demo" in w.model_note_label.text()
    assert w.model.source_name == DEMO_MODEL and w.model.image_size == 256
    # and it really segments: the clicked cell, not the background
    out = np.asarray(viewer.layers["cells SAM 2"].data[0])
    mask, target = out > 0, truth[0] == cell
    assert (mask & target).sum() / (mask | target).sum() > 0.6
