"""Ours vs Meta's official SAM 2 video predictor, side by side in one run (issue 16).

    python benchmarks/bench_vs_official.py --official /path/to/sam2-checkout \
        --official-python /path/to/venv-with-hydra/bin/python --objects 1 8 --image-size 512 1024

Both run the same frames, the same clicks (one per object on frame 0, at the cells' centres, then on a
grid) and the same weights: ``--checkpoint`` (an official .pt), else deterministic rule weights of
``--model`` in the official key layout written once to a temporary .pt (random weights: masks mean
nothing, the work per frame is the same). Each (implementation, objects, size) runs in its own
process, alternating ours / official, so that peak RSS is per run and neither warms the other's caches.
The official predictor is imported from the checkout (never a dependency, never vendored; its venv
needs torch, hydra-core, omegaconf, iopath, pillow, tqdm) and gets the frames as a folder of lossless
images, which ``init_state`` loads up front, as it does; ours gets the same frames as a numpy array,
read lazily. Default settings of each (fp32 on CPU; ``--dtype bf16`` asks both for bf16 autocast).

Printed per run: per-frame time of the propagation (median and p90, the prompted frame left out),
frames/s, time to the first mask (state creation + the first click: the official loads and
normalises every frame there), peak RSS. Without ``--official`` only ours runs.
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
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CONFIG_FILES = {"sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
                "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
                "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
                "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml"}


# ----------------------------------------------------------------------------- shared inputs
def prepare(tmp: Path, args: argparse.Namespace) -> dict:
    """Frames (npy + image folder), clicks and the checkpoint, written once for every run."""
    from PIL import Image

    from napari_sam2._napari.synthetic import make_cells_timelapse
    from napari_sam2.engine.preprocess import robust_range, to_uint8

    video = make_cells_timelapse(n_frames=args.frames, size=args.frame_size, seed=11)
    rng = robust_range(video.image[:: max(args.frames // 8, 1)])
    frames = np.stack([np.repeat(to_uint8(f, rng)[..., None], 3, axis=2) for f in video.image])
    np.save(tmp / "frames.npy", frames)
    folder = tmp / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):  # lossless data under .jpg names (the official loader lists *.jpg)
        Image.fromarray(f).save(folder / f"{i:05d}.jpg", format="PNG")
    lab0 = video.labels[0]
    centres = [tuple(np.argwhere(lab0 == i).mean(0)) for i in np.unique(lab0) if i]
    grid = [(r, c) for r in np.linspace(20, args.frame_size - 20, 6) for c in np.linspace(20, args.frame_size - 20, 6)]
    clicks = [(float(r), float(c)) for r, c in centres + grid]  # (row, col)
    ckpt = args.checkpoint
    if ckpt is None:
        import torch

        from napari_sam2.model.configs import get_config
        from napari_sam2.model.testing import rule_state_dict

        ckpt = tmp / "weights.pt"
        torch.save({"model": rule_state_dict(get_config(args.model))}, ckpt)
    return {"frames_npy": str(tmp / "frames.npy"), "frames_dir": str(folder), "clicks": clicks,
            "checkpoint": str(ckpt)}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summary(times: list[float], first: float) -> dict:
    t = np.asarray(times[1:] if len(times) > 1 else times)  # the prompted frame left out
    return {"median_s": float(np.median(t)), "p90_s": float(np.percentile(t, 90)), "fps": float(1.0 / np.median(t)),
            "first_mask_s": first, "frames": len(times), "peak_rss_mib": peak_rss_mib()}


# ----------------------------------------------------------------------------- the two workers
def run_ours(spec: dict, n_obj: int, size: int, dtype: str, threads: int) -> dict:
    import torch

    from napari_sam2.engine.video_session import VideoSession
    from napari_sam2.model.loading import load_model

    torch.set_num_threads(threads)
    model = load_model(spec["checkpoint"], device="cpu", image_size=size,
                       dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    frames = np.load(spec["frames_npy"], mmap_mode="r")
    t0 = time.perf_counter()
    session = VideoSession(model, frames, rgb=True)
    first = None
    for k, (r, c) in enumerate(spec["clicks"][:n_obj]):
        session.add_points(0, k + 1, [[r, c]], [1])
        first = first if first is not None else time.perf_counter() - t0
    times, last = [], time.perf_counter()
    for _result in session.propagate("forward"):
        now = time.perf_counter()
        times.append(now - last)
        last = now
    session.close()
    return summary(times, first)


def run_official(spec: dict, n_obj: int, size: int, dtype: str, threads: int, official: str, model: str) -> dict:
    import torch

    sys.path.insert(0, official)
    from sam2.build_sam import build_sam2_video_predictor

    torch.set_num_threads(threads)
    predictor = build_sam2_video_predictor(CONFIG_FILES[model], ckpt_path=None, device="cpu",
                                           hydra_overrides_extra=[f"++model.image_size={size}"])
    state_dict = torch.load(spec["checkpoint"], map_location="cpu", weights_only=True)["model"]
    predictor.load_state_dict(state_dict, strict=True)
    predictor = predictor.to(torch.float32).eval()
    auto = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.inference_mode(), auto:
        t0 = time.perf_counter()
        state = predictor.init_state(spec["frames_dir"])
        first = None
        for k, (r, c) in enumerate(spec["clicks"][:n_obj]):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1,
                                            points=np.array([[c, r]], np.float32), labels=np.array([1], np.int32))
            first = first if first is not None else time.perf_counter() - t0
        times, last = [], time.perf_counter()
        for _f, _ids, _masks in predictor.propagate_in_video(state):
            now = time.perf_counter()
            times.append(now - last)
            last = now
    return summary(times, first)


# ----------------------------------------------------------------------------- driver
def worker(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.spec).read_text())
    if args.worker == "ours":
        out = run_ours(spec, args.n_obj, args.size, args.dtype, args.threads)
    else:
        out = run_official(spec, args.n_obj, args.size, args.dtype, args.threads, args.official, args.model)
    print("RESULT " + json.dumps(out), flush=True)


def launch(impl: str, python: str, spec_path: Path, n_obj: int, size: int, args: argparse.Namespace) -> dict:
    cmd = [python, str(HERE), "--worker", impl, "--spec", str(spec_path), "--n-obj", str(n_obj), "--size", str(size),
           "--dtype", args.dtype, "--threads", str(args.threads), "--model", args.model]
    if impl == "official":
        cmd += ["--official", args.official]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{impl} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", help="path of a checkout of facebookresearch/sam2 (omit: ours only)")
    ap.add_argument("--official-python", default=sys.executable, help="python of a venv that can import it")
    ap.add_argument("--model", default="sam2.1_hiera_tiny", choices=sorted(CONFIG_FILES))
    ap.add_argument("--checkpoint", type=Path, default=None, help="official .pt (default: rule weights)")
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--image-size", type=int, nargs="+", default=[512])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--frame-size", type=int, default=512)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results here")
    # worker mode (internal)
    ap.add_argument("--worker", choices=("ours", "official"), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--n-obj", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    impls = ["ours"] + (["official"] if args.official else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = prepare(Path(tmp), args)
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        print(f"{args.model}, {args.frames} frames of {args.frame_size} px, {args.dtype}, {args.threads} threads, "
              f"weights {'given' if args.checkpoint else 'rule (random)'}")
        print(f"{'impl':9} {'objs':>4} {'size':>5} {'median s':>9} {'p90 s':>7} {'fps':>6} {'first s':>8} "
              f"{'RSS MiB':>8}")
        for size in args.image_size:
            for n_obj in args.objects:
                for rep in range(args.repeats):
                    for impl in impls:  # alternating
                        python = args.official_python if impl == "official" else sys.executable
                        r = launch(impl, python, spec_path, n_obj, size, args)
                        r.update(impl=impl, objects=n_obj, image_size=size, repeat=rep)
                        rows.append(r)
                        print(f"{impl:9} {n_obj:4d} {size:5d} {r['median_s']:9.3f} {r['p90_s']:7.3f} {r['fps']:6.2f} "
                              f"{r['first_mask_s']:8.2f} {r['peak_rss_mib']:8.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
