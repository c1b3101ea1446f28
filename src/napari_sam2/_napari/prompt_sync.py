"""Keep a ``VideoSession`` in step with the prompt layers, one (frame, object) at a time.

The layers are the source of truth: every edit (add, move, delete a point or a box) produces a full
``PromptSet``; :class:`PromptTracker` compares it with what was last sent and returns the few
operations that bring the session up to date; a :class:`SyncBatch` follows one sync job through
the session. Qt-free, so tests drive it directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..engine.layout import FrameKey
from ..engine.prompts import PromptSet

SET, CLEAR, REMOVE = "set", "clear", "remove"


@dataclass(frozen=True)
class SyncOp:
    """One call (or two) to make on the session."""

    kind: str  # SET, CLEAR or REMOVE
    key: FrameKey
    obj_id: int
    points: np.ndarray | None = None  # (N, 2) row, col
    labels: np.ndarray | None = None  # (N,) 1 / 0
    box: np.ndarray | None = None  # (4,) row0, col0, row1, col1
    had_box: bool = False  # the previous prompts of this key had a box


@dataclass(frozen=True)
class _Sent:
    signature: str
    has_box: bool


def group_prompts(prompts: PromptSet) -> dict[tuple[FrameKey, int], tuple]:
    """(frame key, obj id) -> (points, labels, box) with clicks concatenated, the last box kept."""
    groups: dict[tuple[FrameKey, int], list] = {}
    for p in prompts.points:
        g = groups.setdefault((tuple(p.frame), int(p.obj_id)), [[], [], None])
        g[0].append(np.asarray(p.points, dtype=np.float32).reshape(-1, 2))
        g[1].append(np.asarray(p.labels, dtype=np.int32).reshape(-1))
    for b in prompts.boxes:
        g = groups.setdefault((tuple(b.frame), int(b.obj_id)), [[], [], None])
        g[2] = np.asarray(b.box, dtype=np.float32).reshape(4)
    out = {}
    for k, (pts, lbl, box) in groups.items():
        pts_a = np.concatenate(pts) if pts else None
        lbl_a = np.concatenate(lbl) if lbl else None
        out[k] = (pts_a, lbl_a, box)
    return out


def _signature(points, labels, box) -> str:
    h = hashlib.sha1()
    for a in (points, labels, box):
        h.update(b"|" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class PromptTracker:
    """What the session has been told, and what to tell it next."""

    def __init__(self) -> None:
        self._sent: dict[tuple[FrameKey, int], _Sent] = {}
        self._mask_objs: set[int] = set()

    def diff(self, prompts: PromptSet) -> list[SyncOp]:
        """Operations turning the session's clicks and boxes into ``prompts`` (not yet committed)."""
        groups = group_prompts(prompts)
        ops: list[SyncOp] = []
        for k, (pts, lbl, box) in sorted(groups.items()):
            sig = _signature(pts, lbl, box)
            old = self._sent.get(k)
            if old is None or old.signature != sig:
                had_box = bool(old and old.has_box)
                ops.append(SyncOp(SET, k[0], k[1], pts, lbl, box, had_box))
        for k in sorted(set(self._sent) - set(groups)):
            ops.append(SyncOp(CLEAR, k[0], k[1], had_box=self._sent[k].has_box))
        remaining = {o for (_, o) in groups} | self._mask_objs
        gone = {o for (_, o) in self._sent} - remaining
        ops.extend(SyncOp(REMOVE, (), o) for o in sorted(gone))
        return ops

    def commit(self, ops: list[SyncOp]) -> None:
        """Record ``ops`` as sent (call when they are handed to the worker)."""
        for op in ops:
            k = (op.key, op.obj_id)
            if op.kind == SET:
                self._sent[k] = _Sent(_signature(op.points, op.labels, op.box), op.box is not None)
            elif op.kind == CLEAR:
                self._sent.pop(k, None)

    def uncommit(self, ops: list[SyncOp]) -> None:
        """Forget ``ops`` that never reached the session (a job failed before them)."""
        for op in ops:
            if op.kind == SET:
                self._sent.pop((op.key, op.obj_id), None)

    def note_mask(self, obj_id: int) -> None:
        """An object got a mask prompt: it stays in the session even without clicks or boxes."""
        self._mask_objs.add(int(obj_id))

    def forget_object(self, obj_id: int) -> None:
        self._mask_objs.discard(int(obj_id))
        self._sent = {k: v for k, v in self._sent.items() if k[1] != int(obj_id)}

    def reset(self) -> None:
        self._sent.clear()
        self._mask_objs.clear()

    @property
    def sent_keys(self) -> list[tuple[FrameKey, int]]:
        return sorted(self._sent)


class SyncBatch:
    """The operations of one sync job, and how far the session got through them."""

    def __init__(self, ops: list[SyncOp] | None = None) -> None:
        self.ops = list(ops or [])
        self.done = -1  # index of the last operation that reached the session

    def reached(self, index: int) -> SyncOp | None:
        """Operation ``index`` reached the session (the job's ``OpDone``); returns it."""
        self.done = int(index)
        return self.ops[index] if 0 <= index < len(self.ops) else None

    def unsent(self) -> list[SyncOp]:
        """After a failure: the operations behind the failing one, which never reached the session.

        The failing operation itself stays recorded as sent, so the same edit is not retried in a loop.
        """
        return self.ops[self.done + 2 :]
