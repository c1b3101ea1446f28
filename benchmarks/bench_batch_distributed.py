"""Batch throughput of ``napari-sam2 segment`` in-process versus on 1 and 2 local Dask workers (not a test).

Writes N small stacks (T x 48 x 64 uint8 TIFFs, a click file each) and runs the CLI in a fresh
process with the random-weights test model, once per mode and stack count, every run into an
empty output folder. Reports the wall time of the whole command (imports, cluster start, model
loads included), stacks per minute, the mean time per stack inside ``run_job`` (from
``batch_summary.csv``), and the marginal wall time of one more stack, ``(wall(N) - wall(N/2)) /
(N/2)``: the difference of that between a mode and the in-process run is the per-stack cost of
the distributed path (scheduling, transfer of the job and its record), the intercept is the fixed
cost (cluster start, one model load per worker).

    nice -n 10 python benchmarks/bench_batch_distributed.py --repeat 2   # 8 stacks of 10 frames
    python benchmarks/bench_batch_distributed.py --stacks 16 --frames 20 --modes local 2
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def make_stacks(folder: Path, prompts: Path, n: int, frames: int) -> None:
    """A moving disc over noise per stack, and a two-object click file for each."""
    folder.mkdir(parents=True), prompts.mkdir(parents=True)
    yy, xx = np.mgrid[:48, :64]
    for i in range(n):
        rng = np.random.default_rng(i)
        stack = np.stack([np.clip(rng.normal(30, 8, (48, 64)) + 160 * (((yy - 24) ** 2 + (xx - 16 - 2 * t) ** 2) < 80),
                                  0, 255) for t in range(frames)]).astype(np.uint8)
        tifffile.imwrite(folder / f"s{i:02d}.tif", stack, imagej=True, metadata={"axes": "TYX"})
        (prompts / f"s{i:02d}_prompts.csv").write_text(
            "index,axis-0,axis-1,axis-2,obj_id,positive\n0,0,24,16,1,True\n1,0,6,50,2,True\n")


def run(mode: str, data: Path, prompts: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "napari_sam2.cli", "segment", str(data), "--prompts", str(prompts), "--out", str(out),
           "--model", "test-random", "--device", "cpu", "--quiet"]
    if mode != "local":
        cmd += ["--workers", mode]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{mode}: CLI failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    with open(out / "batch_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["status"] == "done" for r in rows), rows
    task = [float(r["seconds"]) for r in rows]
    return {"mode": mode, "stacks": len(rows), "wall_s": round(wall, 2), "stacks_per_min": round(60 * len(rows) / wall, 1),
            "task_mean_s": round(float(np.mean(task)), 2), "task_first_s": round(task[0], 2),
            "workers_used": len({r["worker"] for r in rows})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["local", "1", "2"], help="'local' (in-process) or a worker count")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point; the fastest is kept (a shared machine)")
    parser.add_argument("--json", type=Path, default=None, help="also append the rows to this JSON-lines file")
    args = parser.parse_args()
    half = args.stacks // 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in (half, args.stacks):
            make_stacks(root / f"data{n}", root / f"prompts{n}", n, args.frames)
        print(f"{args.stacks} stacks of {args.frames} x 48 x 64 (test model, CPU)", flush=True)
        print(f"{'mode':>6} {'stacks':>6} {'wall s':>7} {'stacks/min':>10} {'task mean s':>11} {'workers':>7} "
              f"{'marginal s/stack':>16} {'fixed s':>7}", flush=True)
        for mode in args.modes:
            small, row = (min((run(mode, root / f"data{n}", root / f"prompts{n}", root / f"out{mode}_{n}_{r}")
                               for r in range(args.repeat)), key=lambda x: x["wall_s"]) for n in (half, args.stacks))
            row["marginal_s_per_stack"] = round((row["wall_s"] - small["wall_s"]) / (args.stacks - half), 2)
            row["fixed_s"] = round(row["wall_s"] - args.stacks * row["marginal_s_per_stack"], 2)
            print(f"{row['mode']:>6} {row['stacks']:>6} {row['wall_s']:>7} {row['stacks_per_min']:>10} "
                  f"{row['task_mean_s']:>11} {row['workers_used']:>7} {row['marginal_s_per_stack']:>16} "
                  f"{row['fixed_s']:>7}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
