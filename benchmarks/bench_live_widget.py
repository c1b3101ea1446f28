"""The widget's Live mode in a real viewer: main-thread cost per frame, latency and RSS over a long acquisition.

    xvfb-run -a nice python benchmarks/bench_live_widget.py [--frames 600] [--fps 10] [--size 128] [--every-frame]

A moving disc (uint8, ``--size`` px) is played into an Image layer from a QTimer at ``--fps`` (the layer's
data replaced by a longer array, as acquisition plugins do); the SAM 2 widget (random-weights test model,
256 px) follows it with Live on, a click on frame 0, Follow off. Measured: the main-thread time of each
growth (``LiveBinding._on_data`` and ``_poll``: stream, output labels) and of each result (``LiveRun._on_frame``: writing,
review list, status), the latency (arrival -> labels) and the RSS, sampled every 10 % of the frames after
the first 10 %, with what grows by design: the output labels' buffer (the result, as long as the stack)
and the session's exact history (``history_ram_bytes``, 1 GiB by default, then spilled). Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def clip(n: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size), np.uint8)
    for t in range(n):
        cx = size // 4 + (t % (size // 2))
        out[t] = 40 + 170 * (((yy - size // 2) ** 2 + (xx - cx) ** 2) < (size // 8) ** 2)
    return out


def timed(obj, name, sink):
    real = getattr(obj, name)

    def call(*a, **k):  # noqa: ANN002
        t0 = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            sink.append(time.perf_counter() - t0)

    setattr(obj, name, call)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--every-frame", action="store_true", help="drop='none' instead of skipping to the newest")
    args = ap.parse_args()

    import napari
    from napari._qt.qt_event_loop import get_qapp
    from qtpy.QtCore import QTimer

    from napari_sam2.model.testing import random_model

    app = get_qapp()
    data = clip(args.frames, args.size)
    viewer = napari.Viewer(show=False)
    layer = viewer.add_image(data[:1], name="acq")
    _dock, w = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2")
    w.use_model(random_model(seed=0), "random")
    w.follow_check.setChecked(False)
    w.live_skip_check.setChecked(not args.every_frame)
    w.live_check.setChecked(True)
    pulls, frames, latencies, rss = [], [], [], []
    from napari_sam2._napari.live_control import LiveRun

    timed(w.live, "_on_data", pulls)
    timed(w.live, "_poll", pulls)
    timed(LiveRun, "_on_frame", frames)  # before the job binds it
    w.points_layer.add([[0, args.size // 2, args.size // 4]])
    w.propagate()
    run = w.live.run
    real_add = run.stats.add
    run.stats.add = lambda r: (latencies.append(r.latency), real_add(r))
    state = {"n": 1}
    held: dict = {}
    step = max(args.frames // 10, 1)

    def tick() -> None:
        if state["n"] < args.frames:
            state["n"] += 1
            layer.data = data[: state["n"]]
            if state["n"] % step == 0 and state["n"] > step:
                rss.append(round(rss_mib(), 1))
        elif run.stats.last >= args.frames - 1:
            player.stop()
            buf = w.live.labels._buffer
            held["labels_buffer_mib"] = round(buf.nbytes / 2**20, 1) if buf is not None else 0.0
            held["session_history_mib"] = round(sum(w.session.history_bytes.values()) / 2**20, 1)
            w.live_check.setChecked(False)
            QTimer.singleShot(500, app.quit)

    player = QTimer()
    player.setInterval(int(1000 / args.fps))
    player.timeout.connect(tick)
    player.start()
    t0 = time.perf_counter()
    app.exec_()
    wall = time.perf_counter() - t0
    ms = lambda xs, q: round(1000 * float(np.percentile(xs, q)), 2) if xs else None  # noqa: E731
    out = {
        "frames": args.frames, "fps": args.fps, "size": args.size, "drop": "none" if args.every_frame else "oldest",
        "wall_s": round(wall, 1), "tracked": run.stats.tracked, "skipped": run.stats.skipped,
        "pull_ms_median_p99_max": [ms(pulls, 50), ms(pulls, 99), ms(pulls, 100)],
        "on_frame_ms_median_p99_max": [ms(frames, 50), ms(frames, 99), ms(frames, 100)],
        "on_frame_ms_first_last_10pct": [ms(frames[: len(frames) // 10], 50), ms(frames[-len(frames) // 10:], 50)],
        "latency_ms_median_p95": [ms(latencies, 50), ms(latencies, 95)],
        "rss_mib": rss, "rss_drift_pct": round(100 * (rss[-1] - rss[0]) / rss[0], 2) if len(rss) > 1 else None,
        "labels_shape": list(viewer.layers["acq SAM 2"].data.shape), **held,
    }
    viewer.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
