"""Generator of the interactive reference cases C1-C5 (see cases/README.md).

Runs Meta's *official* SAM 2 video predictor (a checkout given on the command line; it
is imported, never copied) on the deterministic rule weights and a synthetic 256x256
video (frames = model image size), and writes one JSON + one NPZ per case in the schema of the shared fixtures
(../shared/reference/README.md). This is a maintenance script, not a test::

    /work/official/venv/bin/python tests/reference/make_official_cases.py \
        --official /work/official/sam2 --out tests/reference/cases

It needs torch (CPU), hydra-core, omegaconf, iopath, pillow, tqdm, numpy and scipy (a venv
of its own; napari_sam2 is not imported). Options: --image-size, --threads, --cases,
--one-frame-check (the 1-frame NaN probe, printed only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
import types
import warnings
import zlib

IMAGE_SIZE = 256  # --image-size; 512 works too but its fp16 low-res logits exceed the 8 MB budget
NUM_FRAMES = 16
VIDEO = "video_b"
MODEL = "sam2.1_hiera_tiny"
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
COMMIT = "2b90b9f5ceec907a1c18123530e92e794ad901a4"
SETTING_KEYS = (
    "image_size", "fill_hole_area", "non_overlap_masks", "binarize_mask_from_pts_for_mem_enc",
    "add_all_frames_to_correct_as_cond", "clear_non_cond_mem_around_input", "multimask_output_in_sam",
    "multimask_output_for_tracking", "multimask_min_pt_num", "multimask_max_pt_num", "num_maskmem",
    "max_obj_ptrs_in_encoder", "memory_temporal_stride_for_eval", "max_cond_frames_in_attn",
)
DECODER_KEYS = ("dynamic_multimask_via_stability", "dynamic_multimask_stability_delta",
                "dynamic_multimask_stability_thresh")


# --------------------------------------------------------------------- environment
def setup(official: str, threads: int = 2) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, official)
    install_torchvision_standin()


def install_torchvision_standin() -> None:
    """ToTensor / Resize / Normalize with torchvision's arithmetic (README "torchvision stand-in").

    The official video predictor does not import torchvision at this commit; the stand-in
    only guards against an import of ``sam2.utils.transforms``.
    """
    import torch
    import torch.nn.functional as F

    class ToTensor:
        def __call__(self, pic):
            import numpy as np

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

    class Resize(torch.nn.Module):
        def __init__(self, size):
            super().__init__()
            self.size = tuple(size) if not isinstance(size, int) else (size, size)

        def forward(self, x):
            if tuple(x.shape[-2:]) == self.size:
                return x
            return F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]

    tv = types.ModuleType("torchvision")
    tr = types.ModuleType("torchvision.transforms")
    tr.ToTensor, tr.Normalize, tr.Resize = ToTensor, Normalize, Resize
    tv.transforms = tr
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.transforms", tr)


# --------------------------------------------------------------------- weights
def rule_tensor(key: str, shape: tuple):
    """The shared README's weight rule."""
    import torch

    g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    if key == "sam_mask_decoder.pred_obj_score_head.layers.2.bias":
        t = t * 0.02 + 1.0
    elif "." not in key or key.endswith("pos_embed") or key.endswith("pos_embed_window"):
        t = t * 0.1
    elif key.endswith("positional_encoding_gaussian_matrix") or re.search(
            r"(point_embeddings\.\d+|_embed|_tokens?)\.weight$", key):
        pass
    elif key.endswith(".bias"):
        t = t * 0.02
    elif t.ndim == 1:
        t = t * 0.1 + 1.0
    else:
        t = t * (1.0 / math.sqrt(math.prod(shape[1:])))
    return t.to(torch.float16).to(torch.float32)


def rule_weights(model, manifest: str) -> tuple[dict, str]:
    state = {k: rule_tensor(k, tuple(v.shape)) for k, v in model.state_dict().items()}
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode("utf-8") + b"\x00" + state[k].numpy().astype("<f4").tobytes())
    digest = h.hexdigest()
    expected = json.load(open(manifest))["sha256_all"]
    assert digest == expected, f"rule weights hash {digest} != manifest {expected}"
    return state, digest


