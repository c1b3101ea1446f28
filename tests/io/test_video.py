"""read_video: lazy, frame-accurate reading of video files, checked against a sequential decode.

Every clip is written here with PyAV (tiny frames, each frame distinct: a moving gradient
plus a bar whose length is the frame number), so a wrong-frame bug shows as a mismatch.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from napari_sam2.errors import InputError  # noqa: E402
from napari_sam2.io.video import VIDEO_SUFFIXES, VideoFrames, read_video  # noqa: E402

H, W = 48, 64
BFRAMES = {"x264-params": "bframes=3:b-adapt=0:keyint=12:min-keyint=12:scenecut=0:open-gop=1"}
CLOSED_GOP = {"x264-params": "bframes=3:b-adapt=0:keyint=12:min-keyint=12:scenecut=0"}


def _images(n: int, h: int = H, w: int = W, grey: bool = False):
    yy, xx = np.mgrid[:h, :w]
    for t in range(n):
        img = (np.stack([xx * 4 + t * 7, yy * 5 + t * 3, xx + yy + t * 11], -1) % 256).astype(np.uint8)
        img[2:8, 2 : 2 + t % (w - 4)] = 255
        if grey:
            img[:] = img[..., :1]
        yield img


def _write(path, codec, n=40, *, h=H, w=W, options=None, movflags=None, pix_fmt="yuv420p",
           grey=False, pts=None, audio=False):
    out = av.open(str(path), "w", options={"movflags": movflags} if movflags else {})
    stream = out.add_stream(codec, rate=25, options=options or {})
    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
    if pts is not None:
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    sound = out.add_stream("aac", rate=8000) if audio else None  # ignored by the reader
    for i, img in enumerate(_images(n, h, w, grey)):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode())
    if sound is not None:
        _sound(out, sound, n // 4)
    out.close()
    return path


def _sound(out, stream, n):
    for i in range(n):
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 8000, i * 1024
        out.mux(stream.encode(chunk))
    out.mux(stream.encode())


def _reference(path) -> tuple[list[int], list[np.ndarray]]:
    """Sequential decode (tolerant of a damaged tail): pts and RGB frames in output order."""
    stamps, images = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for f in decoded:
                stamps.append(f.pts)
                images.append(f.to_ndarray(format="rgb24"))
    return stamps, images


def _presentation(path) -> tuple[list[int], list[np.ndarray]]:
    """The sequential decode sorted by pts: the frames in presentation order."""
    stamps, images = _reference(path)
    order = np.argsort(stamps, kind="stable")
    return [stamps[i] for i in order], [images[i] for i in order]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    vfr = [int(i * 40 + (i % 3) * 9) for i in range(36)]
    return {
        "vfr_pts": vfr,
        "h264_b": _write(d / "bframes.mp4", "libx264", 60, options=BFRAMES),
        "mpeg4": _write(d / "clip.avi", "mpeg4", 40, options={"g": "10", "bf": "2"}),
        "vfr": _write(d / "vfr.mkv", "libx264", 36, options={"bf": "2", "g": "10"}, pts=vfr),
        "grey": _write(d / "grey.mp4", "libx264", 30, grey=True, options={"g": "10"}),
        "odd": _write(d / "odd.mkv", "ffv1", 12, h=47, w=65, pix_fmt="yuv444p"),
        "webm": _write(d / "clip.webm", "libvpx", 30, options={"g": "8"}),
        "audio": _write(d / "audio.mp4", "libx264", 30, audio=True),
        "faststart": _write(d / "fast.mp4", "libx264", 60, options=BFRAMES, movflags="faststart"),
        "ffv1": _write(d / "lossless.mkv", "ffv1", 40, options={"g": "10"}),
    }


def _check_all(stack, path, order):
    stamps, ordered = _presentation(path)
    assert len(stack.data) == len(ordered)
    with av.open(str(path)) as container:
        tb = float(container.streams.video[0].time_base)
    np.testing.assert_allclose(stack.metadata["frame_times"], (np.asarray(stamps) - stamps[0]) * tb)
    for k in order:
        expect = ordered[k][..., 0] if stack.axes == "TYX" else ordered[k]
        np.testing.assert_array_equal(stack.data[k], expect, err_msg=f"frame {k} of {path.name}")


@pytest.mark.parametrize("name", ["h264_b", "mpeg4", "vfr", "webm", "faststart"])
def test_random_and_sequential_access_match_sequential_decode(clips, name):
    with read_video(clips[name]) as stack:
        n = len(stack.data)
        assert stack.axes == "TYXC" and stack.shape == (n, H, W, 3) and stack.dtype == np.uint8
        order = np.concatenate([np.random.default_rng(1).permutation(n), np.arange(n), np.arange(n)[::-1]])
        _check_all(stack, clips[name], order)  # random order, then forward, then backward


def test_h264_clip_really_has_b_frames_and_open_gops(clips):
    with av.open(str(clips["h264_b"])) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    stamps = [p.pts for p in packets]
    assert stamps != sorted(stamps), "no B-frames: decode order is pts order"
    key = [i for i, p in enumerate(packets) if p.is_keyframe][1]
    assert min(p.pts for p in packets[key + 1 : key + 4]) < packets[key].pts, "no open-GOP leading B-frames"


def test_open_decodes_little_and_sequential_reading_does_not_seek(clips, monkeypatch):
    counts = {"seeks": 0, "decoded": 0}
    real_seek, real_frames = VideoFrames._seek, VideoFrames._frames

    def frames(self, tolerant=False):
        for item in real_frames(self, tolerant):
            counts["decoded"] += 1
            yield item

    def seek(self, key_pos):
        counts["seeks"] += 1
        return real_seek(self, key_pos)

    monkeypatch.setattr(VideoFrames, "_seek", seek)
    monkeypatch.setattr(VideoFrames, "_frames", frames)
    with read_video(clips["h264_b"]) as stack:  # 60 frames, a keyframe every 12
        assert counts["decoded"] < 20, "opening decoded much more than the sampled keyframes"
        counts.update(seeks=0, decoded=0)
        for k in range(1, 60):
            stack.data[k]
        assert counts["seeks"] <= 1 and counts["decoded"] <= 60
        assert len(stack.data._cache) <= 16
        counts.update(seeks=0, decoded=0)
        stack.data[30]
        stack.data[33]  # ahead, within reach: no new seek
        assert counts["seeks"] == 1
        data = stack.data
    with pytest.raises(ValueError, match="closed"):
        data[0]


def test_h264_in_avi_is_numbered_in_output_order(tmp_path):
    """AVI keeps no presentation times: H.264 B-frames there read in decoder output order."""
    closed = _write(tmp_path / "closed.avi", "libx264", 40, options=CLOSED_GOP)
    _, images = _reference(closed)  # output order is presentation order; these pts are not
    with read_video(closed) as stack:
        assert len(stack.data) == 40
        for k in np.random.default_rng(4).permutation(40):
            np.testing.assert_array_equal(stack.data[k], images[k], err_msg=f"frame {k}")
    with pytest.raises(InputError, match="open.avi stores B-frames without presentation times.*to MP4"):
        read_video(_write(tmp_path / "open.avi", "libx264", 40, options=BFRAMES))  # open GOPs


def test_variable_frame_rate_metadata_and_no_frame_count_in_the_container(clips):
    with av.open(str(clips["vfr"])) as container:
        assert not container.streams.video[0].frames  # Matroska states no count
    with read_video(clips["vfr"]) as stack:
        assert len(stack.data) == 36
        meta = stack.metadata
        assert meta["variable_frame_rate"] is True
        assert meta["format"] == "video" and meta["codec"] == "h264"
        np.testing.assert_allclose(meta["frame_times"], np.asarray(clips["vfr_pts"]) / 1000)
        assert any("variable frame rate" in note for note in stack.notes)
    with read_video(clips["h264_b"]) as stack:
        assert stack.metadata["variable_frame_rate"] is False
        assert stack.metadata["fps"] == pytest.approx(25) and stack.frame_interval == pytest.approx(0.04)
        np.testing.assert_allclose(stack.metadata["frame_times"], np.arange(60) * 0.04)
        assert stack.notes == []


def test_grey_clip_reads_as_tyx_and_colour_as_tyxc(clips):
    _, images = _reference(clips["grey"])
    assert all((im[..., 0] == im[..., 1]).all() and (im[..., 0] == im[..., 2]).all() for im in images)
    with read_video(clips["grey"]) as stack:
        assert stack.axes == "TYX" and stack.shape == (30, H, W) and stack.metadata["grey"]
        _check_all(stack, clips["grey"], [29, 3, 17, 0])
        np.testing.assert_array_equal(np.asarray(stack.data), np.stack(images)[..., 0])
    with read_video(clips["ffv1"]) as stack:
        assert stack.axes == "TYXC" and not stack.metadata["grey"]


@pytest.mark.parametrize(("name", "shape"), [("odd", (12, 47, 65, 3)), ("audio", (30, H, W, 3))])
def test_odd_frame_size_and_audio_stream(clips, name, shape):
    with read_video(clips[name]) as stack:
        assert stack.shape == shape and stack.notes == []
        _check_all(stack, clips[name], [shape[0] - 1, 0, 5])


def test_indexing_forms(clips):
    ref = np.stack(_presentation(clips["h264_b"])[1])
    with read_video(clips["h264_b"]) as stack:
        data = stack.data
        assert isinstance(data, VideoFrames) and data.ndim == 4 and len(data) == 60
        assert data.nbytes == 60 * H * W * 3 and "VideoFrames" in repr(data)
        keys = [
            -1, slice(5, 20, 3), (Ellipsis, 1), (7, slice(3, 9), 4), (slice(None, None, -7), 2, slice(1, 5)),
            [3, 40, 3], np.array([[59, 0], [12, 13]]), (slice(50, 52), Ellipsis, slice(0, 2)), slice(10, 10),
        ]
        for key in keys:
            np.testing.assert_array_equal(data[key], ref[key], err_msg=str(key))
        np.testing.assert_array_equal(np.asarray(data), ref)
        assert np.asarray(data, dtype=np.float32).dtype == np.float32
        with pytest.raises(IndexError):
            data[0, [1, 2]]
        with pytest.raises(IndexError):
            data[60]


def test_dask_wrapping_and_threads(clips):
    da = pytest.importorskip("dask.array")
    ref = _presentation(clips["h264_b"])[1]
    with read_video(clips["h264_b"]) as stack:
        lazy = da.from_array(stack.data, chunks=(1,) + stack.shape[1:], asarray=False)
        for k in [33, 2, 59, 3]:
            np.testing.assert_array_equal(np.asarray(lazy[k]), ref[k])
        orders = [range(60), np.random.default_rng(2).permutation(60), range(59, -1, -2)]
        with ThreadPoolExecutor(3) as pool:  # a display thread and workers index it at once
            wrong = pool.map(lambda ks: [k for k in ks if not np.array_equal(stack.data[k], ref[k])], orders)
            assert [w for w in wrong if w] == []


def _cut(path, out, fraction):
    out.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    return out


@pytest.mark.parametrize("name", ["faststart", "vfr", "mpeg4"])
def test_truncated_file_exposes_the_frames_that_decode(clips, tmp_path, name):
    src = clips[name]
    cut = _cut(src, tmp_path / f"cut{src.suffix}", 0.6)
    ordered = _presentation(cut)[1]
    with read_video(cut) as stack:
        n = len(stack.data)
        assert 0 < n < len(_reference(src)[1]) and n <= len(ordered)
        assert stack.notes[0] == f"{cut.name} is cut short: frames 0-{n - 1} are readable, the rest is lost."
        for k in np.random.default_rng(3).permutation(n):
            np.testing.assert_array_equal(stack.data[k], ordered[k], err_msg=f"frame {k}")
        assert len(stack.metadata["frame_times"]) == n


def test_bad_inputs(clips, tmp_path):
    with pytest.raises(InputError, match=r"unfinished\.mp4 is truncated or unfinished.*export it again"):
        read_video(_cut(clips["h264_b"], tmp_path / "unfinished.mp4", 0.6))  # moov written last: lost
    with pytest.raises(InputError, match="Video file not found.*check the path"):
        read_video(tmp_path / "missing.mp4")
    (noise := tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError, match="noise.mp4 as a video: it is not a video file"):
        read_video(noise)
    with av.open(str(tmp_path / "sound.m4a"), "w", format="mp4") as sound:
        _sound(sound, sound.add_stream("aac", rate=8000), 4)
    with pytest.raises(InputError, match="sound.m4a holds no video stream"):
        read_video(tmp_path / "sound.m4a")
    assert ".mkv" in VIDEO_SUFFIXES and ".mp4" in VIDEO_SUFFIXES


def test_decode_error_mid_file_names_the_frame(clips, tmp_path):
    src = clips["ffv1"]
    with av.open(str(src)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(src.read_bytes())
    pos, size = packets[25]  # ffv1 checks its slices: damage here is a decode error
    junk = np.random.default_rng(0).integers(0, 256, size - 6, dtype=np.uint8)
    data[pos + 4 : pos + size - 2] = junk.tobytes()
    (bad := tmp_path / "damaged.mkv").write_bytes(bytes(data))
    with read_video(bad) as stack:
        assert len(stack.data) == 40
        stack.data[21]
        with pytest.raises(InputError, match=r"frame 25 of damaged.mkv.*frame 24 is the last good one"):
            stack.data[25]
        stack.data[31]  # the next GOP decodes again


def test_missing_pyav_names_the_extra(monkeypatch, clips):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` fails as if PyAV were not installed
    with pytest.raises(InputError, match=r'pip install "napari-sam2\[video\]"'):
        read_video(clips["webm"])
