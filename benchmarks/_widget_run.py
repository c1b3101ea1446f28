"""Shared by the widget benchmarks: a real napari viewer on a synthetic stack, the SAM 2 widget on the
random-weights test model, clicked objects and one propagation (``bench_history.py --widget``,
``bench_gui_responsiveness.py``)."""

from __future__ import annotations

import os
import time

import numpy as np


def display():
    """A virtual X display when there is none (as pytest-xvfb does for the tests)."""
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return None
    from pyvirtualdisplay import Display

    d = Display(visible=False, size=(1600, 1000))
    d.start()
    return d


def moving_disks(frames: int, size: int, objects: int, seed: int = 0) -> np.ndarray:
    """(frames, size, size) uint8: ``objects`` bright disks drifting over a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    r = size / 10
    out = np.empty((frames, size, size), np.uint8)
    for t in range(frames):
        img = np.full((size, size), 40.0, np.float32)
        for k in range(objects):
            cy, cx = centre(k, t, size, objects)
            img += 150 * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
        out[t] = (img + rng.normal(0, 8, (size, size))).clip(0, 255)
    return out


def centre(k: int, t: int, size: int, objects: int) -> tuple[float, float]:
    """Where disk ``k`` is on frame ``t``."""
    cy = size * (k + 1) / (objects + 1)
    cx = size * 0.3 + size * 0.2 * np.sin(t / 15 + k)
    return cy, cx


def open_viewer(stack: np.ndarray):
    """A shown viewer with ``stack`` as an image and the SAM 2 widget on the random test model."""
    import napari

    from napari_sam2.model.testing import random_model

    viewer = napari.Viewer(show=True)
    viewer.add_image(stack, name="stack")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    widget.reset_choices()
    widget.use_model(random_model(seed=0), "random test model")
    return viewer, widget


def idle(widget) -> None:
    """Process events until the widget's jobs are done (and what they queued on the loop)."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    while widget.runner.busy or widget.runner.pending:
        app.processEvents()
        time.sleep(0.002)
    end = time.perf_counter() + 0.5  # timers the last frame started (a final refresh)
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def click_objects(widget, size: int, objects: int, shift: float = 0.0) -> None:
    """One positive click per object on frame 0 (``shift``: pixels to the right)."""
    widget.viewer.dims.set_current_step(0, 0)
    for k in range(objects):
        if k:
            widget.new_object()
        cy, cx = centre(k, 0, size, objects)
        widget.points_layer.add([[0, cy, cx + shift]])
        idle(widget)


def propagate(widget, frames: int) -> float:
    """Propagate frames 0..frames-1 forward from frame 0; seconds taken."""
    widget.viewer.dims.set_current_step(0, 0)
    widget.range_check.setChecked(True)
    widget.first_spin.setValue(0)
    widget.last_spin.setValue(frames - 1)
    t0 = time.perf_counter()
    widget.propagate()
    idle(widget)
    return time.perf_counter() - t0


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def undo_bytes(layer) -> int:
    """Bytes held by a Labels layer's undo and redo history (every array in every atom)."""

    def size(obj) -> int:
        if isinstance(obj, np.ndarray):
            return obj.nbytes
        if isinstance(obj, (bytes, bytearray)):
            return len(obj)
        if hasattr(obj, "nbytes") and not isinstance(obj, (tuple, list)):
            return int(obj.nbytes)
        if isinstance(obj, (tuple, list)):
            return sum(size(o) for o in obj)
        return 0

    items = list(getattr(layer, "_undo_history", ())) + list(getattr(layer, "_redo_history", ()))
    items.append(getattr(layer, "_staged_history", []))
    return sum(size(item) for item in items)