# --------------------------------------------------------------------- video
def shape_params(t: int) -> dict:
    """Centres/half-sizes of the three moving shapes in frame t (pixels, (x, y)); laid out for 512 px."""
    s = IMAGE_SIZE / 512

    def sc(*v):
        return tuple(s * x for x in v)

    return {
        1: {"kind": "ellipse", "c": sc(110.0 + 40.0 * t / 15, 130.0 + 40.0 * t / 15), "r": sc(50.0, 34.0),
            "color": (220, 40, 40)},
        2: {"kind": "rect", "c": sc(170.0 + 12.0 * t, 360.0), "r": sc(22.0, 35.0), "color": (40, 200, 60)},
        3: {"kind": "ellipse", "c": sc(380.0 + 40.0 * t / 15, 120.0 + 100.0 * t / 15), "r": sc(36.0, 36.0),
            "color": (40, 60, 220)},
    }


def pillar() -> tuple[int, int]:
    """x range [x0, x1) of the static opaque pillar (full height); hides object 2 on frames 6-9."""
    return IMAGE_SIZE * 220 // 512, IMAGE_SIZE * 300 // 512


PILLAR_COLOR = (90, 90, 90)


def coverage(p: dict, n: int, ss: int = 4):
    """Anti-aliased coverage in [0, 1] of one shape (ss x ss supersampling)."""
    import numpy as np

    off = (np.arange(ss) + 0.5) / ss
    ys = (np.arange(n)[:, None] + off[None, :]).reshape(-1)
    xs = ys.copy()
    X, Y = np.meshgrid(xs, ys)
    (cx, cy), (rx, ry) = p["c"], p["r"]
    if p["kind"] == "ellipse":
        inside = ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 <= 1.0
    else:
        inside = (np.abs(X - cx) <= rx) & (np.abs(Y - cy) <= ry)
    return inside.reshape(n, ss, n, ss).mean(axis=(1, 3))


def render_video(frames: int = NUM_FRAMES):
    """uint8 [T, n, n, 3] frames and the per-object visible coverage [T, 3, n, n]."""
    import numpy as np

    n = IMAGE_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / (n - 1)
    bg = np.stack([40 + 120 * xx, 60 + 100 * yy, 150 - 60 * (xx + yy) / 2], axis=-1)
    out = np.zeros((frames, n, n, 3), np.uint8)
    vis = np.zeros((frames, 3, n, n), np.float32)
    x0, x1 = pillar()
    pillar_a = np.zeros((n, n))
    pillar_a[:, x0:x1] = 1.0
    for t in range(frames):
        img = bg.copy()
        for i, (obj, p) in enumerate(shape_params(t).items()):
            a = coverage(p, n)
            img = img * (1 - a[..., None]) + np.array(p["color"], np.float64) * a[..., None]
            vis[t, i] = a * (1 - pillar_a)
        img = img * (1 - pillar_a[..., None]) + np.array(PILLAR_COLOR, np.float64) * pillar_a[..., None]
        out[t] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out, vis


def true_mask(t: int, obj: int):
    """The shape's full (unoccluded) mask at coverage >= 0.5."""
    return coverage(shape_params(t)[obj], IMAGE_SIZE) >= 0.5


def readme_input(frames):
    """The model input of the shared README's "Input convention"."""
    import torch

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0
    x = x.to(torch.float32)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def frames_dir(frames, tmp: str) -> str:
    """Frames as lossless PNG data under <i>.jpg names (the official loader opens them with PIL)."""
    from PIL import Image

    d = tempfile.mkdtemp(dir=tmp)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(os.path.join(d, f"{i:05d}.jpg"), format="PNG")
    return d


