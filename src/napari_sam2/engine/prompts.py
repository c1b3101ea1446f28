"""Prompts in napari's convention, independent of any GUI.

Coordinates are (row, col) pixels of the stack's frames; boxes are
(row0, col0, row1, col1); ``frame`` is the frame key: the tuple of all leading indices
(``(t,)`` for (T, Y, X) data; an int given is stored as a 1-tuple).
The widget's layer adapters, the CSV readers of the CLI and the console helper all
produce these objects, and :meth:`PromptSet.apply` sends them to a ``VideoSession``.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import PromptError
from .layout import FrameKey, frame_key, key_text


@dataclass(frozen=True)
class PointPrompt:
    """Clicks on one frame for one object: positive (label 1) or negative (label 0)."""

    frame: FrameKey
    obj_id: int
    points: np.ndarray  # float (N, 2) as (row, col)
    labels: np.ndarray  # int (N,), 1 = positive, 0 = negative

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", frame_key(self.frame))


@dataclass(frozen=True)
class BoxPrompt:
    """A box on one frame for one object, optionally with clicks on the same frame."""

    frame: FrameKey
    obj_id: int
    box: np.ndarray  # float (4,) as (row0, col0, row1, col1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", frame_key(self.frame))


@dataclass(frozen=True)
class MaskPrompt:
    """A mask on one frame for one object (e.g. from Cellpose or a painted label)."""

    frame: FrameKey
    obj_id: int
    mask: np.ndarray  # bool (Y, X)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", frame_key(self.frame))


class CompressedPlane:
    """One label frame kept zlib-compressed (label images shrink 20-100x); the most recently
    expanded plane is cached, so the masks of one frame cost a single decompression."""

    _last: tuple["CompressedPlane", np.ndarray] | None = None  # the plane object itself: ids get reused
    _lock = threading.Lock()

    def __init__(self, plane: np.ndarray) -> None:
        self.shape = tuple(plane.shape)
        self.dtype = plane.dtype
        self._data = zlib.compress(np.ascontiguousarray(plane).tobytes(), 1)

    def array(self) -> np.ndarray:
        with CompressedPlane._lock:
            last = CompressedPlane._last
            if last is not None and last[0] is self:
                return last[1]
            plane = np.frombuffer(zlib.decompress(self._data), dtype=self.dtype).reshape(self.shape)
            CompressedPlane._last = (self, plane)
            return plane


class LabelMask:
    """The mask ``plane == obj_id``, built only when it is used (``np.asarray(mask)``).

    Keeps mask prompts from a whole label stack (e.g. Cellpose on every frame) at the size of
    the compressed labels instead of frames x labels x Y x X booleans.
    """

    ndim = 2
    dtype = np.dtype(bool)

    def __init__(self, plane: CompressedPlane, obj_id: int) -> None:
        self.plane = plane
        self.obj_id = int(obj_id)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.plane.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        mask = self.plane.array() == self.obj_id
        return mask if dtype is None else mask.astype(dtype)

    def __getattr__(self, name: str) -> Any:  # .sum(), .any(), indexing helpers: act as the array
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self)[key]


def mask_prompts_from_planes(planes: Iterable[tuple[Any, np.ndarray]], source: str = "labels") -> list[MaskPrompt]:
    """One MaskPrompt per nonzero label of each ``(frame, label plane)``.

    Each plane is kept zlib-compressed and each mask is a :class:`LabelMask`, built when the
    session uses it, so a whole label stack (e.g. Cellpose on every frame) costs the size of its
    compressed labels, not frames x labels x Y x X booleans. Planes are consumed one at a time.
    """
    out: list[MaskPrompt] = []
    for frame, plane in planes:
        frame = frame_key(frame)
        ids = np.unique(plane)
        if ids.size and ids[0] < 0:
            raise PromptError(f"{source}, frame {key_text(frame)}: label {ids[0]} is negative; labels must be 0 or more.")
        ids = ids[ids > 0]
        if ids.size:
            packed = CompressedPlane(plane)
            out += [MaskPrompt(frame=frame, obj_id=int(i), mask=LabelMask(packed, int(i))) for i in ids]
    return out


@dataclass
class PromptSet:
    """All prompts of a job, grouped so that each (frame, object) is sent once."""

    points: list[PointPrompt] = field(default_factory=list)
    boxes: list[BoxPrompt] = field(default_factory=list)
    masks: list[MaskPrompt] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.points or self.boxes or self.masks)

    @property
    def obj_ids(self) -> list[int]:
        ids = {p.obj_id for p in self.points} | {b.obj_id for b in self.boxes}
        ids |= {m.obj_id for m in self.masks}
        return sorted(ids)

    @property
    def frames(self) -> list[FrameKey]:
        fr = {p.frame for p in self.points} | {b.frame for b in self.boxes}
        fr |= {m.frame for m in self.masks}
        return sorted(fr)

    def apply(self, session: Any) -> None:
        """Send every prompt to ``session`` (a ``VideoSession``).

        A mask prompt replaces clicks and boxes of the same (frame, object); a box and
        clicks on the same (frame, object) are sent together, as SAM 2 expects.
        """
        masked = {(m.frame, m.obj_id) for m in self.masks}
        for m in self.masks:
            session.add_mask(m.frame, m.obj_id, m.mask)
        boxes = {(b.frame, b.obj_id): b for b in self.boxes if (b.frame, b.obj_id) not in masked}
        clicks: dict[tuple[int, int], list[PointPrompt]] = {}
        for p in self.points:
            if (p.frame, p.obj_id) not in masked:
                clicks.setdefault((p.frame, p.obj_id), []).append(p)
        for key in sorted(set(boxes) | set(clicks)):
            frame, obj_id = key
            group = clicks.get(key, [])
            pts = np.concatenate([p.points for p in group]) if group else None
            lbl = np.concatenate([p.labels for p in group]) if group else None
            if key in boxes:
                session.add_box(frame, obj_id, boxes[key].box, points=pts, labels=lbl)
            else:
                session.add_points(frame, obj_id, pts, lbl)
