"""read_stack: lazy access, axes and calibration of real TIFF / npy files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam2.errors import InputError
from napari_sam2.io import read_stack
from napari_sam2.io._lazy_tiff import LazyTiffSeries


def _movie(shape=(6, 20, 30), dtype=np.uint16):
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape).astype(dtype)


def test_uncompressed_imagej_is_memory_mapped_with_calibration(tmp_path):
    data = _movie((4, 3, 20, 30))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TZYX", "spacing": 1.5, "unit": "micron"},
    )
    with read_stack(path) as stack:
        assert isinstance(stack.data, np.memmap)
        assert stack.axes == "TZYX"
        assert stack.shape == data.shape and stack.dtype == np.uint16
        assert stack.scale == pytest.approx((1.0, 1.5, 0.25, 0.25))
        assert stack.unit == "µm"
        np.testing.assert_array_equal(stack.data[2, 1], data[2, 1])


def test_compressed_tiff_reads_only_requested_pages(tmp_path, monkeypatch):
    data = _movie((8, 16, 24))
    path = tmp_path / "zip.tif"
    tifffile.imwrite(path, data, imagej=True, compression="zlib", metadata={"axes": "TYX"})
    with read_stack(path) as stack:
        assert isinstance(stack.data, LazyTiffSeries)
        assert (stack.shape, stack.ndim, stack.dtype, len(stack.data)) == (data.shape, 3, data.dtype, 8)
        read: list[int] = []
        original = stack.data.read_page

        def spy(i):
            read.append(i)
            return original(i)

        monkeypatch.setattr(stack.data, "read_page", spy)
        np.testing.assert_array_equal(stack.data[5], data[5])
        assert read == [5]
        read.clear()
        np.testing.assert_array_equal(stack.data[1:7:2, 3:9, ::5], data[1:7:2, 3:9, ::5])
        assert read == [1, 3, 5]
        read.clear()
        np.testing.assert_array_equal(stack.data[[7, 0], ..., -1], data[[7, 0], ..., -1])
        assert read == [7, 0]
        np.testing.assert_array_equal(stack.data[-1, 4, 2], data[-1, 4, 2])


def test_lazy_series_works_with_dask_and_numpy(tmp_path):
    import dask.array as da

    data = _movie((5, 12, 10), np.uint8)
    path = tmp_path / "zip.tif"
    tifffile.imwrite(path, data, compression="zlib")
    with read_stack(path) as stack:
        lazy = da.from_array(stack.data, chunks=(1, 12, 10))
        np.testing.assert_array_equal(lazy[3].compute(), data[3])
        np.testing.assert_array_equal(np.asarray(stack.data), data)


def test_ome_tiff_axes_and_physical_size(tmp_path):
    data = _movie((3, 2, 16, 20))
    path = tmp_path / "img.ome.tif"
    tifffile.imwrite(
        path, data, compression="zlib",
        metadata={"axes": "TZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3,
                  "PhysicalSizeZ": 2000.0, "PhysicalSizeZUnit": "nm"},
    )
    with read_stack(path) as stack:
        assert stack.axes == "TZYX"
        assert stack.unit == "µm"
        assert stack.scale == pytest.approx((1.0, 2.0, 0.3, 0.3))  # Z converted from nm
        np.testing.assert_array_equal(stack.data[1, 1], data[1, 1])


def test_plain_multipage_tiff_is_a_time_series_without_scale(tmp_path):
    data = _movie((4, 10, 12))
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data, metadata=None, photometric="minisblack")
    with read_stack(path) as stack:
        assert stack.axes == "TYX"
        assert stack.scale is None and stack.unit is None


def test_plain_tiff_with_centimetre_resolution_is_calibrated_in_microns(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, _movie((2, 8, 8)), metadata=None, resolution=(10000.0, 5000.0),
                     resolutionunit="CENTIMETER")
    with read_stack(path) as stack:
        assert stack.unit == "µm"
        assert stack.scale == pytest.approx((1.0, 2.0, 1.0))  # (T, Y, X)


def test_rgb_tiff_has_channel_last(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (3, 10, 12, 3), dtype=np.uint8)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    with read_stack(path) as stack:
        assert stack.axes == "TYXC"
        np.testing.assert_array_equal(stack.data[2], data[2])


def test_npy_is_memory_mapped(tmp_path):
    data = _movie((3, 9, 7), np.float32)
    path = tmp_path / "movie.npy"
    np.save(path, data)
    stack = read_stack(path)
    assert isinstance(stack.data, np.memmap)
    assert stack.axes == "TYX" and stack.scale is None
    np.testing.assert_array_equal(stack.data[1], data[1])
    np.save(tmp_path / "rgb.npy", np.zeros((2, 9, 7, 3), np.uint8))
    assert read_stack(tmp_path / "rgb.npy").axes == "TYXC"


def test_second_series_is_selectable(tmp_path):
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(np.zeros((2, 8, 8), np.uint8))
        tw.write(np.full((3, 6, 6), 7, np.uint16), photometric="minisblack")
    with read_stack(path, series=1) as stack:
        assert stack.shape == (3, 6, 6)
        assert int(stack.data[2, 0, 0]) == 7
    with pytest.raises(InputError, match="2 image series"):
        read_stack(path, series=2)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.tif", None, "not found"),
        ("movie.png", b"\x89PNG....", "Unsupported image file type"),
        ("corrupt.tif", b"this is not a tiff at all", "Cannot read"),
        ("objects.npy", "pickle", "Cannot read"),
    ],
)
def test_bad_inputs_raise_input_error(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_stack(path)


def test_folder_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="folder"):
        read_stack(tmp_path)


def test_undecodable_compression_fails_at_open(tmp_path):
    path = tmp_path / "weird.tif"
    tifffile.imwrite(path, _movie((2, 8, 8)), compression="zlib", metadata=None, photometric="minisblack")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            page.tags["Compression"].overwrite(34887)  # LERC: needs imagecodecs
    with pytest.raises(InputError, match="Cannot decode page 0"):
        read_stack(path)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("micron", "µm"), ("\\u00B5m", "µm"), ("um", "µm"), ("μm", "µm"), ("nanometer", "nm"),
     ("pixel", None), ("", None), (None, None), ("parsec", "parsec")],
)
def test_unit_spellings(raw, canonical):
    from napari_sam2.io._units import normalize_unit

    assert normalize_unit(raw) == canonical


def test_imagej_escaped_micro_unit_is_read(tmp_path):
    path = tmp_path / "esc.tif"
    tifffile.imwrite(path, _movie((2, 8, 8)), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TYX", "unit": "\\u00B5m"})
    with read_stack(path) as stack:
        assert stack.unit == "µm" and stack.scale == pytest.approx((1.0, 0.5, 0.5))
