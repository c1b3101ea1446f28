"""Numerical parity with the official SAM 2 code on the shared reference fixtures.

Cases are discovered in ``$NAPARI_SAM2_REFERENCE_DIR`` (default ``../shared/reference``). Each test
runs only on the cases that hold what it checks (S2, a video case, has no encoder dump and no image
step), so a skip always means something is missing, and its reason names it; on CI a skip here is a
failure (see ``conftest.py``).
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _reference_runner import (
    Case,
    case_files,
    logits_close,
    model_for,
    reference_dir,
    run_amg_generate,
    run_image_steps,
    run_video_steps,
)

REF_DIR = reference_dir()
CASES = case_files()
IDS = [p.stem for p in CASES]


def _steps(path: Path) -> list[dict]:
    return json.loads(path.read_text()).get("steps", [])


def is_amg(path: Path) -> bool:
    return json.loads(path.read_text()).get("op") == "amg_generate"


def _array_names(path: Path) -> list[str]:
    npz = path.with_suffix(".npz")
    if not npz.exists():
        return []
    with np.load(npz) as z:
        return list(z.files)


def has_encoder_dump(path: Path) -> bool:
    return any(k.startswith("enc_f") for k in _array_names(path))


def has_image_step(path: Path) -> bool:
    return any(s["op"] == "image_predict" for s in _steps(path))


def has_video_steps(path: Path) -> bool:
    return any(s["op"] != "image_predict" for s in _steps(path))


def has_hole_counts(path: Path) -> bool:
    names = set(_array_names(path))
    return any("lowres_pixels_in_background_components_le_8px" in ev and f"e{ev['event']:03d}_lowres_logits" in names
               for ev in json.loads(path.read_text()).get("events", []))


def cases_with(predicate, what: str) -> list:
    """pytest params: the cases for which ``predicate`` holds; one skip naming what is missing if none."""
    chosen = [p for p in CASES if predicate(p)]
    if chosen:
        return [pytest.param(p, id=p.stem) for p in chosen]
    if CASES:
        why = f"no reference case has {what} (cases: {', '.join(IDS)} in {REF_DIR})"
    elif not REF_DIR.is_dir():
        why = f"reference fixtures not found: {REF_DIR} does not exist (set NAPARI_SAM2_REFERENCE_DIR)"
    else:
        why = (f"no reference case in {REF_DIR} (a <case>.json with 'steps' and 'events', or op "
               "'amg_generate' and 'runs', beside its .npz)")
    return [pytest.param(None, id="missing", marks=pytest.mark.skip(reason=why))]


@lru_cache(maxsize=2)  # tests take the cases in turn; keep memory bounded
def load_case(path: Path) -> Case:
    return Case(path)


@pytest.fixture
def case(request) -> Case:
    return load_case(request.param)


@pytest.mark.parametrize("case", cases_with(has_encoder_dump, "an encoder dump (enc_f* arrays)"), indirect=True)
def test_encoder_dump_matches(case: Case):
    dumps = sorted(k for k in case.arrays if k.startswith("enc_f"))
    model = model_for(case)
    frames = case.frames()
    by_frame: dict[int, list[str]] = {}
    for k in dumps:
        by_frame.setdefault(int(k[5:8]), []).append(k)
    from napari_sam2.engine.preprocess import video_input

    for f, keys in by_frame.items():
        with torch.inference_mode():
            feats = model.encode_image(video_input(frames[f], model.image_size)[None])
        ours = {"backbone_fpn0": feats.high_res[0], "backbone_fpn1": feats.high_res[1],
                "backbone_fpn2": feats.vision, "vision_pos_enc2": feats.vision_pos}
        for k in keys:
            ref = case.arrays[k].astype(np.float32)
            got = ours[k.split("_", 2)[2]].numpy()
            diff = np.abs(got - ref)
            assert (diff <= 1e-3 + 1e-3 * np.abs(ref)).all(), f"{k}: max diff {diff.max():.3g}"


@pytest.mark.parametrize("case", cases_with(has_image_step, "an image_predict step"), indirect=True)
def test_image_predictor_matches(case: Case):
    check = run_image_steps(case)
    assert check.checked > 0
    assert not check.errors, "\n".join(check.errors)


@pytest.mark.parametrize("case", cases_with(has_video_steps, "video steps"), indirect=True)
def test_video_session_matches(case: Case):
    check = run_video_steps(case)
    assert check.checked > 0
    assert not check.errors, "\n".join(check.errors)


@pytest.mark.parametrize("case", cases_with(is_amg, "an amg_generate run (automatic mask generation)"),
                         indirect=True)
def test_mask_generator_matches(case: Case):
    check = run_amg_generate(case)
    assert check.checked > 0
    for note in check.notes:  # reported, not required (README "How to compare")
        print("note:", note)
    assert not check.errors, "\n".join(check.errors)


@pytest.mark.parametrize("case", cases_with(is_amg, "an amg_generate run (automatic mask generation)"),
                         indirect=True)
def test_amg_comparison_rejects_real_differences(case: Case):
    """The official output itself passes the comparison; a lost mask or a shifted score does not."""
    from _amg_runner import compare_run, official_record
    from _reference_runner import Checker

    run = case.meta["runs"][0]
    bits = case.arrays["r0_segmentation_bits"]
    width = int(case.meta["image"]["shape"][1])
    official = []
    for i in range(len(bits)):
        rec = official_record(case, "r0_", i)
        rec["segmentation"] = np.unpackbits(bits[i], axis=-1)[:, :width].astype(bool)
        official.append(rec)
    calls = [dict(c) for c in run.get("nms_calls", [])]

    def errors(ours, nms_calls=calls):
        check = Checker(case)
        compare_run(check, case, 0, run, ours, nms_calls, width)
        return check.errors

    assert errors(official) == []
    assert errors(official[1:])  # one official mask missing
    shifted = [dict(o) for o in official]
    shifted[0]["stability_score"] += 2e-3
    assert errors(shifted)
    eroded = [dict(o) for o in official]
    eroded[0]["segmentation"] = eroded[0]["segmentation"].copy()
    eroded[0]["segmentation"][: len(eroded[0]["segmentation"]) // 10] = False  # IoU below 0.99
    assert errors(eroded)
    if calls:
        assert errors(official, [dict(c, n_kept=c["n_kept"] + 5) for c in calls])


def test_tolerance_helpers_reject_real_differences():
    ref = np.array([1.0, -1024.0, 10.0], np.float32)
    assert logits_close(ref.copy(), ref)[0]
    assert not logits_close(ref + np.array([0.01, 0, 0], np.float32), ref)[0]
    assert not logits_close(np.array([1.0, -1000.0, 10.0], np.float32), ref)[0]


@pytest.mark.parametrize(
    "case", cases_with(has_hole_counts, "hole-filling counts (lowres_pixels_in_background_components_le_8px)"),
    indirect=True,
)
def test_hole_filling_touches_the_recorded_pixels(case: Case):
    """Our host-side hole filling changes exactly the pixels the fixtures counted."""
    from napari_sam2.engine.postprocess import fill_holes

    checked = 0
    for ev in case.meta["events"]:
        key = f"e{ev['event']:03d}_lowres_logits"
        counts = ev.get("lowres_pixels_in_background_components_le_8px")
        if counts is None or key not in case.arrays:
            continue
        low = torch.from_numpy(case.arrays[key].astype(np.float32))
        filled = fill_holes(low, 8)
        changed = (filled != low).flatten(1).sum(1).tolist()
        assert changed == counts, f"event {ev['event']}: {changed} vs {counts}"
        checked += 1
    assert checked > 0
