"""Executes any reference-fixture case (see ../shared/reference/README.md) through our API.

A case is a JSON sequence of the official predictor's calls; each returned mask set is an
"event" whose arrays sit in the case's .npz. Cases with ``"op": "amg_generate"`` (automatic
mask generation) hold runs of the official generator instead: ``_amg_runner.py``. The runner replays the calls with
``ImagePredictor`` / ``VideoSession`` and compares every event with the README's
tolerances. Nothing here knows about particular cases.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from _amg_runner import is_amg_case, run_amg_case

from napari_sam2.engine.image_predictor import ImagePredictor
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.model.configs import get_config
from napari_sam2.model.loading import build_model, prepare
from napari_sam2.model.testing import rule_state_dict

REPO = Path(__file__).resolve().parents[2]


def reference_dir() -> Path:
    env = os.environ.get("NAPARI_SAM2_REFERENCE_DIR")
    return Path(env) if env else (REPO.parent / "shared" / "reference")


#: cases this project made with the official code (tests/reference/cases/README.md), always run
OWN_CASES = Path(__file__).resolve().parent / "cases"


def case_files() -> list[Path]:
    """Cases of the shared reference folder, then this repository's own cases."""
    out = []
    for d in dict.fromkeys((reference_dir(), OWN_CASES)):
        if d.is_dir():
            out += _cases_in(d)
    return out


def _cases_in(d: Path) -> list[Path]:
    out = []
    for p in sorted(d.glob("*.json")):
        try:
            meta = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and ("steps" in meta and "events" in meta or is_amg_case(meta)):
            out.append(p)
    return out


# ----------------------------------------------------------------- tolerances
def logits_close(ours: np.ndarray, ref: np.ndarray, loose: bool = False) -> tuple[bool, str]:
    """README: |ours - ref| <= 2e-3 + 1e-3 |ref|; placeholder -1024 must match exactly."""
    ref = ref.astype(np.float32)
    a, r = (5e-3, 2e-3) if loose else (2e-3, 1e-3)
    placeholder = ref == -1024
    if not np.array_equal(ours[placeholder], ref[placeholder]):
        return False, "placeholder -1024 values differ"
    diff = np.abs(ours - ref)
    bad = diff > a + r * np.abs(ref)
    return (not bad.any()), f"max abs diff {diff.max():.3g}, {int(bad.sum())} elements out of tolerance"


def masks_close(ours: np.ndarray, ref: np.ndarray) -> tuple[bool, str]:
    """README: IoU >= 0.999, or at most 0.01 % of the pixels differ."""
    inter = np.logical_and(ours, ref).sum()
    union = np.logical_or(ours, ref).sum()
    iou = 1.0 if union == 0 else inter / union
    flips = int((ours != ref).sum())
    ok = iou >= 0.999 or flips <= 1e-4 * ref.size
    return ok, f"IoU {iou:.5f}, {flips} pixels differ"


# ------------------------------------------------------------------- the case
@dataclass
class Case:
    path: Path
    meta: dict = field(init=False)
    arrays: dict = field(init=False)

    def __post_init__(self) -> None:
        self.meta = json.loads(self.path.read_text())
        with np.load(self.path.with_suffix(".npz")) as z:
            self.arrays = {k: z[k] for k in z.files}

    @property
    def name(self) -> str:
        return self.meta.get("case", self.path.stem)

    def frames(self) -> np.ndarray:
        video = self.meta.get("video", "video_a")
        with np.load(self.path.parent / f"{video}.npz") as z:
            frames = z["frames"]
        start, stop = self.meta.get("video_frames", [0, len(frames)])
        return frames[start:stop]

    def settings(self) -> dict:
        return self.meta.get("effective_predictor_settings", self.meta.get("effective_model_settings", {}))

    def lookup_array(self, ref) -> np.ndarray:
        """An array given inline (nested lists) or by name in the case's / video's .npz."""
        if isinstance(ref, str):
            if ref in self.arrays:
                return self.arrays[ref]
            video = self.meta.get("video", "video_a")
            with np.load(self.path.parent / f"{video}.npz") as z:
                if ref in z.files:
                    return z[ref]
            raise KeyError(f"array {ref!r} not found in the case or video .npz")
        return np.asarray(ref)


