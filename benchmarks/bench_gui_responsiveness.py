"""How long the napari event loop is blocked while the widget propagates, in a real viewer.

    python benchmarks/bench_gui_responsiveness.py [--frames 6] [--objects 2] [--repeats 3]

Opens the cells sample in a napari viewer (on a virtual X display when none is set), docks the
SAM 2 widget with the random-weights test model, prompts ``--objects`` objects on frame 0 and
propagates frames 0..frames-1 forward, while a QTimer on the main thread ticks every 10 ms. The gap
between two ticks is how long the event loop could not process events (user input, redraws).
Prints the longest gap, the 99th percentile and the propagation speed as a Markdown table row.
The test suite only checks that the model never runs on the main thread and that the loop keeps
ticking mid-frame (``tests/_napari/test_widget_engine.py``); the times live here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _display():
    """A virtual X display when there is none (as pytest-xvfb does for the tests)."""
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return None
    from pyvirtualdisplay import Display

    display = Display(visible=False, size=(1600, 1000))
    display.start()
    return display


class Ticks:
    """Gaps between the ticks of a 10 ms QTimer on the main thread."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self):
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()


def run_once(viewer, widget, frames: int, objects: int) -> tuple[list[float], float]:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()

    def idle():
        while widget.runner.busy or widget.runner.pending:
            app.processEvents()
            time.sleep(0.002)

    viewer.dims.set_current_step(0, 0)
    for k in range(objects):
        if k:
            widget.new_object()
        widget.points_layer.add([[0, 40 + 50 * k, 60 + 40 * k]])
        idle()
    widget.range_check.setChecked(True)
    widget.first_spin.setValue(0)
    widget.last_spin.setValue(frames - 1)
    ticks = Ticks()
    ticks.start()
    t0 = time.perf_counter()
    widget.propagate()
    idle()
    elapsed = time.perf_counter() - t0
    ticks.stop()
    return ticks.gaps, frames / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    display = _display()
    try:
        import napari
        import torch

        from napari_sam2.model.testing import random_model

        viewer = napari.Viewer(show=True)
        viewer.open_sample("napari-sam2", "cells_timelapse")
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
        widget.reset_choices()
        widget.use_model(random_model(seed=0), "random test model")
        widget.follow_check.setChecked(False)
        print(f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
              f"load average before {os.getloadavg()[0]:.2f}; test model (256 px), cells sample "
              f"256 x 256, {args.objects} objects, frames 0..{args.frames - 1}\n")
        print("| run | ticks | longest gap (ms) | 99th percentile (ms) | median (ms) | frames/s |")
        print("|---|---|---|---|---|---|")
        for run in range(args.repeats):
            for layer in (widget.points_layer, widget.boxes_layer):
                layer.data = []
            gaps, fps = run_once(viewer, widget, args.frames, args.objects)
            gaps_ms = sorted(1000 * g for g in gaps)
            p99 = gaps_ms[min(len(gaps_ms) - 1, int(0.99 * len(gaps_ms)))]
            print(f"| {run + 1} | {len(gaps_ms)} | {gaps_ms[-1]:.0f} | {p99:.0f} | "
                  f"{statistics.median(gaps_ms):.0f} | {fps:.2f} |", flush=True)
        viewer.close()
    finally:
        if display is not None:
            display.stop()


if __name__ == "__main__":
    main()
