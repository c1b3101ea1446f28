"""Lazy DICOM reading: cines, series, codecs, calibration, bad inputs and no patient data leaks."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom import uid  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402

from napari_sam2.errors import InputError  # noqa: E402
from napari_sam2.io.dicom import is_dicom_file, is_dicom_folder, read_dicom  # noqa: E402

PHI = ("Doe^Jane", "PHI-4711", "19700101", "ACC-0815", "Hospital Sankt Nimmerlein", "Dr^Who", "20240229")
Y, X = np.mgrid[:48, :64]


def dataset(ts=uid.ExplicitVRLittleEndian, sop=uid.UltrasoundMultiFrameImageStorage, series=None, **tags) -> Dataset:
    """A dataset with file meta and patient data that must never leak."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID, ds.SOPInstanceUID = sop, uid.generate_uid()
    ds.SeriesInstanceUID = series or uid.generate_uid()
    ds.Modality = "US"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI[0], PHI[1], PHI[2]
    ds.AccessionNumber, ds.InstitutionName, ds.ReferringPhysicianName, ds.StudyDate = PHI[3:]
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path, pixels=None, photometric="MONOCHROME2", bits=None):
    if pixels is not None:
        ds.set_pixel_data(pixels, photometric, bits or pixels.dtype.itemsize * 8)
    ds.save_as(path, enforce_file_format=True)
    return path


def rgb_frames(n=6) -> np.ndarray:
    planes = [np.stack([(X * 4 + i * 10) % 256, (Y * 5) % 256, np.full_like(X, 60 + 20 * i)], -1) for i in range(n)]
    return np.stack(planes).astype(np.uint8)


def mono_frames(n=5, dtype=np.uint16, high=4000) -> np.ndarray:
    return np.random.default_rng(n).integers(0, high, (n, 48, 64)).astype(dtype)


def jpeg_file(path, frames: np.ndarray):
    """JPEG baseline cine: Pillow's default (4:2:0 subsampled YCbCr) JPEG per frame."""
    from PIL import Image

    blobs = [io.BytesIO() for _ in frames]
    [Image.fromarray(f).save(buf, format="JPEG", quality=90) for f, buf in zip(frames, blobs)]
    ds = dataset(uid.JPEGBaseline8Bit, NumberOfFrames=len(frames), Rows=48, Columns=64, SamplesPerPixel=3)
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_FULL_422", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pydicom.encaps.encapsulate([buf.getvalue() for buf in blobs])
    ds["PixelData"].VR = "OB"
    return save(ds, path)


def ct_series(folder, n=6, orient=(1, 0, 0, 0, 1, 0), step=2.5, names=None, positions=True, **tags):
    """int16 CT slices (slope 1, intercept -1024) at ``step`` mm along the normal, files shuffled."""
    folder.mkdir(exist_ok=True)
    row, col = np.asarray(orient[:3], float), np.asarray(orient[3:], float)
    normal, series = np.cross(row, col), uid.generate_uid()
    order = np.random.default_rng(1).permutation(n)
    for k in range(n):
        ds = dataset(sop=uid.CTImageStorage, series=series, Modality="CT", InstanceNumber=n - k, **tags)
        if positions:
            ds.ImageOrientationPatient = list(orient)
            ds.ImagePositionPatient = list(np.array([10.0, -5.0, 3.0]) + k * step * normal + 3 * row)
        ds.PixelSpacing, ds.RescaleSlope, ds.RescaleIntercept = [0.7, 0.8], 1, -1024
        pixels = np.full((48, 64), 1000 + 10 * k, np.int16) + (X % 7).astype(np.int16)
        save(ds, folder / (names[k] if names else f"img{order[k]:03d}"), pixels)  # no suffix: magic only
    return folder


# --- reading -------------------------------------------------------------------------------------


