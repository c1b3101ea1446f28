"""Per-object tracking state: prompts, conditioning outputs, and a bounded memory bank.

The bookkeeping follows the official SAM 2 video predictor (prompted outputs wait in a
"pending" area until propagation encodes their memory; conditioning frames are reused,
tracked frames are overwritten when tracked again), but frames whose memories attention
can no longer reach are dropped: only conditioning frames, the last ``NUM_MASKMEM - 1``
memories and ``MAX_OBJ_PTRS - 1`` pointers around the tracking position, and the same
window around each conditioning frame (so a later pass starting from a prompt sees
exactly what the official predictor would) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.sam2 import MAX_OBJ_PTRS, NUM_MASKMEM


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
        ts = [self.low_res, self.obj_ptr, self.maskmem, self.candidates]
        return sum(t.numel() * t.element_size() for t in ts if t is not None)


@dataclass
class ObjectTrack:
    """Everything one object owns in one sequence."""

    obj_id: int
    points: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, FrameState] = field(default_factory=dict)
    non_cond: dict[int, FrameState] = field(default_factory=dict)
    pending_cond: dict[int, FrameState] = field(default_factory=dict)
    pending_non_cond: dict[int, FrameState] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse

    def pending(self, is_cond: bool) -> dict[int, FrameState]:
        return self.pending_cond if is_cond else self.pending_non_cond

    def output(self, frame: int, is_cond: bool | None = None) -> FrameState | None:
        """The latest output on ``frame``: pending first, then conditioning, then tracked."""
        keys = (True, False) if is_cond is None else (is_cond,)
        for key in keys:
            st = self.pending(key).get(frame)
            if st is not None:
                return st
        return self.cond.get(frame) or self.non_cond.get(frame)

    @property
    def has_prompts(self) -> bool:
        return bool(self.cond or self.pending_cond)

    def prune(self, position: int) -> None:
        """Drop tracked outputs that no future attention step can use."""
        keep_ptr = MAX_OBJ_PTRS - 1
        keep_mem = NUM_MASKMEM - 1
        anchors = [position, *self.cond]
        for t in list(self.non_cond):
            dist = min(abs(t - a) for a in anchors)
            if dist > keep_ptr:
                del self.non_cond[t]
            elif dist > keep_mem and self.non_cond[t].maskmem is not None:
                st = self.non_cond[t]
                st.maskmem = None
                st.candidates = None

    @property
    def nbytes(self) -> int:
        dicts = (self.cond, self.non_cond, self.pending_cond, self.pending_non_cond)
        return sum(st.nbytes for d in dicts for st in d.values())


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


def plan_memory(track: ObjectTrack, frame: int, reverse: bool, num_frames: int,
                is_v21: bool) -> MemoryPlan:
    """SAM 2's memory selection (all conditioning frames, the 6 previous frames in the
    direction of travel, object pointers of past conditioning frames and up to 15 previous
    frames). Frames that are not stored are skipped, as in the official predictor."""
    cond = track.cond
    memories: list[tuple[int, int]] = [(0, t) for t in cond]
    for t_pos in range(1, NUM_MASKMEM):
        t_rel = NUM_MASKMEM - t_pos
        prev = frame + t_rel if reverse else frame - t_rel
        st = track.non_cond.get(prev)
        if st is not None and st.maskmem is not None:
            memories.append((t_pos, prev))
    max_ptrs = min(num_frames, MAX_OBJ_PTRS)
    sign = -1 if reverse else 1
    pointers: list[tuple[int, int]] = []
    for t in cond:
        if (t >= frame) if reverse else (t <= frame):
            pointers.append(((frame - t) * sign if is_v21 else abs(frame - t), t))
    for t_diff in range(1, max_ptrs):
        t = frame + t_diff if reverse else frame - t_diff
        if t < 0 or t >= num_frames:
            break
        if t in track.non_cond:
            pointers.append((t_diff, t))
    return MemoryPlan(tuple(memories), tuple(pointers), max_ptrs - 1)


def stored_state(track: ObjectTrack, frame: int) -> FrameState:
    return track.cond[frame] if frame in track.cond else track.non_cond[frame]
