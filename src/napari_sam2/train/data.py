"""Training clips from what users have: stacks with label images (instance ids consistent over time).

A :class:`ClipSampler` draws clips of ``clip_len`` consecutive frames of one (T, Y, X[, C]) stack and
up to ``max_objects`` objects: ids present on the clip's first frame, trained together as one batch.
Frames go through the engine's own input path (intensity range of the stack, grey to RGB, the
official video resize and normalisation), so the model is trained on exactly what it sees at
inference. Target masks are resized to the model's input
size with nearest neighbour. Stacks may be numpy, memory-mapped TIFF, zarr or dask: frames are read
when a clip needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.preprocess import robust_range, to_rgb, to_uint8, video_input
from ..errors import InputError


@dataclass
class Clip:
    """One training clip: model inputs and the object's target masks."""

    frames: torch.Tensor  # (k, 3, S, S) normalised float32
    masks: torch.Tensor  # (k, B, S, S) float32 in {0, 1}: B objects
    stack: int  # index of the stack it came from
    start: int  # its first frame
    obj_ids: tuple[int, ...]


def check_pairs(stacks: Sequence[Any], labels: Sequence[Any]) -> None:
    """One label stack per image stack, same (T, Y, X); else an InputError naming the pair."""
    if len(stacks) != len(labels) or not stacks:
        raise InputError(f"Give one label stack per image stack (got {len(stacks)} stacks and {len(labels)} "
                         "label stacks).")
    for i, (s, lab) in enumerate(zip(stacks, labels)):
        if s.ndim not in (3, 4) or tuple(s.shape[:3]) != tuple(lab.shape) or lab.ndim != 3:
            raise InputError(f"Pair {i}: the stack {tuple(s.shape)} and its labels {tuple(lab.shape)} must be "
                             "(T, Y, X[, C]) and (T, Y, X) of the same size.")
        if np.dtype(lab.dtype).kind not in "iu":
            raise InputError(f"Pair {i}: labels must be integer instance ids, not {lab.dtype}.")


class ClipSampler:
    """Random clips (seeded) of the given (stack, labels) pairs, or the fixed list of :meth:`all_clips`."""

    def __init__(self, stacks: Sequence[Any], labels: Sequence[Any], image_size: int, clip_len: int = 4,
                 seed: int = 0, max_objects: int = 1) -> None:
        check_pairs(stacks, labels)
        self.stacks, self.labels = list(stacks), list(labels)
        self.image_size, self.clip_len, self.max_objects = int(image_size), int(clip_len), int(max_objects)
        if self.clip_len < 1 or self.max_objects < 1:
            raise InputError(f"clip_len and max_objects must be at least 1, not {clip_len} and {max_objects}.")
        self.rng = np.random.default_rng(seed)
        self.ranges = [self._range(s) for s in self.stacks]
        self.starts = [(i, t) for i, s in enumerate(self.stacks) for t in range(max(s.shape[0] - self.clip_len + 1, 0))
                       if np.any(np.asarray(self.labels[i][t]))]
        if not self.starts:
            raise InputError(f"No clip of {self.clip_len} frames starts on a frame with labels; label at least one "
                             "object on an early frame, or lower clip_len.")

    @staticmethod
    def _range(stack: Any) -> tuple[float, float] | None:
        if np.dtype(stack.dtype) == np.uint8:
            return None
        picks = np.linspace(0, stack.shape[0] - 1, num=min(stack.shape[0], 8)).astype(int)
        return robust_range(np.stack([np.asarray(stack[int(t)]) for t in picks]))

    def _frame(self, i: int, t: int) -> torch.Tensor:
        rgb = to_rgb(to_uint8(np.asarray(self.stacks[i][t]), self.ranges[i]), None)
        return video_input(rgb, self.image_size)

    def _masks(self, i: int, t: int, obj_ids: Sequence[int]) -> torch.Tensor:
        lab = torch.from_numpy(np.array(self.labels[i][t]))
        m = torch.stack([lab == o for o in obj_ids]).float()[None]
        return F.interpolate(m, size=(self.image_size, self.image_size), mode="nearest")[0]

    def clip(self, i: int, start: int, obj_ids: Sequence[int]) -> Clip:
        ts = range(start, start + self.clip_len)
        return Clip(torch.stack([self._frame(i, t) for t in ts]), torch.stack([self._masks(i, t, obj_ids) for t in ts]),
                    i, start, tuple(int(o) for o in obj_ids))

    def _ids(self, i: int, start: int) -> np.ndarray:
        ids = np.unique(np.asarray(self.labels[i][start]))
        return ids[ids > 0]

    def sample(self) -> Clip:
        """A random clip and up to ``max_objects`` random objects (ids on its first frame)."""
        i, start = self.starts[int(self.rng.integers(len(self.starts)))]
        ids = self._ids(i, start)
        pick = self.rng.choice(ids, size=min(len(ids), self.max_objects), replace=False)
        return self.clip(i, start, pick)

    def all_clips(self, max_clips: int = 16) -> list[Clip]:
        """A fixed, spread-out set of up to ``max_clips`` clips (validation), each with the first
        ``max_objects`` objects of its first frame."""
        picks = [self.starts[int(k)] for k in np.linspace(0, len(self.starts) - 1, num=min(len(self.starts),
                                                                                          max_clips)).astype(int)]
        return [self.clip(i, start, self._ids(i, start)[: self.max_objects]) for i, start in dict.fromkeys(picks)]