# --------------------------------------------------------------------- recording
class Recorder:
    """Wraps a few bound methods of the official predictor *instance* to log decoder runs."""

    def __init__(self, predictor, state_ref: dict) -> None:
        self.calls: list[dict] = []
        self.ctx = {"purpose": "decoder", "obj_id": None, "frame_idx": None}
        self.state_ref = state_ref
        self._multimask = None
        dec = predictor.sam_mask_decoder
        self.delta = float(dec.dynamic_multimask_stability_delta)
        self.thresh = float(dec.dynamic_multimask_stability_thresh)
        self.dynamic = bool(dec.dynamic_multimask_via_stability)
        orig_forward, orig_predict = dec.forward, dec.predict_masks
        orig_mask_out, orig_single = predictor._use_mask_as_output, predictor._run_single_frame_inference

        def forward(*a, **k):
            self._multimask = bool(k["multimask_output"])
            return orig_forward(*a, **k)

        def predict_masks(*a, **k):
            out = orig_predict(*a, **k)
            self.calls.append(self._record(out[0], out[1], out[3]))
            return out

        def use_mask_as_output(*a, **k):
            self.ctx["purpose"] = "mask_prompt_pointer"
            try:
                return orig_mask_out(*a, **k)
            finally:
                self.ctx["purpose"] = "decoder"

        def run_single(*a, **k):
            st = self.state_ref["state"]
            od = k["output_dict"]
            idx = next(i for i, v in st["output_dict_per_obj"].items() if v is od)
            self.ctx["obj_id"] = st["obj_idx_to_id"][idx]
            self.ctx["frame_idx"] = k["frame_idx"]
            return orig_single(*a, **k)

        dec.forward, dec.predict_masks = forward, predict_masks
        predictor._use_mask_as_output = use_mask_as_output
        predictor._run_single_frame_inference = run_single

    def _record(self, masks, iou, score) -> dict:
        import torch

        m = masks.detach().float()[0]
        iou_all = [float(v) for v in iou.detach().float()[0]]
        s = float(score.detach().float().reshape(-1)[0])
        flat = m[0].flatten()
        area_i = torch.sum(flat > self.delta).float()
        area_u = torch.sum(flat > -self.delta).float()
        stab = float(area_i / area_u) if float(area_u) > 0 else 1.0
        self._areas = (int(area_i), int(area_u))
        mm = bool(self._multimask)
        if mm:
            selected = iou_all[1:]
        elif self.dynamic:
            selected = [iou_all[0]] if stab >= self.thresh else [max(iou_all[1:])]
        else:
            selected = [iou_all[0]]
        rec = {
            "obj_id": self.ctx["obj_id"], "frame_idx": self.ctx["frame_idx"], "purpose": self.ctx["purpose"],
            "token_mask_mean": [[float(x.mean()) for x in m]],
            "token_mask_std": [[float(x.std()) for x in m]],
            "token_mask_fg": [[float((x > 0).float().mean()) for x in m]],
            "multimask_output": mm, "iou_all_tokens": [iou_all], "object_score_logits": [s],
            "singlemask_stability": [stab], "singlemask_areas_above_plus_minus_delta": [list(self._areas)],
            "selected_iou": [selected],
        }
        rec["margins"] = self._margins(rec)
        return rec

    def _margins(self, rec: dict) -> dict:
        """Distance of each decision this call takes from its threshold (README "decision margins")."""
        s, iou, stab = rec["object_score_logits"][0], rec["iou_all_tokens"][0], rec["singlemask_stability"][0]
        out = {"obj_score_abs": abs(s)}
        # a mask prompt's decoder run only supplies the pointer (token 0), gated by its score sign
        if rec["purpose"] == "mask_prompt_pointer" or s <= 0:
            return out
        top = sorted(iou[1:], reverse=True)
        if rec["multimask_output"]:
            out["multimask_iou_top2_gap"] = top[0] - top[1]
        elif self.dynamic:
            out["stability_minus_thresh"] = abs(stab - self.thresh)
            out["stability_pixels_to_flip"] = self._pixels_to_flip(*rec["singlemask_areas_above_plus_minus_delta"][0])
            if stab < self.thresh:
                out["multimask_iou_top2_gap"] = top[0] - top[1]
        return out

    def _pixels_to_flip(self, ai: int, au: int) -> int:
        """How many low-res pixels must cross +-delta to flip the stability decision."""
        t = self.thresh
        if au == 0:
            return 1
        if ai / au >= t:  # stable: lose pixels above +delta, or gain pixels above -delta
            return min(math.floor(ai - t * au) + 1, math.floor(ai / t - au) + 1)
        return min(math.ceil(t * au - ai), math.ceil(au - ai / t))

    def take(self) -> list[dict]:
        calls, self.calls = self.calls, []
        return calls


def small_background_pixels(low) -> int:
    """Pixels with logit <= 0 in 8-connected background components of <= 8 pixels."""
    import numpy as np
    from scipy import ndimage

    lab, n = ndimage.label(low <= 0, structure=np.ones((3, 3), bool))
    if n == 0:
        return 0
    sizes = np.bincount(lab.reshape(-1))
    small = np.zeros_like(sizes, bool)
    small[1:] = sizes[1:] <= 8
    return int(small[lab].sum())


