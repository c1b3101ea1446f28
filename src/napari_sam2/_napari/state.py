"""Bookkeeping of one segmentation session, without Qt or napari.

Which object ids the session owns (the only ids the Labels writer may touch), which frames need a
second look (object absent or low score), which multimask candidate is shown per click. The
controller holds one :class:`SessionState`; what is running is the job runner's to know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.layout import FrameKey


@dataclass(frozen=True)
class LostFrame:
    """One frame where one object needs review."""

    obj_id: int
    key: FrameKey
    score: float
    present: bool

    @property
    def reason(self) -> str:
        return "absent" if not self.present else f"low score {self.score:.2f}"

    def describe(self) -> str:
        frame = self.key[0] if len(self.key) == 1 else self.key
        return f"object {self.obj_id} - frame {frame} - {self.reason}"


@dataclass
class SessionState:
    """Qt-free bookkeeping of a widget session."""

    score_threshold: float = 0.7
    owned_ids: set[int] = field(default_factory=set)
    _lost: dict[tuple[int, FrameKey], LostFrame] = field(default_factory=dict)
    _candidate: dict[tuple[FrameKey, int], int] = field(default_factory=dict)

    # ---- object ids ---------------------------------------------------------------------------
    def own(self, obj_ids: Iterable[int]) -> None:
        self.owned_ids.update(int(i) for i in obj_ids)

    def next_free_id(self, *taken: Iterable[int] | int) -> int:
        """One more than the largest id in use: owned ids plus any ids or maxima given."""
        top = max(self.owned_ids, default=0)
        for t in taken:
            if isinstance(t, (int, np.integer)):
                top = max(top, int(t))
            else:
                top = max(top, max((int(i) for i in t), default=0))
        return top + 1

    # ---- frames needing review ---------------------------------------------------------------
    def record(self, result: Any, key: FrameKey | None = None) -> bool:
        """Note which objects of ``result`` (a FrameResult, on frame ``key`` or its own) are lost or doubtful.

        Returns True when the list of lost frames changed. A later good result on the same frame
        (e.g. after a correction) removes the entry.
        """
        key = tuple(result.key if key is None else key)
        changed = False
        scores = np.asarray(result.scores, dtype=float).reshape(-1)
        present = np.asarray(result.present, dtype=bool).reshape(-1)
        for i, obj_id in enumerate(result.obj_ids):
            k = (int(obj_id), tuple(key))
            bad = (not present[i]) or scores[i] < self.score_threshold
            if bad:
                item = LostFrame(int(obj_id), tuple(key), float(scores[i]), bool(present[i]))
                if self._lost.get(k) != item:
                    self._lost[k] = item
                    changed = True
            elif k in self._lost:
                del self._lost[k]
                changed = True
        return changed

    def lost_frames(self, obj_id: int | None = None) -> list[LostFrame]:
        items = sorted(self._lost.values(), key=lambda f: (f.obj_id, f.key))
        return [f for f in items if obj_id is None or f.obj_id == obj_id]

    def forget_object(self, obj_id: int) -> None:
        self.owned_ids.discard(int(obj_id))
        self._lost = {k: v for k, v in self._lost.items() if k[0] != int(obj_id)}
        self._candidate = {k: v for k, v in self._candidate.items() if k[1] != int(obj_id)}

    # ---- multimask candidates ------------------------------------------------------------------
    def next_candidate(self, key: FrameKey, obj_id: int, n_candidates: int) -> int:
        """Index of the candidate to show next for (frame, object), cycling through ``n``."""
        k = (tuple(key), int(obj_id))
        nxt = (self._candidate.get(k, 0) + 1) % max(int(n_candidates), 1)
        self._candidate[k] = nxt
        return nxt

    def reset_candidate(self, key: FrameKey, obj_id: int) -> None:
        self._candidate.pop((tuple(key), int(obj_id)), None)

    # ---- whole session -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything the engine session knew (a new model, image or axis)."""
        self.owned_ids.clear()
        self._lost.clear()
        self._candidate.clear()
