"""The object panel's state without Qt: one row per object of the session, read from the output labels.

:class:`ObjectBook` keeps what only the panel knows (names given by the user, hidden objects) and
builds :class:`ObjectRow` s from the controller: the ids it owns, the output Labels layer (frames
where each object has pixels: "frames covered"), the review list ("frames lost": absent or low
score) and ``session.lineage`` (parent, daughters). The coverage is counted per frame with one
``bincount`` (a few ms per 512 x 512 frame), when the panel refreshes, not per written frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: above this label value, frames are counted with np.unique instead of bincount (memory)
BINCOUNT_MAX = 1 << 20


@dataclass(frozen=True)
class ObjectRow:
    """One object as the panel lists it."""

    obj_id: int
    name: str
    covered: int  # frames with pixels of it in the output labels
    lost: int  # frames in the review list (absent or low score)
    parent: int | None
    daughters: tuple[int, ...]
    hidden: bool

    @property
    def lineage_text(self) -> str:
        parts = []
        if self.parent is not None:
            parts.append(f"from {self.parent}")
        if self.daughters:
            parts.append("-> " + ", ".join(str(d) for d in self.daughters))
        return "; ".join(parts)


def frame_keys(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every frame key of a (..., Y, X) labels shape."""
    return [tuple(int(i) for i in k) for k in np.ndindex(*shape[:-2])]


def ids_on_frame(frame: np.ndarray) -> np.ndarray:
    """The label values > 0 present on one (Y, X) frame."""
    frame = np.asarray(frame)
    if frame.size == 0:
        return np.zeros(0, np.int64)
    top = int(frame.max())
    if top <= 0:
        return np.zeros(0, np.int64)
    if top <= BINCOUNT_MAX and frame.dtype.kind in "iu":
        counts = np.bincount(frame.ravel().astype(np.intp, copy=False), minlength=top + 1)
        return np.flatnonzero(counts[1:]) + 1
    ids = np.unique(frame)
    return ids[ids > 0].astype(np.int64)


def frames_with(data: Any, obj_id: int) -> list[tuple[int, ...]]:
    """The frame keys of a (..., Y, X) labels array where ``obj_id`` has pixels (frame by frame)."""
    return [key for key in frame_keys(tuple(data.shape)) if (np.asarray(data[key]) == obj_id).any()]


def coverage(data: Any) -> dict[int, list[tuple[int, ...]]]:
    """Label id -> the frame keys where it has pixels, over a (..., Y, X) labels array."""
    out: dict[int, list[tuple[int, ...]]] = {}
    for key in frame_keys(tuple(data.shape)):
        for i in ids_on_frame(data[key]):
            out.setdefault(int(i), []).append(key)
    return out


class ObjectBook:
    """Names and hidden ids of the panel's objects, and the rows it lists."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.hidden: set[int] = set()
        self.frames: dict[int, list[tuple[int, ...]]] = {}  # last coverage counted

    def name(self, obj_id: int) -> str:
        return self.names.get(int(obj_id), f"object {int(obj_id)}")

    def rename(self, obj_id: int, name: str) -> None:
        name = str(name).strip()
        if name and name != f"object {int(obj_id)}":
            self.names[int(obj_id)] = name
        else:
            self.names.pop(int(obj_id), None)

    def forget(self, obj_id: int) -> None:
        self.names.pop(int(obj_id), None)
        self.hidden.discard(int(obj_id))
        self.frames.pop(int(obj_id), None)

    def reset(self) -> None:
        self.names.clear()
        self.hidden.clear()
        self.frames.clear()

    def rows(self, controller: Any, labels: Any = None) -> list[ObjectRow]:
        """The objects the controller owns (and the session has), with ``labels``' coverage."""
        session = controller.session
        ids = set(controller.state.owned_ids)
        if session is not None:
            ids |= {int(i) for i in session.obj_ids}
        self.frames = coverage(labels.data) if labels is not None else {}
        lineage = getattr(session, "lineage", None)
        lost: dict[int, int] = {}
        for f in controller.state.lost_frames():
            lost[f.obj_id] = lost.get(f.obj_id, 0) + 1
        rows = []
        for obj_id in sorted(ids):
            rows.append(ObjectRow(
                obj_id, self.name(obj_id), len(self.frames.get(obj_id, ())), lost.get(obj_id, 0),
                lineage.parent_of(obj_id) if lineage is not None else None,
                tuple(lineage.daughters_of(obj_id)) if lineage is not None else (),
                obj_id in self.hidden))
        return rows
