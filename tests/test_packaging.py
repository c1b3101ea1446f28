"""Packaging: the npe2 manifest is valid, discoverable when installed, and survives a wheel build."""

from __future__ import annotations

import importlib.util
import json
import os
import site
import stat
import subprocess
import sys
import textwrap
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from npe2 import PluginManager, PluginManifest
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "napari.yaml"
MANIFEST_LINK = ROOT / "src" / "napari_sam2" / "napari.yaml"
REGISTRY_LINK = ROOT / "src" / "napari_sam2" / "checkpoints" / "registry.json"

COMMANDS = {
    "napari-sam2.make_widget": "napari_sam2._napari.widget:Sam2Widget",
    "napari-sam2.cells_timelapse": "napari_sam2._napari.sample_data:cells_timelapse",
    "napari-sam2.ultrasound_clip": "napari_sam2._napari.sample_data:ultrasound_clip",
    "napari-sam2.get_video_reader": "napari_sam2._napari.readers:get_video_reader",
    "napari-sam2.get_dicom_reader": "napari_sam2._napari.readers:get_dicom_reader",
}
READERS = {  # command -> (patterns, accepts folders): only what napari's own readers do not open
    "napari-sam2.get_video_reader": (["*.mp4", "*.m4v", "*.mov", "*.avi", "*.mkv", "*.webm"], False),
    "napari-sam2.get_dicom_reader": (["*"], True),
}
SAMPLES = {
    "cells_timelapse": ("napari-sam2.cells_timelapse", "Cells time-lapse (synthetic)"),
    "ultrasound_clip": ("napari-sam2.ultrasound_clip", "Ultrasound clip (synthetic)"),
}


def _check_contributions(mf: PluginManifest) -> None:
    assert mf.name == "napari-sam2"
    contrib = mf.contributions
    assert {c.id: c.python_name for c in contrib.commands} == COMMANDS
    assert [(w.command, w.display_name) for w in contrib.widgets] == [
        ("napari-sam2.make_widget", "SAM 2")
    ]
    assert {s.key: (s.command, s.display_name) for s in contrib.sample_data} == SAMPLES
    assert {r.command: (list(r.filename_patterns), r.accepts_directories) for r in contrib.readers} == READERS


# --------------------------------------------------------------------------------------------------
# the manifest file
# --------------------------------------------------------------------------------------------------
def test_manifest_is_valid(tmp_path):
    mf = PluginManifest.from_file(MANIFEST)  # pydantic validation: raises when invalid
    _check_contributions(mf)
    assert (mf.display_name, mf.visibility, list(mf.categories)) == ("SAM 2", "public", ["Segmentation", "Annotation"])
    # the validation this relies on does refuse a broken manifest: the same file with a
    # malformed python_name (a dot where the colon belongs) and with a command id of another plugin
    for old, new in (("napari_sam2._napari.widget:Sam2Widget", "napari_sam2._napari.widget.Sam2Widget"),
                     ("id: napari-sam2.make_widget", "id: another-plugin.make_widget")):
        broken = tmp_path / "napari.yaml"
        text = MANIFEST.read_text()
        assert old in text
        broken.write_text(text.replace(old, new))
        with pytest.raises(ValidationError):
            PluginManifest.from_file(broken)


