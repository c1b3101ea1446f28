"""The plugin's napari readers (video, DICOM) and the widget on what readers give: lazy dask
layers with physical scale, and multiscale (OME-Zarr style) images segmented at level 0.

Files are written here with PyAV, pydicom and zarr; layers are opened through napari's own
``viewer.open(..., plugin="napari-sam2")``, as File > Open does.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_sam2.engine.video_session import VideoSession

from .conftest import open_widget, wait_idle

H, W = 48, 64


def frames(n, colour=True):
    yy, xx = np.mgrid[:H, :W]
    out = []
    for t in range(n):
        disc = ((yy - 24) ** 2 + (xx - 16 - 3 * t) ** 2) < 60
        grey = (30 + 180 * disc + 2 * t).astype(np.uint8)
        out.append(np.stack([grey, grey // 2 + 40, 255 - grey], -1) if colour else grey)
    return np.stack(out)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(path, sequentially decoded frames) of a 12-frame H.264 clip at 25 fps with B-frames."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "echo.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"bf": "2", "g": "5"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for img in frames(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return path, decoded


def test_video_opens_lazily_with_time_scale(viewer, clip):
    path, decoded = clip
    layers = viewer.open(str(path), plugin="napari-sam2")
    (layer,) = layers
    assert layer.name == "echo.mp4" and layer.rgb
    assert isinstance(layer.data, da.Array) and layer.data.chunks[0] == (1,) * 12  # one decode per frame
    assert layer.data.shape == decoded.shape
    np.testing.assert_allclose(layer.scale, [1 / 25, 1, 1])
    assert tuple(layer.axis_labels) == ("t", "y", "x")
    assert str(layer.units[0]) == "second"
    for t in (7, 2, 11, 0):  # random access is frame-accurate
        np.testing.assert_array_equal(np.asarray(layer.data[t]), decoded[t])
    assert layer.metadata["napari_sam2"]["fps"] == pytest.approx(25)
    viewer.dims.set_current_step(0, 9)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.raw), decoded[9])  # what napari shows


def test_dicom_series_folder_opens_with_mm_scale(viewer, tmp_path):
    pytest.importorskip("pydicom")
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    volume = frames(4, colour=False).astype(np.uint16) * 10
    series = uid.generate_uid()
    for z in (2, 0, 3, 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = uid.MRImageStorage, uid.generate_uid(), series
        ds.Modality, ds.PatientName = "MR", "Doe^Jane"
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 1.5 * z]
        ds.PixelSpacing = [0.8, 0.6]
        ds.set_pixel_data(volume[z], "MONOCHROME2", 16)
        ds.save_as(tmp_path / f"MR{z * 7 % 4}", enforce_file_format=True)
    (layer,) = viewer.open(str(tmp_path), plugin="napari-sam2")
    np.testing.assert_allclose(layer.scale, [1.5, 0.8, 0.6])
    assert tuple(layer.axis_labels) == ("z", "y", "x") and str(layer.units[1]) == "millimeter"
    np.testing.assert_array_equal(np.asarray(layer.data), volume)
    assert "Doe^Jane" not in repr(layer.metadata)


def test_readers_decline_what_is_not_theirs(tmp_path):
    from napari_sam2._napari.readers import get_dicom_reader, get_video_reader

    (tmp_path / "a.tif").write_bytes(b"II*\0")
    assert get_video_reader(str(tmp_path / "a.tif")) is None
    assert get_dicom_reader(str(tmp_path / "a.tif")) is None
    assert get_dicom_reader(str(tmp_path)) is None  # a folder without DICOM files


def test_widget_segments_a_video_layer(viewer, qtbot, clip, model):
    path, decoded = clip
    viewer.open(str(path), plugin="napari-sam2")
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    assert w.image_combo.currentText() == "echo.mp4"
    w.points_layer.add([[3, 24, 25]])
    wait_idle(qtbot, w)
    out = viewer.layers["echo.mp4 SAM 2"].data
    with VideoSession(model, decoded) as ref:
        expected = ref.add_points(3, 1, np.array([[24.0, 25.0]]), [1]).to_labels(out.dtype)
    np.testing.assert_array_equal(out[3], expected)
    assert out.shape == decoded.shape[:3] and out[3].any()


def test_widget_uses_level_0_of_a_multiscale_image(viewer, qtbot, model, tmp_path):
    zarr = pytest.importorskip("zarr")
    full = frames(6, colour=False)
    store = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    levels = []
    for i, level in enumerate([full, full[:, ::2, ::2]]):
        arr = store.create_array(str(i), shape=level.shape, chunks=(1, *level.shape[1:]), dtype=level.dtype)
        arr[...] = level
        levels.append(da.from_zarr(arr))
    viewer.add_image(levels, multiscale=True, name="pyramid", contrast_limits=[0, 255])
    w = open_widget(viewer)
    w.use_model(model, "random test model")
    w.follow_check.setChecked(False)
    w.points_layer.add([[2, 24, 22]])
    wait_idle(qtbot, w)
    out = viewer.layers["pyramid SAM 2"].data
    assert out.shape == full.shape  # labels at full resolution
    with VideoSession(model, full) as ref:
        expected = ref.add_points(2, 1, np.array([[24.0, 22.0]]), [1]).to_labels(out.dtype)
    np.testing.assert_array_equal(out[2], expected)
