"""Fine-tune SAM 2 (or train a small one from scratch) on stacks with label images.

``finetune(model, stacks, labels, out=..., settings=TrainSettings(...))`` runs AdamW over random clips
(:mod:`.data`) with prompts sampled as SAM 2 is trained (:mod:`.prompts`), SAM 2's losses
(:mod:`.losses`) and memory propagation through the clip (:mod:`.clip_forward`). What is trained:

* ``"decoder"``: the mask decoder and the object-pointer projection;
* ``"memory"``: those plus memory attention, memory encoder, the prompt encoder and the learned
  memory / pointer embeddings;
* ``"all"``: every weight, the image encoder too.

Validation (``val_every`` steps, and at the end): one deterministic click per object on a clip's first
frame, then propagation; mean J (IoU) and F (boundary F-measure, 2 px tolerance) over the tracked
frames. The validation clips come from the last stack when there are several, else from the last
``val_fraction`` of each stack's frames (never trained on). Each validation step writes a CSV row
(``<out>.log.csv``) and a checkpoint: ``out`` holds ``{"model": state_dict}`` in the official key
layout (``load_model(out)`` reads it in the widget, CLI and API) plus ``"napari_sam2"``: base model,
settings, step and validation scores; ``<out>.train.pt`` holds the optimizer to resume from.
Mixed precision (bf16 autocast) on CUDA, and on the CPU when asked (``bf16=True``); CPU works for
smoke runs and small models.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputError, OutputError
from ..model.sam2 import Sam2Model
from .clip_forward import clip_forward
from .data import ClipSampler, check_pairs
from .prompts import KINDS, Prompt, _inside, sample_prompt

PARTS = ("decoder", "memory", "all")
_DECODER = ("sam_mask_decoder.", "obj_ptr_proj.")
_MEMORY = _DECODER + ("memory_attention.", "memory_encoder.", "sam_prompt_encoder.", "maskmem_tpos_enc",
                      "no_mem_embed", "no_obj_ptr", "no_obj_embed_spatial", "obj_ptr_tpos_proj.",
                      "mask_downsample.")
LOG_COLUMNS = ("step", "loss", "focal", "dice", "iou", "score", "train_iou", "val_J", "val_F", "seconds")


@dataclass
class TrainSettings:
    """Training settings (recorded in the checkpoint)."""

    steps: int = 1000
    clip_len: int = 4
    objects: int = 1  # objects per clip, trained as one batch (the encoder runs once per frame for all)
    lr: float = 1e-5
    weight_decay: float = 0.01
    train: str = "decoder"
    correction_rounds: int = 1
    val_every: int = 100
    val_fraction: float = 0.2
    val_clips: int = 16
    grad_clip: float = 0.1
    warmup: int = 0  # steps of linear learning-rate warm-up
    schedule: str = "constant"  # or "cosine": decay to lr / 10 at the last step (after the warm-up)
    prompt_kinds: tuple[str, ...] = ("click", "box", "mask")  # first prompts drawn (click 50 %, box 30 %, mask 20 %)
    box_jitter: float = 0.1  # box corners move by this fraction of the box size (normal sd)
    bf16: bool | None = None  # bf16 autocast; None: on CUDA only (on a CPU with bf16 units it is ~1.3x faster)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train not in PARTS:
            raise InputError(f"train must be one of {', '.join(PARTS)}, not {self.train!r}.")
        for name in ("steps", "clip_len", "objects", "val_every", "val_clips"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, not {getattr(self, name)!r}.")
        self.prompt_kinds = tuple(self.prompt_kinds)
        if not self.prompt_kinds or set(self.prompt_kinds) - set(KINDS):
            raise InputError(f"prompt_kinds must be some of {', '.join(KINDS)}, not {self.prompt_kinds!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be constant or cosine, not {self.schedule!r}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"val_fraction must be in [0, 1), not {self.val_fraction!r}.")


def trainable(model: Sam2Model, part: str) -> list[torch.nn.Parameter]:
    """Mark the parameters of ``part`` trainable (the others frozen); returns them."""
    chosen = []
    for name, p in model.named_parameters():
        on = part == "all" or name.startswith(_MEMORY if part == "memory" else _DECODER)
        p.requires_grad_(on)
        if on:
            chosen.append(p)
    return chosen


def learning_rate(settings: TrainSettings, step: int) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then constant or cosine to lr / 10."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    if settings.schedule == "constant":
        return settings.lr
    span = max(settings.steps - settings.warmup - 1, 1)
    k = min((step - settings.warmup) / span, 1.0)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * k)))


def split(stacks: Sequence[Any], labels: Sequence[Any], val_fraction: float, clip_len: int):
    """(train stacks, train labels, val stacks, val labels); see the module docstring. A single stack
    too short to give both parts a clip is all training (no validation)."""
    if len(stacks) > 1:
        return list(stacks[:-1]), list(labels[:-1]), [stacks[-1]], [labels[-1]]
    s, lab = stacks[0], labels[0]
    n = int(s.shape[0])
    if val_fraction <= 0 or n < 2 * clip_len:
        return list(stacks), list(labels), [], []
    cut = min(int(round(n * (1 - val_fraction))), n - clip_len)
    return [s[:cut]], [lab[:cut]], [s[cut:]], [lab[cut:]]


def boundary_f(pred: np.ndarray, target: np.ndarray, tol: int = 2) -> float:
    """Boundary F-measure of two masks with ``tol`` px tolerance (DAVIS' F, simplified)."""
    def edge(m: np.ndarray) -> np.ndarray:
        return m & ~ndimage.binary_erosion(m)

    pe, te = edge(pred), edge(target)
    if not pe.any() and not te.any():
        return 1.0
    if not pe.any() or not te.any():
        return 0.0
    near_t = ndimage.binary_dilation(te, iterations=tol)
    near_p = ndimage.binary_dilation(pe, iterations=tol)
    precision, recall = (pe & near_t).sum() / pe.sum(), (te & near_p).sum() / te.sum()
    return float(2 * precision * recall / max(precision + recall, 1e-9))


def validate(model: Sam2Model, clips: list) -> tuple[float, float]:
    """Mean J and F over the tracked frames and objects of ``clips`` (one innermost click per object;
    with one-frame clips, over that prompted frame); NaN without clips."""
    if not clips:
        return float("nan"), float("nan")
    js, fs = [], []
    was = model.training
    model.eval()
    with torch.no_grad():
        for clip in clips:
            first = [_inside(m.numpy() > 0.5) for m in clip.masks[0]]
            prompt = Prompt(torch.tensor([[[c + 0.5, r + 0.5]] for r, c in first]),
                            torch.ones(len(first), 1, dtype=torch.int32), None, "click")
            out = clip_forward(model, clip, prompt, correction_rounds=0)
            tracked = slice(1, None) if len(out.masks) > 1 else slice(0, 1)  # single-frame clips: the click
            for preds, targets in zip(out.masks[tracked], clip.masks[tracked].numpy() > 0.5):
                for pred, target in zip(preds.numpy(), targets):
                    union = (pred | target).sum()
                    js.append(1.0 if union == 0 else float((pred & target).sum() / union))
                    fs.append(boundary_f(pred, target))
    model.train(was)
    return float(np.mean(js)) if js else float("nan"), float(np.mean(fs)) if fs else float("nan")


def _paths(out: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out)
    if not out.parent.is_dir():
        raise OutputError(f"The folder {out.parent} does not exist; choose an existing folder for --out.")
    return out, out.with_name(out.stem + ".train.pt"), out.with_name(out.stem + ".log.csv")


def save_checkpoint(path: Path, model: Sam2Model, meta: dict[str, Any]) -> None:
    """``{"model": state_dict, "napari_sam2": meta}``, written atomically."""
    tmp = path.with_name(path.name + ".part")
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "napari_sam2": meta}, tmp)
    tmp.replace(path)