def test_cine_rgb_lazy_indexing_calibration_and_time(tmp_path, monkeypatch):
    frames = rgb_frames()
    region = Dataset()  # ultrasound calibration: 0.02 cm (x) and 0.03 cm (y) per pixel
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.02, 0.03
    path = save(dataset(FrameTime=40.0, SequenceOfUltrasoundRegions=[region]), tmp_path / "cine.dcm", frames, "RGB")
    import pydicom.pixels

    calls, real = [], pydicom.pixels.pixel_array
    monkeypatch.setattr(pydicom.pixels, "pixel_array", lambda src, **kw: calls.append(kw["index"]) or real(src, **kw))
    with read_dicom(path) as stack:
        assert (stack.axes, stack.shape, stack.dtype) == ("TYXC", (6, 48, 64, 3), np.uint8)
        assert calls == [0]  # only frame 0 decoded at open
        assert stack.scale == pytest.approx((1.0, 0.3, 0.2, 1.0)) and stack.unit == "mm"
        assert stack.frame_interval == pytest.approx(0.04)
        assert stack.metadata["frame_times"] == pytest.approx([0.04 * i for i in range(6)])
        data = stack.data
        assert np.array_equal(data[3], frames[3]) and calls == [0, 3]
        assert np.array_equal(data[-1], frames[-1])
        assert np.array_equal(data[1:5:2, 10:20, ::3, 1], frames[1:5:2, 10:20, ::3, 1])
        assert np.array_equal(data[..., 0], frames[..., 0]) and np.array_equal(data[[4, 0]], frames[[4, 0]])
        assert np.array_equal(np.asarray(data), frames) and len(data) == 6 and data.ndim == 4
        assert data.nbytes == frames.nbytes and np.asarray(data, dtype=np.float32).dtype == np.float32
        import dask.array as da

        assert np.array_equal(da.from_array(data, chunks=(1, 48, 64, 3), asarray=False)[2:4].compute(), frames[2:4])
        out = {}
        threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, data[i])) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(np.array_equal(out[i], frames[i]) for i in range(6))
    with pytest.raises(ValueError):
        data[0]


@pytest.mark.parametrize(
    ("tags", "interval", "times"),
    [
        ({"FrameTimeVector": [0, 30, 30, 40]}, 0.03, [0.0, 0.03, 0.06, 0.1]),
        ({"CineRate": 25}, 0.04, [0.0, 0.04, 0.08, 0.12]),
        ({"RecommendedDisplayFrameRate": 50}, 0.02, [0.0, 0.02, 0.04, 0.06]),
        ({}, None, None),
    ],
)
def test_frame_timing(tmp_path, tags, interval, times):
    stack = read_dicom(save(dataset(**tags), tmp_path / "t.dcm", mono_frames(4, np.uint8, 255)))
    assert stack.frame_interval == (pytest.approx(interval) if interval else None)
    assert stack.metadata.get("frame_times") == (pytest.approx(times) if times else None)
    assert stack.scale is None and stack.unit is None


def test_jpeg_baseline_ybr_422_decodes_to_rgb(tmp_path):
    frames = rgb_frames(5)
    stack = read_dicom(jpeg_file(tmp_path / "jpeg.dcm", frames))
    full = pydicom.dcmread(tmp_path / "jpeg.dcm").pixel_array  # pydicom's own RGB decode of all frames
    assert stack.axes == "TYXC" and stack.metadata["photometric"] == "RGB"
    assert stack.metadata["transfer_syntax"] == "JPEG Baseline (Process 1)"
    assert np.array_equal(stack.data[2], full[2]) and np.array_equal(np.asarray(stack.data), full)
    assert np.abs(np.asarray(stack.data).astype(int) - frames).mean() < 4  # RGB, not YCbCr


@pytest.mark.parametrize("syntax", ["JPEG2000Lossless", "RLELossless", "DeflatedExplicitVRLittleEndian"])
def test_lossless_codecs_match_source(tmp_path, syntax):
    ts = getattr(uid, syntax)
    for name, pixels, pi in [("mono", mono_frames(), "MONOCHROME2"), ("rgb", rgb_frames(3), "RGB")]:
        ds = dataset(ts if ts.is_deflated else uid.ExplicitVRLittleEndian)
        ds.set_pixel_data(pixels, pi, 12 if pixels.dtype == np.uint16 else 8)
        if ts.is_compressed:
            ds.compress(ts, pixels, **({"encoding_plugin": "pylibjpeg"} if "2000" in syntax else {}))
        stack = read_dicom(save(ds, tmp_path / f"{name}.dcm"))
        assert stack.metadata["transfer_syntax"] == ts.name and stack.dtype == pixels.dtype
        assert np.array_equal(stack.data[1], pixels[1]) and np.array_equal(np.asarray(stack.data), pixels)


def test_ct_series_oblique_sorted_in_hu(tmp_path):
    c, s, ct, st = np.cos(0.5), np.sin(0.5), np.cos(0.3), np.sin(0.3)
    folder = ct_series(tmp_path / "ct", orient=(c, s, 0, -s * ct, c * ct, st))  # tilted in two angles
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0" * 200)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    save(dataset(sop=DICOMDIR_SOP), folder / "DICOMDIR")
    assert is_dicom_folder(folder)
    stack = read_dicom(folder)
    assert (stack.axes, stack.shape, stack.dtype) == ("ZYX", (6, 48, 64), np.float32)
    assert stack.scale == pytest.approx((2.5, 0.7, 0.8)) and stack.unit == "mm"
    expected = np.stack([1000 + 10 * k + (X % 7) - 1024 for k in range(6)]).astype(np.float32)
    assert np.array_equal(np.asarray(stack.data), expected)  # sorted by position, not name or InstanceNumber
    assert stack.metadata["rescale"] == (1.0, -1024.0) and stack.metadata["modality"] == "CT"
    assert np.allclose(np.diff(stack.metadata["slice_positions"]), 2.5)
    note = " ".join(stack.notes)
    assert all(name in note for name in ("notes.txt", ".DS_Store", "DICOMDIR", "broken.dcm")) and "img" not in note


