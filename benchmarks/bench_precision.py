"""bf16 autocast against fp32: mask IoU and time on every reference case (issue 16).

    python benchmarks/bench_precision.py [--cases S1 C4 ...]

Each case of the reference fixtures (``../shared/reference`` and ``tests/reference/cases``: official
rule weights, official prompts) is replayed twice by the fixture runner, once with the fp32 model the
parity tests use and once with bf16 autocast, and every mask of every step is compared: mean and
minimum IoU per case. CPU; the numbers are in docs/benchmarks.md. Speed is measured elsewhere
(``bench_vs_official.py --dtype bf16``, ``bench_image_encoder.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reference"))
from _reference_runner import Case, case_files, replay_masks  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", help="case names (default: every image and video case)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':<28} {'masks':>5} {'mean IoU':>8} {'min IoU':>8}")
    for path in case_files():
        meta = json.loads(path.read_text())
        if meta.get("op") == "amg_generate" or not meta.get("steps"):
            continue
        if args.cases and not any(path.stem.startswith(c) for c in args.cases):
            continue
        case = Case(path)
        ious = [iou(a, b) for a, b in zip(replay_masks(case, torch.float32), replay_masks(case, torch.bfloat16))]
        print(f"{path.stem:<28} {len(ious):>5} {np.mean(ious):>8.3f} {np.min(ious):>8.3f}", flush=True)


if __name__ == "__main__":
    main()
