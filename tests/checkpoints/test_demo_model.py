"""The built-in demo model: shipped, loaded by name everywhere without any network, clearly labelled."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from napari_sam2.checkpoints import DEMO_MODEL, builtin, demo_checkpoint, resolve_checkpoint
from napari_sam2.checkpoints.resolve import checkpoint_source
from napari_sam2.errors import CheckpointError
from napari_sam2.model.loading import load_model

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_file_is_the_one_in_weights_and_records_how_it_was_made():
    path = demo_checkpoint()
    assert path == (ROOT / "weights" / "napari-sam2-demo.pt").resolve()
    assert path.stat().st_size < 26 * 2**20  # fp16 weights of a 12.1 M-parameter model: 24 MB
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt["napari_sam2"]
    assert meta["base"].startswith("scratch") and meta["image_size"] == 256
    assert meta["settings"]["train"] == "all" and meta["step"] == meta["settings"]["steps"]
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())


def test_load_model_by_name_needs_no_network_and_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_SAM2_WEIGHTS_DIR", str(tmp_path / "empty"))
    assert checkpoint_source(DEMO_MODEL) == demo_checkpoint()
    assert resolve_checkpoint(DEMO_MODEL, download=False) == demo_checkpoint()
    model = load_model(DEMO_MODEL, device="cpu")
    assert model.cfg.name == "sam2.1_test_micro" and model.image_size == 256
    assert next(model.parameters()).dtype == torch.float32  # fp16 on disk, fp32 to run
    assert not (tmp_path / "empty").exists()  # nothing was downloaded or cached


def test_a_missing_demo_file_says_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.setattr(builtin, "_FILE", tmp_path / "napari-sam2-demo.pt")
    with pytest.raises(CheckpointError, match="missing from this installation.*Reinstall"):
        load_model(DEMO_MODEL, device="cpu")


def test_a_file_of_that_name_in_the_working_folder_is_a_path(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "napari-sam2-demo.pt").write_bytes(b"")
    assert not builtin.is_demo_name("napari-sam2-demo.pt") and builtin.is_demo_name("napari-sam2-demo")
    with pytest.raises(CheckpointError, match="empty"):
        checkpoint_source("napari-sam2-demo.pt")
