"""Peak memory of ``napari-sam2 segment`` versus stack length (not a test).

For each frame count, writes a memory-mappable uint8 TIFF (T x 64 x 64, frames written one
by one), a points CSV, and runs the CLI with the random-weights test model in a fresh
process. Reports the exact peak RSS of the CLI process (``ru_maxrss`` measured by a small
wrapper process around it) and, from psutil sampling, its RSS half-way and at the end of
propagation: with bounded memory, peak RSS does not grow with the number of frames.

Modes: ``direct`` (prompt on frame 0, forward: frames stream straight into the TIFF) and
``spool`` (prompt on the middle frame, both directions: frames go through the temporary
on-disk spool first, the worst case).

    python benchmarks/bench_cli_memory.py                       # 100 and 2000 frames, both modes
    python benchmarks/bench_cli_memory.py --frames 100 --modes spool
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def make_stack(path: Path, n: int, size: int = 64) -> None:
    """A moving disc over noise, written frame by frame into a memory-mapped, uncompressed TIFF."""
    data = tifffile.memmap(path, shape=(n, size, size), dtype=np.uint8, imagej=True, metadata={"axes": "TYX"})
    yy, xx = np.mgrid[:size, :size]
    rng = np.random.default_rng(0)
    for t in range(n):
        cx = size / 2 + size / 4 * np.sin(t / 20)
        disc = ((yy - size / 2) ** 2 + (xx - cx) ** 2) < (size / 6) ** 2
        data[t] = np.clip(rng.normal(40, 10, (size, size)) + 150 * disc, 0, 255).astype(np.uint8)
    data.flush()
    del data


def run(n: int, mode: str, workdir: Path) -> dict:
    stack, prompts, out = workdir / f"stack{n}.tif", workdir / f"points{n}_{mode}.csv", workdir / f"out{n}_{mode}.tif"
    if not stack.exists():
        make_stack(stack, n)
    frame = 0 if mode == "direct" else n // 2
    prompts.write_text(f"index,axis-0,axis-1,axis-2,obj_id,positive\n0,{frame},32,32,1,True\n1,{frame},5,5,2,True\n")
    direction = "forward" if mode == "direct" else "both"
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "napari_sam2.cli", "segment", str(stack),
           "--prompts", str(prompts), "--out", str(out), "--model", "test-random", "--device", "cpu",
           "--direction", direction, "--overwrite", "--quiet", "--table", str(workdir / f"t{n}_{mode}.csv")]
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def poll() -> None:
        try:
            import psutil
        except ImportError:
            return
        wrapper = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in wrapper.children(recursive=True))
            except psutil.Error:
                rss = 0
            if rss:
                samples.append((time.perf_counter() - t0, rss))
            stop.wait(0.25)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    line = next((ln for ln in err.splitlines() if ln.startswith("MAXRSS_KB")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"CLI failed ({proc.returncode}): {err.strip()[-2000:]}")
    peak_mb = int(line.split()[1]) / 1024  # Linux: KiB
    # RSS once the model is loaded and frames are flowing: half-way vs. the last samples
    mid = [r for t, r in samples if t >= wall / 2]
    return {
        "frames": n,
        "mode": mode,
        "wall_s": round(wall, 1),
        "s_per_frame": round(wall / n, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "rss_half_mb": round(mid[0] / 2**20, 1) if mid else None,
        "rss_end_mb": round(samples[-1][1] / 2**20, 1) if samples else None,
        "out_mb": round(out.stat().st_size / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--modes", nargs="+", choices=("direct", "spool"), default=["direct", "spool"])
    parser.add_argument("--workdir", type=Path, default=None, help="where stacks go (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also append the rows to this JSON-lines file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        print(f"{'frames':>6} {'mode':>6} {'wall s':>8} {'s/frame':>8} {'peak RSS MB':>12} "
              f"{'RSS half MB':>12} {'RSS end MB':>11} {'out MB':>7}", flush=True)
        for n in args.frames:
            for mode in args.modes:
                row = run(n, mode, Path(tmp))
                print(f"{row['frames']:>6} {row['mode']:>6} {row['wall_s']:>8} {row['s_per_frame']:>8} "
                      f"{row['peak_rss_mb']:>12} {row['rss_half_mb']!s:>12} {row['rss_end_mb']!s:>11} "
                      f"{row['out_mb']:>7}", flush=True)
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