class CaseRun:
    """Executes one case's steps on the official predictor and collects events + arrays."""

    def __init__(self, predictor, state, rec: Recorder) -> None:
        self.p, self.state, self.rec = predictor, state, rec
        self.events: list[dict] = []
        self.arrays: dict = {}
        self.steps: list[dict] = []

    def _lookup(self, obj_idx: int, frame: int, temp_key: str | None):
        st = self.state
        if temp_key is not None:
            out = st["temp_output_dict_per_obj"][obj_idx][temp_key].get(frame)
            if out is not None:
                return out, "temp_" + ("cond" if temp_key == "cond_frame_outputs" else "non_cond")
        od = st["output_dict_per_obj"][obj_idx]
        for key, name in (("cond_frame_outputs", "cond"), ("non_cond_frame_outputs", "non_cond")):
            if frame in od[key]:
                return od[key][frame], name
        return None, "none"

    def _event(self, step: int, kind: str, frame: int, obj_ids, video_res, temp_key: str | None) -> None:
        import numpy as np
        import torch
        import torch.nn.functional as F

        n = len(obj_ids)
        h4 = self.p.image_size // 4
        low = torch.full((n, 1, h4, h4), -1024.0)
        scores = np.full(n, np.nan, np.float32)
        ptrs = np.full((n, 256), np.nan, np.float32)
        sources = []
        for i, obj in enumerate(obj_ids):
            out, src = self._lookup(self.state["obj_id_to_idx"][obj], frame, temp_key)
            sources.append(src)
            if out is None:
                continue
            low[i] = out["pred_masks"][0].float()
            scores[i] = float(out["object_score_logits"].reshape(-1)[0])
            ptrs[i] = out["obj_ptr"].reshape(-1).float().numpy()
        vr = video_res.detach().float().cpu()
        up = F.interpolate(low, size=tuple(vr.shape[-2:]), mode="bilinear", align_corners=False)
        assert torch.equal(up, vr), f"event {len(self.events)}: low-res logits do not upsample to the output"
        e = len(self.events)
        p = f"e{e:03d}_"
        low_np = low.numpy()
        self.arrays[p + "lowres_logits"] = low_np.astype(np.float16)
        self.arrays[p + "object_score_logits"] = scores
        self.arrays[p + "obj_ptr"] = ptrs
        self.arrays[p + "video_res_mask_bits"] = np.packbits(vr.numpy() > 0, axis=-1)
        calls = self.rec.take()
        for c in calls:
            c["event"] = e
        self.events.append({
            "event": e, "step": step, "kind": kind, "frame_idx": frame, "obj_ids": list(obj_ids),
            "output_source": sources,
            "object_present": [bool(s > 0) for s in scores],
            "video_res_foreground_fraction": [float((vr[i] > 0).float().mean()) for i in range(n)],
            "lowres_pixels_in_background_components_le_8px": [small_background_pixels(low_np[i, 0]) for i in range(n)],
            "object_score_logits": [None if np.isnan(s) else float(s) for s in scores],
            "decoder_calls": calls,
            "video_res_logits_stored": False,
        })

    def _cond_frames(self) -> dict:
        st = self.state
        return {str(st["obj_idx_to_id"][i]): list(od["cond_frame_outputs"])
                for i, od in st["output_dict_per_obj"].items()}

    def add_points(self, frame: int, obj_id: int, points=None, labels=None, box=None, clear: bool = True) -> None:
        si = len(self.steps)
        step = {"op": "add_new_points_or_box", "frame_idx": frame, "obj_id": obj_id,
                "points": None if points is None else [[float(x), float(y)] for x, y in points],
                "labels": None if labels is None else [int(v) for v in labels],
                "box": None if box is None else [float(v) for v in box],
                "clear_old_points": clear, "normalize_coords": True}
        f, obj_ids, masks = self.p.add_new_points_or_box(
            self.state, frame_idx=frame, obj_id=obj_id, points=step["points"], labels=step["labels"],
            clear_old_points=clear, normalize_coords=True, box=step["box"])
        self._after_add(si, step, f, obj_ids, masks, obj_id)

    def add_mask(self, frame: int, obj_id: int, mask) -> None:
        import numpy as np

        si = len(self.steps)
        key = f"step{si:02d}_mask"
        self.arrays[key] = np.asarray(mask, bool)
        step = {"op": "add_new_mask", "frame_idx": frame, "obj_id": obj_id, "mask_npz_key": key,
                "mask_foreground_pixels": int(np.asarray(mask, bool).sum())}
        f, obj_ids, masks = self.p.add_new_mask(self.state, frame_idx=frame, obj_id=obj_id, mask=self.arrays[key])
        self._after_add(si, step, f, obj_ids, masks, obj_id)

    def _after_add(self, si, step, f, obj_ids, masks, obj_id) -> None:
        temp = self.state["temp_output_dict_per_obj"][self.state["obj_id_to_idx"][obj_id]]
        in_cond, in_non = f in temp["cond_frame_outputs"], f in temp["non_cond_frame_outputs"]
        assert in_cond != in_non
        step["stored_as"] = "cond" if in_cond else "non_cond"
        self.steps.append(step)
        self._event(si, step["op"], f, obj_ids, masks, "cond_frame_outputs" if in_cond else "non_cond_frame_outputs")
        step["cond_frames_per_obj_after"] = self._cond_frames()

    def propagate(self, start=None, max_n=None, reverse: bool = False) -> None:
        si = len(self.steps)
        step = {"op": "propagate_in_video", "start_frame_idx": start, "max_frame_num_to_track": max_n,
                "reverse": reverse}
        self.steps.append(step)
        got = []
        for f, obj_ids, masks in self.p.propagate_in_video(
                self.state, start_frame_idx=start, max_frame_num_to_track=max_n, reverse=reverse):
            got.append(int(f))
            self._event(si, "propagate_in_video", int(f), obj_ids, masks, None)
        step["yielded_frames"] = got
        step["cond_frames_per_obj_after"] = self._cond_frames()


