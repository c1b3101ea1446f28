"""Review model (issue 17.6): time of one frame update with 200 objects over 5,000 frames, of a
threshold change (re-check of every finished frame), of next_to_review, and the memory held.

    python benchmarks/bench_review.py
"""

from __future__ import annotations

import time

import numpy as np

from napari_sam2._napari.review import ReviewModel
from napari_sam2.engine.results import FrameResult

N_OBJ, N_FRAMES = 200, 5000


def main() -> None:
    rng = np.random.default_rng(0)
    ids = tuple(range(1, N_OBJ + 1))
    model, times = ReviewModel(0.5), []
    for f in range(N_FRAMES):
        scores = rng.random(N_OBJ).astype(np.float32)
        r = FrameResult(frame=f, obj_ids=ids, masks=np.zeros((N_OBJ, 1, 1), bool), scores=scores,
                        present=scores > 0.05, iou=scores, object_score_logits=scores)
        t = time.perf_counter()
        model.update(r)
        model.take_changes()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    model.threshold = 0.3
    thr_s = time.perf_counter() - t
    t = time.perf_counter()
    for k in range(100):
        model.next_to_review((k * 37 % N_FRAMES,))
    nxt = (time.perf_counter() - t) / 100
    ms = np.asarray(times) * 1e3
    print(f"{N_OBJ} objects x {N_FRAMES} frames: update per frame median {np.median(ms):.2f} ms, "
          f"p99 {np.percentile(ms, 99):.2f} ms, first 500 {np.median(ms[:500]):.2f} ms, last 500 "
          f"{np.median(ms[-500:]):.2f} ms; threshold change {thr_s * 1e3:.0f} ms; next_to_review "
          f"{nxt * 1e3:.2f} ms; arrays {model.nbytes() / 2**20:.1f} MiB "
          f"({model.nbytes() / (N_OBJ * N_FRAMES):.1f} B per object-frame); "
          f"{model.doubtful_count()} doubtful pairs in {len(model.all_ranges())} ranges")


if __name__ == "__main__":
    main()
