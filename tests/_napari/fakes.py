"""A deterministic stand-in for ``VideoSession`` (same calls, no network), for widget mechanics.

Masks are discs around positive clicks (minus discs around negative ones) or the box; propagation
carries each object's last mask to the next frame shifted by one pixel, and makes object 2 vanish
on frames listed in ``absent`` so the review list has something to show. ``delay`` slows each frame.
"""

from __future__ import annotations

import time

import numpy as np

from napari_sam2.engine.results import FrameResult


class FakeSession:
    def __init__(self, model, data, axis=0, delay=0.0, absent=(), **kwargs):
        self.shape = tuple(data.shape[:3]) if data.ndim == 3 else tuple(data.shape[:-1])
        self.axis = axis
        self.num_frames = self.shape[axis]
        self.frame_shape = self.shape[-2:]
        self.delay = delay
        self.absent = set(absent)
        self._masks: dict[int, dict[int, np.ndarray]] = {}  # frame -> obj -> mask
        self._radius: dict[tuple[int, int], int] = {}
        self.calls: list[tuple] = []
        self.prefetched: list = []

    @property
    def obj_ids(self):
        return sorted({o for m in self._masks.values() for o in m})

    def _disc(self, center, r):
        yy, xx = np.mgrid[: self.frame_shape[0], : self.frame_shape[1]]
        return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= r * r

    def _result(self, frame):
        ids = tuple(self.obj_ids)
        masks = np.stack([self._masks.get(frame, {}).get(o, np.zeros(self.frame_shape, bool)) for o in ids])
        present = masks.reshape(len(ids), -1).any(axis=1)
        scores = np.where(present, 0.95, 0.05).astype(np.float32)
        ones = np.ones(len(ids), np.float32)
        return FrameResult(frame, ids, masks, scores, present, ones, ones)

    def add_points(self, frame, obj_id, points, labels, clear=True):
        self.calls.append(("points", frame, obj_id, np.asarray(points).tolist(), np.asarray(labels).tolist()))
        r = self._radius.get((frame, obj_id), 5)
        m = np.zeros(self.frame_shape, bool)
        for p, lab in zip(points, labels):
            if lab:
                m |= self._disc(p, r)
        for p, lab in zip(points, labels):
            if not lab:
                m &= ~self._disc(p, 3)
        self._masks.setdefault(frame, {})[obj_id] = m
        return self._result(frame)

    def add_box(self, frame, obj_id, box, points=None, labels=None):
        self.calls.append(("box", frame, obj_id, np.asarray(box).tolist()))
        m = np.zeros(self.frame_shape, bool)
        r0, c0, r1, c1 = np.round(box).astype(int)
        m[r0 : r1 + 1, c0 : c1 + 1] = True
        self._masks.setdefault(frame, {})[obj_id] = m
        return self._result(frame)

    def add_mask(self, frame, obj_id, mask):
        self.calls.append(("mask", frame, obj_id))
        self._masks.setdefault(frame, {})[obj_id] = np.asarray(mask, bool)
        return self._result(frame)

    def num_candidates(self, frame, obj_id):
        return 3

    def choose_candidate(self, frame, obj_id, k):
        m = self._masks[frame][obj_id]
        rows, cols = np.nonzero(m)
        center = (rows.mean(), cols.mean())
        self._radius[(frame, obj_id)] = 5 + 3 * k
        self._masks[frame][obj_id] = self._disc(center, 5 + 3 * k)
        return self._result(frame)

    def clear_prompts(self, frame, obj_id=None):
        self.calls.append(("clear", frame, obj_id))
        if obj_id is None:
            self._masks.pop(frame, None)
        else:
            self._masks.get(frame, {}).pop(obj_id, None)

    def remove_object(self, obj_id):
        self.calls.append(("remove", obj_id))
        for m in self._masks.values():
            m.pop(obj_id, None)

    def reset(self):
        self._masks.clear()

    def prefetch(self, frame):
        self.prefetched.append(frame)

    def propagate(self, direction="forward", start=None, stop=None, cancel=None):
        self.calls.append(("propagate", direction, start, stop))
        start = 0 if start is None else start
        n = self.num_frames
        lo, hi = 0, n - 1
        if stop is not None:
            if direction == "both":
                lo, hi = stop
            elif direction == "forward":
                hi = stop
            else:
                lo = stop
        fwd = range(start, hi + 1)
        bwd = range(start, lo - 1, -1)
        orders = {"forward": [fwd], "backward": [bwd], "both": [fwd, bwd]}[direction]
        for order in orders:
            prev = dict(self._masks.get(start, {}))
            for f in order:
                if cancel is not None and cancel.is_set():
                    return
                time.sleep(self.delay)
                if f != start:
                    step = 1 if f > start else -1
                    prev = {o: np.roll(m, step, axis=1) for o, m in prev.items()}
                    cur = dict(prev)
                    if f in self.absent and 2 in cur:
                        cur[2] = np.zeros(self.frame_shape, bool)
                    self._masks[f] = cur
                yield self._result(f)
