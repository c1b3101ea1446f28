"""LabelsTiffWriter: streamed, compressed, calibrated label TIFFs that Fiji can open."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam2.errors import OutputError
from napari_sam2.io import LabelsTiffWriter, labels_dtype, read_stack


@pytest.mark.parametrize(
    ("max_label", "dtype"), [(0, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16),
                             (65536, np.uint32), (2**32 - 1, np.uint32)]
)
def test_smallest_fitting_dtype(max_label, dtype):
    assert labels_dtype(max_label) == np.dtype(dtype)


def test_labels_dtype_rejects_huge_labels():
    with pytest.raises(OutputError, match="uint32"):
        labels_dtype(2**32)


def test_imagej_hyperstack_with_calibration_and_zero_fill(tmp_path):
    path = tmp_path / "labels.tif"
    frame = np.zeros((20, 30), np.uint32)
    frame[2:5, 3:9] = 300
    with LabelsTiffWriter(path, (6, 20, 30), max_label=300, scale=(1.0, 0.2, 0.25), unit="micron") as w:
        assert w.imagej and w.dtype == np.uint16
        w.write(1, frame)
        w.write(3, frame * 0 + 7)  # frame 2 skipped -> zeros
        assert w.pages_written == 4
    # frames 4 and 5 never written -> zeros
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and not tif.is_bigtiff
        meta = tif.imagej_metadata
        assert (meta["images"], meta["frames"], meta["unit"]) == (6, 6, "um")
        assert tif.series[0].axes == "TYX" and tif.series[0].dtype == np.uint16
        assert len(tif.pages) == 6
        for page in tif.pages:
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE  # ImageJ reads "ZIP" (8)
            assert page.predictor == 1 and not page.is_tiled  # ImageJ cannot read tiles
        xres, yres = tif.pages[0].get_resolution()
        assert (xres, yres) == pytest.approx((4.0, 5.0))  # pixels per micron
        data = tif.asarray()
    expected = np.zeros((6, 20, 30), np.uint16)
    expected[1] = frame
    expected[3] = 7
    np.testing.assert_array_equal(data, expected)
    with read_stack(path) as stack:  # and the plugin reads the calibration back
        assert stack.axes == "TYX" and stack.unit == "µm"
        assert stack.scale == pytest.approx((1.0, 0.2, 0.25))


def test_tzyx_keeps_z_spacing_and_takes_tuple_indices(tmp_path):
    path = tmp_path / "tz.tif"
    with LabelsTiffWriter(path, (2, 3, 8, 8), axes="TZYX", max_label=5,
                          scale=(1, 2.5, 0.5, 0.5), unit="µm") as w:
        assert w.dtype == np.uint8
        w.write((1, 2), np.full((8, 8), 5))
    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata
        assert (meta["frames"], meta["slices"], meta["spacing"]) == (2, 3, 2.5)
        data = tif.asarray()
    assert data.shape == (2, 3, 8, 8) and data.dtype == np.uint8
    assert data[1, 2].min() == 5 and data.sum() == 5 * 64


def test_uint32_labels_fall_back_to_ome_tiff(tmp_path):
    path = tmp_path / "big.tif"
    with LabelsTiffWriter(path, (3, 10, 12), max_label=70000, scale=(1, 0.5, 0.5), unit="um") as w:
        assert not w.imagej and w.dtype == np.uint32
        w.write(2, np.full((10, 12), 70000))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and not tif.is_imagej
        assert tif.series[0].dtype == np.uint32 and tif.series[0].axes == "TYX"
        assert all(p.compression == tifffile.COMPRESSION.ADOBE_DEFLATE for p in tif.pages)
        assert 'PhysicalSizeX="0.5"' in tif.ome_metadata
        np.testing.assert_array_equal(tif.asarray()[:, 0, 0], [0, 0, 70000])
    with read_stack(path) as stack:
        assert stack.scale == pytest.approx((1.0, 0.5, 0.5)) and stack.unit == "µm"


def test_uncalibrated_and_2d(tmp_path):
    path = tmp_path / "one.tif"
    with LabelsTiffWriter(path, (5, 6), axes="YX", max_label=2) as w:
        w.write(0, np.eye(5, 6, dtype=np.uint8) * 2)
    with read_stack(path) as stack:
        assert stack.shape == (5, 6) and stack.scale is None
        np.testing.assert_array_equal(stack.data[...], np.eye(5, 6) * 2)


def test_misuse_raises(tmp_path):
    with LabelsTiffWriter(tmp_path / "x.tif", (3, 4, 4), max_label=3) as w:
        w.write(1, np.ones((4, 4)))
        with pytest.raises(OutputError, match="already written"):
            w.write(0, np.ones((4, 4)))
        with pytest.raises(OutputError, match="max_label"):
            w.write(2, np.full((4, 4), 4))
        with pytest.raises(OutputError, match="do not match"):
            w.write(2, np.ones((5, 4)))
        with pytest.raises(OutputError, match="outside the 3 pages"):
            w.write(3, np.ones((4, 4)))
    with pytest.raises(OutputError, match="closed"):
        w.write(2, np.ones((4, 4)))
    with pytest.raises(OutputError, match="end with 'YX'"):
        LabelsTiffWriter(tmp_path / "y.tif", (3, 4, 4), axes="YXT", max_label=1)


def test_axes_out_of_imagej_order_use_ome(tmp_path):
    path = tmp_path / "zt.tif"
    with LabelsTiffWriter(path, (2, 3, 4, 4), axes="ZTYX", max_label=9) as w:
        assert not w.imagej
        w.write((0, 1), np.full((4, 4), 9))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        assert tif.asarray().reshape(6, 4, 4)[1].min() == 9
