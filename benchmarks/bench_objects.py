"""Frames per second for many objects: batched (default) vs one object at a time, and memory per object.

    python benchmarks/bench_objects.py [--objects 1 5 20] [--frames 20] [--config sam2.1_test_micro]
        [--image-size 256] [--device auto]

One-at-a-time mimics the official predictor's per-object loop by forcing every object
into its own batch. Memory per object: the session's device state plus its host history after
the propagation, divided by the number of objects. Random weights.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_sam2 import VideoSession
from napari_sam2.engine import clip as clip_module
from napari_sam2.model.testing import random_model


def run(model, frames, n_obj: int, batched: bool) -> tuple[float, float]:
    session = VideoSession(model, frames)
    for k in range(n_obj):
        r, c = 8 + (k * 13) % 48, 8 + (k * 29) % 48
        session.add_points(0, k + 1, [[r, c]], [1])
    original = clip_module.Clip._track_group

    def single(self, feats, group, frame, reverse):
        for tr in group:
            original(self, feats, [tr], frame, reverse)

    if not batched:
        clip_module.Clip._track_group = single
    try:
        t0 = time.perf_counter()
        n = sum(1 for _ in session.propagate())
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        fps = n / (time.perf_counter() - t0)
        held = session.state_bytes + sum(session.history_bytes.values())
        return fps, held / n_obj
    finally:
        clip_module.Clip._track_group = original
        session.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--objects", nargs="+", type=int, default=[1, 5, 20])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--config", default="sam2.1_test_micro")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    model = random_model(args.config, image_size=args.image_size, device=args.device)
    rng = np.random.default_rng(0)
    frames = (rng.random((args.frames, 64, 64)) * 255).astype(np.uint8)
    run(model, frames[:3], 2, True)  # warm-up (allocator, kernels)
    print(f"{args.config} at {model.image_size} px on {model.device}, {args.frames} frames\n")
    print("| objects | batched frames/s | one-by-one frames/s | speed-up | KiB per object |")
    print("|---|---|---|---|---|")
    for n in args.objects:
        b, per_obj = run(model, frames, n, True)
        s, _ = run(model, frames, n, False)
        print(f"| {n} | {b:.2f} | {s:.2f} | {b / s:.2f}x | {per_obj / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    main()
