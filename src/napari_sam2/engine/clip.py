"""SAM 2 tracking of several objects through one sequence of frames.

A ``Clip`` owns the frames of one sequence (a (T, Y, X) stack, or one Z-stack of a 4-D
stack), the objects' tracks and the feature cache. Its steps mirror the official video
predictor: prompting runs the SAM heads (with memory on already-tracked frames), and
propagation encodes pending memories first, then tracks frame by frame. Objects that
attend to the same memory layout run as one batch.
"""

from __future__ import annotations

import threading
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import PromptError
from ..model.image_encoder import ImageFeatures
from ..model.sam2 import NO_OBJ_SCORE, HeadsOutput, Sam2Model
from .feature_cache import FeatureCache
from .frames import FrameSource
from .history import HistoryStore
from .memory_bank import FrameState, ObjectTrack, plan_memory, stored_state
from .postprocess import fill_holes
from .results import FrameResult


class Clip:
    def __init__(self, model: Sam2Model, source: FrameSource, frame_hw: tuple[int, int],
                 fill_hole_area: int, corrections_as_conditioning: bool,
                 feature_budget: int, store: HistoryStore, max_cond_frames: int = -1,
                 index: tuple[int, ...] = ()) -> None:
        self.model = model
        self.store = store
        self.max_cond = max_cond_frames
        self.source = source
        self.hw = frame_hw
        self.fill_hole_area = fill_hole_area
        self.corrections_as_conditioning = corrections_as_conditioning
        self.features = FeatureCache(feature_budget)
        self.tracks: dict[int, ObjectTrack] = {}
        self.ended: dict[int, int] = {}  # obj_id -> first frame it is no longer tracked on
        self.index = index

    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    # --------------------------------------------------------------- features
    def _encode(self, frame: int) -> ImageFeatures:
        x = self.source.get(frame).to(self.model.device)[None]
        with self.model.autocast():
            return self.model.encode_image(x)

    def feats(self, frame: int) -> ImageFeatures:
        return self.features.get(frame, self._encode)

    def prefetch(self, frame: int) -> None:
        """Compute and cache ``frame``'s features (e.g. when the user moves to it)."""
        self.feats(frame)

    # ------------------------------------------------------------- bookkeeping
    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts, outputs and memories."""
        self.tracks.pop(obj_id).release()
        self.ended.pop(obj_id, None)

    def clear_prompts(self, frame: int, obj_ids: list[int]) -> None:
        """Remove the prompts of ``obj_ids`` on ``frame``; their outputs stay as ordinary tracked
        frames (as in the official predictor), and an object left with no prompt is removed."""
        for obj_id in obj_ids:
            tr = self.tracks[obj_id]
            tr.clear_prompts(frame)
            if not tr.has_prompts:
                self.remove_object(obj_id)

    def reset(self) -> None:
        """Forget every object (cached image features are kept)."""
        for tr in self.tracks.values():
            tr.release()
        self.tracks.clear()
        self.ended.clear()

    def end_object(self, obj_id: int, frame: int) -> None:
        """Stop tracking an object from ``frame`` on (forward): its outputs there and after are
        dropped and propagation skips it, so an object that left or divided costs nothing more.
        A new prompt on the object resumes it."""
        self.tracks[obj_id].forget_from(frame)
        self.ended[obj_id] = frame

    def _active(self, track: ObjectTrack, frame: int) -> bool:
        end = self.ended.get(track.obj_id)
        return end is None or frame < end

    def output(self, frame: int, obj_id: int) -> FrameState | None:
        """An object's latest output on ``frame`` (None for an unknown object or an unvisited frame)."""
        tr = self.tracks.get(obj_id)
        return None if tr is None else tr.output(frame)

    def prompted_frames(self, obj_id: int | None = None) -> set[int]:
        """Frames holding prompts of ``obj_id`` (of any object when None)."""
        tracks = self.tracks.values() if obj_id is None else [t for t in self.tracks.values() if t.obj_id == obj_id]
        return {f for tr in tracks for f in (*tr.points, *tr.masks)}

    @property
    def state_bytes(self) -> int:
        """Bytes of per-object state (memories, pointers, masks) held on the compute device."""
        return sum(tr.nbytes for tr in self.tracks.values())

    # ---------------------------------------------------------------- prompting
    def track(self, obj_id: int) -> ObjectTrack:
        if obj_id not in self.tracks:
            self.tracks[obj_id] = ObjectTrack(obj_id, self.num_frames, self.store, self.model.device)
        return self.tracks[obj_id]

    def _prompt_kind(self, tr: ObjectTrack, frame: int) -> tuple[bool, bool, bool]:
        tracked = tr.tracked_reverse(frame)
        is_init = tracked is None
        reverse = bool(tracked)
        is_cond = is_init or self.corrections_as_conditioning
        return is_init, reverse, is_cond

    @torch.inference_mode()
    def add_points(self, frame: int, obj_id: int, coords: torch.Tensor, labels: torch.Tensor,
                   clear: bool, return_logits: bool = False) -> FrameResult:
        """coords (N, 2) (x, y) in model-input pixels; labels (N,) int32 (2/3 = box corners)."""
        tr = self.track(obj_id)
        self.ended.pop(obj_id, None)
        if not clear and frame in tr.points:
            old_c, old_l = tr.points[frame]
            coords, labels = torch.cat([old_c, coords]), torch.cat([old_l, labels])
        tr.points[frame] = (coords, labels)
        tr.masks.pop(frame, None)
        is_init, reverse, is_cond = self._prompt_kind(tr, frame)
        prev = tr.pending(is_cond).get(frame) or tr.cond.get(frame) or tr.non_cond.get(frame)
        prev_logits = torch.clamp(prev.low_res, -32.0, 32.0) if prev is not None else None
        feats = self.feats(frame)
        dev = self.model.device
        with self.model.autocast():
            if is_init:
                pix = self.model.image_embedding(feats)
            else:
                pix = self._conditioned(feats, [tr], frame, reverse)
            n = labels.shape[0]
            out = self.model.sam_heads(pix, feats.high_res, coords[None].to(dev),
                                       labels[None].to(dev), prev_logits, multimask=n <= 1)
        tr.pending(is_cond)[frame] = self._state(out, 0)
        tr.prune(frame, self.max_cond)  # memories loaded for this click go back off the device
        return self.result(frame, is_cond=is_cond, return_logits=return_logits)

    @torch.inference_mode()
    def add_mask(self, frame: int, obj_id: int, mask: torch.Tensor, return_logits: bool = False) -> FrameResult:
        """mask: (Y, X) bool at the stack's resolution."""
        tr = self.track(obj_id)
        self.ended.pop(obj_id, None)
        tr.points.pop(frame, None)
        s = self.model.image_size
        m = mask.to(torch.float32)[None, None]
        if tuple(m.shape[-2:]) != (s, s):
            m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            m = (m >= 0.5).float()
        m = m.to(self.model.device)
        tr.masks[frame] = m
        _, _, is_cond = self._prompt_kind(tr, frame)
        with self.model.autocast():
            out = self.model.mask_as_output(self.feats(frame), m)
        tr.pending(is_cond)[frame] = self._state(out, 0)
        tr.prune(frame, self.max_cond)  # memories loaded for this click go back off the device
        return self.result(frame, is_cond=is_cond, return_logits=return_logits)

    def _state(self, out: HeadsOutput, row: int, iou: float | None = None, filled: torch.Tensor | None = None
               ) -> FrameState:
        """Row ``row`` of a batch's output. ``iou`` / ``filled``: its predicted IoU and hole-filled
        low-res mask when the caller made them for the whole batch at once (one host round trip per
        batch, not one per object)."""
        low = out.low_res[row : row + 1] if filled is None else filled[row : row + 1]
        if filled is None and self.fill_hole_area > 0:
            low = fill_holes(low, self.fill_hole_area)
        st = FrameState(low, out.obj_ptr[row : row + 1].float(),
                        out.object_score_logits[row : row + 1].float(),
                        float(out.iou[row]) if iou is None else iou)
        if out.choice is not None:
            st.choice = int(out.choice[row])
        if out.candidates is not None:
            st.candidates = out.candidates[row : row + 1]
            st.candidate_iou = out.candidate_iou[row : row + 1].float()
            st.candidate_ptrs = out.candidate_ptrs[row : row + 1].float()
        return st

    def choose_candidate(self, frame: int, obj_id: int, k: int) -> FrameResult:
        """Replace a single click's chosen mask by multimask candidate ``k``."""
        tr = self.tracks.get(obj_id)
        st = tr.output(frame, peek=False) if tr else None
        if st is None or st.candidates is None:
            raise PromptError(f"Object {obj_id} has no multimask candidates on frame {frame} "
                              "(only a single click has).")
        k = int(k) % st.candidates.shape[1]
        low = st.candidates[:, k : k + 1]
        st.low_res = fill_holes(low, self.fill_hole_area) if self.fill_hole_area > 0 else low
        st.obj_ptr = st.candidate_ptrs[:, k]
        st.iou = float(st.candidate_iou[0, k])
        st.choice = k
        if st.maskmem is not None:  # already consolidated: re-encode from the new mask
            st.maskmem = self._encode_prompt_memory(frame, st)
        return self.result(frame)

    # --------------------------------------------------------------- memories
    def _plan(self, track: ObjectTrack, frame: int, reverse: bool):
        return plan_memory(track, frame, reverse, self.num_frames, self.model.is_v21, self.max_cond)

    def _conditioned(self, feats: ImageFeatures, tracks: list[ObjectTrack], frame: int,
                     reverse: bool) -> torch.Tensor:
        """Memory attention for objects that share one memory layout."""
        plans = [self._plan(t, frame, reverse) for t in tracks]
        plan = plans[0]
        mems, ptrs = [], []
        for tr, pl in zip(tracks, plans):
            m = [stored_state(tr, f).maskmem.float() for _, f in pl.memories]
            mems.append(torch.cat([x.flatten(2).permute(0, 2, 1) for x in m], dim=1))
            if pl.pointers:
                ptrs.append(torch.stack([stored_state(tr, f).obj_ptr[0] for _, f in pl.pointers]))
        memory, memory_pos, n_ptr_tokens = self.model.memory_tokens(
            torch.cat(mems), [t_pos for t_pos, _ in plan.memories], torch.stack(ptrs) if ptrs else None,
            [r for r, _ in plan.pointers], plan.t_diff_max, tuple(feats.vision.shape[-2:]))
        return self.model.condition_on_memory(feats, memory, memory_pos, n_ptr_tokens)

    def _encode_prompt_memory(self, frame: int, st: FrameState) -> torch.Tensor:
        feats = self.feats(frame)
        s = self.model.image_size
        high = F.interpolate(st.low_res.to(self.model.device), size=(s, s), mode="bilinear", align_corners=False)
        with self.model.autocast():
            mem, _ = self.model.encode_memory(feats.vision, high, st.score.to(self.model.device), binarize=True)
        return mem.to(torch.bfloat16)

    def consolidate(self) -> None:
        """Encode the memories of prompted frames and make them part of the tracks."""
        for tr in self.tracks.values():
            for is_cond in (False, True):
                for frame, st in tr.pending(is_cond).items():
                    if st.maskmem is None:
                        st.maskmem = self._encode_prompt_memory(frame, st)
                    if is_cond:
                        tr.add_cond(frame, st)
                    else:
                        tr.non_cond[frame] = st
                tr.pending(is_cond).clear()
            for frame in tr.cond_frames():  # a conditioning frame's output wins over a later correction
                tr.non_cond.discard(frame)

    def prepare(self) -> int | None:
        """Encode the pending memories (``consolidate``) before propagating; the earliest
        conditioning frame of all objects (None without objects)."""
        self.consolidate()
        for tr in self.tracks.values():
            if not tr.cond:
                raise PromptError(f"Object {tr.obj_id} has no prompts; add one or remove the object.")
        return min((t for tr in self.tracks.values() for t in tr.cond_frames()), default=None)

    # -------------------------------------------------------------- propagation
    @torch.inference_mode()
    def propagate(self, order: list[int], reverse: bool, cancel: threading.Event | None,
                  return_logits: bool, skip_first: bool = False) -> Iterator[FrameResult]:
        """Track all objects over ``order`` (frame indices), yielding each frame's result."""
        tracks = list(self.tracks.values())
        for i, frame in enumerate(order):
            if cancel is not None and cancel.is_set():
                return
            self.source.prefetch(order[i + 1 : i + 3])
            todo = [t for t in tracks if frame not in t.cond and self._active(t, frame)]
            if todo:
                feats = self.feats(frame)
                groups: dict[tuple, list[ObjectTrack]] = {}
                for t in todo:
                    key = self._plan(t, frame, reverse).layout
                    groups.setdefault(key, []).append(t)
                for group in groups.values():
                    self._track_group(feats, group, frame, reverse)
            for t in tracks:
                if self._active(t, frame):
                    t.mark_tracked(frame, reverse)
                t.prune(frame, self.max_cond)
            if skip_first and i == 0:
                continue
            yield self.result(frame, return_logits=return_logits)

    def _track_group(self, feats: ImageFeatures, group: list[ObjectTrack], frame: int, reverse: bool) -> None:
        with self.model.autocast():
            pix = self._conditioned(feats, group, frame, reverse)
            out = self.model.sam_heads(pix, feats.high_res, None, None, None, multimask=True, candidates=False)
            mem, _ = self.model.encode_memory(feats.vision, out.high_res, out.object_score_logits, binarize=False)
        mem = mem.to(torch.bfloat16)
        ious = out.iou.float().cpu().tolist()
        filled = fill_holes(out.low_res, self.fill_hole_area)
        for row, tr in enumerate(group):
            st = self._state(out, row, ious[row], filled)
            st.maskmem = mem[row : row + 1]
            tr.non_cond[frame] = st

    # ------------------------------------------------------------------ results
    def result(self, frame: int, is_cond: bool | None = None, return_logits: bool = False) -> FrameResult:
        """Masks of every object on ``frame`` at the stack's resolution.

        All objects are upsampled in one batch on the compute device and come to the host in one
        copy of booleans (the float logits only when asked for), not one transfer per object."""
        h, w = self.hw
        ids = list(self.tracks)
        states = [tr.output(frame, is_cond) for tr in self.tracks.values()]
        n = len(ids)
        masks = np.zeros((n, h, w), bool)
        logits = np.full((n, h, w), NO_OBJ_SCORE, np.float32) if return_logits else None
        lows: list[np.ndarray | None] = [None] * n
        score_arr = np.full(n, NO_OBJ_SCORE, np.float32)
        ious = np.zeros(n, np.float32)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for k, st in enumerate(states):
            if st is not None:
                by_shape.setdefault(tuple(st.low_res.shape[-2:]), []).append(k)
                ious[k] = st.iou
        dev = self.model.device
        for rows in by_shape.values():
            low = torch.cat([states[k].low_res.to(dev).float() for k in rows])  # (L, 1, s, s)
            full = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            masks[rows] = (full > 0).cpu().numpy()
            score_arr[rows] = torch.cat([states[k].score.reshape(-1)[:1].to(dev).float() for k in rows]).cpu().numpy()
            if return_logits:
                logits[rows] = full.cpu().numpy()
                for k, x in zip(rows, low[:, 0].cpu().numpy()):
                    lows[k] = x
        res = FrameResult(
            frame=frame,
            obj_ids=tuple(ids),
            masks=masks,
            scores=(1.0 / (1.0 + np.exp(-np.clip(score_arr, -60, 60).astype(np.float64)))).astype(np.float32),
            present=score_arr > 0,
            iou=ious,
            object_score_logits=score_arr,
            logits=logits,
            index=self.index,
            key=self.source.layout.index(self.index, frame),
        )
        if return_logits and n:
            side = max((x.shape[-1] for x in lows if x is not None), default=4)
            res.low_res_logits = np.stack(
                [x if x is not None and x.shape[-1] == side else np.full((side, side), NO_OBJ_SCORE, np.float32)
                 for x in lows]
            )
        return res
