"""How long the napari event loop is blocked while the widget propagates, in a real viewer.

    python benchmarks/bench_gui_responsiveness.py [--frames 60] [--size 512] [--objects 2] [--follow both]

Opens a synthetic (frames, size, size) uint8 stack of drifting disks in a napari viewer (on a virtual
X display when none is set), docks the SAM 2 widget with the random-weights test model, clicks
``--objects`` objects on frame 0 and propagates frames 0..frames-1 forward, with Follow off and/or on,
while a QTimer on the main thread ticks every 10 ms. The gap between two ticks is how long the event
loop could not process events (user input, redraws); the sum of the gaps beyond 10 ms is the main
thread's busy time. Also counted: the time spent in the controller's per-frame callback and in the
widget's deferred refresh, the output layer's ``labels_update`` events and full refreshes, and the
viewer's moves to another frame. The test suite checks no times (``tests/_napari/test_refresh_throttle.py``
counts refreshes); the times live here.

    python benchmarks/bench_gui_responsiveness.py --feed 20 [--frames 60] [--size 512]

``--feed FPS`` leaves the model out: precomputed results (the disks' masks) reach the controller's
per-frame callback from a main-thread timer at FPS frames a second, as a GPU model would deliver them,
with the paint throttle on (4 paints a second) and off (every frame painted, as before), Follow off
and on: the main thread's share of a propagation on its own, whatever the CPU load of the model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import _widget_run as R


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


class Timed:
    """Wraps ``obj.name`` to add up the seconds spent in it (main thread)."""

    def __init__(self, obj, name: str):
        self.obj, self.name, self.seconds, self.calls = obj, name, 0.0, 0
        self.real = getattr(obj, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return self.real(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        setattr(obj, name, timed)


def run_once(viewer, widget, frames: int, follow: bool) -> dict:
    widget.follow_check.setChecked(follow)
    out = widget.guards.output_layer(False)
    counts = {"labels_update": 0, "refresh": 0, "moves": 0}
    out.events.labels_update.connect(lambda e: counts.__setitem__("labels_update", counts["labels_update"] + 1))
    refresh = Timed(out, "refresh")
    viewer.dims.events.current_step.connect(lambda e: counts.__setitem__("moves", counts["moves"] + 1))
    callbacks = [Timed(widget.controller, "_on_frame")]
    throttle = getattr(widget.controller, "refresher", None)
    if throttle is not None:  # its deferred paints (the others run inside _on_frame)
        callbacks.append(Timed(throttle, "_fire"))
    ticks = Ticks()
    ticks.start()
    secs = R.propagate(widget, frames)
    ticks.stop()
    gaps_ms = sorted(1000 * g for g in ticks.gaps)
    busy_ms = sum(max(0.0, g - 10.0) for g in gaps_ms)
    return {
        "follow": "on" if follow else "off",
        "callback_ms": 1000 * sum(c.seconds for c in callbacks) / frames,
        "busy_ms": busy_ms / frames,
        "longest": gaps_ms[-1],
        "p99": gaps_ms[min(len(gaps_ms) - 1, int(0.99 * len(gaps_ms)))],
        "median": statistics.median(gaps_ms),
        "fps": frames / secs,
        "labels_update": counts["labels_update"],
        "refresh": refresh.calls,
        "moves": counts["moves"],
    }


def feed_once(viewer, widget, results: list, fps: float, follow: bool, throttle: bool) -> dict:
    """Deliver ``results`` to the controller at ``fps`` from a main-thread timer, as a propagation."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    app, ctl = QApplication.instance(), widget.controller
    widget.follow_check.setChecked(follow)
    ctl.refresher.interval = 0.25 if throttle else 0.0
    viewer.dims.set_current_step(0, 0)
    out = ctl.output.get().layer
    counts = {"labels_update": 0, "moves": 0}
    out.events.labels_update.connect(lambda e: counts.__setitem__("labels_update", counts["labels_update"] + 1))
    viewer.dims.events.current_step.connect(lambda e: counts.__setitem__("moves", counts["moves"] + 1))
    refresh = Timed(out, "refresh")
    timed = [Timed(ctl, "_on_frame"), Timed(ctl.refresher, "_fire")]
    ctl.output.get().begin_group()
    queue = list(results)
    timer = QTimer()
    timer.setInterval(5)
    t0 = time.perf_counter()

    def deliver():  # every result due by now, as a worker's queued signals arrive after a stall
        due = int((time.perf_counter() - t0) * fps) + 1 - (len(results) - len(queue))
        for _ in range(max(0, min(due, len(queue)))):
            ctl._on_frame(queue.pop(0))

    timer.timeout.connect(deliver)
    ticks = Ticks()
    ticks.start()
    timer.start()
    while queue:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    ctl.refresher.finish()
    ctl.output.get().end_group()
    app.processEvents()
    secs = time.perf_counter() - t0
    ticks.stop()
    gaps_ms = sorted(1000 * g for g in ticks.gaps)
    n = len(results)
    return {"callback_ms": 1000 * sum(c.seconds for c in timed) / n, "longest": gaps_ms[-1],
            "p99": gaps_ms[min(len(gaps_ms) - 1, int(0.99 * len(gaps_ms)))], "fps": n / secs,
            "busy_ms": sum(max(0.0, g - 10.0) for g in gaps_ms) / n, "refresh": refresh.calls, **counts}


