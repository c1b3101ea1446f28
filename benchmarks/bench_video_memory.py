"""Peak host memory (and GPU memory) of a propagation for growing stack lengths.

    python benchmarks/bench_video_memory.py [--frames 100 1000 5000] [--objects 1] [--history-ram-mib 8]

Each length runs in its own process over a memory-mapped uint8 stack on disk, with the
miniature random-weights test model (256 px) so that thousands of frames fit in minutes
on a CPU. It reports peak RSS, the per-object state the session holds on the device at the
end, the history of tracked frames held off the device (RAM under ``--history-ram-mib``, the
rest in the spill file), and what the device state would be if nothing left the device
(measured on the first 100 frames and extrapolated linearly, as the official predictor keeps
every frame on the device).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def child(n_frames: int, n_objects: int, prune: bool, path: str, device: str, history_ram: int) -> dict:
    import torch

    from napari_sam2 import VideoSession
    from napari_sam2.engine.memory_bank import ObjectTrack
    from napari_sam2.model.testing import random_model

    torch.set_num_threads(2)
    if not prune:
        ObjectTrack.prune = lambda self, position, max_cond: None
    frames = np.load(path, mmap_mode="r")[:n_frames]
    model = random_model(device=device)
    session = VideoSession(model, frames, history_ram_bytes=history_ram)
    for k in range(n_objects):
        session.add_points(0, k + 1, [[32, 8 + 48 * k / max(n_objects, 1)]], [1])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    n = sum(1 for _ in session.propagate())
    dt = time.perf_counter() - t0
    return {
        "frames": n,
        "seconds": dt,
        "fps": n / dt,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_mib": session.state_bytes / 2**20,
        "history_ram_mib": session.history_bytes["ram"] / 2**20,
        "history_disk_mib": session.history_bytes["disk"] / 2**20,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", nargs="+", type=int, default=[100, 1000, 5000])
    ap.add_argument("--objects", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--history-ram-mib", type=float, default=8.0)
    ap.add_argument("--child", nargs=4)
    args = ap.parse_args()
    if args.child:
        n, k, prune, path = args.child
        print(json.dumps(child(int(n), int(k), prune == "1", path, args.device,
                               int(args.history_ram_mib * 2**20))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stack.npy")
        rng = np.random.default_rng(0)
        top = max(args.frames)
        stack = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(top, 64, 64))
        yy, xx = np.mgrid[:64, :64]
        for t in range(top):
            cx = 20 + 10 * np.sin(t / 20)
            stack[t] = (40 + 150 * (((yy - 32) ** 2 + (xx - cx) ** 2) < 100) + rng.normal(0, 8, (64, 64))).clip(0, 255)
        stack.flush()
        del stack
        rows = []
        for n in args.frames:
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--history-ram-mib",
                                  str(args.history_ram_mib), "--child", str(n), str(args.objects), "1", path],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
        base = subprocess.run([sys.executable, __file__, "--device", args.device, "--child", "100",
                               str(args.objects), "0", path], capture_output=True, text=True, check=True)
        unpruned = json.loads(base.stdout.strip().splitlines()[-1])
    per_frame = unpruned["state_mib"] / 100
    print("\n| frames | peak RSS (MiB) | device state (MiB) | history RAM (MiB) | history spill file (MiB) "
          "| device state if all stayed (MiB) | frames/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frames']} | {r['peak_rss_mib']:.0f} | {r['state_mib']:.2f} | {r['history_ram_mib']:.1f} | "
              f"{r['history_disk_mib']:.1f} | {per_frame * r['frames']:.1f} | {r['fps']:.1f} |")
    spread = (max(r["peak_rss_mib"] for r in rows) - min(r["peak_rss_mib"] for r in rows)) / min(
        r["peak_rss_mib"] for r in rows)
    print(f"\npeak RSS spread across lengths: {100 * spread:.1f} %")


if __name__ == "__main__":
    main()