def test_npe2_validate_cli():
    """The exact check the napari hub / `npe2 validate` runs, on the file and on the install."""
    for target in (str(MANIFEST), "napari-sam2"):
        proc = subprocess.run(
            [sys.executable, "-m", "npe2", "validate", target],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "valid" in proc.stdout


def test_package_manifest_is_a_relative_link_to_the_top_level_file():
    assert MANIFEST_LINK.is_symlink(), "src/napari_sam2/napari.yaml must be a symlink"
    assert os.readlink(MANIFEST_LINK) == "../../napari.yaml"
    packaged = resources.files("napari_sam2").joinpath("napari.yaml").read_text()
    assert packaged == MANIFEST.read_text()


def test_python_names_resolve():
    """Every python_name of the manifest imports and is callable."""
    for target in COMMANDS.values():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


# --------------------------------------------------------------------------------------------------
# the installed (editable) package, as napari sees it
# --------------------------------------------------------------------------------------------------
def test_plugin_manager_discovers_installed_plugin():
    pm = PluginManager()
    pm.discover()
    mf = pm.get_manifest("napari-sam2")
    _check_contributions(mf)
    assert mf.package_metadata is not None and mf.package_metadata.name == "napari-sam2"
    samples = {key: s.display_name for key, s in _sample_items(pm, "napari-sam2")}
    assert samples == {k: v[1] for k, v in SAMPLES.items()}
    widgets = [w.display_name for plugin, w in _widget_items(pm) if plugin == "napari-sam2"]
    assert widgets == ["SAM 2"]


def _sample_items(pm: PluginManager, plugin: str):
    for name, contribs in pm.iter_sample_data():
        if name == plugin:
            for s in contribs:
                yield s.key, s


def _widget_items(pm: PluginManager):
    for w in pm.iter_widgets():
        yield pm.get_manifest(w.command).name, w


def test_napari_menus_list_the_plugin():
    """What napari's File > Open Sample and Plugins menus are built from."""
    from napari.plugins import _npe2

    PluginManager.instance().discover()
    samples = dict(_npe2.sample_iterator())
    assert set(samples["napari-sam2"]) == set(SAMPLES)
    assert samples["napari-sam2"]["cells_timelapse"]["display_name"] == SAMPLES["cells_timelapse"][1]
    docks = [names for kind, (plugin, names) in _npe2.widget_iterator() if plugin == "napari-sam2"]
    assert docks == [["SAM 2"]]


# --------------------------------------------------------------------------------------------------
# a wheel built from the checkout
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build a wheel of the checkout (a few seconds): without build isolation when hatchling is
    importable here, otherwise with it (pip then fetches hatchling from the package index)."""
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.insert(5, "--no-build-isolation")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No matching distribution found for hatchling" in proc.stderr:
        pytest.skip("hatchling is not installed and the package index is unreachable")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = out.glob("napari_sam2-*.whl")
    return whl


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


@pytest.mark.slow
def test_wheel_carries_the_manifest_as_a_real_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("napari_sam2/napari.yaml")
        assert not _is_symlink(info)
        assert zf.read(info).decode() == MANIFEST.read_text()
        (ep_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(ep_name).decode()
    assert "[napari.manifest]" in entry_points
    assert "napari-sam2 = napari_sam2:napari.yaml" in entry_points
    assert "napari-sam2 = napari_sam2.cli:main" in entry_points


@pytest.mark.slow
def test_wheel_carries_the_weights_registry_as_a_real_file(wheel):
    assert REGISTRY_LINK.is_symlink(), "src/napari_sam2/checkpoints/registry.json must link to weights/registry.json"
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("napari_sam2/checkpoints/registry.json")
        assert not _is_symlink(info)
        data = zf.read(info)
    assert json.loads(data) == json.loads(REGISTRY_LINK.read_bytes())


@pytest.mark.slow
def test_wheel_carries_the_demo_model_as_a_real_file(wheel):
    link = ROOT / "src" / "napari_sam2" / "checkpoints" / "napari-sam2-demo.pt"
    assert link.is_symlink(), "src/napari_sam2/checkpoints/napari-sam2-demo.pt must link to weights/"
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("napari_sam2/checkpoints/napari-sam2-demo.pt")
        assert not _is_symlink(info)
        assert zf.read(info) == link.read_bytes()


@pytest.mark.slow
def test_npe2_finds_the_manifest_of_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (target / "napari_sam2" / "napari.yaml").is_symlink()

    # `-S` skips site.py, so the editable install's .pth file is not processed: napari_sam2 can
    # only come from the wheel; the environment's site-packages still provide npe2 and friends.
    script = textwrap.dedent(
        """
        import sys
        from importlib import metadata
        from pathlib import Path
        from npe2 import PluginManager, PluginManifest

        target = Path(sys.argv[1]).resolve()
        import napari_sam2
        assert Path(napari_sam2.__file__).resolve().is_relative_to(target), napari_sam2.__file__

        (dist,) = [d for d in metadata.distributions(path=[str(target)])
                   if d.metadata["Name"] == "napari-sam2"]
        (ep,) = [e for e in dist.entry_points if e.group == "napari.manifest"]
        mf = PluginManifest._from_entrypoint(ep, dist)
        assert mf.name == "napari-sam2"
        assert mf.package_metadata.name == "napari-sam2"

        pm = PluginManager()
        pm.discover()
        found = pm.get_manifest("napari-sam2")
        keys = sorted(s.key for s in found.contributions.sample_data)
        print("OK", keys, [c.id for c in found.contributions.commands])
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site.getsitepackages()])}
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script, str(target)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK ['cells_timelapse', 'ultrasound_clip']" in proc.stdout
