"""Cost of the labels clean-up (docs/cleanup.md), and of the flicker filter's memory over long stacks.

    python benchmarks/bench_cleanup.py [--size 1024] [--objects 200] [--frames 2000]

Per-frame steps: milliseconds per (size x size) uint16 plane holding ``--objects`` discs with
pinholes and specks, for each step alone and all together (median of 5 runs). Flickers: peak
Python heap (tracemalloc) while ``--frames`` 256 x 256 planes stream through ``FlickerWriter``
into a writer that drops them. It should not grow with the number of frames.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from napari_sam2.engine.cleanup import Cleanup
from napari_sam2.engine.flicker import FlickerWriter


def plane_with_objects(size: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    plane = np.zeros((size, size), np.uint16)
    yy, xx = np.mgrid[:size, :size]
    r = max(4, int(size / np.sqrt(n) / 3))
    for i in range(1, n + 1):
        cy, cx = rng.integers(r, size - r, 2)
        box = (slice(cy - r, cy + r + 1), slice(cx - r, cx + r + 1))
        disc = (yy[box] - cy) ** 2 + (xx[box] - cx) ** 2 <= r * r
        plane[box][disc & (plane[box] == 0)] = i
    plane[(rng.random(plane.shape) < 0.02) & (plane > 0)] = 0  # pinholes
    specks = rng.integers(0, size, (n, 2))
    plane[specks[:, 0], specks[:, 1]] = rng.integers(1, n + 1, n)
    return plane


def time_steps(size: int, n: int) -> None:
    plane = plane_with_objects(size, n)
    steps = {
        "fill_holes=20": Cleanup(fill_holes=20),
        "min_island=10": Cleanup(min_island=10),
        "keep_largest": Cleanup(keep_largest=True),
        "open r=2": Cleanup(open_radius=2),
        "close r=2": Cleanup(close_radius=2),
        "all of them": Cleanup(fill_holes=20, min_island=10, keep_largest=True, open_radius=2, close_radius=2),
    }
    print(f"per-frame clean-up of a {size} x {size} plane with {len(np.unique(plane)) - 1} objects:")
    for name, cleanup in steps.items():
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            cleanup.apply(plane)
            runs.append(time.perf_counter() - start)
        print(f"  {name:<14} {1000 * float(np.median(runs)):8.1f} ms")


class _Drop:
    def __init__(self, shape):
        self.shape, self.dtype, self.n_pages = shape, np.dtype(np.uint16), shape[0]

    def write(self, page, labels):
        pass

    def close(self):
        pass


def flicker_memory(frames: int) -> None:
    rng = np.random.default_rng(1)
    base = plane_with_objects(256, 50)
    print(f"flicker filter over {frames} frames of 256 x 256 (peak Python heap, MiB):")
    for n in (frames // 10, frames):
        writer = FlickerWriter(_Drop((n, 256, 256)), (n,))
        tracemalloc.start()
        for t in range(n):
            plane = base.copy()
            plane[plane == rng.integers(1, 51)] = 0  # one object missing: some flickers
            writer.write(t, plane)
        writer.close()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  {n:>6} frames: {peak / 2**20:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    time_steps(args.size, args.objects)
    flicker_memory(args.frames)


if __name__ == "__main__":
    main()