@pytest.mark.parametrize("positions", [False, True])
def test_instance_number_orders_slices_without_or_with_equal_positions(tmp_path, positions):
    folder = ct_series(tmp_path / "s", n=4, step=0.0, positions=positions)  # InstanceNumber: 4, 3, 2, 1
    stack = read_dicom(folder)
    assert [float(stack.data[i, 0, 0]) for i in range(4)] == [1000 + 10 * k - 1024 for k in (3, 2, 1, 0)]
    assert stack.notes and stack.scale[0] == 1.0  # spacing unknown: 1 mm, said in a note


def test_file_list_and_folder_with_one_cine(tmp_path):
    folder = ct_series(tmp_path / "ct", n=3, names=["c.dcm", "a.dcm", "b.dcm"])
    files = sorted(folder.iterdir())
    assert read_dicom(files).shape == (3, 48, 64) and all(is_dicom_file(f) for f in files)
    (tmp_path / "cine").mkdir()
    save(dataset(), tmp_path / "cine" / "IM0001", mono_frames(3, np.uint8, 255))
    (tmp_path / "cine" / "readme.txt").write_text("x")
    assert not is_dicom_file(tmp_path / "cine" / "readme.txt") and is_dicom_file(tmp_path / "cine" / "IM0001")
    stack = read_dicom(tmp_path / "cine")
    assert stack.axes == "TYX" and stack.shape == (3, 48, 64) and "readme.txt" in stack.notes[0]
    pixels = mono_frames(1, np.uint8, 255)[0]  # a single image: one frame
    stack = read_dicom(save(dataset(sop=uid.UltrasoundImageStorage, PixelSpacing=[0.5, 0.25]), tmp_path / "a", pixels))
    assert (stack.axes, stack.shape, stack.scale) == ("TYX", (1, 48, 64), (1.0, 0.5, 0.25))
    assert np.array_equal(stack.data[0], pixels)


def test_monochrome1_inverted_and_palette_to_rgb(tmp_path):
    pixels = mono_frames(2, np.uint8, 255)
    stack = read_dicom(save(dataset(), tmp_path / "m1.dcm", pixels, "MONOCHROME1"))
    assert np.array_equal(np.asarray(stack.data), 255 - pixels) and stack.metadata["photometric"] == "MONOCHROME2"
    ds = dataset()
    lut = np.arange(256, dtype=np.uint16) * 257
    for colour, values in zip(("Red", "Green", "Blue"), (lut, lut[::-1], np.full(256, 4112, np.uint16))):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", values.tobytes())
    stack = read_dicom(save(ds, tmp_path / "pal.dcm", pixels, "PALETTE COLOR"))
    assert stack.axes == "TYXC" and stack.metadata["photometric"] == "RGB"
    assert np.array_equal(stack.data[1, ..., 0], lut[pixels[1]])
    assert np.array_equal(stack.data[1, ..., 1], lut[255 - pixels[1]])


# --- bad inputs ----------------------------------------------------------------------------------

