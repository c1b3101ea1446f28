"""Tracking quality on clips with ground truth: one click per object on frame 0, propagation, J.

Used by the demo model's benchmark (``benchmarks/bench_demo_quality.py``) and by tests that need a
model which really segments. The protocol:

* every object with at least ``min_area`` pixels on frame 0 gets one positive click there, at its
  innermost pixel (the maximum of the distance to its boundary);
* the session propagates forward over the whole clip (the engine and defaults every front end uses);
* J (IoU) is computed per object and frame, 1.0 where the object is absent and nothing is predicted.
  A dividing cell is scored against the union of its daughters after the division (the clicked
  object is the lineage);
* with ``correct=True`` each object's first drift (the first frame with J below ``drift_j``) gets
  one correction click (positive at the innermost pixel of the missed part when more is missed than
  spilled, else negative at the innermost pixel of the spill), and the clip is propagated again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..engine.video_session import VideoSession
from .prompts import _inside


@dataclass
class QualityResult:
    """Per object and frame J before (``j``) and after one correction per drift (``j_corrected``)."""

    obj_ids: list[int]
    j: np.ndarray  # (n_objects, T)
    j_corrected: np.ndarray | None = None
    corrections: dict[int, int] = field(default_factory=dict)  # obj_id -> corrected frame

    @property
    def mean_j(self) -> float:
        return float(self.j.mean()) if self.j.size else float("nan")

    @property
    def mean_j_corrected(self) -> float:
        return float(self.j_corrected.mean()) if self.j_corrected is not None and self.j.size else float("nan")


def innermost(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel of ``mask`` farthest from its boundary (of its largest component)."""
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, lab, range(1, n + 1))
        mask = lab == 1 + int(np.argmax(sizes))
    return _inside(mask)


def lineage_targets(labels: np.ndarray, obj_id: int, divisions: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(T, Y, X) bool ground truth of ``obj_id``, its daughters (and theirs) included after a division."""
    ids = {obj_id}
    changed = True
    while changed:
        changed = False
        for parent, d1, d2, _ in divisions:
            if parent in ids and not {d1, d2} <= ids:
                ids |= {d1, d2}
                changed = True
    return np.isin(labels, list(ids))


def _j(pred: np.ndarray, target: np.ndarray) -> float:
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def _track(session: VideoSession, n: int, ids: list[int]) -> np.ndarray:
    masks = np.zeros((len(ids), n) + session.frame_shape, dtype=bool)
    for res in session.propagate("forward"):
        for k, oid in enumerate(res.obj_ids):
            if oid in ids:
                masks[ids.index(oid), res.frame] = res.masks[k]
    return masks


def track_quality(model, image: np.ndarray, labels: np.ndarray, divisions=(), *, correct: bool = False,
                  min_area: int = 30, drift_j: float = 0.5) -> QualityResult:
    """Run the protocol of the module docstring on one (T, Y, X[, C]) clip with (T, Y, X) labels."""
    divisions = list(divisions)
    n = labels.shape[0]
    ids = [int(i) for i in np.unique(labels[0]) if i and (labels[0] == i).sum() >= min_area]
    targets = np.stack([lineage_targets(labels, i, divisions) for i in ids]) if ids else np.zeros((0,) + labels.shape,
                                                                                                      bool)
    session = VideoSession(model, image)
    try:
        for oid in ids:
            session.add_points(0, oid, np.array([innermost(labels[0] == oid)]), [1])
        masks = _track(session, n, ids) if ids else np.zeros_like(targets)
        j = np.array([[_j(masks[k, t], targets[k, t]) for t in range(n)] for k in range(len(ids))]).reshape(len(ids), n)
        result = QualityResult(ids, j)
        if not correct:
            return result
        for k, oid in enumerate(ids):
            drift = np.flatnonzero(j[k] < drift_j)
            if not len(drift):
                continue
            t = int(drift[0])
            missed, spilled = targets[k, t] & ~masks[k, t], masks[k, t] & ~targets[k, t]
            positive = missed.sum() >= spilled.sum()
            point = innermost(missed if positive else spilled)
            session.add_points(t, oid, np.array([point]), [1 if positive else 0], clear=False)
            result.corrections[oid] = t
        if result.corrections:
            masks = _track(session, n, ids)
        result.j_corrected = np.array([[_j(masks[k, t], targets[k, t]) for t in range(n)]
                                       for k in range(len(ids))]).reshape(len(ids), n)
        return result
    finally:
        session.close()
