"""One training clip through SAM 2 with gradients: the prompted first frame, correction clicks, then
memory propagation over the following frames, as at inference, for a batch of B objects at once
(the image encoder runs once per frame for all of them, as in the engine).

The first frame is decoded from its prompt (a single click gives three candidates, a box or several
clicks one mask, a mask prompt is taken as the output as in the engine); ``correction_rounds``
further clicks on the error region are each decoded with the previous low-res logits as mask input.
Its memory (binarised mask) and object pointer then condition every later frame, which attends to
the first frame (conditioning slot) and up to 6 previous frames and 15 pointers, built with
``Sam2Model.memory_tokens`` exactly as the engine builds them; tracked frames' memories use the
sigmoid of their masks. Memories stay in fp32 with their gradients (the engine stores bf16 copies).
Every frame's candidates are scored by :func:`~.losses.frame_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.memory_bank import MAX_OBJ_PTRS, pointer_scale
from ..model.sam2 import NUM_MASKMEM, HeadsOutput, Sam2Model
from .data import Clip
from .losses import FrameLoss, frame_loss
from .prompts import Prompt, add_clicks, correction_click, to_device


@dataclass
class ClipOutput:
    loss: torch.Tensor
    frames: list[FrameLoss] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)  # (B, S, S) bool predictions per frame

    @property
    def parts(self) -> dict[str, float]:
        keys = self.frames[0].parts if self.frames else {}
        return {k: float(np.mean([f.parts[k] for f in self.frames])) for k in keys}

    @property
    def iou(self) -> float:
        return float(np.mean([f.iou for f in self.frames])) if self.frames else float("nan")


def _full(low: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def _score(out: HeadsOutput, target: torch.Tensor, size: int) -> FrameLoss:
    """The loss of B objects on one frame (``target`` (B, S, S)): each object's, averaged."""
    if out.candidates is not None:
        cands, ious = _full(out.candidates, size), out.candidate_iou
    else:
        cands, ious = out.high_res, out.iou[:, None]
    per_object = [frame_loss(cands[b], ious[b], out.object_score_logits[b], target[b])
                  for b in range(target.shape[0])]
    return FrameLoss(torch.stack([f.total for f in per_object]).mean(),
                     {k: float(np.mean([f.parts[k] for f in per_object])) for k in per_object[0].parts},
                     float(np.mean([f.iou for f in per_object])))


def _prompted(model: Sam2Model, feats, prompt: Prompt, target: torch.Tensor, rounds: int,
              result: ClipOutput) -> HeadsOutput:
    size, b = model.image_size, target.shape[0]
    if prompt.mask is not None:
        return model.mask_as_output(feats, prompt.mask)
    emb = model.image_embedding(feats).expand(b, -1, -1, -1)
    out = model.sam_heads(emb, feats.high_res, prompt.coords, prompt.labels, None,
                          multimask=prompt.coords.shape[1] == 1, candidates=True)
    result.frames.append(_score(out, target, size))
    for _ in range(rounds):
        pred, truth = out.high_res[:, 0].detach().cpu() > 0, target.cpu() > 0.5
        fixes = [correction_click(pred[k], truth[k]) for k in range(b)]
        if not any(fixes):
            break
        prompt = add_clicks(prompt, fixes)
        out = model.sam_heads(emb, feats.high_res, prompt.coords, prompt.labels, out.low_res.detach(),
                              multimask=False, candidates=True)
        result.frames.append(_score(out, target, size))
    return out


def clip_forward(model: Sam2Model, clip: Clip, prompt: Prompt, correction_rounds: int = 1) -> ClipOutput:
    """Loss (mean over supervised frames and objects) and predictions of one clip for its B objects."""
    dev = model.device
    frames, targets = clip.frames.to(dev), clip.masks.to(dev)
    size, k = model.image_size, frames.shape[0]
    result = ClipOutput(loss=torch.zeros((), device=dev))
    feats = [model.encode_image(frames[t: t + 1]) for t in range(k)]
    out = _prompted(model, feats[0], to_device(prompt, dev), targets[0], correction_rounds, result)
    result.masks.append(out.high_res[:, 0].detach().cpu() > 0)
    mem, _ = model.encode_memory(feats[0].vision, out.high_res, out.object_score_logits, binarize=True)
    memories, pointers = {0: mem}, {0: out.obj_ptr}
    t_diff_max = pointer_scale(k)
    for t in range(1, k):
        recent = [f for f in range(t - 1, max(t - NUM_MASKMEM, 0), -1)]  # up to 6 previous tracked frames
        mem_frames = [0] + recent
        ptr_frames = [0] + [f for f in range(t - 1, max(t - MAX_OBJ_PTRS, 0), -1)]
        memory = torch.cat([memories[f].flatten(2).permute(0, 2, 1) for f in mem_frames], dim=1)
        ptrs = torch.stack([pointers[f] for f in ptr_frames], dim=1)  # (B, N, C)
        memory, memory_pos, n_ptr = model.memory_tokens(
            memory, [0] + [t - f for f in recent], ptrs, [t - f for f in ptr_frames], t_diff_max,
            tuple(feats[t].vision.shape[-2:]))
        pix = model.condition_on_memory(feats[t], memory, memory_pos, n_ptr)
        out = model.sam_heads(pix, feats[t].high_res, None, None, None, multimask=True, candidates=True)
        result.frames.append(_score(out, targets[t], size))
        result.masks.append(out.high_res[:, 0].detach().cpu() > 0)
        memories[t], _ = model.encode_memory(feats[t].vision, out.high_res, out.object_score_logits, binarize=False)
        pointers[t] = out.obj_ptr
    if result.frames:
        result.loss = torch.stack([f.total for f in result.frames]).mean()
    return result
