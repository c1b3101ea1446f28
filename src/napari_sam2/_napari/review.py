"""Which frames need a second look, without Qt: the review model behind the widget's review list.

Per object and per sequence (the outer index of a T x Z stack propagated along Z; ``()`` for a
plain stack) a :class:`Track` keeps every finished frame's presence score (float32), predicted IoU
(float16) and state (uint8: not finished / present / absent) in arrays that grow by doubling:
7 bytes per object-frame (at most 14 with the doubling slack), nothing else per frame.

The threshold is applied on read: a frame is *doubtful* when the object is absent or its score is
below the threshold, and the doubtful frames of a track are kept as sorted ranges. A new result
updates each of its objects in O(log ranges) (:meth:`ReviewModel.update`); changing the threshold
re-checks every finished frame at once (vectorised) without propagating again. What changed since
the last look is taken with :meth:`ReviewModel.take_changes`, so a view updates only those rows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.layout import FrameKey, key_text

NOT_DONE, PRESENT, ABSENT = 0, 1, 2
BYTES_PER_OBJECT_FRAME = 4 + 2 + 1  # score float32, IoU float16, state uint8
TrackKey = tuple[int, tuple[int, ...]]  # (object id, outer index)


@dataclass
class Track:
    """One object on one sequence: per-frame score, IoU and state, and its doubtful ranges."""

    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    iou: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float16))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    starts: list[int] = field(default_factory=list)  # doubtful ranges [start, end], inclusive, sorted
    ends: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        """One past the last frame that has room (written frames are below it)."""
        return len(self.state)

    def ensure(self, frame: int) -> None:
        """Room for ``frame``: the arrays double until it fits (amortised O(1) per frame)."""
        if frame < len(self.state):
            return
        cap = max(16, len(self.state))
        while cap <= frame:
            cap *= 2
        for name in ("scores", "iou", "state"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def doubtful_mask(self, threshold: float) -> np.ndarray:
        st = self.state
        return (st == ABSENT) | ((st == PRESENT) & (self.scores < np.float32(threshold)))

    def is_doubtful(self, frame: int) -> bool:
        i = bisect_right(self.starts, frame) - 1
        return i >= 0 and self.ends[i] >= frame

    def add(self, frame: int) -> None:
        """Mark ``frame`` doubtful (merging with the neighbouring ranges)."""
        i = bisect_right(self.starts, frame) - 1
        if i >= 0 and self.ends[i] >= frame:
            return
        joins_left = i >= 0 and self.ends[i] == frame - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == frame + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends[i + 1]
            del self.starts[i + 1], self.ends[i + 1]
        elif joins_left:
            self.ends[i] = frame
        elif joins_right:
            self.starts[i + 1] = frame
        else:
            self.starts.insert(i + 1, frame)
            self.ends.insert(i + 1, frame)

    def remove(self, frame: int) -> None:
        """Mark ``frame`` fine (splitting its range)."""
        i = bisect_right(self.starts, frame) - 1
        if i < 0 or self.ends[i] < frame:
            return
        s, e = self.starts[i], self.ends[i]
        if s == e:
            del self.starts[i], self.ends[i]
        elif frame == s:
            self.starts[i] = frame + 1
        elif frame == e:
            self.ends[i] = frame - 1
        else:
            self.ends[i] = frame - 1
            self.starts.insert(i + 1, frame + 1)
            self.ends.insert(i + 1, e)

    def rebuild(self, threshold: float) -> None:
        """The doubtful ranges from the stored scores (a new threshold): vectorised over frames."""
        bad = np.concatenate(([False], self.doubtful_mask(threshold), [False])).astype(np.int8)
        edges = np.flatnonzero(np.diff(bad))
        self.starts = edges[0::2].tolist()
        self.ends = (edges[1::2] - 1).tolist()

    def first_after(self, frame: int) -> int | None:
        """The first doubtful frame strictly after ``frame`` (None: none)."""
        i = bisect_right(self.starts, frame) - 1
        if i >= 0 and self.ends[i] > frame:
            return frame + 1
        return self.starts[i + 1] if i + 1 < len(self.starts) else None


@dataclass(frozen=True)
class ReviewRange:
    """Consecutive doubtful frames of one object on one sequence (a row of the review list)."""

    obj_id: int
    outer: tuple[int, ...]
    first: int
    last: int
    key: FrameKey  # the frame key of ``first`` (where double-clicking the row goes)
    absent: int  # frames of the range where the object is absent
    lowest: float  # lowest score among the frames where it is present (nan: none)

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        where = f"sequence {key_text(self.outer)}, " if self.outer else ""
        if self.count == 1:
            frames = f"frame {self.first}"
            why = "absent" if self.absent else f"low score {self.lowest:.2f}"
        else:
            frames = f"frames {self.first}-{self.last} ({self.count})"
            low = "" if np.isnan(self.lowest) else f"lowest score {self.lowest:.2f}"
            why = "absent" if self.absent == self.count else (f"{self.absent} absent, {low}" if self.absent else low)
        return f"object {self.obj_id} - {where}{frames} - {why}"


class ReviewModel:
    """Scores of every finished (object, frame) and the doubtful frames at a threshold."""

    def __init__(self, threshold: float = 0.7) -> None:
        self._threshold = float(threshold)
        self.tracks: dict[TrackKey, Track] = {}
        self._axes: set[int] | None = None  # where the propagation axis sits in a frame key
        self._changed: set[TrackKey] = set()
        self._all_changed = False

    # ---- threshold ---------------------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        """A new threshold re-checks every finished frame (no propagation needed)."""
        value = float(value)
        if value == self._threshold:
            return
        self._threshold = value
        for track in self.tracks.values():
            track.rebuild(value)
        self._all_changed = True

    # ---- updates -----------------------------------------------------------------------------------
    def update(self, result: Any, key: FrameKey | None = None) -> bool:
        """Store the scores of ``result`` (a FrameResult); True when a row of the review changed.

        O(objects of the result); ``key`` overrides ``result.key`` (a plain stack's ``(frame,)``).
        """
        key = tuple(int(k) for k in (result.key if key is None else key))
        if len(key) == 1:
            frame, outer = key[0], ()
        else:
            frame, outer = int(result.frame), tuple(int(i) for i in result.index)
            self._learn_axis(key, frame, outer)
        scores = np.asarray(result.scores, np.float32).reshape(-1)
        present = np.asarray(result.present, bool).reshape(-1)
        iou = np.asarray(getattr(result, "iou", np.zeros(len(scores))), np.float32).reshape(-1)
        thr = np.float32(self._threshold)
        changed = False
        for i, obj in enumerate(result.obj_ids):
            tk = (int(obj), outer)
            track = self.tracks.get(tk)
            if track is None:
                track = self.tracks[tk] = Track()
            track.ensure(frame)
            state = PRESENT if present[i] else ABSENT
            same = track.state[frame] == state and track.scores[frame] == scores[i]
            track.scores[frame], track.iou[frame], track.state[frame] = scores[i], iou[i], state
            bad = (not present[i]) or scores[i] < thr
            if bad != track.is_doubtful(frame) or (bad and not same):  # a range, or its lowest score
                if bad != track.is_doubtful(frame):
                    (track.add if bad else track.remove)(frame)
                changed = True
                self._changed.add(tk)
        return changed

    def forget_object(self, obj_id: int) -> None:
        for tk in [tk for tk in self.tracks if tk[0] == int(obj_id)]:
            del self.tracks[tk]
            self._changed.add(tk)

    def clear(self) -> None:
        self.tracks.clear()
        self._axes = None
        self._changed.clear()
        self._all_changed = True

    def take_changes(self) -> set[TrackKey] | None:
        """The tracks whose rows changed since the last call; None: everything (redraw all)."""
        out = None if self._all_changed else set(self._changed)
        self._changed.clear()
        self._all_changed = False
        return out

    # ---- reading -----------------------------------------------------------------------------------
    def key_of(self, outer: tuple[int, ...], frame: int) -> FrameKey:
        """The frame key of ``frame`` in sequence ``outer`` (for a frame that was written)."""
        if not outer:
            return (int(frame),)
        a = min(self._axes) if self._axes else 0
        return (*outer[:a], int(frame), *outer[a:])

    def split_key(self, key: FrameKey) -> tuple[tuple[int, ...], int]:
        """(outer index, frame) of a frame key."""
        key = tuple(int(k) for k in key)
        if len(key) <= 1:  # () for a 2-D image: nothing to review
            return (), key[0] if key else 0
        a = min(self._axes) if self._axes else 0
        return (*key[:a], *key[a + 1:]), key[a]

    def ranges(self, tk: TrackKey) -> list[ReviewRange]:
        """The doubtful ranges of track ``tk`` (obj_id, outer), in frame order."""
        track = self.tracks.get(tk)
        if track is None:
            return []
        out = []
        for s, e in zip(track.starts, track.ends):
            st, sc = track.state[s:e + 1], track.scores[s:e + 1]
            present = sc[st == PRESENT]
            lowest = float(present.min()) if present.size else float("nan")
            out.append(ReviewRange(tk[0], tk[1], s, e, self.key_of(tk[1], s), int((st == ABSENT).sum()), lowest))
        return out

    def all_ranges(self) -> list[ReviewRange]:
        """Every doubtful range, by object, sequence and frame."""
        return [r for tk in sorted(self.tracks) for r in self.ranges(tk)]

    def doubtful_count(self, obj_id: int | None = None) -> int:
        """How many (object, frame) pairs are doubtful (of one object, or all)."""
        return sum(e - s + 1 for tk, t in self.tracks.items() if obj_id is None or tk[0] == obj_id
                   for s, e in zip(t.starts, t.ends))

    def next_to_review(self, key: FrameKey, after_obj: int | None = None) -> tuple[FrameKey, int] | None:
        """The next doubtful (frame key, object id) after frame ``key``, wrapping to the first one.

        ``after_obj``: also objects with a larger id on frame ``key`` itself (stepping through the
        objects of one frame). Frames are ordered by (sequence, frame), objects by id. O(tracks).
        """
        outer, frame = self.split_key(key)
        best = first = None
        for (obj, o), track in self.tracks.items():
            if not track.starts:
                continue
            cand = (o, track.starts[0], obj)
            first = cand if first is None or cand < first else first
            if o > outer:
                nxt = cand
            elif o < outer:
                continue
            elif after_obj is not None and obj > after_obj and track.is_doubtful(frame):
                nxt = (o, frame, obj)
            else:
                f = track.first_after(frame)
                if f is None:
                    continue
                nxt = (o, f, obj)
            best = nxt if best is None or nxt < best else best
        pick = best or first
        return None if pick is None else (self.key_of(pick[0], pick[1]), pick[2])

    def sequences(self) -> list[tuple[int, ...]]:
        return sorted({o for _obj, o in self.tracks})

    def timeline(self, outer: tuple[int, ...] = ()) -> list[tuple[int, Track]]:
        """(object id, track) of every object on sequence ``outer``, by id: what the timeline paints."""
        return sorted(((obj, t) for (obj, o), t in self.tracks.items() if o == tuple(outer)), key=lambda p: p[0])

    def nbytes(self) -> int:
        """Memory held by the per-frame arrays."""
        return sum(t.scores.nbytes + t.iou.nbytes + t.state.nbytes for t in self.tracks.values())

    # ---- helpers -----------------------------------------------------------------------------------
    def _learn_axis(self, key: FrameKey, frame: int, outer: tuple[int, ...]) -> None:
        fits = {a for a in range(len(key)) if key[a] == frame and (*key[:a], *key[a + 1:]) == outer}
        self._axes = fits if self._axes is None else (self._axes & fits) or fits


def doubtful_pairs(model: ReviewModel, obj_ids: Iterable[int] | None = None) -> list[tuple[int, FrameKey]]:
    """Every doubtful (object id, frame key), by object and frame (tests, the object panel)."""
    wanted = None if obj_ids is None else {int(i) for i in obj_ids}
    return [(r.obj_id, model.key_of(r.outer, f)) for r in model.all_ranges()
            if wanted is None or r.obj_id in wanted for f in range(r.first, r.last + 1)]
