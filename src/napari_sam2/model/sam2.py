"""The assembled SAM 2 network and its per-frame operations.

``Sam2Model`` holds the modules under their checkpoint names and exposes the pieces the
engine composes: image encoding, the SAM heads (prompt encoder + mask decoder + object
pointer), mask-as-output for mask prompts, memory encoding and memory conditioning.
It keeps no per-video state: memories are the engine's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, sine_encoding_1d
from .configs import ModelConfig
from .image_encoder import ImageEncoder, ImageFeatures
from .mask_decoder import MaskDecoder, select_outputs
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .prompt_encoder import PromptEncoder

NO_OBJ_SCORE = -1024.0  # low-res logit used for every pixel of an absent object
NUM_MASKMEM = 7  # memory slots: conditioning frames (slot 6) + 6 most recent frames
MAX_OBJ_PTRS = 16  # object pointers attended to: the prompted ones + up to 15 recent ones
HIDDEN_DIM = 256
MEM_DIM = 64


@dataclass
class HeadsOutput:
    """Result of one SAM-heads pass for a batch of B objects on one frame."""

    low_res: torch.Tensor  # (B, 1, 4h, 4w) selected low-res logits (fp32)
    high_res: torch.Tensor  # (B, 1, S, S) selected logits at the model's input size
    iou: torch.Tensor  # (B,) predicted IoU of the selected mask
    obj_ptr: torch.Tensor  # (B, 256)
    object_score_logits: torch.Tensor  # (B, 1)
    candidates: torch.Tensor | None = None  # (B, 3, 4h, 4w) multimask logits, when multimask
    candidate_iou: torch.Tensor | None = None  # (B, 3)
    candidate_ptrs: torch.Tensor | None = None  # (B, 3, 256)
    choice: torch.Tensor | None = None  # (B,) index of the selected multimask output


class Sam2Model(nn.Module):
    """SAM 2 / 2.1 with the official parameter names (strict checkpoint loading)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.image_encoder = ImageEncoder(cfg)
        self.sam_prompt_encoder = PromptEncoder(HIDDEN_DIM, cfg.image_size)
        self.sam_mask_decoder = MaskDecoder(HIDDEN_DIM)
        self.memory_attention = MemoryAttention(HIDDEN_DIM)
        self.memory_encoder = MemoryEncoder(HIDDEN_DIM, MEM_DIM)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(NUM_MASKMEM, 1, 1, MEM_DIM))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, HIDDEN_DIM))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, HIDDEN_DIM))  # unused, in checkpoints
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, HIDDEN_DIM))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.obj_ptr_proj = MLP(HIDDEN_DIM, HIDDEN_DIM, HIDDEN_DIM, 3)
        if cfg.is_v21:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, MEM_DIM))
            self.obj_ptr_tpos_proj: nn.Module = nn.Linear(HIDDEN_DIM, MEM_DIM)
        else:
            self.no_obj_embed_spatial = None
            self.obj_ptr_tpos_proj = nn.Identity()
        # run-time settings chosen by load_model (not part of the checkpoint)
        self.autocast_dtype: torch.dtype | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return self.no_obj_ptr.device

    @property
    def is_v21(self) -> bool:
        return self.cfg.is_v21

    def autocast(self):
        """Context for inference: bf16 autocast on CUDA when enabled, else a no-op."""
        dev = self.device.type
        enabled = self.autocast_dtype is not None and dev in ("cuda", "cpu", "mps")
        return torch.autocast(dev, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    # ------------------------------------------------------------ image encoding
    def encode_image(self, image: torch.Tensor) -> ImageFeatures:
        """(B, 3, S, S) normalised images -> features as consumed by the SAM heads."""
        features, pos = self.image_encoder(image)
        s0 = self.sam_mask_decoder.conv_s0(features[0])
        s1 = self.sam_mask_decoder.conv_s1(features[1])
        return ImageFeatures([s0, s1], features[2], pos[2])

    def image_embedding(self, feats: ImageFeatures) -> torch.Tensor:
        """Stride-16 feature + ``no_mem_embed``: the input of the heads without memory."""
        b, c, h, w = feats.vision.shape
        flat = feats.vision.flatten(2).permute(0, 2, 1) + self.no_mem_embed
        return flat.permute(0, 2, 1).reshape(b, c, h, w)

    # ---------------------------------------------------------------- SAM heads
    def decode(self, image_embed, high_res, coords, labels, mask_prompt=None):
        """Prompt encoder + mask decoder; coords (B, N, 2) in model-input pixels (x, y)."""
        sparse, dense = self.sam_prompt_encoder(coords, labels, mask_prompt)
        return self.sam_mask_decoder(
            image_embed, self.sam_prompt_encoder.dense_pe(), sparse, dense, high_res
        )

    def sam_heads(
        self,
        pix_feat: torch.Tensor,
        high_res: list[torch.Tensor],
        coords: torch.Tensor | None,
        labels: torch.Tensor | None,
        mask_prompt: torch.Tensor | None,
        multimask: bool,
        candidates: bool = True,
    ) -> HeadsOutput:
        """One decoder pass as during tracking: selection, absent-object gating, pointer.

        ``multimask`` selects the multimask output with the highest predicted IoU; with
        ``candidates`` all three are returned too, with their pointers (for a click, to choose
        another). Tracking passes ``candidates=False``: only the selected mask is gated and kept,
        and only its pointer is projected.
        """
        b = pix_feat.shape[0]
        dev = pix_feat.device
        if coords is None:  # no clicks: a single padding point
            coords = torch.zeros(b, 1, 2, device=dev)
            labels = -torch.ones(b, 1, dtype=torch.int32, device=dev)
        if mask_prompt is not None:
            size = self.sam_prompt_encoder.mask_input_size
            if mask_prompt.shape[-2:] != (size, size):
                mask_prompt = F.interpolate(mask_prompt.float(), size=(size, size),
                                            mode="bilinear", align_corners=False, antialias=True)
        sel = select_outputs(self.decode(pix_feat, high_res, coords, labels, mask_prompt), multimask)
        present = sel.object_score_logits > 0  # (B, 1)
        rows = torch.arange(b, device=dev)
        choice = torch.argmax(sel.iou, dim=-1)  # the multimask output with the highest IoU (0 otherwise)
        token, iou = sel.tokens[rows, choice], sel.iou[rows, choice]
        if multimask and candidates:
            masks = self._gate_masks(sel.masks, present)
            low = masks[rows, choice].unsqueeze(1)
        else:  # one mask: only it is gated
            low = self._gate_masks(sel.masks[rows, choice].unsqueeze(1), present)
        high = F.interpolate(low, size=(self.image_size, self.image_size), mode="bilinear",
                             align_corners=False)
        obj_ptr = self._gate_pointer(self.obj_ptr_proj(token), present)
        out = HeadsOutput(low, high, iou, obj_ptr, sel.object_score_logits)
        if multimask:
            out.choice = choice
        if multimask and candidates:
            out.candidates = masks
            out.candidate_iou = sel.iou
            ptrs = self.obj_ptr_proj(sel.tokens)  # (B, 3, C)
            out.candidate_ptrs = self._gate_pointer(ptrs, present[:, :, None].expand(-1, ptrs.shape[1], 1))
        return out

    @staticmethod
    def _gate_masks(masks: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Absent objects get ``NO_OBJ_SCORE`` everywhere; fp32 logits."""
        return torch.where(present[:, None, None], masks, NO_OBJ_SCORE).float()

    def _gate_pointer(self, ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Absent objects get the learned ``no_obj_ptr`` instead of their pointer."""
        lam = present.float()
        return lam * ptr + (1 - lam) * self.no_obj_ptr

    def mask_as_output(self, feats: ImageFeatures, masks: torch.Tensor) -> HeadsOutput:
        """A mask prompt (B, 1, S, S) in {0, 1} becomes the output itself (no SAM pass).

        The object pointer still comes from the decoder, run on the raw stride-16
        feature with the downsampled mask as dense prompt.
        """
        masks = masks.float()
        high = masks * 20.0 - 10.0
        low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4),
                            mode="bilinear", align_corners=False, antialias=True)
        b = masks.shape[0]
        vision = feats.vision.expand(b, -1, -1, -1)
        heads = self.sam_heads(vision, feats.high_res, None, None, self.mask_downsample(masks), False)
        present = torch.any(masks.flatten(1) > 0.0, dim=1)[:, None]
        score = 20.0 * present.float() - 10.0
        ptr = present.float() * heads.obj_ptr + (1 - present.float()) * self.no_obj_ptr
        iou = masks.new_ones(b)
        return HeadsOutput(low, high, iou, ptr, score)

    # ----------------------------------------------------------------- memories
    def encode_memory(
        self,
        vision: torch.Tensor,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        binarize: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory features (B, 64, h, w) of a frame and their position encoding (1, 64, h, w).

        Masks from clicks/mask prompts are binarised at 0, tracked masks go through a
        sigmoid; both are then mapped to [-10, 10]. Absent objects (2.1) get
        ``no_obj_embed_spatial`` added everywhere.
        """
        b = high_res_masks.shape[0]
        m = (high_res_masks > 0).float() if binarize else torch.sigmoid(high_res_masks)
        m = m * 20.0 - 10.0
        feats, pos = self.memory_encoder(vision.expand(b, -1, -1, -1), m)
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # (B, 1)
            feats = feats + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None].expand(*feats.shape)
        return feats, pos[:1]

    def pointer_pos_enc(self, rel_pos: list[int], t_diff_max: int, device) -> torch.Tensor:
        """Temporal encoding (N, 64) of object pointers at relative frame offsets (2.1 only)."""
        n = len(rel_pos)
        if not self.is_v21:
            return torch.zeros(n, MEM_DIM, device=device)
        pos = torch.tensor(rel_pos, device=device) / t_diff_max
        return self.obj_ptr_tpos_proj(sine_encoding_1d(pos, HIDDEN_DIM))

    def memory_tokens(
        self,
        memory: torch.Tensor,
        t_positions: list[int],
        pointers: torch.Tensor | None,
        rel_pos: list[int],
        t_diff_max: int,
        hw: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The memory attention's keys: spatial memories and object pointers with their positions.

        ``memory`` (B, n * h * w, 64): the memory features of n frames, flattened in order;
        ``t_positions``: each frame's temporal slot (0 = a conditioning frame, k = k frames away);
        ``pointers`` (B, N, 256) or None, at frame offsets ``rel_pos`` (scaled by ``t_diff_max``).
        Returns (memory, memory_pos, number of pointer tokens); each pointer is split into
        256 / 64 tokens. The engine and the trainer both build memories through this.
        """
        h, w = hw
        mem_pe = self.memory_encoder.position_encoding.encoding(h, w, device=memory.device)
        pos_base = mem_pe[None].flatten(2).permute(0, 2, 1)  # (1, hw, 64)
        tpos = self.maskmem_tpos_enc
        pos = [pos_base + tpos[len(tpos) - t_pos - 1].reshape(1, 1, -1) for t_pos in t_positions]
        memory_pos = torch.cat(pos, dim=1).expand(memory.shape[0], -1, -1)
        if pointers is None or not len(rel_pos):
            return memory, memory_pos, 0
        b, n, c = pointers.shape
        split = c // memory.shape[-1]
        p_tokens = pointers.reshape(b, n, split, -1).flatten(1, 2)  # (B, N * 4, 64)
        p_pos = self.pointer_pos_enc(list(rel_pos), t_diff_max, memory.device)
        p_pos = p_pos.repeat_interleave(split, dim=0)[None].expand(b, -1, -1)
        memory = torch.cat([memory, p_tokens.to(memory.dtype)], dim=1)
        memory_pos = torch.cat([memory_pos, p_pos.to(memory_pos.dtype)], dim=1)
        return memory, memory_pos, n * split

    def condition_on_memory(
        self,
        feats: ImageFeatures,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_ptr_tokens: int,
    ) -> torch.Tensor:
        """Memory attention: (B, M, 64) memories -> (B, 256, h, w) conditioned features."""
        b = memory.shape[0]
        _, c, h, w = feats.vision.shape
        curr = feats.vision.flatten(2).permute(0, 2, 1).expand(b, -1, -1)
        curr_pos = feats.vision_pos.flatten(2).permute(0, 2, 1).expand(b, -1, -1)
        out = self.memory_attention(curr, curr_pos, memory, memory_pos, num_ptr_tokens)
        return out.permute(0, 2, 1).reshape(b, c, h, w)
