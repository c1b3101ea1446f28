"""Segmentation quality of the demo model on held-out synthetic sequences (issue 15).

    python benchmarks/bench_demo_quality.py [--model napari-sam2-demo] [--clips 6] [--frames 40]

Held out: the training never saw these seeds nor these settings. ``cells`` and ``ultrasound`` are
drawn by :mod:`napari_sam2.train.synthetic` with ``HELD_OUT_SCENES`` (more, smaller, dimmer and
faster cells, more noise and blur, more divisions; larger cavity pulsation) from seeds 5000+ and
6000+; ``sample cells`` / ``sample ultrasound`` are the plugin's scripted sample data (another
generator altogether). Protocol (:func:`napari_sam2.train.quality.track_quality`): one click per
object on frame 0, forward propagation over all frames, mean J per object and frame; then one
correction click at each object's first drift (J < 0.5) and propagation again.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_sam2._napari.synthetic import make_cells_timelapse, make_ultrasound_clip
from napari_sam2.model.loading import load_model
from napari_sam2.train.quality import track_quality
from napari_sam2.train.synthetic import HELD_OUT_SCENES, random_cells_clip, random_ultrasound_clip


def held_out(kind: str, clips: int, frames: int):
    """(image, labels, divisions) of the held-out clips of one kind."""
    if kind == "cells":
        for k in range(clips):
            v = random_cells_clip(5000 + k, n_frames=frames, settings=HELD_OUT_SCENES)
            yield v.image, v.labels, v.events["divides"]
    elif kind == "ultrasound":
        for k in range(clips):
            v = random_ultrasound_clip(6000 + k, n_frames=frames, settings=HELD_OUT_SCENES)
            yield v.image, v.labels, []
    elif kind == "sample cells":
        v = make_cells_timelapse(n_frames=frames, seed=0)
        d = v.events["divides"]
        yield v.image, v.labels, [(d["parent"], *d["daughters"], d["frame"])]
    else:
        v = make_ultrasound_clip(n_frames=frames, seed=0)
        yield v.image, v.labels, []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="napari-sam2-demo")
    ap.add_argument("--clips", type=int, default=6, help="random clips per kind")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    print(f"model {args.model}, {args.frames} frames per clip, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'set':<18} {'clips':>5} {'objects':>7} {'J':>6} {'J corr.':>7} {'corrected':>9} {'s/frame':>7}")
    for kind in ("cells", "ultrasound", "sample cells", "sample ultrasound"):
        js, jcs, n_obj, n_fix, n_clips, seconds, n_frames = [], [], 0, 0, 0, 0.0, 0
        for image, labels, divisions in held_out(kind, args.clips, args.frames):
            t0 = time.perf_counter()
            q = track_quality(model, image, labels, divisions, correct=True)
            seconds += time.perf_counter() - t0
            n_frames += 2 * labels.shape[0]  # two passes
            js.append(q.j.ravel())
            jcs.append(q.j_corrected.ravel())
            n_obj += len(q.obj_ids)
            n_fix += len(q.corrections)
            n_clips += 1
        j, jc = float(np.concatenate(js).mean()), float(np.concatenate(jcs).mean())
        print(f"{kind:<18} {n_clips:>5} {n_obj:>7} {j:>6.3f} {jc:>7.3f} {n_fix:>9} {seconds / n_frames:>7.3f}",
              flush=True)


if __name__ == "__main__":
    main()
