"""Image-encoder time per frame for every SAM 2 size, fp32 and bf16, on the available device.

    python benchmarks/bench_image_encoder.py [--sizes tiny small ...] [--repeats 3] [--device auto]

Weights are random (speed does not depend on them). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from napari_sam2.model.configs import CONFIGS
from napari_sam2.model.device import resolve_device
from napari_sam2.model.sam2 import Sam2Model


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_encoder(size: str, dev: torch.device, dtype: torch.dtype | None, repeats: int, image_size: int) -> float:
    cfg = CONFIGS[f"sam2.1_hiera_{size}"].with_image_size(image_size)
    model = Sam2Model(cfg).eval().requires_grad_(False).to(dev)
    model.autocast_dtype = dtype
    x = torch.randn(1, 3, image_size, image_size, device=dev)
    times = []
    with torch.inference_mode(), model.autocast():
        model.encode_image(x)  # warm-up
        sync(dev)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.encode_image(x)
            sync(dev)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small", "base_plus", "large"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    args = ap.parse_args()
    dev = resolve_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"input {args.image_size}x{args.image_size}\n")
    print("| size | " + " | ".join(f"{d} ms/frame" for d in args.dtypes) + " |")
    print("|---|" + "---|" * len(args.dtypes))
    for size in args.sizes:
        cells = []
        for d in args.dtypes:
            dtype = torch.bfloat16 if d == "bf16" else None
            cells.append(f"{1000 * time_encoder(size, dev, dtype, args.repeats, args.image_size):.0f}")
        print(f"| {size} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