def finetune(model: Sam2Model, stacks: Sequence[Any], labels: Sequence[Any], out: str | Path,
             settings: TrainSettings | None = None, *, base: str = "", resume: bool = False,
             progress: Callable[[int, int, dict[str, float]], None] | None = None,
             cancel: Any = None) -> dict[str, Any]:
    """Train ``model`` in place on (stack, labels) pairs; writes ``out`` (see the module docstring).

    Returns the last log row (step, losses, val_J, val_F, ...). ``progress(step, steps, row)`` is
    called after every step; ``cancel`` (a ``threading.Event``) stops after the current step and
    saves. ``resume`` continues from ``<out>.train.pt`` when it exists.
    """
    settings = settings or TrainSettings()
    check_pairs(stacks, labels)
    ckpt_path, state_path, log_path = _paths(out)
    train_s, train_l, val_s, val_l = split(stacks, labels, settings.val_fraction, settings.clip_len)
    size = model.image_size
    sampler = ClipSampler(train_s, train_l, size, settings.clip_len, settings.seed, settings.objects)
    val_clips = (ClipSampler(val_s, val_l, size, settings.clip_len, settings.seed + 1, settings.objects)
                 .all_clips(settings.val_clips) if val_s else [])
    params = trainable(model, settings.train)
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    step = 0
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        sampler.rng = np.random.default_rng([settings.seed, step])
    rng = np.random.default_rng([settings.seed, step, 1])
    new_log = not (resume and log_path.exists())
    if new_log:
        with open(log_path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(LOG_COLUMNS)
    dev_type = model.device.type
    amp = dev_type == "cuda" if settings.bf16 is None else bool(settings.bf16)
    model.train()
    start, row = time.perf_counter(), {}
    acc: list[dict[str, float]] = []
    while step < settings.steps:
        clip = sampler.sample()
        prompt = sample_prompt(clip.masks[0], rng, kinds=settings.prompt_kinds, box_jitter=settings.box_jitter)
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=amp):
            result = clip_forward(model, clip, prompt, settings.correction_rounds)
        if not result.frames:  # a mask prompt on a one-frame clip: nothing is predicted, nothing to learn
            continue
        opt.zero_grad(set_to_none=True)
        result.loss.backward()
        for group in opt.param_groups:
            group["lr"] = learning_rate(settings, step)
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        step += 1
        acc.append({"loss": float(result.loss.detach()), **result.parts, "train_iou": result.iou})
        stop = cancel is not None and cancel.is_set()
        last = step == settings.steps or stop
        row = {"step": step, **{k: float(np.mean([a[k] for a in acc])) for k in acc[0]},
               "val_J": float("nan"), "val_F": float("nan"), "seconds": time.perf_counter() - start}
        if step % settings.val_every == 0 or last:
            row["val_J"], row["val_F"] = validate(model, val_clips)
            with open(log_path, "a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow([f"{row[c]:.6g}" if isinstance(row[c], float) else row[c] for c in LOG_COLUMNS])
            acc = []
            meta = {"base": base, "settings": asdict(settings), "step": step,
                    "val_J": row["val_J"], "val_F": row["val_F"], "image_size": size}
            save_checkpoint(ckpt_path, model, meta)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, state_path)
        if progress is not None:
            progress(step, settings.steps, row)
        if stop:
            break
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return row
