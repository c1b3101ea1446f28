"""RSS while tracking through a long 1080p video clip, read lazily (``read_video`` -> ``VideoSession``).

    python benchmarks/bench_video_tracking.py [--frames 600] [--size 1920x1080] [--model test-random]
        [--history-ram-mib 8]

Writes a GOP-250 H.264 clip (``bench_video_access.write_clip``) into a temporary folder, then,
in a fresh process, opens it with ``read_video``, clicks one object on frame 0 and propagates
forward through every frame with ``VideoSession`` (results are converted to labels and
dropped, as a streaming writer would), sampling RSS every 10% of the frames. Memory must stay
flat: frames are decoded on demand and only a few are cached; features and memories are
bounded by the session. The exact history of tracked frames (kept for corrections) fills its
RAM budget (``--history-ram-mib``, the session's ``history_ram_bytes``, 1 GiB by default) and
then spills to disk; a small budget shows what else grows. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_video_access import rss_mib, write_clip  # noqa: E402


def child(path: str, model_name: str, history_mib: float) -> dict:
    import numpy as np

    from napari_sam2.api import get_model
    from napari_sam2.engine.video_session import VideoSession
    from napari_sam2.io import read_stack

    model = get_model(model_name, "cpu")
    rss0 = rss_mib()
    t0 = time.perf_counter()
    with read_stack(path) as stack, VideoSession(model, stack.data, rgb=True,
                                                          history_ram_bytes=int(history_mib * 2**20)) as session:
        h, w = stack.shape[1:3]
        session.add_points(0, 1, np.array([[h / 2, w / 2]]), [1])
        n, trace = stack.shape[0], []
        for i, result in enumerate(session.propagate("forward"), 1):
            result.to_labels(np.uint8)
            if i % max(n // 10, 1) == 0:
                trace.append(round(rss_mib() - rss0, 1))
    wall = time.perf_counter() - t0
    return {"frames": n, "s_per_frame": round(wall / n, 3), "rss_growth_mib_every_10pct": trace}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    ap.add_argument("--model", default="test-random")
    ap.add_argument("--history-ram-mib", type=float, default=8.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.history_ram_mib)))
        return
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        write_clip(path, args.frames, width, height, 250)
        cmd = [sys.executable, __file__, "--child", path, "--model", args.model,
               "--history-ram-mib", str(args.history_ram_mib)]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(json.dumps({"size": args.size, "model": args.model, "history_ram_mib": args.history_ram_mib}
                     | result, indent=1))


if __name__ == "__main__":
    main()
