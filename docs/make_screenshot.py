"""Re-make docs/screenshot.png: the real widget in a real viewer (run under Xvfb on a headless machine).

    xvfb-run -a python docs/make_screenshot.py

Cells sample, one click on frame 0, a propagation over frames 0..9, every panel the widget has.
Uses the random-weights test model (no weights download), so the masks themselves mean nothing.
"""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_sam2.model.testing import random_model

OUT = Path(__file__).with_name("screenshot.png")


def wait(widget, app) -> None:
    while widget.runner.busy or widget.runner.pending:
        app.processEvents()


def main() -> None:
    viewer = napari.Viewer()
    viewer.open_sample("napari-sam2", "cells_timelapse")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    app = QApplication.instance()
    w.use_model(random_model(seed=0), "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    w.points_layer.add([[0, 120, 88]])
    wait(w, app)
    w.range_check.setChecked(True)
    w.last_spin.setValue(9)
    w.propagate()
    wait(w, app)
    viewer.window.resize(1500, 1000)
    viewer.layers.selection.active = w.points_layer
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(path=str(OUT), canvas_only=False, flash=False)
    print(f"wrote {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
