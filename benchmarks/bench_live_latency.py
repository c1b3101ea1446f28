"""Live tracking on a FrameStream: append-to-result latency vs offline per-frame time, and RSS over a long stream.

    python benchmarks/bench_live_latency.py [--frames 200] [--sizes 256 512] [--rss-frames 2000]

For each model size (random-weights test config, ``random_model(image_size=...)``): one object clicked on
frame 0 of a moving-disc clip of ``--frames`` 128 x 128 frames, propagated forward offline (the whole clip
loaded at once) to get the per-frame time, then the same frames appended by a producer thread at that
rate while ``propagate("forward", follow=True)`` consumes them; the median append-to-result latency over
the offline median per-frame time is the ratio the issue bounds (<= 1.2). Then ``--rss-frames`` frames are
streamed with ``keep_last=32`` and an 8 MiB history RAM budget (at 1.2x the 256 px offline time per frame) and RSS is sampled every
10 %: it must stay flat. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import numpy as np


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def clip(n: int, size: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.stack([(40 + 170 * (((yy - 64) ** 2 + (xx - 30 - (t % 60)) ** 2) < 150)).astype(np.uint8)
                     for t in range(n)])


def live_run(model, frames, interval: float, keep_last=None, sample_every=None, **session_kwargs):
    """(latencies, RSS trace) of following ``frames`` appended by a producer thread every ``interval`` s."""
    from napari_sam2.engine.stream import FrameStream
    from napari_sam2.engine.video_session import VideoSession

    stream = FrameStream(frames.shape[1:], frames.dtype, keep_last=keep_last)
    stream.append(frames[0])

    def produce() -> None:
        for f in frames[1:]:
            time.sleep(interval)
            stream.append(f)
        stream.close()

    latencies, trace = [], []
    with VideoSession(model, stream, **session_kwargs) as session:
        session.add_points(0, 1, np.array([[64.0, 30.0]]), [1])
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        for i, result in enumerate(session.propagate("forward", follow=True), 1):
            if result.latency is not None:
                latencies.append(result.latency)
            if sample_every and i % sample_every == 0:
                trace.append(round(rss_mib(), 1))
        producer.join()
    return latencies, trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--rss-frames", type=int, default=2000)
    args = ap.parse_args()
    import torch

    from napari_sam2.engine.video_session import VideoSession
    from napari_sam2.model.testing import random_model

    torch.set_grad_enabled(False)
    frames = clip(args.frames)
    out: dict = {"frames": args.frames, "sizes": {}}
    for size in args.sizes:
        model = random_model(image_size=size, seed=0)
        with VideoSession(model, frames) as session:
            session.add_points(0, 1, np.array([[64.0, 30.0]]), [1])
            times, last = [], time.perf_counter()
            for _ in session.propagate("forward"):
                now = time.perf_counter()
                times.append(now - last)
                last = now
        offline = float(np.median(times[1:]))
        latencies, _ = live_run(model, frames, interval=offline)
        live = float(np.median(latencies))
        out["sizes"][size] = {"offline_median_ms": round(offline * 1e3, 1), "live_latency_median_ms":
                              round(live * 1e3, 1), "live_latency_p95_ms": round(float(np.percentile(latencies, 95)) * 1e3, 1),
                              "ratio": round(live / offline, 2)}
    if args.rss_frames:
        model = random_model(seed=0)
        long = clip(args.rss_frames)
        pace = 1.2 * out["sizes"].get(256, {}).get("offline_median_ms", 100.0) / 1e3  # a bit slower than the model:
        # keep_last drops what the engine has not reached when the producer runs far ahead (docs/engine.md)
        _, trace = live_run(model, long, interval=pace, keep_last=32, sample_every=max(args.rss_frames // 10, 1),
                            history_ram_bytes=8 * 2**20)  # as bench_video_memory: the exact history spills to disk
        out["rss_mib_every_10pct"] = trace
        out["rss_frames"] = args.rss_frames
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
