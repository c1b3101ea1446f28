"""``load_model`` by registry name goes through the checkpoint cache (no network when cached)."""

from __future__ import annotations

import json

import torch

from napari_sam2 import load_model
from napari_sam2.model.configs import TEST_CONFIG
from napari_sam2.model.testing import rule_state_dict


def test_load_model_by_name_uses_the_cached_file_without_network(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    torch.save({"model": rule_state_dict(TEST_CONFIG)}, cache / "sam2.1_test_micro.pt")
    registry = tmp_path / "registry.json"
    # a registry entry whose URL points at a closed loopback port: any download attempt would fail
    entry = {"name": "sam2.1_test_micro", "version": "2.1", "size": "test", "config": "sam2.1_test_micro",
             "filename": "sam2.1_test_micro.pt", "url": "http://127.0.0.1:9/sam2.1_test_micro.pt",
             "sha256": None, "bytes": None}
    registry.write_text(json.dumps({"checkpoints": [entry]}))
    monkeypatch.setenv("NAPARI_SAM2_REGISTRY", str(registry))
    monkeypatch.setenv("NAPARI_SAM2_WEIGHTS_DIR", str(cache))
    model = load_model("sam2.1_test_micro", device="cpu")
    assert model.cfg.name == "sam2.1_test_micro"
