"""Loading official-layout checkpoints strictly and safely, and the errors users see."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_sam2 import VideoSession, load_model
from napari_sam2.errors import CheckpointError, DeviceError, InputError
from napari_sam2.model.checkpoint import expected_shapes, inspect_checkpoint
from napari_sam2.model.configs import CONFIGS, TEST_CONFIG
from napari_sam2.model.device import default_autocast, resolve_device
from napari_sam2.model.testing import rule_state_dict

REF = Path(os.environ.get("NAPARI_SAM2_REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))
SHORT = {"tiny": "t", "small": "s", "base_plus": "bp", "large": "l"}


def official_keys(name: str) -> dict[str, tuple[int, ...]]:
    cfg = CONFIGS[name]
    fname = REF / "keys" / f"{'sam2.1' if cfg.is_v21 else 'sam2'}_{SHORT[cfg.size]}.tsv"
    if not fname.exists():
        why = f"official key list {fname} not found (set NAPARI_SAM2_REFERENCE_DIR to the reference fixtures)"
        if os.environ.get("CI") == "true" and REF.is_dir():  # CI has the fixtures: a skip would hide a gap
            pytest.fail(f"{why}, although {REF} exists")
        pytest.skip(why)
    out = {}
    for line in fname.read_text().splitlines():
        key, shape, _ = line.split("\t")
        out[key] = tuple(ast.literal_eval(shape))
    return out


def skeleton_checkpoint(keys: dict[str, tuple[int, ...]], path: Path) -> Path:
    """A real .pt file with every key and shape; zero-stride tensors keep it tiny on disk."""
    state = {k: torch.zeros(1).expand(shape) if shape else torch.zeros(()) for k, shape in keys.items()}
    torch.save({"model": state}, path)
    return path


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_official_layout_loads_strictly_from_a_file(name, tmp_path):
    keys = official_keys(name)
    assert expected_shapes(CONFIGS[name]) == keys
    path = skeleton_checkpoint(keys, tmp_path / "model.pt")
    assert inspect_checkpoint(path) == name  # version and size detected from the keys


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sam2_hiera_tiny", "sam2.1_hiera_small"])
def test_load_model_from_a_path_builds_and_runs(name, tmp_path):
    path = skeleton_checkpoint(official_keys(name), tmp_path / "weights.pt")
    model = load_model(path, device="cpu")
    assert model.cfg.name == name and model.image_size == 1024
    assert not any(p.requires_grad for p in model.parameters())
    assert model.autocast_dtype is None  # fp32 on CPU
    # laptop mode, run through every part at the smallest internal size; the skeleton's weights are
    # all zero, which would hide bad arithmetic, so the loaded model gets small random weights first
    small = load_model(path, device="cpu", image_size=256)
    assert small.image_size == 256 and small.sam_prompt_encoder.embedding_size == 16
    assert all(not p.any() for p in small.parameters())  # what the file holds
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in small.parameters():
            p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    with torch.inference_mode():
        feats = small.encode_image(torch.randn(1, 3, 256, 256, generator=gen))
        dec = small.decode(small.image_embedding(feats), feats.high_res,
                           torch.tensor([[[100.0, 80.0]]]), torch.tensor([[1]], dtype=torch.int32))
    assert [tuple(t.shape) for t in feats.high_res] == [(1, 32, 64, 64), (1, 64, 32, 32)]
    assert feats.vision.shape == feats.vision_pos.shape == (1, 256, 16, 16)
    assert dec.masks.shape == (1, 4, 64, 64) and dec.iou.shape == (1, 4)
    for t in (*feats.high_res, feats.vision, dec.masks, dec.iou, dec.object_score_logits):
        assert torch.isfinite(t).all()
    assert feats.vision.std() > 0 and dec.masks.std() > 0
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 50), dtype=np.uint8)
    session = VideoSession(small, frames)  # tracking frame 1: memory encoder and memory attention too
    session.add_points(0, 1, [[20, 25]], [1])
    tracked = list(session.propagate(return_logits=True))
    assert [r.frame for r in tracked] == [0, 1]
    assert all(r.logits.shape == (1, 40, 50) and np.isfinite(r.logits).all() for r in tracked)
    assert np.isfinite([float(r.scores[0]) for r in tracked]).all()


def test_loaded_weights_equal_the_file(tmp_path):
    state = rule_state_dict(TEST_CONFIG, seed=3)
    torch.save({"model": state}, tmp_path / "micro.pt")
    model = load_model(tmp_path / "micro.pt", device="cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt", device="cpu")


def test_unknown_name_that_is_no_file():
    with pytest.raises(CheckpointError, match="neither a model name"):
        load_model("sam3_hiera_huge", device="cpu")


@pytest.mark.parametrize("seed", range(5))
def test_not_a_checkpoint(tmp_path, seed):
    p = tmp_path / "junk.pt"
    p.write_bytes(np.random.default_rng(seed).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        inspect_checkpoint(p)


def test_git_lfs_pointer(tmp_path):
    p = tmp_path / "sam2.1_hiera_tiny.pt"
    p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 155906050\n")
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        inspect_checkpoint(p)


def test_html_page_saved_instead_of_a_checkpoint(tmp_path):
    p = tmp_path / "model.pt"
    p.write_text("<!DOCTYPE html><html><body>Please log in</body></html>")
    with pytest.raises(CheckpointError, match="HTML page"):
        inspect_checkpoint(p)


def test_truncated_checkpoint(tmp_path):
    p = tmp_path / "full.pt"
    torch.save({"model": rule_state_dict(TEST_CONFIG)}, p)
    data = p.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        inspect_checkpoint(cut)


class NotATensor:
    pass


def test_pickled_code_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "extra": NotATensor()}, p)
    with pytest.raises(CheckpointError, match="safe loading refuses"):
        inspect_checkpoint(p)


def test_sam1_checkpoint_is_named(tmp_path):
    keys = {"image_encoder.pos_embed": (1, 64, 64, 768), "image_encoder.blocks.0.attn.qkv.weight": (2304, 768),
            "mask_decoder.iou_token.weight": (1, 256), "prompt_encoder.no_mask_embed.weight": (1, 256)}
    p = skeleton_checkpoint(keys, tmp_path / "sam_vit_b.pt")
    with pytest.raises(CheckpointError, match="SAM 1"):
        inspect_checkpoint(p)


def test_edgetam_checkpoint_is_named(tmp_path):
    keys = {"image_encoder.trunk.body.stem.0.weight": (48, 3, 3, 3),
            "spatial_perceiver.latents": (256, 64), "memory_attention.layers.0.norm1.weight": (256,)}
    p = skeleton_checkpoint(keys, tmp_path / "edgetam.pt")
    with pytest.raises(CheckpointError, match="EdgeTAM"):
        inspect_checkpoint(p)


def test_fine_tune_with_extra_heads_lists_the_keys(tmp_path):
    keys = dict(official_keys("sam2.1_hiera_tiny"))
    keys["classifier_head.weight"] = (5, 256)
    keys["classifier_head.bias"] = (5,)
    del keys["no_obj_ptr"]
    p = skeleton_checkpoint(keys, tmp_path / "medsam_plus.pt")
    with pytest.raises(CheckpointError) as err:
        inspect_checkpoint(p)
    msg = str(err.value)
    assert "1 missing (no_obj_ptr)" in msg and "2 unexpected (classifier_head.bias, classifier_head.weight)" in msg


def test_wrong_shapes_are_reported(tmp_path):
    keys = dict(official_keys("sam2.1_hiera_tiny"))
    keys["no_obj_ptr"] = (1, 128)
    with pytest.raises(CheckpointError, match="wrong shape .no_obj_ptr"):
        inspect_checkpoint(skeleton_checkpoint(keys, tmp_path / "x.pt"))


def test_bare_state_dict_is_accepted(tmp_path):
    keys = official_keys("sam2_hiera_tiny")
    torch.save({k: torch.zeros(1).expand(s) for k, s in keys.items()}, tmp_path / "bare.pt")
    assert inspect_checkpoint(tmp_path / "bare.pt") == "sam2_hiera_tiny"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_a_gpu():
    with pytest.raises(DeviceError, match="no usable CUDA GPU.*'cpu' or 'auto'"):
        resolve_device("cuda")
    with pytest.raises(DeviceError):
        load_model("does-not-matter.pt", device="cuda")


def test_device_auto_and_precision_defaults():
    dev = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected
    assert default_autocast(torch.device("cuda"), None) == torch.bfloat16
    assert default_autocast(torch.device("cuda"), torch.float32) is None
    assert default_autocast(torch.device("cpu"), None) is None


@pytest.mark.parametrize("size", [100, 300, 2048, 192])
def test_laptop_mode_sizes_are_checked(size):
    with pytest.raises(InputError, match="multiple of 64 between 256 and 1024"):
        load_model("whatever.pt", device="cpu", image_size=size)