# --------------------------------------------------------------------- cases
def pt(t: int, obj: int, dx: float = 0.0, dy: float = 0.0) -> tuple[int, int]:
    """Object ``obj``'s centre in frame t plus an offset given in 512-px units, rounded to pixels."""
    s = IMAGE_SIZE / 512
    x, y = shape_params(t)[obj]["c"]
    return round(x + s * dx), round(y + s * dy)


def bbox(t: int, obj: int, pad: float = 4.0) -> list[float]:
    p = shape_params(t)[obj]
    (cx, cy), (rx, ry) = p["c"], p["r"]
    pad *= IMAGE_SIZE / 512
    return [round(cx - rx - pad), round(cy - ry - pad), round(cx + rx + pad), round(cy + ry + pad)]


def steps_corrections(run: CaseRun) -> None:
    """C1/C2: two objects, a late new object (box), a correction, forward and reverse passes."""
    run.add_points(0, 1, [pt(0, 1)], [1])
    run.add_points(0, 2, [pt(0, 2), pt(0, 2, 80, -50)], [1, 0])
    run.propagate()
    run.add_points(5, 3, box=bbox(5, 3))
    run.propagate(start=5)
    run.add_points(10, 1, [pt(10, 1, 8, 4), pt(10, 1, 75, 40)], [1, 0])
    run.propagate(start=10)
    run.propagate(start=10, reverse=True)


def steps_empty_mask(run: CaseRun) -> None:
    """C3: object 1 from its true mask, object 2 from an all-False mask, later a click on object 2."""
    import numpy as np

    run.add_mask(0, 1, true_mask(0, 1))
    run.add_mask(0, 2, np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool))
    run.propagate()
    run.add_points(12, 2, [pt(12, 2)], [1])
    run.propagate(start=12)
    run.propagate(start=12, reverse=True)


C4_CORRECTIONS = (12, 3, 14, 6, 9)  # insertion order matters for tie-breaking in the cond-frame selection


def steps_max_cond(run: CaseRun) -> None:
    """C4: five corrections become conditioning frames; only the closest 3 are attended."""
    run.add_points(0, 1, [pt(0, 1)], [1])
    run.propagate()
    for k, f in enumerate(C4_CORRECTIONS):
        if k % 2 == 0:
            run.add_points(f, 1, [pt(f, 1, -6, 5)], [1])
        else:
            run.add_points(f, 1, [pt(f, 1, 5, -4), pt(f, 1, -70, 45)], [1, 0])
        run.propagate(start=f, max_n=2)
    run.propagate()
    # (reversing from frame 15, after the last conditioning frame, raises the official fp32 dtype error)
    run.propagate(start=C4_CORRECTIONS[2], reverse=True)


