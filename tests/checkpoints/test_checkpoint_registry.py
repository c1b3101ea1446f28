"""The registry data file, its validation (HTTPS only, safe file names), overrides and the cache location."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import napari_sam2.checkpoints as ckpt
from napari_sam2.checkpoints import ENV_REGISTRY, ENV_WEIGHTS_DIR
from napari_sam2.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
SIZES = ["tiny", "small", "base_plus", "large"]


@pytest.fixture
def official(monkeypatch: pytest.MonkeyPatch) -> ckpt.Registry:
    monkeypatch.delenv(ENV_REGISTRY, raising=False)
    return ckpt.load_registry()


def test_official_registry_lists_the_eight_checkpoints(official: ckpt.Registry) -> None:
    expected = [f"sam2_hiera_{s}" for s in SIZES] + [f"sam2.1_hiera_{s}" for s in SIZES]
    assert official.names() == expected
    assert ckpt.registry_names() == expected  # the public function reads the same packaged file
    for name in expected:
        e = official.get(name)
        folder = "072824" if e.version == "2.0" else "092824"
        assert e.version == ("2.1" if name.startswith("sam2.1") else "2.0")
        assert e.size in SIZES and name.endswith(e.size)
        assert e.config == name and e.filename == f"{name}.pt"
        assert e.url == f"https://dl.fbaipublicfiles.com/segment_anything_2/{folder}/{name}.pt"


def test_official_registry_enforces_only_trustworthy_facts(official: ckpt.Registry) -> None:
    entries = [official.get(n) for n in official.names()]
    assert all(e.sha256 is None for e in entries)  # Meta publishes no checksum
    # no size is enforced: the one published figure is a third-party measurement
    assert all(e.bytes is None for e in entries)
    assert official.get("sam2_hiera_tiny").approx_bytes == 155_906_050
    assert all(e.approx_bytes and 150e6 < e.approx_bytes < 1e9 for e in entries)
    pinned = {e.name for e in entries if e.sha256_unverified}
    assert pinned == {"sam2.1_hiera_tiny", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"}
    assert official.get("sam2.1_hiera_large").display_size == "898 MB"


def test_packaged_registry_is_a_relative_symlink_to_weights() -> None:
    link = ROOT / "src" / "napari_sam2" / "checkpoints" / "registry.json"
    assert link.is_symlink()
    assert os.readlink(link) == "../../../weights/registry.json"
    assert link.resolve() == (ROOT / "weights" / "registry.json").resolve()
    data = json.loads((ROOT / "weights" / "registry.json").read_text())
    assert len(data["checkpoints"]) == 8


def test_typo_lists_valid_names_and_suggests_one(official: ckpt.Registry) -> None:
    with pytest.raises(CheckpointError) as err:
        official.get("sam2.1_hiera_tni")
    msg = str(err.value)
    assert "Did you mean 'sam2.1_hiera_tiny'?" in msg
    assert all(name in msg for name in official.names())
    assert "\n" not in msg and "Traceback" not in msg


def test_env_var_points_to_another_registry(write_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_registry(mine="https://example.org/mine.pt")
    monkeypatch.setenv(ENV_REGISTRY, str(path))
    assert ckpt.registry_names() == ["mine"]
    assert ckpt.get_entry("mine").filename == "mine.pt"  # default file name: <name>.pt
    assert ckpt.registry_names(ckpt.load_registry(path)) == ["mine"]


def test_unreadable_registry_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing.json"):
        ckpt.load_registry(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ckpt.load_registry(broken)


@pytest.mark.parametrize(
    "url",
    ["http://dl.fbaipublicfiles.com/x.pt", "http://192.168.1.5/x.pt", "ftp://example.org/x.pt", "file:///etc/x.pt"],
)
def test_non_https_non_loopback_urls_are_refused(write_registry, url: str) -> None:
    with pytest.raises(CheckpointError, match="https://") as err:
        ckpt.load_registry(write_registry(m=url))
    assert url in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8/x.pt", "http://localhost/x.pt", "http://[::1]:9/x.pt"])
def test_plain_http_is_allowed_for_loopback_only(write_registry, url: str) -> None:
    assert ckpt.load_registry(write_registry(m=url)).get("m").url == url


@pytest.mark.parametrize(
    "filename", ["../evil.pt", "sub/model.pt", "/tmp/abs.pt", "..\\evil.pt", "model.txt", "a..pt", ".hidden.pt"]
)
def test_file_names_that_could_escape_the_cache_are_refused(write_registry, filename: str) -> None:
    path = write_registry([{"name": "m", "filename": filename, "url": "https://example.org/m.pt"}])
    with pytest.raises(CheckpointError, match="plain file name"):
        ckpt.load_registry(path)


def test_invalid_sha256_and_duplicates_are_refused(write_registry) -> None:
    bad_hash = [{"name": "m", "url": "https://example.org/m.pt", "sha256": "abc"}]
    with pytest.raises(CheckpointError, match="sha256"):
        ckpt.load_registry(write_registry(bad_hash))
    twice = [{"name": "m", "url": "https://example.org/m.pt"}] * 2
    with pytest.raises(CheckpointError, match="appears twice"):
        ckpt.load_registry(write_registry(twice))


def test_cache_dir_uses_env_var_then_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(tmp_path / "w"))
    assert ckpt.cache_dir() == tmp_path / "w"
    monkeypatch.delenv(ENV_WEIGHTS_DIR)
    default = ckpt.cache_dir()
    assert default.parts[-2:] == ("napari-sam2", "weights")
    assert default.is_absolute()


def test_official_name_without_download_names_url_and_folder(
    official: ckpt.Registry, isolated_cache: Path
) -> None:
    with pytest.raises(CheckpointError) as err:
        ckpt.resolve_checkpoint("sam2.1_hiera_small", download=False, registry=official)
    msg = str(err.value)
    assert official.get("sam2.1_hiera_small").url in msg
    assert "'sam2.1_hiera_small.pt'" in msg and str(isolated_cache) in msg
    assert not isolated_cache.exists()  # a query creates nothing


def test_symlink_stored_as_text_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows checkouts without symlinks keep the link as a one-line text file naming its target."""
    from napari_sam2.checkpoints import registry as registry_module

    class FakeResource:
        def read_text(self, encoding: str) -> str:
            return "../../../weights/registry.json"

        def __str__(self) -> str:
            return str(ROOT / "src" / "napari_sam2" / "checkpoints" / "registry.json")

    class FakeFiles:
        def joinpath(self, name: str) -> FakeResource:
            return FakeResource()

    monkeypatch.setattr(registry_module.resources, "files", lambda package: FakeFiles())
    monkeypatch.delenv(ENV_REGISTRY, raising=False)
    assert len(ckpt.registry_names()) == 8