@lru_cache(maxsize=2)
def reference_model(name: str, image_size: int, weights_manifest: str | None):
    cfg = get_config(name)
    state = rule_state_dict(cfg)
    if weights_manifest and Path(weights_manifest).exists():
        expected = json.loads(Path(weights_manifest).read_text())["sha256_all"]
        h = hashlib.sha256()
        for k in sorted(state):
            h.update(k.encode() + b"\x00" + state[k].numpy().astype("<f4").tobytes())
        assert h.hexdigest() == expected, f"rule weights of {name} do not reproduce {weights_manifest}"
    model = build_model(cfg, state, image_size if image_size != cfg.image_size else None)
    return prepare(model, "cpu", torch.float32)


def model_for(case: Case):
    name = case.meta["model"]
    size = int(case.settings().get("image_size", 1024))
    manifest = case.path.parent / f"weights_{name}.json"
    if not manifest.exists():  # cases made elsewhere share the manifests of the shared set
        manifest = REPO.parent / "shared" / "reference" / manifest.name
    return reference_model(name, size, str(manifest))


# ------------------------------------------------------------------ steps
def _points_rc(step: dict, hw: tuple[int, int], image_size: int, key: str = "points") -> np.ndarray | None:
    pts = step.get(key)
    if pts is None:
        return None
    xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if not step.get("normalize_coords", True):  # given in model-input pixels
        h, w = hw
        xy = xy / image_size * np.array([w, h])
    return xy[:, ::-1]


def _box_rc(step: dict, hw, image_size) -> np.ndarray | None:
    box = step.get("box")
    if box is None:
        return None
    corners = _points_rc({"points": np.asarray(box).reshape(2, 2), "normalize_coords": step.get("normalize_coords", True)},
                         hw, image_size)
    return corners.reshape(-1)


def session_for(case: Case, model) -> VideoSession:
    s = case.settings()
    unsupported = {
        k: v for k, v in {
            "non_overlap_masks": s.get("non_overlap_masks", False),
            "clear_non_cond_mem_around_input": s.get("clear_non_cond_mem_around_input", False),
        }.items() if v
    }
    for key, default in (("num_maskmem", 7), ("max_obj_ptrs_in_encoder", 16),
                         ("memory_temporal_stride_for_eval", 1),
                         ("multimask_max_pt_num", 1), ("multimask_min_pt_num", 0)):
        if s.get(key, default) != default:
            unsupported[key] = s[key]
    if unsupported:
        import pytest

        pytest.skip(f"case {case.name} uses predictor settings this engine does not expose: {unsupported}")
    # hole filling only ran where the official CUDA extension was present
    fill = int(s.get("fill_hole_area", 0)) if case.meta.get("sam2_C_available", False) else 0
    return VideoSession(model, case.frames(), fill_hole_area=fill,
                        corrections_as_conditioning=bool(s.get("add_all_frames_to_correct_as_cond", False)),
                        max_cond_frames_in_attn=int(s.get("max_cond_frames_in_attn", -1)))