def steps_two_frames(run: CaseRun) -> None:
    """C5: 2-frame video; a correction on frame 0 after propagating."""
    run.add_points(0, 1, [pt(0, 1)], [1])
    run.propagate()
    run.add_points(0, 1, [pt(0, 1, 10, -6), pt(0, 1, 80, 30)], [1, 0])
    run.propagate()


CASES = {
    "C1_late_object_corrections": dict(
        frames=(0, 16), steps=steps_corrections, overrides=["++model.add_all_frames_to_correct_as_cond=true"],
        checks="Objects 1, 2 clicked on frame 0 (object 2 passes behind the opaque pillar on frames 6-9 and "
               "comes back); box for a NEW object 3 on frame 5 after tracking; propagation from 5; a "
               "correction (positive + negative click) for object 1 on the tracked frame 10, stored as a "
               "conditioning frame (add_all_frames_to_correct_as_cond=True); propagation from 10; reverse "
               "propagation from 10 (object 3 tracked backwards before its first prompt)."),
    "C2_corrections_not_cond": dict(
        frames=(0, 16), steps=steps_corrections, overrides=[],
        checks="The C1 call sequence with the official default add_all_frames_to_correct_as_cond=False: the "
               "correction on frame 10 is a non-conditioning output (its mask is re-used as the mask input "
               "of the clicks) and the propagation from 10 recomputes frame 10 from memory."),
    "C3_empty_mask_object": dict(
        frames=(0, 16), steps=steps_empty_mask, overrides=["++model.add_all_frames_to_correct_as_cond=true"],
        checks="Object 1 from its true mask, object 2 from an ALL-FALSE mask on frame 0 (object score -10, "
               "no-object pointer and spatial embedding); forward propagation; a positive click for object "
               "2 on frame 12 (already tracked; becomes a conditioning frame); forward and reverse "
               "propagation from 12."),
    "C4_max_cond_frames": dict(
        frames=(0, 16), steps=steps_max_cond,
        overrides=["++model.max_cond_frames_in_attn=3", "++model.add_all_frames_to_correct_as_cond=true"],
        checks="max_cond_frames_in_attn=3 with 6 conditioning frames (0 and corrections on 12, 3, 14, 6, 9 "
               "in that order, each followed by a 3-frame propagation); full forward propagation and a reverse "
               "one from frame 14: the closest-before/after selection, the distance tie (frame 10: 6 vs 14, "
               "resolved by insertion order -> 14) and unselected conditioning frames used as ordinary "
               "memories / pointers."),
    "C5_two_frames": dict(
        frames=(0, 2), steps=steps_two_frames, overrides=["++model.add_all_frames_to_correct_as_cond=true"],
        checks="2-frame video (max_obj_ptrs_in_encoder clipped to 2, pointer temporal positions divided by "
               "t_diff_max = 1): click, propagate, correction on frame 0 (memory-conditioned on its own "
               "earlier output), propagate."),
}


def build(official_overrides: list[str]):
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [f"++model.image_size={IMAGE_SIZE}"] + list(official_overrides)
    model = build_sam2_video_predictor(CONFIG, ckpt_path=None, device="cpu", hydra_overrides_extra=overrides)
    return model.to(torch.float32).eval(), overrides


def settings_of(p) -> dict:
    s = {k: getattr(p, k) for k in SETTING_KEYS}
    s.update({k: getattr(p.sam_mask_decoder, k) for k in DECODER_KEYS})
    return {k: (v if isinstance(v, (bool, str)) or v is None else (float(v) if isinstance(v, float) else int(v)))
            for k, v in s.items()}


def margins_min(events: list[dict]) -> tuple[dict, dict]:
    """Smallest margin per decision kind (as S1.json) and where it occurred."""
    val: dict = {}
    where: dict = {}
    for ev in events:
        for c in ev["decoder_calls"]:
            for k, v in c["margins"].items():
                if k not in val or v < val[k]:
                    val[k], where[k] = v, {"event": ev["event"], "obj_id": c["obj_id"]}
    return val, where


