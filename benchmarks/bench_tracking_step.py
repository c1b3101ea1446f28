"""Time of one tracked frame (memory attention, SAM heads, memory encoding, bookkeeping), image
features excluded, and the share of it spent in the SAM heads.

    python benchmarks/bench_tracking_step.py [--config sam2.1_test_micro] [--image-size 256]
        [--objects 1 5] [--frames 16] [--repeats 7] [--device cpu]

Tracking computes only the selected mask and pointer (``sam_heads(..., candidates=False)``); each
repeat also runs the earlier path, which made all three multimask candidates and their pointers
and then dropped them, so the two columns compare before and after on the same machine.

All frames are encoded once up front (into a feature cache large enough to hold them), so the
timed propagation does no image encoding. Each repeat propagates a fresh session from the same
prompts; the table gives the median over the repeats of ms per tracked frame, for the whole step
and for the ``sam_heads`` calls inside it. Random weights; the numbers are reported, not checked.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from napari_sam2 import VideoSession
from napari_sam2.model.testing import random_model


def _sync(model) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize()


def one_run(model, frames: np.ndarray, n_obj: int, heads_time: list[float]) -> float:
    """ms per tracked frame of one propagation over ``frames`` (features already cached)."""
    s = VideoSession(model, frames, feature_cache_bytes=2**40)
    for f in range(len(frames)):
        s.prefetch(f)
    for k in range(n_obj):
        r, c = 8 + (k * 13) % 48, 8 + (k * 29) % 48
        s.add_points(0, k + 1, [[r, c]], [1])
    next(iter(s.propagate(stop=0)))  # consolidates the prompt's memory outside the timed part
    heads_time.clear()
    _sync(model)
    t0 = time.perf_counter()
    n = sum(1 for _ in s.propagate(start=1))
    _sync(model)
    elapsed = time.perf_counter() - t0
    s.close()
    return 1e3 * elapsed / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="sam2.1_test_micro")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--objects", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    model = random_model(args.config, image_size=args.image_size, device=args.device)
    heads_time: list[float] = []
    original = model.sam_heads
    with_candidates = [False]

    def timed_heads(*a, **kw):
        if with_candidates[0]:
            kw["candidates"] = True  # the path before: all three candidates and their pointers
        _sync(model)
        t0 = time.perf_counter()
        out = original(*a, **kw)
        _sync(model)
        heads_time.append(time.perf_counter() - t0)
        return out

    model.sam_heads = timed_heads  # instance attribute: wraps every call the engine makes
    rng = np.random.default_rng(0)
    frames = (rng.random((args.frames, 64, 64)) * 255).astype(np.uint8)
    one_run(model, frames[:4], 1, heads_time)  # warm-up (allocator, kernels, cached encodings)
    print(f"{args.config} at {model.image_size} px on {model.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.frames} frames, median of {args.repeats} runs; "
          "'with candidates' forces the path that also makes the 3 candidates (before), "
          "runs alternate between the two\n")
    print("| objects | ms/frame with candidates | ms/frame selected only | SAM heads with (ms) "
          "| SAM heads selected only (ms) |")
    print("|---|---|---|---|---|")
    for n_obj in args.objects:
        step = {True: [], False: []}
        heads = {True: [], False: []}
        for _ in range(args.repeats):
            for mode in (True, False):
                with_candidates[0] = mode
                step[mode].append(one_run(model, frames, n_obj, heads_time))
                heads[mode].append(1e3 * sum(heads_time) / (args.frames - 1))
        med = {m: (statistics.median(step[m]), statistics.median(heads[m])) for m in (True, False)}
        print(f"| {n_obj} | {med[True][0]:.2f} | {med[False][0]:.2f} | {med[True][1]:.2f} "
              f"| {med[False][1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
