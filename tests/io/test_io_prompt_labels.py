"""Mask prompts from label images saved by napari and by the plugin's writer."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam2.engine.layout import StackLayout
from napari_sam2.errors import PromptError
from napari_sam2.io import LabelsTiffWriter, read_prompts


def _labels():
    labels = np.zeros((4, 12, 16), np.uint16)
    labels[0, 1:4, 2:6] = 3
    labels[0, 6:9, 8:12] = 1
    labels[2, 5:7, 5:7] = 3
    return labels


@pytest.mark.filterwarnings("ignore:.*stored as RGB:DeprecationWarning")  # napari's writer
def test_napari_labels_tiff_gives_one_mask_per_label_and_frame(napari_writers, tmp_path):
    labels = _labels()
    written = napari_writers.Labels(labels).save(str(tmp_path / "seeds.tif"), plugin="napari")
    prompts = read_prompts(written[0], StackLayout((4, 12, 16), 0, False))
    assert not prompts.points and not prompts.boxes
    assert [(m.frame, m.obj_id) for m in prompts.masks] == [((0,), 1), ((0,), 3), ((2,), 3)]  # 1, 3 skipped
    for m in prompts.masks:
        assert m.mask.dtype == bool
        np.testing.assert_array_equal(m.mask, labels[m.frame] == m.obj_id)


def test_compressed_labels_from_writer_and_2d_npy(tmp_path):
    labels = _labels()
    path = tmp_path / "seeds.tif"
    with LabelsTiffWriter(path, labels.shape, max_label=3) as writer:
        for t, frame in enumerate(labels):
            writer.write(t, frame)
    assert [(m.frame, m.obj_id) for m in read_prompts(path).masks] == [((0,), 1), ((0,), 3), ((2,), 3)]
    np.save(tmp_path / "one.npy", labels[0].astype(np.int32))
    masks = read_prompts(tmp_path / "one.npy").masks
    assert [(m.frame, m.obj_id) for m in masks] == [((0,), 1), ((0,), 3)]


def test_wrong_shape_or_dtype_or_frames(tmp_path):
    path = tmp_path / "seeds.tif"
    tifffile.imwrite(path, _labels(), photometric="minisblack")
    shape = "mask of object 1 on frame 0 has shape \\(12, 16\\), not the 10 x 16 of the frames"
    with pytest.raises(PromptError, match=shape):
        read_prompts(path, StackLayout((4, 10, 16), 0, False))
    with pytest.raises(PromptError, match="frame 2 but the stack has 2 frames"):
        read_prompts(path, StackLayout((2, 12, 16), 0, False))
    floats = tmp_path / "floats.tif"
    tifffile.imwrite(floats, _labels().astype(np.float32), photometric="minisblack")
    with pytest.raises(PromptError, match="float32 values; mask prompts need an integer"):
        read_prompts(floats)
    negative = tmp_path / "negative.npy"
    np.save(negative, -_labels()[:1].astype(np.int16))
    with pytest.raises(PromptError, match="negative"):
        read_prompts(negative)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    with pytest.raises(PromptError, match="broken.tif"):
        read_prompts(broken)


def test_4d_labels_need_an_outer_index(tmp_path):
    labels = np.zeros((2, 3, 8, 8), np.uint8)
    labels[1, 2, 1:3, 1:3] = 5
    path = tmp_path / "tz.tif"
    tifffile.imwrite(path, labels, imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(PromptError, match="index="):
        read_prompts(path)
    assert read_prompts(path, index=(0,)).masks == []
    (mask,) = read_prompts(path, index=(1,)).masks
    assert (mask.frame, mask.obj_id, int(mask.mask.sum())) == ((1, 2), 5, 4)
    (mask,) = read_prompts(path, StackLayout((2, 3, 8, 8), 1, False)).masks  # the stack known: every position
    assert (mask.frame, mask.obj_id, int(mask.mask.sum())) == ((1, 2), 5, 4)


def test_interleaved_colour_image_is_not_a_label_image(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(PromptError, match="colour image"):
        read_prompts(path)


def test_mask_prompts_of_a_whole_label_stack_stay_small(tmp_path):
    """Masks are built on use from compressed frames, not held as frames x labels booleans."""
    import sys

    from napari_sam2.engine.prompts import LabelMask

    rng = np.random.default_rng(0)
    labels = np.zeros((40, 256, 256), np.uint16)
    for t in range(40):
        for k in range(1, 21):
            r, c = rng.integers(10, 240, 2)
            labels[t, r - 6 : r + 6, c - 6 : c + 6] = k
    path = tmp_path / "cellpose.npy"
    np.save(path, labels)
    prompts = read_prompts(path)
    assert len(prompts.masks) == 40 * 20
    assert all(isinstance(m.mask, LabelMask) for m in prompts.masks)
    held = sum(len(m.mask.plane._data) for m in prompts.masks[::20])  # one compressed plane per frame
    as_booleans = 40 * 20 * 256 * 256
    assert held < as_booleans / 100
    m = prompts.masks[45]
    np.testing.assert_array_equal(np.asarray(m.mask), labels[m.frame] == m.obj_id)
    assert m.mask.shape == (256, 256) and int(m.mask.sum()) == int((labels[m.frame] == m.obj_id).sum())
    assert sys.getsizeof(m.mask) < 1000