def run_case(name: str, spec: dict, frames_all, state_dict, digest: str, out_dir: str, tmp: str) -> dict:
    import numpy as np
    import torch

    t0 = time.time()
    p, overrides = build(spec["overrides"])
    p.load_state_dict(state_dict, strict=True)
    frames = frames_all[spec["frames"][0]:spec["frames"][1]]
    holder: dict = {}
    rec = Recorder(p, holder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = p.init_state(frames_dir(frames, tmp))
        assert torch.equal(state["images"], readme_input(frames)), "official loader input != README convention"
        holder["state"] = state
        run = CaseRun(p, state, rec)
        spec["steps"](run)
    hole = sum("Skipping the post-processing" in str(w.message) for w in caught)
    other = sorted({str(w.message).splitlines()[0] for w in caught if "Skipping the post-processing" not in str(w.message)})
    margins = margins_min(run.events)
    meta = {
        "case": name, "description": spec["checks"], "model": MODEL, "config": CONFIG,
        "hydra_overrides_extra": overrides, "effective_predictor_settings": settings_of(p),
        "video": VIDEO, "video_frames": list(spec["frames"]), "hole_fill_skipped_warnings": hole,
        "other_warnings": other, "weights_sha256": digest, "seconds": round(time.time() - t0, 1),
        "torch_version": torch.__version__, "num_threads": torch.get_num_threads(),
        "official_sam2_path": f"facebookresearch/sam2 at commit {COMMIT}",
        "torchvision": "stand-in (ToTensor/Normalize/Resize arithmetic as torchvision; not imported by the video predictor)",
        "sam2_C_available": False, "decision_margins_min": margins[0], "decision_margins_where": margins[1],
        "npz_arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(run.arrays.items())},
        "steps": run.steps, "events": run.events,
    }
    base = os.path.join(out_dir, name)
    with open(base + ".json", "w") as fh:
        json.dump(meta, fh, indent=1)
    np.savez_compressed(base + ".npz", **run.arrays)
    return meta


def one_frame_check(frames_all, state_dict, tmp: str) -> dict:
    """1-frame video: click, propagate, click again; are scores / pointers NaN?"""
    import numpy as np

    res = {}
    for add_all in (False, True):
        p, _ = build([f"++model.add_all_frames_to_correct_as_cond={str(add_all).lower()}"])
        p.load_state_dict(state_dict, strict=True)
        holder: dict = {}
        rec = Recorder(p, holder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = p.init_state(frames_dir(frames_all[:1], tmp))
            holder["state"] = state
            run = CaseRun(p, state, rec)
            steps_two_frames(run)
        res[f"add_all_frames_to_correct_as_cond={add_all}"] = [
            {"event": e["event"], "kind": e["kind"], "score_nan": bool(np.isnan(run.arrays[f"e{e['event']:03d}_object_score_logits"]).any()),
             "ptr_nan": bool(np.isnan(run.arrays[f"e{e['event']:03d}_obj_ptr"]).any()),
             "lowres_nan": bool(np.isnan(run.arrays[f"e{e['event']:03d}_lowres_logits"]).any()),
             "decoder_scores": [c["object_score_logits"][0] for c in e["decoder_calls"]]}
            for e in run.events]
    return res


def main(argv=None) -> None:
    global IMAGE_SIZE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="checkout of facebookresearch/sam2 (the directory holding sam2/)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--manifest", default="/work/shared/reference/weights_sam2.1_hiera_tiny.json")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    ap.add_argument("--one-frame-check", action="store_true", help="also run the 1-frame NaN check")
    ap.add_argument("--image-size", type=int, default=IMAGE_SIZE, help="model image size = frame size")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the fixtures use 2)")
    args = ap.parse_args(argv)
    IMAGE_SIZE = args.image_size
    setup(os.path.abspath(args.official), args.threads)
    import numpy as np

    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    frames, _ = render_video()
    np.savez_compressed(os.path.join(args.out, VIDEO + ".npz"), frames=frames)
    probe, _ = build([])
    state_dict, digest = rule_weights(probe, args.manifest)
    del probe
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            meta = run_case(name, CASES[name], frames, state_dict, digest, args.out, tmp)
            mm = {k: round(v, 5) for k, v in meta["decision_margins_min"].items()}
            print(f"{name}: {len(meta['events'])} events, {meta['seconds']} s, margins {mm}", flush=True)
        if args.one_frame_check:
            print(json.dumps(one_frame_check(frames, state_dict, tmp), indent=1))
    for f in sorted(os.listdir(args.out)):
        print(f"{f}: {os.path.getsize(os.path.join(args.out, f))} bytes")
    print(f"total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
