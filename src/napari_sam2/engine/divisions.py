"""Spotting dividing objects: a tracked mask that splits into two parts that stay apart.

A dividing cell's mask first pinches, then becomes two separate components. ``DivisionWatch``
looks at each object's mask on every tracked frame; when it holds two sizeable components on
``frames`` consecutive frames, the object divided on the first of them, and the two components
of that frame seed the daughters. Only the components of the frame a split run started on are
kept (two masks per splitting object), so memory does not grow with the video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import label as label_components

from ..errors import InputError
from .results import FrameResult


@dataclass
class Division:
    """``parent`` divided on ``frame`` into the two ``parts`` (bool (Y, X) masks of that frame)."""

    parent: int
    frame: int
    parts: tuple[np.ndarray, np.ndarray]


class DivisionWatch:
    """Per-object split runs along a forward propagation.

    ``frames``: consecutive frames a split must last to count (a mask that briefly pinches in two
    is not a division). ``min_fraction`` / ``min_area``: each part must hold at least this share of
    the object's pixels and this many pixels (debris and one-pixel specks are not daughters).
    """

    def __init__(self, frames: int = 3, min_fraction: float = 0.2, min_area: int = 10) -> None:
        if int(frames) != frames or frames < 1:
            raise InputError(f"division_frames must be a whole number >= 1; got {frames!r}.")
        if not 0 < min_fraction <= 0.5:
            raise InputError(f"The division part fraction must be in (0, 0.5]; got {min_fraction!r}.")
        self.frames = int(frames)
        self.min_fraction = float(min_fraction)
        self.min_area = int(min_area)
        self._runs: dict[int, Division] = {}  # obj_id -> the split run under way (its first frame)

    def parts(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The two largest sizeable components of ``mask`` (top one first), or None when it is in one piece."""
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows) == 0:
            return None
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        lab, n = label_components(mask[r0:r1, c0:c1], connectivity=2, return_num=True)
        if n < 2:
            return None
        sizes = np.bincount(lab.ravel())[1:]
        need = max(self.min_area, self.min_fraction * sizes.sum())
        big = np.argsort(sizes)[::-1][:2]
        if sizes[big[1]] < need:
            return None
        out = []
        for k in sorted(big, key=lambda k: np.flatnonzero(lab == k + 1)[0]):  # raster order: top part first
            full = np.zeros_like(mask)
            full[r0:r1, c0:c1] = lab == k + 1
            out.append(full)
        return out[0], out[1]

    def update(self, res: FrameResult) -> list[Division]:
        """Look at one tracked frame (frames come in order); the divisions confirmed on it."""
        done = []
        for i, obj_id in enumerate(res.obj_ids):
            split = self.parts(res.masks[i]) if res.present[i] else None
            if split is None:
                self._runs.pop(obj_id, None)
                continue
            run = self._runs.setdefault(obj_id, Division(obj_id, res.frame, split))
            if res.frame - run.frame + 1 >= self.frames:
                done.append(self._runs.pop(obj_id))
        return done

    def rewind(self, frame: int) -> None:
        """Tracking restarts at ``frame``: forget split runs that began there or later."""
        self._runs = {k: r for k, r in self._runs.items() if r.frame < frame}

    def forget(self, obj_id: int) -> None:
        self._runs.pop(obj_id, None)