class Checker:
    """Collects every mismatch of a case, so one failure lists them all."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.errors: list[str] = []
        self.notes: list[str] = []  # differences the README reports but does not require
        self.checked = 0

    def expect(self, ok: bool, what: str) -> None:
        self.checked += 1
        if not ok:
            self.errors.append(what)

    def video_event(self, ev: dict, result, session: VideoSession) -> None:
        z, p = self.case.arrays, f"e{ev['event']:03d}_"
        tag = f"event {ev['event']} ({ev['kind']}, frame {ev['frame_idx']})"
        self.expect(result.frame == ev["frame_idx"], f"{tag}: we returned frame {result.frame}")
        rows = [list(result.obj_ids).index(o) if o in result.obj_ids else None for o in ev["obj_ids"]]
        if None in rows:
            self.errors.append(f"{tag}: objects {ev['obj_ids']} vs ours {result.obj_ids}")
            return
        if p + "lowres_logits" in z:
            ours = result.low_res_logits[rows]
            ok, msg = logits_close(ours, z[p + "lowres_logits"][:, 0])
            self.expect(ok, f"{tag} low-res logits: {msg}")
        if ev.get("video_res_logits_stored") and p + "video_res_logits" in z:
            ok, msg = logits_close(result.logits[rows], z[p + "video_res_logits"][:, 0])
            self.expect(ok, f"{tag} video-res logits: {msg}")
        if p + "video_res_mask_bits" in z:
            ref = np.unpackbits(z[p + "video_res_mask_bits"], axis=-1).astype(bool)[:, 0]
            ref = ref[..., : result.masks.shape[-1]]
            for i, r in enumerate(rows):
                ok, msg = masks_close(result.masks[r], ref[i])
                self.expect(ok, f"{tag} object {ev['obj_ids'][i]} mask: {msg}")
        if p + "object_score_logits" in z:
            ref = z[p + "object_score_logits"]
            for i, r in enumerate(rows):
                if np.isnan(ref[i]):
                    continue
                d = abs(float(result.object_score_logits[r]) - float(ref[i]))
                self.expect(d <= 1e-3, f"{tag} object {ev['obj_ids'][i]} score differs by {d:.3g}")
        if p + "obj_ptr" in z:
            ref = z[p + "obj_ptr"]
            for i, obj in enumerate(ev["obj_ids"]):
                if np.isnan(ref[i]).any():
                    continue
                st = session.frame_state(ev["frame_idx"], obj)
                ours = st.obj_ptr.reshape(-1).float().cpu().numpy()
                d = float(np.abs(ours - ref[i]).max())
                self.expect(d <= 1e-3, f"{tag} object {obj} pointer differs by {d:.3g}")
        if "object_present" in ev:
            self.expect(list(result.present[rows]) == list(ev["object_present"]),
                        f"{tag}: presence {list(result.present[rows])} vs {ev['object_present']}")

    def image_event(self, step_idx: int, step: dict, pred) -> None:
        z, p = self.case.arrays, f"step{step_idx:02d}_img_"
        tag = f"step {step_idx} (image_predict)"
        if p + "iou_predictions" in z:
            d = float(np.abs(pred.iou - z[p + "iou_predictions"]).max())
            self.expect(d <= 1e-4, f"{tag} IoU predictions differ by {d:.3g}")
        if p + "lowres_logits" in z:
            ok, msg = logits_close(pred.low_res_logits, z[p + "lowres_logits"])
            self.expect(ok, f"{tag} low-res logits: {msg}")
        if p + "mask_bits" in z:
            ref = np.unpackbits(z[p + "mask_bits"], axis=-1).astype(bool)
            ours = pred.masks > 0 if pred.masks.dtype != bool else pred.masks
            for k in range(ref.shape[0]):
                ok, msg = masks_close(ours[k], ref[k][..., : ours.shape[-1]])
                self.expect(ok, f"{tag} mask {k}: {msg}")


def run_image_steps(case: Case, model=None, record: list | None = None) -> Checker:
    """Replay an image case on ``model`` (default: the case's fp32 model) and check every step;
    ``record`` (a list) also receives each step's masks."""
    model = model_for(case) if model is None else model
    frames = case.frames()
    check = Checker(case)
    for i, step in enumerate(case.meta["steps"]):
        if step["op"] != "image_predict":
            continue
        image = frames[step.get("frame_idx", 0)]
        pred = ImagePredictor(model)
        pred.set_image(image)
        hw = image.shape[:2]
        mask_input = step.get("mask_input")
        pred_out = pred.predict(
            points=_points_rc({"points": step.get("point_coords"), "normalize_coords": step.get("normalize_coords", True)},
                              hw, model.image_size),
            labels=step.get("point_labels"),
            box=_box_rc(step, hw, model.image_size),
            mask_input=None if mask_input is None else case.lookup_array(mask_input),
            multimask=step.get("multimask_output", True),
            return_logits=True,
        )
        check.image_event(i, step, pred_out)
        if record is not None:
            record.append((None, pred_out.masks > 0))  # logits were asked for: the masks are their sign
    return check


def run_video_steps(case: Case, model=None, record: list | None = None) -> Checker:
    """Replay a video case on ``model`` (default: the case's fp32 model) and check every event;
    ``record`` (a list) also receives each event's (obj_ids, masks)."""
    model = model_for(case) if model is None else model
    session = session_for(case, model)
    check = Checker(case)
    events = iter(e for e in case.meta["events"])
    n = session.num_frames
    hw = session.frame_shape
    for step in case.meta["steps"]:
        op = step["op"]
        if op == "image_predict":
            continue
        if op == "add_new_points_or_box":
            pts = _points_rc(step, hw, model.image_size)
            box = _box_rc(step, hw, model.image_size)
            if box is not None:
                res = session.add_box(step["frame_idx"], step["obj_id"], box, pts, step.get("labels"),
                                      return_logits=True)
            else:
                res = session.add_points(step["frame_idx"], step["obj_id"], pts, step["labels"],
                                         clear=step.get("clear_old_points", True), return_logits=True)
            check.video_event(next(events), res, session)
            if record is not None:
                record.append((res.obj_ids, res.masks))
        elif op == "add_new_mask":
            key = next(k for k in ("mask", "mask_array", "mask_key", "mask_npz", "mask_npz_key") if k in step)
            res = session.add_mask(step["frame_idx"], step["obj_id"], case.lookup_array(step[key]).astype(bool),
                                   return_logits=True)
            check.video_event(next(events), res, session)
            if record is not None:
                record.append((res.obj_ids, res.masks))
        elif op == "propagate_in_video":
            reverse = bool(step.get("reverse", False))
            start = step.get("start_frame_idx")
            max_n = step.get("max_frame_num_to_track")
            stop = None
            if max_n is not None:
                first = start if start is not None else min(k[session.layout.axis] for k in session.prompted_frames())
                stop = max(first - max_n, 0) if reverse else min(first + max_n, n - 1)
            got = []
            for res in session.propagate("backward" if reverse else "forward", start=start, stop=stop,
                                         return_logits=True):
                got.append(res.frame)
                check.video_event(next(events), res, session)
                if record is not None:
                    record.append((res.obj_ids, res.masks))
            if "yielded_frames" in step:
                check.expect(got == step["yielded_frames"], f"propagation yielded {got}, expected {step['yielded_frames']}")
        else:
            raise AssertionError(f"unknown operation {op!r} in case {case.name}")
    leftover = list(events)
    check.expect(not leftover, f"{len(leftover)} events were not produced")
    return check


def run_amg_generate(case: Case) -> Checker:
    """An ``amg_generate`` case (automatic mask generation), see ``_amg_runner.py``."""
    return run_amg_case(case, model_for(case), Checker)


def replay_masks(case: Case, dtype) -> list[np.ndarray]:
    """Every mask a case's steps produce on its rule-weight model run with ``dtype`` (autocast), in
    order: the fp32 / bf16 comparison of ``bench_precision.py`` and ``test_precision_and_compile.py``."""
    cfg = get_config(case.meta["model"])
    size = int(case.settings().get("image_size", 1024))
    model = prepare(build_model(cfg, rule_state_dict(cfg), size), "cpu", dtype)
    record: list = []
    video = any(s["op"] != "image_predict" for s in case.meta["steps"])
    (run_video_steps if video else run_image_steps)(case, model=model, record=record)
    return [np.asarray(m) for _, masks in record for m in masks]
