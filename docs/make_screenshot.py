"""Re-make docs/screenshot.png: the real widget in a real viewer (run under Xvfb on a headless machine).

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/make_screenshot.py

Cells sample, "Segment everything" on frame 0, the object panel scrolled into view. No weights are
downloaded: the model is the random-weights test model, and a stand-in segmenter (Otsu threshold, one
object per connected part) replaces the mask generator, so that the frame shown has one object per cell
(mask prompts come back as given). Propagating with random weights would draw meaningless masks.
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication, QScrollArea

from napari_sam2.model.testing import random_model

OUT = Path(__file__).with_name("screenshot.png")


def wait(widget, app) -> None:
    while widget.runner.busy or widget.runner.pending:
        app.processEvents()


class OtsuCells:
    """Stand-in for the mask generator: each bright connected part of the frame, largest first."""

    def generate(self, image):
        from scipy import ndimage
        from skimage.filters import threshold_otsu

        grey = np.asarray(image, np.float32).mean(-1)
        lab, n = ndimage.label(grey > threshold_otsu(grey))
        parts = [lab == i for i in range(1, n + 1)]
        parts = sorted((p for p in parts if p.sum() >= 30), key=lambda p: -int(p.sum()))
        return [{"segmentation": p, "area": int(p.sum()), "predicted_iou": 0.9, "stability_score": 0.95}
                for p in parts]


def main() -> None:
    viewer = napari.Viewer()
    viewer.open_sample("napari-sam2", "cells_timelapse")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    app = QApplication.instance()
    w.use_model(random_model(seed=0), "random test model")
    w.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 0)
    w.controller.mask_source_factory = lambda model, settings: OtsuCells()
    w.everything.segment()
    wait(w, app)
    w.everything.objects.refresh()
    viewer.window.resize(1900, 1100)
    viewer.layers.selection.active = w.points_layer
    for _ in range(20):
        app.processEvents()
    parent = w.everything.objects.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:  # the dock scrolls: show the object panel
        parent.ensureWidgetVisible(w.everything.objects, 0, 0)
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(path=str(OUT), canvas_only=False, flash=False)
    print(f"wrote {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
