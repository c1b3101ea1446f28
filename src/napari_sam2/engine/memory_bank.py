"""Per-object tracking state: prompts, conditioning outputs, and the memories attention uses.

The bookkeeping follows the official SAM 2 video predictor: prompted outputs wait in a
"pending" area until propagation encodes their memory; conditioning frames are reused, tracked
frames are overwritten when tracked again, and every output is kept for the whole session, so a
later correction or re-propagation anywhere sees the same history as the official predictor.
Only frames near the tracking position stay on the device; the rest live in the session's
:class:`~.history.HistoryStore` (RAM under a budget, then a temporary file).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ..model.sam2 import MAX_OBJ_PTRS, NUM_MASKMEM
from .history import FrameStates, HistoryStore


@dataclass
class FrameState:
    """One object's output on one frame (what the official predictor keeps per frame)."""

    low_res: torch.Tensor  # (1, 1, h4, w4) fp32 logits (hole-filled when enabled)
    obj_ptr: torch.Tensor  # (1, 256)
    score: torch.Tensor  # (1, 1) object score logit
    iou: float
    maskmem: torch.Tensor | None = None  # (1, 64, h, w) bf16, None until encoded
    candidates: torch.Tensor | None = None  # (1, 3, h4, w4) multimask logits of a single click
    candidate_iou: torch.Tensor | None = None  # (1, 3)
    candidate_ptrs: torch.Tensor | None = None  # (1, 3, 256)
    choice: int | None = None

    @property
    def nbytes(self) -> int:
        ts = [getattr(self, f.name) for f in fields(self)]
        return sum(t.numel() * t.element_size() for t in ts if isinstance(t, torch.Tensor))

    def to_device(self, device: torch.device) -> "FrameState":
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved)


class ObjectTrack:
    """Everything one object owns in one sequence."""

    def __init__(self, obj_id: int, num_frames: int, store: HistoryStore, device: torch.device) -> None:
        self.obj_id = obj_id
        self.points: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.masks: dict[int, torch.Tensor] = {}
        self.cond = FrameStates(num_frames, store, device)
        self.cond_order: dict[int, None] = {}  # conditioning frames in the order they were added
        self.non_cond = FrameStates(num_frames, store, device)
        self.pending_cond: dict[int, FrameState] = {}
        self.pending_non_cond: dict[int, FrameState] = {}
        # per frame: -1 never tracked, 0 tracked forward, 1 tracked in reverse
        self._direction = np.full(num_frames, -1, np.int8)

    @property
    def num_frames_held(self) -> int:
        """How many frames the per-frame bookkeeping holds."""
        return len(self._direction)

    def grow(self, n: int) -> None:
        """Hold bookkeeping for ``n`` frames (a growing stream); frames added are untracked."""
        if n > len(self._direction):
            self._direction = np.concatenate([self._direction, np.full(n - len(self._direction), -1, np.int8)])
            self.cond.grow(n)
            self.non_cond.grow(n)

    # ------------------------------------------------------------- prompts
    def pending(self, is_cond: bool) -> dict[int, FrameState]:
        return self.pending_cond if is_cond else self.pending_non_cond

    @property
    def has_prompts(self) -> bool:
        return bool(self.points or self.masks)

    def clear_prompts(self, frame: int) -> None:
        """Forget the prompts on ``frame``; its output stays as an ordinary tracked frame."""
        self.points.pop(frame, None)
        self.masks.pop(frame, None)
        self.pending_cond.pop(frame, None)
        self.pending_non_cond.pop(frame, None)
        st = self.cond.pop(frame, None)
        self.cond_order.pop(frame, None)
        if st is not None:
            self.non_cond[frame] = st

    def forget_from(self, frame: int) -> None:
        """Drop the tracked outputs on ``frame`` and after (the object ended there: it left the
        image, or divided); prompted outputs stay."""
        for f in [t for t in self.non_cond.frames() if t >= frame]:
            self.non_cond.discard(f)
        self._direction[frame:] = -1

    def release(self) -> None:
        """Give back everything held in the session's history store."""
        self.cond.clear()
        self.non_cond.clear()
        self.cond_order.clear()

    # -------------------------------------------------------------- outputs
    def add_cond(self, frame: int, state: FrameState) -> None:
        self.cond[frame] = state
        self.cond_order.setdefault(frame, None)
        self.non_cond.discard(frame)

    def cond_frames(self) -> list[int]:
        return list(self.cond_order)

    def tracked_reverse(self, frame: int) -> bool | None:
        """None if the object was never tracked on ``frame``, else whether it was in reverse."""
        d = int(self._direction[frame])
        return None if d < 0 else bool(d)

    def mark_tracked(self, frame: int, reverse: bool) -> None:
        self._direction[frame] = int(reverse)

    def output(self, frame: int, is_cond: bool | None = None, *, peek: bool = True) -> FrameState | None:
        """The latest output on ``frame``: pending first, then conditioning, then tracked.

        ``peek`` (default) reads a stored output without bringing it back to the device, so showing
        results of many frames keeps device memory bounded; ``peek=False`` returns the held state
        itself, for callers that change it.
        """
        keys = (True, False) if is_cond is None else (is_cond,)
        for key in keys:
            st = self.pending(key).get(frame)
            if st is not None:
                return st
        if peek:
            return self.cond.peek(frame) or self.non_cond.peek(frame)
        return self.cond.get(frame) or self.non_cond.get(frame)

    def prune(self, position: int, max_cond: int) -> None:
        """Move states that the next steps will not attend to off the device (nothing is lost)."""
        self.non_cond.cool(lambda t: abs(t - position) < MAX_OBJ_PTRS)
        if max_cond >= 0:
            near = set(closest_cond_frames(position, self.cond_frames(), max_cond)[0])
            self.cond.cool(near.__contains__)

    @property
    def nbytes(self) -> int:
        """Bytes held on the device (pending outputs and the hot part of the history)."""
        pend = sum(st.nbytes for d in (self.pending_cond, self.pending_non_cond) for st in d.values())
        return pend + self.cond.hot_bytes + self.non_cond.hot_bytes


