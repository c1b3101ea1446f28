"""The tracking shortcut of the SAM heads and the position-encoding caches give the same numbers."""

from __future__ import annotations

import pytest
import torch

from napari_sam2.model.configs import TEST_CONFIG
from napari_sam2.model.sam2 import Sam2Model
from napari_sam2.model.testing import random_model


@pytest.fixture(scope="module")
def model():
    return random_model("sam2.1_test_micro")


@torch.inference_mode()
def test_tracking_heads_equal_the_candidate_path_bit_for_bit():
    torch.manual_seed(0)
    model = Sam2Model(TEST_CONFIG).eval()  # PyTorch's random init: objects present and absent
    feats = model.encode_image(torch.randn(6, 3, model.image_size, model.image_size))
    pix = model.image_embedding(feats)
    raw = model.decode(pix, feats.high_res, torch.zeros(6, 1, 2), -torch.ones(6, 1, dtype=torch.int32))
    model.sam_mask_decoder.iou_prediction_head.layers[-1].bias -= torch.logit(raw.iou).mean(0)  # varied choices
    choices, present = set(), set()
    for k in range(4):
        pix = pix + 0.7 * torch.randn_like(pix)
        clicks = torch.rand(6, 1, 2) * model.image_size if k % 2 else None
        labels = torch.ones(6, 1, dtype=torch.int32) if k % 2 else None
        full = model.sam_heads(pix, feats.high_res, clicks, labels, None, multimask=True)
        track = model.sam_heads(pix, feats.high_res, clicks, labels, None, multimask=True, candidates=False)
        for name in ("low_res", "high_res", "iou", "obj_ptr", "object_score_logits", "choice"):
            assert torch.equal(getattr(full, name), getattr(track, name)), name
        assert track.candidates is None and track.candidate_ptrs is None and track.candidate_iou is None
        rows = torch.arange(6)
        assert torch.equal(full.candidates[rows, full.choice][:, None], track.low_res)
        choices |= set(full.choice.tolist())
        present |= set((full.object_score_logits[:, 0] > 0).tolist())
    assert choices == {0, 1, 2} and present == {True, False}  # every branch was compared


def test_dense_position_encoding_follows_loaded_weights(model):
    pe = model.sam_prompt_encoder
    first = pe.dense_pe()
    assert pe.dense_pe() is first  # cached
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
    state[key] = state[key] * 2
    try:
        model.load_state_dict(state)
        again = pe.dense_pe()
        assert not torch.equal(again, first)
        assert torch.equal(again, pe.pe_layer.grid(pe.embedding_size)[None])
    finally:
        state[key] = state[key] / 2
        model.load_state_dict(state)
    assert torch.equal(pe.dense_pe(), first)


def test_sine_encoding_is_cached_per_size_device_and_dtype(model):
    pe = model.memory_encoder.position_encoding
    a = pe.encoding(4, 6, device="cpu")
    assert a.shape == (pe.half * 2, 4, 6) and a.dtype == torch.float32
    assert pe.encoding(4, 6, device="cpu") is a
    assert pe.encoding(6, 4, device="cpu").shape == (pe.half * 2, 6, 4)
    half = pe.encoding(4, 6, device="cpu", dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and torch.equal(half, a.to(torch.bfloat16))
    x = torch.zeros(3, 1, 4, 6, dtype=torch.bfloat16)
    assert torch.equal(pe(x), half[None].expand(3, -1, -1, -1))
