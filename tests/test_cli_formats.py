"""``napari-sam2 segment`` on every input format the CLI opens, as a real subprocess.

Each test writes a small file of one format (a PyAV H.264 clip, a pydicom cine and CT series, a
folder of PNG frames, an OME-Zarr image) and checks that the CLI's labels equal
:func:`napari_sam2.segment_video` on the frames decoded independently here (PyAV's sequential
decode, pydicom's ``pixel_array``, Pillow, the array written). ``--out x.zarr`` writes a chunked
OME-Zarr label image; the random-weights test model runs the real engine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from napari_sam2.api import TEST_MODEL, segment_video
from napari_sam2.io import read_stack

from .test_cli import finish, save_points, start_cli

H, W = 48, 64


@pytest.fixture(scope="module")
def napari_layers():
    """napari layers whose ``save`` uses napari's builtin CSV writers (no viewer needed)."""
    import npe2

    npe2.PluginManager.instance().discover()
    import napari.layers

    return napari.layers
CLICKS, IDS = [[1, 24, 30], [1, 10, 50]], [1, 2]


def moving_disc(n, colour=True):
    yy, xx = np.mgrid[:H, :W]
    frames = []
    for t in range(n):
        disc = ((yy - 24) ** 2 + (xx - 20 - 3 * t) ** 2) < 60
        img = np.stack([40 + 160 * disc, 60 + 3 * t + 0 * xx, 30 + 150 * disc], -1) if colour else 30 + 180 * disc
        frames.append(img.astype(np.uint8))
    return np.stack(frames)


def run_and_compare(tmp_path, napari_layers, source, expected_frames, out_name="labels.tif", extra=(),
                    phi=()):
    prompts = save_points(napari_layers, tmp_path / "clicks.csv", CLICKS, IDS)
    out = tmp_path / "out" / out_name
    proc = start_cli("segment", source, "--prompts", prompts, "--out", out, "--model", TEST_MODEL,
                     "--device", "cpu", *extra)
    expected = segment_video(expected_frames, points=CLICKS, point_ids=IDS, model=TEST_MODEL, device="cpu")
    proc = finish(proc)
    assert proc.returncode == 0, proc.stderr
    for secret in phi:
        assert secret not in proc.stderr + proc.stdout
    with read_stack(out) as labels:
        got = np.asarray(labels.data)
    np.testing.assert_array_equal(got, expected)
    assert got[1].any() and got.shape == expected_frames.shape[: expected.ndim]
    return proc, out


def test_cli_video_clip_equals_sequential_decode(tmp_path, napari_layers):
    av = pytest.importorskip("av")
    path = tmp_path / "bedroom.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"bf": "2", "g": "4", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for img in moving_disc(8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    proc, _ = run_and_compare(tmp_path, napari_layers, path, decoded)
    assert "2 object(s), 8 frame(s)" in proc.stderr


def test_cli_dicom_cine_to_zarr_labels_without_patient_data(tmp_path, napari_layers):
    pydicom = pytest.importorskip("pydicom")
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = uid.UltrasoundMultiFrameImageStorage, uid.generate_uid()
    ds.SeriesInstanceUID, ds.Modality = uid.generate_uid(), "US"
    ds.PatientName, ds.PatientID = "Doe^Jane", "PHI-4711"
    ds.FrameTime = 40.0
    ds.set_pixel_data(moving_disc(6, colour=False), "MONOCHROME2", 8)
    path = tmp_path / "IM0001"  # no suffix, as DICOM exports often are
    ds.save_as(path, enforce_file_format=True)
    decoded = pydicom.dcmread(path).pixel_array
    proc, out = run_and_compare(tmp_path, napari_layers, path, decoded, out_name="cine_labels.zarr",
                                phi=("Doe^Jane", "PHI-4711"))
    attrs = json.loads((out / ".zattrs").read_text())
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][0] == pytest.approx(0.04)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no partial folder left


def test_cli_dicom_series_folder(tmp_path, napari_layers):
    pytest.importorskip("pydicom")
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    volume = moving_disc(5, colour=False).astype(np.int16) * 4
    folder, series = tmp_path / "series", uid.generate_uid()
    folder.mkdir()
    for z, plane in enumerate(volume):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, uid.generate_uid()
        ds.SeriesInstanceUID, ds.Modality = series, "CT"
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 3.0 * z]
        ds.PixelSpacing, ds.InstanceNumber = [0.5, 0.5], 5 - z  # positions, not numbers, give the order
        ds.set_pixel_data(plane, "MONOCHROME2", 16)
        ds.save_as(folder / f"slice_{(z * 3) % 5}.dcm", enforce_file_format=True)
    proc, out = run_and_compare(tmp_path, napari_layers, folder, volume)
    assert "read as one stack (DICOM series)" in proc.stderr
    with read_stack(out) as labels:
        assert labels.axes == "ZYX" and labels.scale == (3.0, 0.5, 0.5) and labels.unit == "mm"


def test_cli_image_folder_in_natural_order(tmp_path, napari_layers):
    frames = moving_disc(11)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, img in enumerate(frames):
        Image.fromarray(img).save(folder / f"frame{t}.png")  # frame2 ... frame10: natural order matters
    proc, _ = run_and_compare(tmp_path, napari_layers, folder, frames)
    assert "read as one stack (image sequence)" in proc.stderr


def test_cli_ome_zarr_level(tmp_path, napari_layers):
    zarr = pytest.importorskip("zarr")
    full = moving_disc(6, colour=False)
    full2 = np.repeat(np.repeat(full, 2, axis=1), 2, axis=2)  # level 0 twice the size of level 1
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w", zarr_format=2)
    for i, level in enumerate([full2, full]):
        group.create_array(str(i), shape=level.shape, chunks=(1, *level.shape[1:]), dtype=level.dtype)[...] = level
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "t", "type": "time"}, {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"}], "datasets": [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0, 0.5 * 2 ** i, 0.5 * 2 ** i]}]}
        for i in range(2)]}]
    _, out = run_and_compare(tmp_path, napari_layers, tmp_path / "img.ome.zarr", full, extra=("--level", "1"))
    with read_stack(out) as labels:
        assert labels.scale == (1.0, 1.0, 1.0) and labels.unit == "µm"