def feed(viewer, widget, frames: int, size: int, objects: int, fps: float) -> None:
    import numpy as np

    from napari_sam2.engine.results import FrameResult

    yy, xx = np.mgrid[:size, :size]
    results = []
    for t in range(frames):
        masks = np.stack([((yy - cy) ** 2 + (xx - cx) ** 2) < (size / 10) ** 2
                          for cy, cx in (R.centre(k, t, size, objects) for k in range(objects))])
        n = len(masks)
        ones = np.ones(n, np.float32)
        results.append(FrameResult(frame=t, obj_ids=tuple(range(1, n + 1)), masks=masks, scores=ones,
                                   present=np.ones(n, bool), iou=ones, object_score_logits=ones, index=(), key=(t,)))
    widget.state.own(range(1, objects + 1))
    print("| throttle | Follow | main-thread callbacks (ms/frame) | main thread busy (ms/frame) | longest gap (ms) "
          "| 99th percentile (ms) | labels_update events | full refreshes | frame moves | frames/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for throttle in (False, True):
        for follow in (False, True):
            widget.viewer.layers[widget.guards.output_layer(True).name].data[:] = 0
            r = feed_once(viewer, widget, results, fps, follow, throttle)
            print(f"| {'4/s' if throttle else 'off (every frame)'} | {'on' if follow else 'off'} | "
                  f"{r['callback_ms']:.1f} | {r['busy_ms']:.1f} | {r['longest']:.0f} | {r['p99']:.0f} | "
                  f"{r['labels_update']} | {r['refresh']} | {r['moves']} | {r['fps']:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--follow", choices=("on", "off", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--feed", type=float, default=0.0, help="feed precomputed results at this many frames/s")
    args = ap.parse_args()
    display = R.display()
    try:
        import torch

        viewer, widget = R.open_viewer(R.moving_disks(args.frames, args.size, args.objects))
        print(f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
              f"load average before {os.getloadavg()[0]:.2f}; test model (256 px), {args.frames} frames of "
              f"{args.size} x {args.size}, {args.objects} objects\n")
        if args.feed:
            feed(viewer, widget, args.frames, args.size, args.objects, args.feed)
            viewer.close()
            return
        print("| Follow | main-thread callbacks (ms/frame) | main thread busy (ms/frame) | longest gap (ms) "
              "| 99th percentile (ms) | median (ms) | labels_update events | full refreshes | frame moves "
              "| frames/s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        follows = {"on": [True], "off": [False], "both": [False, True]}[args.follow]
        for run in range(args.repeats):
            for follow in follows:
                widget.reset_session()
                for layer in (widget.points_layer, widget.boxes_layer):
                    layer.data = []
                R.idle(widget)
                R.click_objects(widget, args.size, args.objects, shift=2.0 * run + follow)
                r = run_once(viewer, widget, args.frames, follow)
                print(f"| {r['follow']} | {r['callback_ms']:.1f} | {r['busy_ms']:.1f} | {r['longest']:.0f} | "
                      f"{r['p99']:.0f} | {r['median']:.0f} | {r['labels_update']} | {r['refresh']} | "
                      f"{r['moves']} | {r['fps']:.2f} |", flush=True)
        viewer.close()
    finally:
        if display is not None:
            display.stop()


if __name__ == "__main__":
    main()