DICOMDIR_SOP = "1.2.840.10008.1.3.10"


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("bad")
    cases = {}
    cases["garbage"] = tmp_path / "encrypted.dcm"
    cases["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    ds = dataset(Rows=48, Columns=64, SamplesPerPixel=1, BitsAllocated=8, BitsStored=8, PixelRepresentation=0)
    ds.PhotometricInterpretation = "MONOCHROME2"
    cases["no_pixels"] = save(ds, tmp_path / "nopix.dcm")
    cases["report"] = save(dataset(sop=uid.BasicTextSRStorage, Modality="SR"), tmp_path / "sr.dcm")
    ds = dataset(uid.MPEG4HP41, NumberOfFrames=2, Rows=48, Columns=64, SamplesPerPixel=3, BitsAllocated=8)
    ds.PixelData, ds.PhotometricInterpretation = pydicom.encaps.encapsulate([b"\0\0\1\xb3" * 8]), "YBR_PARTIAL_420"
    cases["mpeg4"] = save(ds, tmp_path / "video.dcm")
    cases["empty"] = tmp_path / "empty"
    cases["empty"].mkdir()
    mixed = ct_series(tmp_path / "mixed", n=2)
    ct_series(tmp_path / "other", n=3, names=["x1", "x2", "x3"])
    for f in (tmp_path / "other").iterdir():
        f.rename(mixed / f.name)
    cases["mixed"] = mixed
    sizes = ct_series(tmp_path / "sizes", n=3)
    series = pydicom.dcmread(next(sizes.iterdir())).SeriesInstanceUID
    save(dataset(sop=uid.CTImageStorage, series=series), sizes / "small", np.zeros((32, 32), np.int16))
    cases["sizes"] = sizes
    cines = cases["two_cines"] = tmp_path / "cines"
    cines.mkdir()
    for name in ("loop1", "loop2"):
        save(dataset(series="1.2.3.4"), cines / name, mono_frames(2, np.uint8, 255))
    return cases


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("garbage", ["encrypted.dcm", "not a DICOM file"]),
        ("no_pixels", ["nopix.dcm", "no pixel data"]),
        ("report", ["sr.dcm", "no image"]),
        ("mpeg4", ["video.dcm", "not supported", "uncompressed or JPEG"]),
        ("empty", ["empty", "holds no DICOM files"]),
        ("mixed", ["2 DICOM series", "(3 files)", "(2 files)", "one series"]),
        ("sizes", ["differ in size", "64x48: 3 files", "32x32: 1 file)"]),
        ("two_cines", ["2 of them multi-frame", "one multi-frame file at a time"]),
    ],
)
def test_bad_inputs_raise_one_input_error(bad, case, words):
    with pytest.raises(InputError) as err:
        read_dicom(bad[case])
    message = str(err.value)
    assert all(w in message for w in words), message
    assert "\n" not in message and not any(p in message for p in PHI)


def test_missing_pydicom_and_missing_decoders_named_for_real(tmp_path):
    """In a fresh interpreter with the packages genuinely absent (blocked before import)."""
    pixels = mono_frames(2)
    ds = dataset()
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    ds.compress(uid.JPEG2000Lossless, pixels, encoding_plugin="pylibjpeg")
    j2k = save(ds, tmp_path / "j2k.dcm")
    ds = dataset(uid.JPEGLSLossless, Rows=48, Columns=64, SamplesPerPixel=1, BitsAllocated=16, BitsStored=12)
    ds.PixelData, ds.PhotometricInterpretation = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xf7" * 4]), "MONOCHROME2"
    jls = save(ds, tmp_path / "jls.dcm")  # JPEG-LS cannot be encoded here; refused before any decode
    script = f"""
import json, sys
for name in ("pydicom", "pylibjpeg", "openjpeg", "libjpeg"):
    sys.modules[name] = None
from napari_sam2.errors import InputError
from napari_sam2.io.dicom import read_dicom
out = []
def attempt(path):
    try:
        out.append(repr(read_dicom(path)))
    except InputError as exc:
        out.append(str(exc))
attempt({str(j2k)!r})
del sys.modules["pydicom"]  # now import pydicom for real, with pylibjpeg and its plugins absent
from pydicom import uid
from pydicom.pixels import get_decoder
get_decoder(uid.JPEG2000Lossless).remove_plugin("pillow")  # Pillow could decode J2K too
[attempt(p) for p in ({str(j2k)!r}, {str(jls)!r})]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    no_pydicom, no_j2k, no_jls = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 'pip install "napari-sam2[dicom]"' in no_pydicom
    assert "JPEG 2000" in no_j2k and "pylibjpeg-openjpeg" in no_j2k and "j2k.dcm" in no_j2k
    assert "JPEG-LS" in no_jls and "pyjpegls" in no_jls and "pylibjpeg-libjpeg" in no_jls


def test_no_patient_data_in_metadata_notes_messages_warnings_or_logs(tmp_path, bad, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []
    cine = save(dataset(FrameTime=33.3), tmp_path / "cine.dcm", rgb_frames(3), "RGB")
    folder = ct_series(tmp_path / "ct", n=3)
    (folder / "notes.txt").write_text("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for source in (cine, jpeg_file(tmp_path / "j.dcm", rgb_frames(2)), folder):
            with read_dicom(source) as stack:
                np.asarray(stack.data)
                seen += [repr(stack.metadata), repr(stack.notes), repr(stack), repr(stack.data)]
        for case in bad.values():
            with pytest.raises(InputError) as err:
                read_dicom(case)
            seen.append(str(err.value))
    captured = capsys.readouterr()
    seen += [captured.out, captured.err] + [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    text = "\n".join(seen)
    assert "DICOM series" in text and "notes.txt" in text  # the checks saw real output
    assert not any(p.lower() in text.lower() for p in PHI + ("Doe", "Jane", "4711"))
