"""Live tracking memory: RSS over a long FrameStream whose producer runs far ahead (drop="none").

    nice python benchmarks/bench_live_memory.py [--frames 10000] [--size 64] [--image-size 128]
                                                [--every 500] [--max-bytes 1048576] [--history-ram-bytes 2097152]

One object clicked on frame 0 of a ``--size`` px moving-disc clip; a producer thread appends the
``--frames`` frames as fast as it can into ``FrameStream(max_bytes=...)`` (so almost all of them queue,
and spill to the stream's disk file), while ``propagate("forward", follow=True)`` tracks every one of
them. The session runs with ``history_ram_bytes`` 2 MiB (full after ~170 frames at 128 px, so the
samples see the steady state; the exact history then spills to its own file). RSS is sampled every
``--every`` tracked frames; the drift is (last - first) / first and the spread (max - min) / first over
the samples. Prints one JSON object.

Model: the random-weights test config (``TEST_CONFIG``) at ``--image-size`` px. 128 is below the
256 px that ``load_model`` accepts; it is used here only so that 10,000 frames fit in minutes (about 45 ms
a frame on 2 idle CPU cores; the memory structure per frame is the same; ``--image-size 256`` works too).
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


def disc(t: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cx = size // 4 + (t % (size // 2))
    return (40 + 170 * (((yy - size // 2) ** 2 + (xx - cx) ** 2) < (size // 8) ** 2)).astype(np.uint8)


def model_at(image_size: int):
    import torch

    from napari_sam2.model.configs import TEST_CONFIG
    from napari_sam2.model.loading import build_model, prepare
    from napari_sam2.model.testing import rule_state_dict

    cfg = TEST_CONFIG.with_image_size(image_size)  # no size check: see the module docstring
    return prepare(build_model(cfg, rule_state_dict(TEST_CONFIG), None), "cpu", torch.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--max-bytes", type=int, default=2**20)
    ap.add_argument("--history-ram-bytes", type=int, default=2 * 2**20)
    args = ap.parse_args()
    import torch

    from napari_sam2.engine.stream import FrameStream
    from napari_sam2.engine.video_session import VideoSession

    torch.set_grad_enabled(False)
    model = model_at(args.image_size)
    stream = FrameStream((args.size, args.size), np.uint8, max_bytes=args.max_bytes)
    stream.append(disc(0, args.size))

    def produce() -> None:
        for t in range(1, args.frames):
            stream.append(disc(t, args.size))
        stream.close()

    samples: list[dict] = []
    start = time.perf_counter()
    with VideoSession(model, stream, history_ram_bytes=args.history_ram_bytes) as session:
        session.add_points(0, 1, np.array([[args.size / 2, args.size / 4]]), [1])
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        for i, result in enumerate(session.propagate("forward", follow=True), 1):
            if i % args.every == 0:
                samples.append({"frame": i, "rss_mib": round(rss_mib(), 1), "behind": len(stream) - i,
                                "stream_ram_mib": round(stream.ram_bytes / 2**20, 2),
                                "stream_disk_mib": round(stream.disk_bytes / 2**20, 1),
                                "history_mib": {k: round(v / 2**20, 1) for k, v in session.history_bytes.items()}})
        producer.join()
        n = i
    rss = [s["rss_mib"] for s in samples]
    out = {"frames": n, "frame_px": args.size, "image_size": args.image_size, "max_bytes": args.max_bytes,
           "history_ram_bytes": args.history_ram_bytes,
           "seconds": round(time.perf_counter() - start, 1), "rss_first_mib": rss[0], "rss_last_mib": rss[-1],
           "rss_max_mib": max(rss), "drift_pct": round(100 * (rss[-1] - rss[0]) / rss[0], 2),
           "spread_pct": round(100 * (max(rss) - min(rss)) / rss[0], 2), "samples": samples}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
