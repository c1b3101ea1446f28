"""Automatic mask generation ("segment everything") on CPU: our MaskGenerator vs the official one.

Model: sam2.1_hiera_tiny with the reference fixtures' rule weights (exactly the official
weights of ../shared/reference, no download), image = frame 0 of ``video_a.npz`` (1024 px,
resized when ``--image-size`` is smaller). Default grid 32x32, the official default
``points_per_batch=64``; thresholds default to the S3 fixture's (``--thresholds fixture``:
with random weights the official defaults keep nothing, so the upsampling, stability and
NMS stages would be skipped); ``--thresholds official`` uses 0.8 / 0.95 / 0.7, ``none`` keeps every candidate for NMS 0.7.

    python benchmarks/bench_mask_generator.py [--points-per-side 32] [--repeat 1]
    python benchmarks/bench_mask_generator.py --official /path/to/sam2-checkout

``--official`` imports the official ``sam2`` package from a local checkout (never a
dependency of this project). It needs what the official package needs to build a model
(hydra-core, omegaconf, iopath) on ``PYTHONPATH``; torchvision, which it imports for NMS
and its image transform, cannot be installed next to this torch, so a small stand-in
with torchvision's CPU semantics is placed in ``sys.modules`` here (README of the shared
reference fixtures, "torchvision stand-in"). Both generators then run on the same image in
the same process, in turn, and their outputs are compared (same count, masks matched at
IoU >= 0.99, scores within 1e-3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
REF = REPO.parent / "shared" / "reference"
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
FIXTURE = dict(pred_iou_thresh=0.5674, stability_score_thresh=0.2962, box_nms_thresh=1.0)
OFFICIAL = dict(pred_iou_thresh=0.8, stability_score_thresh=0.95, box_nms_thresh=0.7)
NONE = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.7)  # keep all, NMS only
THRESHOLDS = {"fixture": FIXTURE, "official": OFFICIAL, "none": NONE}


# ----------------------------------------------------------- torchvision stand-in
def _nms(boxes, scores, iou_threshold):
    """Greedy NMS, torchvision CPU semantics (stable descending sort, strict '>' suppression)."""
    from napari_sam2.engine._amg_filter import nms

    return nms(boxes, scores, iou_threshold)


def _batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    if boxes.numel() <= 4000:
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return _nms(boxes + offsets[:, None], scores, iou_threshold)
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for c in torch.unique(idxs):
        cur = torch.where(idxs == c)[0]
        keep_mask[cur[_nms(boxes[cur], scores[cur], iou_threshold)]] = True
    keep = torch.where(keep_mask)[0]
    return keep[scores[keep].sort(descending=True)[1]]


def _box_area(boxes):
    boxes = boxes if boxes.is_floating_point() or boxes.dtype == torch.int64 else boxes.int()
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def install_torchvision_standin() -> None:
    class ToTensor:
        def __call__(self, pic):
            a = torch.from_numpy(np.asarray(pic).copy())
            return a.permute(2, 0, 1).contiguous().to(torch.float32).div(255)

    class Normalize(torch.nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.mean, self.std = list(mean), list(std)

        def forward(self, x):
            m = torch.tensor(self.mean, dtype=x.dtype)[:, None, None]
            s = torch.tensor(self.std, dtype=x.dtype)[:, None, None]
            return (x - m) / s

    class Resize(torch.nn.Module):  # scripted by the official transforms: plain typed code
        def __init__(self, size):
            super().__init__()
            self.h = int(size if isinstance(size, int) else size[0])
            self.w = int(size if isinstance(size, int) else size[1])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-2] == self.h and x.shape[-1] == self.w:
                return x
            return F.interpolate(x[None], size=[self.h, self.w], mode="bilinear", align_corners=False,
                                 antialias=True)[0]

    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")
    ops = types.ModuleType("torchvision.ops")
    ob = types.ModuleType("torchvision.ops.boxes")
    tr.ToTensor, tr.Normalize, tr.Resize = ToTensor, Normalize, Resize
    ob.nms, ob.batched_nms, ob.box_area = _nms, _batched_nms, _box_area
    ops.boxes, ops.nms, ops.batched_nms, ops.box_area = ob, _nms, _batched_nms, _box_area
    tv.transforms, tv.ops = tr, ops
    for name, mod in (("torchvision", tv), ("torchvision.transforms", tr), ("torchvision.ops", ops),
                      ("torchvision.ops.boxes", ob)):
        sys.modules.setdefault(name, mod)


def official_generator_class(checkout: str):
    """The official generator class, imported from ``checkout`` (the folder holding ``sam2/``)."""
    install_torchvision_standin()
    sys.path.insert(0, checkout)
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    return SAM2AutomaticMaskGenerator


def official_model(checkout: str, image_size: int):
    """The official model (build_sam2 defaults) with the fixtures' rule weights."""
    official_generator_class(checkout)
    from sam2.build_sam import build_sam2

    from napari_sam2.model.testing import rule_tensor

    extra = [f"++model.image_size={image_size}"] if image_size != 1024 else []
    model = build_sam2(CONFIG, ckpt_path=None, device="cpu", hydra_overrides_extra=extra)
    state = {k: rule_tensor(k, tuple(v.shape)) for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------- comparison
def compare(ours: list[dict], official: list[dict]) -> dict:
    """README "How to compare": Hungarian matching on mask IoU, pairs at IoU >= 0.99."""
    from scipy.optimize import linear_sum_assignment

    if not ours or not official:
        return {"ours": len(ours), "official": len(official), "matched": 0, "max_score_diff": 0.0}
    a = torch.from_numpy(np.stack([o["segmentation"].ravel() for o in ours])).float()
    b = torch.from_numpy(np.stack([o["segmentation"].ravel() for o in official])).float()
    inter = (a @ b.T).numpy()
    union = a.sum(1).numpy()[:, None] + b.sum(1).numpy()[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    r, c = linear_sum_assignment(-iou)
    good = iou[r, c] >= 0.99
    diffs = [max(abs(ours[i]["predicted_iou"] - official[j]["predicted_iou"]),
                 abs(ours[i]["stability_score"] - official[j]["stability_score"])) for i, j in zip(r, c)]
    return {"ours": len(ours), "official": len(official), "matched": int(good.sum()),
            "min_matched_iou": float(iou[r, c].min()), "max_score_diff": float(max(diffs))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--points-per-batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=1024, help="model input size (and image side)")
    p.add_argument("--crop-n-layers", type=int, default=0)
    p.add_argument("--use-m2m", action="store_true")
    p.add_argument("--thresholds", choices=tuple(THRESHOLDS), default="fixture")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--official", metavar="PATH", help="checkout holding the official sam2/ package")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from napari_sam2 import MaskGenerator
    from napari_sam2.model.loading import build_model, prepare
    from napari_sam2.model.configs import get_config
    from napari_sam2.model.testing import rule_state_dict

    cfg = get_config("sam2.1_hiera_tiny")
    size = args.image_size
    model = prepare(build_model(cfg, rule_state_dict(cfg), size if size != 1024 else None), "cpu", torch.float32)
    with np.load(REF / "video_a.npz") as z:
        image = z["frames"][0]
    if size != image.shape[0]:
        from PIL import Image

        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    settings = dict(points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
                    crop_n_layers=args.crop_n_layers, use_m2m=args.use_m2m,
                    **THRESHOLDS[args.thresholds])
    runs = {"ours": lambda: MaskGenerator(model, **settings).generate(image)}
    if args.official:
        off_cls = official_generator_class(args.official)
        off_model = official_model(args.official, size)
        runs["official"] = lambda: off_cls(off_model, output_mode="binary_mask", **settings).generate(image)
    times: dict[str, list[float]] = {k: [] for k in runs}
    outs: dict[str, list] = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            t = time.perf_counter()
            with torch.inference_mode():
                outs[name] = run()
            times[name].append(time.perf_counter() - t)
            print(f"{name}: {times[name][-1]:.1f} s, {len(outs[name])} masks", flush=True)
    result = {"settings": settings, "image_size": size, "threads": args.threads,
              "seconds": {k: min(v) for k, v in times.items()}}
    if "official" in outs:
        result["comparison"] = compare(outs["ours"], outs["official"])
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