def closest_cond_frames(frame: int, cond: list[int], max_cond: int) -> tuple[list[int], list[int]]:
    """The official ``max_cond_frames_in_attn`` rule: (selected, unselected) conditioning frames.

    With ``max_cond`` < 0 or few enough frames, all are selected. Otherwise the closest one
    before ``frame``, the closest one at or after it, then the temporally closest others.
    """
    if max_cond < 0 or len(cond) <= max_cond:
        return list(cond), []
    before = [t for t in cond if t < frame]
    after = [t for t in cond if t >= frame]
    chosen = ([max(before)] if before else []) + ([min(after)] if after else [])
    rest = sorted((t for t in cond if t not in chosen), key=lambda t: abs(t - frame))
    chosen += rest[: max(max_cond - len(chosen), 0)]
    taken = set(chosen)
    return chosen, [t for t in cond if t not in taken]


@dataclass(frozen=True)
class MemoryPlan:
    """Which stored frames one object attends to on one frame, and at which positions."""

    memories: tuple[tuple[int, int], ...]  # (t_pos, frame), conditioning (t_pos 0) first
    pointers: tuple[tuple[int, int], ...]  # (relative position, frame)
    t_diff_max: int

    @property
    def layout(self) -> tuple:
        """Objects with equal layouts can be batched through memory attention."""
        return tuple(p for p, _ in self.memories), tuple(p for p, _ in self.pointers), self.t_diff_max


def pointer_scale(num_frames: int) -> int:
    """Divisor of the pointers' temporal positions: ``min(T, 16) - 1`` as the official predictor,
    but at least 1, so a one-frame sequence gets finite scores (the official code divides by 0)."""
    return max(min(num_frames, MAX_OBJ_PTRS) - 1, 1)


def plan_memory(track: ObjectTrack, frame: int, reverse: bool, num_frames: int,
                is_v21: bool, max_cond: int = -1) -> MemoryPlan:
    """SAM 2's memory selection: the (closest ``max_cond``) conditioning frames, the 6 previous
    frames in the direction of travel (an unselected conditioning frame counts as one), pointers
    of past selected conditioning frames and of up to 15 previous frames."""
    selected, unselected = closest_cond_frames(frame, track.cond_frames(), max_cond)
    spare = set(unselected)

    def held(t: int) -> bool:
        return t in track.non_cond or t in spare

    memories: list[tuple[int, int]] = [(0, t) for t in selected]
    for t_pos in range(1, NUM_MASKMEM):
        t_rel = NUM_MASKMEM - t_pos
        prev = frame + t_rel if reverse else frame - t_rel
        if held(prev):
            memories.append((t_pos, prev))
    sign = -1 if reverse else 1
    pointers: list[tuple[int, int]] = []
    for t in selected:
        if (t >= frame) if reverse else (t <= frame):
            pointers.append(((frame - t) * sign if is_v21 else abs(frame - t), t))
    for t_diff in range(1, min(num_frames, MAX_OBJ_PTRS)):
        t = frame + t_diff if reverse else frame - t_diff
        if t < 0 or t >= num_frames:
            break
        if held(t):
            pointers.append((t_diff, t))
    return MemoryPlan(tuple(memories), tuple(pointers), pointer_scale(num_frames))


def stored_state(track: ObjectTrack, frame: int) -> FrameState:
    """A memory frame of a plan: a tracked output, else an (unselected) conditioning one."""
    st = track.non_cond.get(frame)
    return st if st is not None else track.cond[frame]
