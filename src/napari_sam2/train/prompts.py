"""Prompts sampled from target masks, as SAM 2 is trained: a click, a jittered box or the mask itself,
then correction clicks on the error region.

Coordinates are (x, y) in model-input pixels (what ``Sam2Model.sam_heads`` takes); click labels are
1 (object), 0 (background), 2 / 3 (box corners). A correction click goes to the pixel of the larger
error (missed object -> positive, spilled background -> negative) farthest from the error's border,
so it lands inside the mistake (SAM's and SAM 2's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

KINDS = ("click", "box", "mask")


@dataclass
class Prompt:
    coords: torch.Tensor | None  # (1, N, 2) float, (x, y)
    labels: torch.Tensor | None  # (1, N) int32
    mask: torch.Tensor | None  # (1, 1, S, S) in {0, 1}, for a mask prompt
    kind: str


def _inside(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) deepest inside ``mask`` (its distance-transform maximum)."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c)


def click_at(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A random pixel of ``mask`` (the first click of a user)."""
    rows, cols = np.nonzero(mask)
    k = int(rng.integers(len(rows)))
    return int(rows[k]), int(cols[k])


WEIGHTS = {"click": 0.5, "box": 0.3, "mask": 0.2}


def sample_prompt(target: torch.Tensor, rng: np.random.Generator, kinds: tuple[str, ...] = KINDS,
                  box_jitter: float = 0.1) -> Prompt:
    """First prompts for the (B, S, S) target masks of B objects, all of one of ``kinds`` (drawn with
    :data:`WEIGHTS`), so that they decode as one batch: a click each, a jittered box each, or the masks."""
    p = np.array([WEIGHTS[k] for k in kinds])
    kind = str(rng.choice(kinds, p=p / p.sum()))
    if kind == "mask":
        return Prompt(None, None, target[:, None].float(), kind)
    coords, labels = [], []
    for m in target.numpy() > 0.5:
        if kind == "click":
            r, c = click_at(m, rng)
            coords.append([[c + 0.5, r + 0.5]])
            labels.append([1])
            continue
        rows, cols = np.nonzero(m)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        h, w = r1 - r0, c1 - c0
        jit = rng.normal(0.0, box_jitter, 4) * np.array([w, h, w, h])
        box = np.clip(np.array([c0, r0, c1, r1], np.float64) + jit, 0, m.shape[0])
        coords.append([[box[0], box[1]], [box[2], box[3]]])
        labels.append([2, 3])
    return Prompt(torch.tensor(coords, dtype=torch.float32), torch.tensor(labels, dtype=torch.int32), None, kind)


def correction_click(pred: torch.Tensor, target: torch.Tensor) -> tuple[tuple[float, float], int] | None:
    """((x, y), label) of a click fixing the larger error of ``pred`` vs ``target`` (both (S, S) bool)."""
    p, t = pred.numpy(), target.numpy()
    missed, spilled = t & ~p, p & ~t
    err, label = (missed, 1) if missed.sum() >= spilled.sum() else (spilled, 0)
    if not err.any():
        return None
    r, c = _inside(err)
    return (c + 0.5, r + 0.5), label


def to_device(prompt: Prompt, device: torch.device) -> Prompt:
    """The prompt's tensors on ``device``."""
    def move(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(device)

    return Prompt(move(prompt.coords), move(prompt.labels), move(prompt.mask), prompt.kind)


def add_clicks(prompt: Prompt, fixes: list[tuple[tuple[float, float], int] | None]) -> Prompt:
    """``prompt`` of B objects with one more click each; an object without a fix (None) gets a padding
    point (label -1, which the prompt encoder ignores), so that all keep the same number of points."""
    dev = prompt.coords.device if prompt.coords is not None else None
    pts = [[fix[0] if fix else (0.0, 0.0)] for fix in fixes]
    pt = torch.tensor(pts, dtype=torch.float32, device=dev)
    lab = torch.tensor([[fix[1] if fix else -1] for fix in fixes], dtype=torch.int32, device=dev)
    coords = pt if prompt.coords is None else torch.cat([prompt.coords, pt], dim=1)
    labels = lab if prompt.labels is None else torch.cat([prompt.labels, lab], dim=1)
    return Prompt(coords, labels, None, prompt.kind)
