"""Image-sequence folders, zarr / OME-Zarr stacks, the folder rule and the OME-Zarr labels writer.

Frames are written here with Pillow and tifffile, zarr stores with zarr itself (NGFF 0.4 on
zarr format 2 and NGFF 0.5 on zarr format 3); everything is read back through
``io.read_stack`` and compared with the pixels written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from napari_sam2.errors import InputError
from napari_sam2.io import read_stack
from napari_sam2.io.folders import IMAGES, STACKS, ZARR, folder_kind
from napari_sam2.io.image_folder import natural_key
from napari_sam2.io.labels_zarr import LabelsZarrWriter

RNG = np.random.default_rng(7)


def write_frames(folder, frames, pattern="frame{}.png", names=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        name = names[i] if names else pattern.format(i)
        if name.endswith((".tif", ".tiff")):
            tifffile.imwrite(folder / name, f)
        else:
            Image.fromarray(f).save(folder / name)
    return folder


def test_natural_order_colour_frames_and_ignored_files(tmp_path):
    frames = RNG.integers(0, 255, (12, 20, 30, 3), dtype=np.uint8)
    write_frames(tmp_path / "clip", frames, names=[f"frame{i}.png" for i in range(12)])
    (tmp_path / "clip" / "notes.txt").write_text("acquisition notes")
    (tmp_path / "clip" / ".DS_Store").write_bytes(b"\0")
    assert folder_kind(tmp_path / "clip") == IMAGES
    with read_stack(tmp_path / "clip") as stack:
        assert stack.axes == "TYXC" and stack.shape == (12, 20, 30, 3)
        np.testing.assert_array_equal(stack.data[2], frames[2])  # frame2 before frame10
        np.testing.assert_array_equal(stack.data[10], frames[10])
        np.testing.assert_array_equal(stack.data[-1], frames[11])
        np.testing.assert_array_equal(stack.data[3:9:2, 4, :5], frames[3:9:2, 4, :5])
        np.testing.assert_array_equal(np.asarray(stack.data), frames)
        assert stack.metadata["files"][:3] == ["frame0.png", "frame1.png", "frame2.png"]
        assert any("ignored 1 file" in n and "notes.txt" in n for n in stack.notes)
        assert not any("DS_Store" in n for n in stack.notes)


def test_official_sam2_layout_of_jpegs_and_grey_tiffs(tmp_path):
    grey = RNG.integers(0, 4000, (5, 16, 24), dtype=np.uint16)
    write_frames(tmp_path / "g", grey, pattern="{:05d}.tif")
    with read_stack(tmp_path / "g") as stack:
        assert stack.axes == "TYX" and stack.dtype == np.uint16
        np.testing.assert_array_equal(np.asarray(stack.data), grey)
    jpegs = RNG.integers(0, 255, (4, 16, 24, 3), dtype=np.uint8)
    write_frames(tmp_path / "j", jpegs, pattern="{:05d}.jpg")
    with read_stack(tmp_path / "j") as stack:
        decoded = np.stack([np.asarray(Image.open(tmp_path / "j" / f"{i:05d}.jpg")) for i in range(4)])
        np.testing.assert_array_equal(np.asarray(stack.data), decoded)


def test_grey_and_colour_frames_mixed_read_as_colour(tmp_path):
    folder = tmp_path / "mix"
    folder.mkdir()
    grey = RNG.integers(0, 255, (10, 12), dtype=np.uint8)
    colour = RNG.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(grey).save(folder / "a1.png")
    Image.fromarray(colour).save(folder / "a2.png")
    with read_stack(folder) as stack:
        assert stack.shape == (2, 10, 12, 3)
        np.testing.assert_array_equal(stack.data[0], np.repeat(grey[:, :, None], 3, axis=2))
        np.testing.assert_array_equal(stack.data[1], colour)


def test_natural_key():
    names = ["f10.png", "f2.png", "F1.png", "f2b.png", "g.png"]
    assert sorted(names, key=natural_key) == ["F1.png", "f2.png", "f2b.png", "f10.png", "g.png"]


@pytest.mark.parametrize("case", ["size", "depth", "empty", "no_images", "multipage", "damaged"])
def test_bad_image_folders(tmp_path, case):
    folder = tmp_path / "bad"
    folder.mkdir()
    if case == "size":
        write_frames(folder, [np.zeros((8, 8), np.uint8)] * 3)
        Image.fromarray(np.zeros((9, 8), np.uint8)).save(folder / "frame10.png")
        match = r"frame10\.png is 8x9 pixels but frame0\.png is 8x8"
    elif case == "depth":
        write_frames(folder, [np.zeros((8, 8), np.uint8)], names=["a.tif"])
        write_frames(folder, [np.zeros((8, 8), np.uint16)], names=["b.tif"])
        match = r"b\.tif has uint16 pixels but a\.tif has uint8"
    elif case == "empty":
        match = "is empty"
    elif case == "no_images":
        (folder / "notes.txt").write_text("x")
        match = r"holds no images or stacks \(e\.g\. notes\.txt\)"
    elif case == "multipage":  # 2D frames plus one stack: not one image sequence
        write_frames(folder, [np.zeros((8, 8), np.uint8)] * 2)
        tifffile.imwrite(folder / "frame2.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
        match = "folder of stacks"
    else:
        write_frames(folder, [np.zeros((8, 8), np.uint8)] * 2)
        (folder / "frame2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 3)
        match = r"frame2\.png"
    with pytest.raises(InputError, match=match) as info:
        read_stack(folder)
    assert "\n" not in str(info.value)


def test_a_folder_of_stacks_is_a_batch_not_one_stack(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    assert folder_kind(tmp_path) == STACKS
    with pytest.raises(InputError, match="folder of stacks.*batch"):
        read_stack(tmp_path)


# ------------------------------------------------------------------------------- zarr
def ome_zarr(path, levels, *, version="0.4", axes="tyx", units=None, scale0=None):
    """An OME-Zarr image with the given resolution levels (arrays), NGFF ``version``."""
    fmt = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    datasets = []
    for i, level in enumerate(levels):
        arr = group.create_array(str(i), shape=level.shape, chunks=(1,) + level.shape[1:], dtype=level.dtype)
        arr[...] = level
        s = [1.0] * len(axes) if scale0 is None else list(scale0)
        s = [v * (2 ** i if a in "yx" else 1) for v, a in zip(s, axes)]
        datasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]})
    axes_meta = [{"name": a, "type": {"t": "time", "c": "channel"}.get(a, "space"),
                  **({"unit": units[a]} if units and a in units else {})} for a in axes]
    ms = [{"version": version, "axes": axes_meta, "datasets": datasets}]
    if version == "0.4":
        group.attrs["multiscales"] = ms
    else:
        group.attrs["ome"] = {"version": version, "multiscales": ms}
    return path


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_levels_axes_scale_units(tmp_path, version):
    full = RNG.integers(0, 60000, (4, 2, 32, 48), dtype=np.uint16)
    half = full[:, :, ::2, ::2].copy()
    path = ome_zarr(tmp_path / "img.ome.zarr", [full, half], version=version, axes="tcyx",
                    units={"t": "millisecond", "y": "micrometer", "x": "micrometer"},
                    scale0=[250.0, 1.0, 0.325, 0.325])
    assert folder_kind(path) == ZARR
    with read_stack(path) as stack:
        assert stack.axes == "TCYX" and stack.shape == full.shape
        assert isinstance(stack.data, zarr.Array)  # indexed in place, never loaded whole
        np.testing.assert_array_equal(stack.data[2], full[2])
        assert stack.scale == (1.0, 1.0, 0.325, 0.325) and stack.unit == "µm"
        assert stack.frame_interval == pytest.approx(0.25)
        assert stack.metadata["levels"] == [full.shape, half.shape]
    with read_stack(path, level=1) as stack:  # laptop mode: half the pixels
        np.testing.assert_array_equal(np.asarray(stack.data[1]), half[1])
        assert stack.scale == (1.0, 1.0, 0.65, 0.65)
    with pytest.raises(InputError, match="2 resolution level.*between 0 and 1"):
        read_stack(path, level=2)


def test_plain_zarr_array_and_groups(tmp_path):
    data = RNG.integers(0, 255, (6, 16, 16), dtype=np.uint8)
    arr = zarr.open_array(str(tmp_path / "plain.zarr"), mode="w", shape=data.shape, chunks=(1, 16, 16),
                          dtype=data.dtype)
    arr[...] = data
    with read_stack(tmp_path / "plain.zarr") as stack:
        assert stack.axes == "TYX"
        np.testing.assert_array_equal(stack.data[5], data[5])
    zarr.open_group(str(tmp_path / "nothing.zarr"), mode="w").create_group("inner")
    with pytest.raises(InputError, match="zarr group without arrays.*inner"):
        read_stack(tmp_path / "nothing.zarr")
    g = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    g.create_array("a", shape=(2, 4, 4), dtype="u1")
    g.create_array("b", shape=(2, 4, 4), dtype="u1")
    with pytest.raises(InputError, match="several arrays"):
        read_stack(tmp_path / "two.zarr")
    with pytest.raises(InputError, match="without resolution levels; leave out --level"):
        read_stack(tmp_path / "plain.zarr", level=1)


def test_labels_zarr_writer_any_order_and_ome_metadata(tmp_path):
    path = tmp_path / "labels.zarr"
    frames = RNG.integers(0, 4, (5, 3, 20, 24)).astype(np.uint8)
    writer = LabelsZarrWriter(path, frames.shape, max_label=3, axes="TZYX", scale=(1.0, 2.0, 0.5, 0.5),
                              unit="µm", frame_interval=1.5)
    for t, z in [(4, 2), (0, 0), (2, 1), (0, 1)]:  # any order; frames never written stay 0
        writer.write((t, z), frames[t, z])
    writer.write(3 * 3 + 0, frames[3, 0])  # a flat page index, as LabelsSink gives
    writer.close()
    attrs = json.loads((path / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"] and "image-label" in attrs
    assert ms["axes"][2]["unit"] == "micrometer" and ms["axes"][0]["unit"] == "second"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.5, 2.0, 0.5, 0.5]
    with read_stack(path) as stack:
        expected = np.zeros_like(frames)
        for t, z in [(4, 2), (0, 0), (2, 1), (0, 1), (3, 0)]:
            expected[t, z] = frames[t, z]
        np.testing.assert_array_equal(np.asarray(stack.data), expected)
        assert stack.frame_interval == 1.5 and stack.scale == (1.0, 2.0, 0.5, 0.5)
    chunks = json.loads((path / "0" / ".zarray").read_text())["chunks"]
    assert chunks == [1, 1, 20, 24]  # one frame per chunk: writing a frame touches nothing else
    with pytest.raises(Exception, match="outside 0..3"):
        LabelsZarrWriter(tmp_path / "x.zarr", (1, 4, 4), max_label=3).write(0, np.full((4, 4), 9))
