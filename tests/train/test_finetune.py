"""Fine-tuning end to end on CPU: the loss falls, the checkpoint loads everywhere, resume continues,
the CLI trains from TIFF files, bad input is one clear message. Real files, the real model (the
miniature test architecture at 256 px, random weights to start from)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.cli import main
from napari_sam2.errors import InputError
from napari_sam2.model.loading import load_model
from napari_sam2.model.testing import random_model
from napari_sam2.train import TrainSettings, finetune
from napari_sam2.train.clip_forward import clip_forward
from napari_sam2.train.data import ClipSampler
from napari_sam2.train.losses import frame_loss
from napari_sam2.train.prompts import Prompt, add_clicks, correction_click, sample_prompt

T, H, W = 8, 64, 64
FAST = dict(clip_len=2, lr=1e-3, train="decoder", prompt_kinds=("box",), box_jitter=0.0, correction_rounds=0)


def cells(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A moving bright disc (object 1) and a still one (object 2) on noise, with their labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    stack = np.full((T, H, W), 20, np.uint8)
    labels = np.zeros((T, H, W), np.uint16)
    for t in range(T):
        for obj, (r, c, r2, v) in {1: (24 + t, 20 + 2 * t, 80, 200), 2: (45, 45, 60, 180)}.items():
            m = (yy - r) ** 2 + (xx - c) ** 2 < r2
            stack[t][m], labels[t][m] = v, obj
    return stack + rng.integers(0, 20, stack.shape).astype(np.uint8), labels


def log_rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_loss_falls_the_checkpoint_loads_and_resume_continues(tmp_path):
    stack, labels = cells()
    model = random_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "mine.pt"
    steps = []
    row = finetune(model, [stack], [labels], out, TrainSettings(steps=18, val_every=6, **FAST),
                   base="random test model", progress=lambda s, n, r: steps.append(s))
    assert steps == list(range(1, 19)) and row["step"] == 18
    rows = log_rows(tmp_path / "mine.log.csv")
    assert [int(r["step"]) for r in rows] == [6, 12, 18]
    assert float(rows[-1]["loss"]) < 0.5 * float(rows[0]["loss"])  # mean loss of steps 13-18 vs 1-6
    assert all(0.0 <= float(r["val_J"]) <= 1.0 and 0.0 <= float(r["val_F"]) <= 1.0 for r in rows)
    state = model.state_dict()
    changed = {k for k in state if not torch.equal(state[k], before[k])}
    assert changed and all(k.startswith(("sam_mask_decoder.", "obj_ptr_proj.")) for k in changed)  # decoder only

    loaded = load_model(out, device="cpu", dtype=torch.float32)  # strict key match, official layout
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, state[k])
    meta = torch.load(out, map_location="cpu", weights_only=True)["napari_sam2"]
    assert meta["base"] == "random test model" and meta["step"] == 18 and meta["settings"]["train"] == "decoder"

    finetune(model, [stack], [labels], out, TrainSettings(steps=24, val_every=6, **FAST), resume=True)
    assert [int(r["step"]) for r in log_rows(tmp_path / "mine.log.csv")] == [6, 12, 18, 24]


def test_memory_training_changes_memory_weights_and_keeps_the_encoder(tmp_path):
    stack, labels = cells(1)
    model = random_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finetune(model, [stack], [labels], tmp_path / "m.pt",
             TrainSettings(steps=2, val_every=2, **{**FAST, "train": "memory", "correction_rounds": 1,
                                                    "prompt_kinds": ("click",)}))
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert {"memory_attention", "memory_encoder"} <= changed and "image_encoder" not in changed


def test_the_cli_trains_from_tiff_files_and_its_output_is_a_model(tmp_path, capsys):
    stack, labels = cells(2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "movie_labels.tif", labels)
    base = tmp_path / "base.pt"
    torch.save({"model": random_model().state_dict()}, base)
    out = tmp_path / "tuned.pt"
    code = main(["finetune", str(tmp_path / "movie.tif"), "--labels", str(tmp_path / "movie_labels.tif"),
                 "--model", str(base), "--out", str(out), "--steps", "3", "--clip-len", "2", "--val-every", "3",
                 "--device", "cpu"])
    err = capsys.readouterr().err  # progress goes to stderr, as segment's
    assert code == 0, err
    assert "step 3/3" in err and "wrote" in err
    assert load_model(out, device="cpu").image_size == 256
    assert [int(r["step"]) for r in log_rows(tmp_path / "tuned.log.csv")] == [3]
    # a stack without its labels: one line naming the fix, exit 2 or an input error code
    code = main(["finetune", str(tmp_path / "movie.tif"), str(tmp_path / "movie.tif"), "--labels",
                 str(tmp_path / "movie_labels.tif"), "--model", str(base), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and "one --labels file per stack" in err and "Traceback" not in err


def test_bad_training_input_is_refused_with_the_fix(tmp_path):
    stack, labels = cells()
    model = random_model()
    with pytest.raises(InputError, match="same size"):
        finetune(model, [stack], [labels[:, :32]], tmp_path / "x.pt", TrainSettings(steps=1))
    with pytest.raises(InputError, match="integer instance ids"):
        finetune(model, [stack], [labels.astype(np.float32)], tmp_path / "x.pt", TrainSettings(steps=1))
    with pytest.raises(InputError, match="label at least one object"):
        finetune(model, [stack], [labels * 0], tmp_path / "x.pt", TrainSettings(steps=1))
    with pytest.raises(InputError, match="train must be one of"):
        TrainSettings(train="encoder")
    with pytest.raises(Exception, match="does not exist"):
        finetune(model, [stack], [labels], tmp_path / "no" / "x.pt", TrainSettings(steps=1))


def test_prompts_and_losses_follow_their_rules():
    target = torch.zeros(1, 32, 32)
    target[0, 8:20, 10:24] = 1
    rng = np.random.default_rng(0)
    click = sample_prompt(target, rng, kinds=("click",))
    x, y = click.coords[0, 0].tolist()
    assert target[0, int(y), int(x)] == 1 and click.labels.tolist() == [[1]]
    box = sample_prompt(target, rng, kinds=("box",), box_jitter=0.0)
    assert box.coords[0].tolist() == [[10.0, 8.0], [24.0, 20.0]] and box.labels.tolist() == [[2, 3]]
    assert sample_prompt(target, rng, kinds=("mask",)).mask.shape == (1, 1, 32, 32)
    pred = target[0] > 0.5
    pred[8:20, 17:24] = False  # the right half missed: a positive click inside it
    (cx, cy), label = correction_click(pred, target[0] > 0.5)
    assert label == 1 and 17 <= cx < 24 and 8 <= cy < 20
    spill = target[0] > 0.5
    spill[0:30, 0:8] = True  # background taken: a negative click there
    assert correction_click(spill, target[0] > 0.5)[1] == 0
    assert correction_click(target[0] > 0.5, target[0] > 0.5) is None
    good = (target * 40 - 20).expand(3, 32, 32).clone()
    good[1:] *= -1  # two wrong candidates: the min over candidates picks the right one
    loss = frame_loss(good, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([8.0]), target[0])
    bad = frame_loss(-good, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-8.0]), target[0])
    assert loss.iou == 1.0 and loss.total < 0.05 < bad.total


def test_objects_of_a_clip_train_as_one_batch_with_the_losses_of_each_alone():
    stack, labels = cells(3)
    sampler = ClipSampler([stack], [labels], 256, clip_len=3, seed=0, max_objects=4)
    clip = sampler.sample()
    assert sorted(clip.obj_ids) == [1, 2] and clip.masks.shape == (3, 2, 256, 256)  # both ids: fewer than 4
    for b, obj in enumerate(clip.obj_ids):
        assert torch.equal(clip.masks[:, b] > 0, sampler.clip(0, clip.start, [obj]).masks[:, 0] > 0)
    model = random_model()
    prompt = sample_prompt(clip.masks[0], np.random.default_rng(0), kinds=("box",), box_jitter=0.0)
    assert prompt.coords.shape == (2, 2, 2) and prompt.labels.tolist() == [[2, 3], [2, 3]]
    with torch.no_grad():
        both = clip_forward(model, clip, prompt, correction_rounds=0)
        alone = [clip_forward(model, sampler.clip(0, clip.start, [obj]),
                              Prompt(prompt.coords[b: b + 1], prompt.labels[b: b + 1], None, "box"), 0)
                 for b, obj in enumerate(clip.obj_ids)]
    assert len(both.frames) == 3 and both.masks[0].shape == (2, 256, 256)
    torch.testing.assert_close(both.loss, torch.stack([a.loss for a in alone]).mean(), rtol=1e-4, atol=1e-5)
    for b in range(2):
        assert all(torch.equal(m[b], a[0]) for m, a in zip(both.masks, alone[b].masks))


def test_a_correction_round_pads_objects_that_need_no_click():
    prompt = Prompt(torch.tensor([[[5.0, 5.0]], [[9.0, 9.0]]]), torch.ones(2, 1, dtype=torch.int32), None, "click")
    fixed = add_clicks(prompt, [((3.5, 4.5), 0), None])
    assert fixed.coords.shape == (2, 2, 2) and fixed.labels.tolist() == [[1, 0], [1, -1]]  # -1: not a point
    assert fixed.coords[0, 1].tolist() == [3.5, 4.5]
