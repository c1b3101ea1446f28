"""Growing sources of a FrameStream: a folder being written, a growing zarr array, a PyAV decode.

Each is filled by a real writer thread while a session tracks it; the results must equal offline
propagation over the finished folder / array / file. Bad files fail the stream naming the file.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from napari_sam2.engine import growing_sources
from napari_sam2.engine.stream import FrameStream
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import InputError

from .conftest import blob_stack
from .test_stream import JOIN_S, run_in_thread, same

SHAPE = (48, 64)
POINT = [[24, 20]]


def png(path, frame) -> None:
    from PIL import Image

    Image.fromarray(frame).save(path)


def track(model, data, n_expected=None):
    """Forward results of one object clicked on frame 0 (following a stream until it ends)."""
    session = VideoSession(model, data)
    if isinstance(data, FrameStream):
        assert data.wait_for(0, timeout=JOIN_S)
    session.add_points(0, 1, POINT, [1])
    follow = isinstance(data, FrameStream)
    out, err = run_in_thread(lambda: list(session.propagate("forward", follow=follow)))
    assert err is None, err
    if n_expected is not None:
        assert [r.frame for r in out] == list(range(n_expected))
    return out


# ---------------------------------------------------------------- folders
def test_a_folder_being_written_tracks_like_the_finished_folder(model, tmp_path):
    from PIL import Image

    from napari_sam2.io.image_folder import read_image_folder

    frames = blob_stack(16, SHAPE, seed=4)  # 16+: the pointer scale of a stream
    (tmp_path / "notes.txt").write_text("not a frame")

    def write():
        for k, f in enumerate(frames):
            time.sleep(0.05)
            if k == 5:  # written in two parts with a pause longer than `settle` between them
                buf = io.BytesIO()
                Image.fromarray(f).save(buf, format="PNG")
                data = buf.getvalue()
                with open(tmp_path / f"frame{k}.png", "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    time.sleep(0.6)
                    assert started.wait(JOIN_S)
                    seen_in_pause.append(len(box["stream"]))  # the half file was not taken
                    fh.write(data[len(data) // 2:])
            else:
                png(tmp_path / f"frame{k}.png", f)  # natural order: frame2 before frame10
        (tmp_path / "DONE").touch()

    started, box, seen_in_pause = threading.Event(), {}, []
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    stream = box["stream"] = FrameStream.from_folder(tmp_path, poll=0.05, settle=0.1, stop_when="DONE")
    started.set()
    assert stream.frame_shape == SHAPE and stream.dtype == np.uint8
    got = track(model, stream, 16)
    writer.join(JOIN_S)
    stream.producer.join(JOIN_S)
    assert stream.closed and stream.error is None and not stream.producer.is_alive()
    assert seen_in_pause == [5]
    np.testing.assert_array_equal(stream[:], frames)
    want = track(model, read_image_folder(tmp_path).data, 16)
    for a, b in zip(got, want):
        same(a, b)


def test_a_known_frame_shape_starts_at_once_and_close_or_idle_timeout_end_the_watch(tmp_path):
    frames = blob_stack(3, SHAPE, seed=5)
    stream = FrameStream.from_folder(tmp_path, "img_*.png", poll=0.05, frame_shape=SHAPE, dtype=np.uint8)
    assert len(stream) == 0 and stream.producer.is_alive()
    png(tmp_path / "img_0.png", frames[0])
    png(tmp_path / "other_0.png", frames[1])  # not matching the pattern
    assert stream.wait_for(0, timeout=JOIN_S)
    stream.close()  # the user stops watching
    stream.producer.join(JOIN_S)
    assert not stream.producer.is_alive() and len(stream) == 1 and stream.error is None

    idle = FrameStream.from_folder(tmp_path, "img_*.png", poll=0.05, idle_timeout=0.3)
    idle.producer.join(JOIN_S)
    assert idle.closed and idle.error is None and len(idle) == 1
    np.testing.assert_array_equal(idle[0], frames[0])

    with pytest.raises(InputError, match="No image file arrived"):
        FrameStream.from_folder(tmp_path, "none_*.png", poll=0.05, idle_timeout=0.2)
    with pytest.raises(InputError, match="not an existing folder"):
        FrameStream.from_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="idle_timeout"):
        FrameStream.from_folder(tmp_path, idle_timeout=0)


@pytest.mark.parametrize("bad", ["size", "dtype", "colour", "order", "damaged"])
def test_a_bad_file_fails_the_stream_naming_it_and_the_consumer_raises_it(tmp_path, monkeypatch, bad):
    import tifffile

    monkeypatch.setattr(growing_sources, "DAMAGED_AFTER_S", 0.3)
    frames = blob_stack(4, SHAPE, seed=6)
    for k in range(3):
        png(tmp_path / f"f{k + 1}.png", frames[k])
    stream = FrameStream.from_folder(tmp_path, poll=0.05)
    assert stream.wait_for(2, timeout=JOIN_S)
    name = {"order": "f0.png"}.get(bad, "f4.png")
    if bad == "size":
        png(tmp_path / name, np.zeros((48, 60), np.uint8))
    elif bad == "dtype":
        tifffile.imwrite(tmp_path / "f4.tif", frames[3].astype(np.uint16))
        name = "f4.tif"
    elif bad == "colour":
        png(tmp_path / name, np.zeros((*SHAPE, 3), np.uint8))
    elif bad == "order":
        png(tmp_path / name, frames[3])  # sorts before f1 .. f3, which were taken already
    else:
        (tmp_path / name).write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=name.replace(".", r"\.")) as info:
        stream.wait_for(3, timeout=JOIN_S)
    assert stream.error is info.value and len(stream) == 3  # the good frames stay readable
    np.testing.assert_array_equal(stream[2], frames[2])


# ---------------------------------------------------------------- zarr
def test_a_growing_zarr_array_tracks_like_the_finished_array(model, tmp_path):
    zarr = pytest.importorskip("zarr")
    frames = blob_stack(16, SHAPE, seed=7)
    path = tmp_path / "live.zarr"
    z = zarr.create_array(store=str(path), shape=(0, *SHAPE), chunks=(1, *SHAPE), dtype="uint8")
    z.append(frames[:1], axis=0)

    def write():  # another handle, as an acquisition process would have
        for f in frames[1:]:
            time.sleep(0.05)
            z.append(f[None], axis=0)
        z.attrs["acquisition_done"] = True

    stream = FrameStream.from_zarr(path, poll=0.05, stop_when="acquisition_done")
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    got = track(model, stream, 16)
    writer.join(JOIN_S)
    assert stream.closed and stream.error is None
    np.testing.assert_array_equal(stream[:], frames)
    want = track(model, zarr.open_array(str(path), mode="r"), 16)
    for a, b in zip(got, want):
        same(a, b)


def test_a_zarr_array_object_is_followed_and_bad_arrays_are_refused(tmp_path):
    zarr = pytest.importorskip("zarr")
    frames = blob_stack(4, SHAPE, seed=8)
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(0, *SHAPE), chunks=(2, *SHAPE), dtype="uint8")
    stream = FrameStream.from_zarr(z, poll=0.05)
    z.append(frames, axis=0)
    assert stream.wait_for(2, timeout=JOIN_S)
    time.sleep(0.3)  # several polls: the last frame shares its chunk with frame 2, so it waits for a newer one
    assert len(stream) == 3
    stream.close()  # stops the watch
    stream.producer.join(JOIN_S)
    assert not stream.producer.is_alive() and stream.error is None
    np.testing.assert_array_equal(stream[:], frames[:3])
    idle = FrameStream.from_zarr(z, poll=0.05, idle_timeout=0.3)  # the frames there, then nothing new
    idle.producer.join(JOIN_S)
    assert idle.closed and idle.error is None
    np.testing.assert_array_equal(idle[:], frames)

    grows_wrong = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(1, *SHAPE), chunks=(1, *SHAPE),
                                    dtype="uint8")
    stream = FrameStream.from_zarr(grows_wrong, poll=0.05)
    grows_wrong.resize((2, SHAPE[0], SHAPE[1] + 1))
    with pytest.raises(InputError, match="may only grow along its first axis"):
        stream.wait_for(5, timeout=JOIN_S)
    flat = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(0, 5), dtype="uint8")
    with pytest.raises(InputError, match=r"\(T, Y, X\)"):
        FrameStream.from_zarr(flat)
    with pytest.raises(InputError, match="zarr array or the path"):
        FrameStream.from_zarr(42)


def test_a_zarr_frame_is_taken_only_once_its_chunks_are_written_however_slow_the_writer(tmp_path):
    """The writer grows T before it writes the frame; a frame of fill values must never be read."""
    zarr = pytest.importorskip("zarr")
    frames = blob_stack(2, SHAPE, seed=9)
    z = zarr.create_array(store=str(tmp_path / "slow.zarr"), shape=(1, *SHAPE), chunks=(1, 24, 32), dtype="uint8")
    z[0] = frames[0]
    z.resize((2, *SHAPE))  # frame 1 exists but is not written yet
    z[1, :24] = frames[1, :24]  # and only half of its chunks are
    stream = FrameStream.from_zarr(tmp_path / "slow.zarr", poll=0.05)
    assert stream.wait_for(0, timeout=JOIN_S)
    time.sleep(0.4)  # many polls
    assert len(stream) == 1
    z[1, 24:] = frames[1, 24:]
    assert stream.wait_for(1, timeout=JOIN_S)
    stream.close()
    np.testing.assert_array_equal(stream[:], frames)


# ---------------------------------------------------------------- any iterator: a PyAV decode
def test_a_pyav_decode_fed_through_from_iter_tracks_like_the_opened_video(model, tmp_path):
    av = pytest.importorskip("av")
    from napari_sam2.io.video import read_video

    path = tmp_path / "clip.mp4"
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=25)
    vs.width, vs.height, vs.pix_fmt = SHAPE[1], SHAPE[0], "yuv420p"
    grey = blob_stack(16, SHAPE, seed=9)
    for k, g in enumerate(grey):
        rgb = np.stack([g, np.roll(g, k, axis=1), 255 - g], -1).astype(np.uint8)  # colour: read as RGB
        out.mux(vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
    out.mux(vs.encode())
    out.close()

    def decoded():
        with av.open(str(path)) as container:
            for f in container.decode(video=0):
                yield f.to_ndarray(format="rgb24")

    stream = FrameStream.from_iter(decoded())
    assert stream.frame_shape == (*SHAPE, 3)
    got = track(model, stream, 16)
    want = track(model, read_video(path).data, 16)
    for a, b in zip(got, want):
        same(a, b)
