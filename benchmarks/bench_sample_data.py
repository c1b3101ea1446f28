"""Time to generate the synthetic sample clips (File > Open Sample), default size and larger.

    python benchmarks/bench_sample_data.py [--repeats 5]

Each generator is called once to warm up imports and caches, then ``--repeats`` times; prints the
median and the worst time as a Markdown table. No napari or Qt is involved (pure numpy / scipy).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from napari_sam2._napari.synthetic import make_cells_timelapse, make_ultrasound_clip

CASES = [
    ("cells_timelapse", make_cells_timelapse, {}),  # the sample: 40 x 256 x 256 uint16
    ("ultrasound_clip", make_ultrasound_clip, {}),  # the sample: 48 x 256 x 256 uint8
    ("cells_timelapse", make_cells_timelapse, {"n_frames": 100, "size": 512}),
    ("ultrasound_clip", make_ultrasound_clip, {"n_frames": 100, "size": 512}),
]


def time_generator(generator, kwargs: dict, repeats: int) -> tuple[float, float, tuple[int, ...]]:
    generator(n_frames=4, size=64)  # warm-up
    times = []
    shape: tuple[int, ...] = ()
    for _ in range(repeats):
        t0 = time.perf_counter()
        clip = generator(**kwargs)
        times.append(time.perf_counter() - t0)
        shape = clip.image.shape
    return statistics.median(times), max(times), shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| clip | shape | median (s) | worst (s) |")
    print("|---|---|---|---|")
    for name, generator, kwargs in CASES:
        median, worst, shape = time_generator(generator, kwargs, args.repeats)
        print(f"| {name} | {' x '.join(map(str, shape))} | {median:.2f} | {worst:.2f} |", flush=True)


if __name__ == "__main__":
    main()
