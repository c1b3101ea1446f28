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
from .review import ReviewModel, doubtful_pairs


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
    """Qt-free bookkeeping of a widget session; the frames to review are ``review``'s (review.py)."""

    owned_ids: set[int] = field(default_factory=set)
    review: ReviewModel = field(default_factory=ReviewModel)
    _candidate: dict[tuple[FrameKey, int], int] = field(default_factory=dict)

    def __init__(self, score_threshold: float = 0.7) -> None:
        self.owned_ids, self.review, self._candidate = set(), ReviewModel(score_threshold), {}

    @property
    def score_threshold(self) -> float:
        return self.review.threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        """A new threshold re-checks every finished frame at once."""
        self.review.threshold = value

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

        Returns True when the review changed. A later good result on the same frame (e.g. after a
        correction) removes the entry. O(objects of the result): see :class:`ReviewModel`.
        """
        return self.review.update(result, key)

    def lost_frames(self, obj_id: int | None = None) -> list[LostFrame]:
        """Every doubtful (object, frame), one item each (O(doubtful frames): not for every frame)."""
        out = []
        for obj, key in doubtful_pairs(self.review, None if obj_id is None else [obj_id]):
            outer, frame = self.review.split_key(key)
            track = self.review.tracks[(obj, outer)]
            out.append(LostFrame(obj, key, float(track.scores[frame]), bool(track.state[frame] == 1)))
        return out

    def forget_object(self, obj_id: int) -> None:
        self.owned_ids.discard(int(obj_id))
        self.review.forget_object(obj_id)
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
        self.review.clear()
        self._candidate.clear()
