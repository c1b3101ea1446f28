"""Live tracking on a FrameStream: results equal offline propagation; bad inputs; cancel; memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_sam2.engine.stream import FrameStream
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import InputError, PromptError

from .conftest import blob_stack

SHAPE = (48, 64)
JOIN_S = 60  # a generous bound so that a hang fails the test instead of blocking the suite


@pytest.fixture(scope="module")
def frames():
    return list(blob_stack(20, SHAPE))


@pytest.fixture(scope="module")
def offline_one(model, frames):
    ref = VideoSession(model, np.stack(frames))
    ref.add_points(0, 1, [[24, 20]], [1])
    return list(ref.propagate("forward"))


def run_in_thread(fn):
    """Run ``fn`` in a thread; (results, error) once it ends, failing the test if it hangs."""
    box: dict = {}

    def target():
        try:
            box["out"] = fn()
        except BaseException as exc:  # handed to the test
            box["err"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(JOIN_S)
    assert not t.is_alive(), "the consumer hung"
    return box.get("out"), box.get("err")


def same(a, b):
    assert a.frame == b.frame and a.obj_ids == b.obj_ids
    np.testing.assert_array_equal(a.to_labels(), b.to_labels())
    np.testing.assert_array_equal(a.scores, b.scores)


def test_the_stream_grows_refuses_bad_frames_and_stays_usable(frames):
    s = FrameStream(SHAPE, np.uint8)
    assert s.shape == (0, *SHAPE) and s.ndim == 3 and s.dtype == np.uint8
    assert s.append(frames[0]) == 0 and s.append(frames[1]) == 1
    with pytest.raises(InputError, match=r"shape \(48, 64\) and dtype uint8"):
        s.append(np.zeros((48, 63), np.uint8))
    with pytest.raises(InputError, match=r"shape \(48, 64\)"):
        s.append(frames[2].astype(np.uint16))
    assert s.append(frames[2]) == 2  # still usable
    assert s.shape == (3, *SHAPE)
    np.testing.assert_array_equal(s[1], frames[1])
    np.testing.assert_array_equal(s[1:3, :4], np.stack(frames[1:3])[:, :4])
    assert s.append_time(0) <= s.append_time(1) <= s.append_time(2)
    assert s.wait_for(2, timeout=0) and not s.wait_for(3, timeout=0)
    s.close()
    assert not s.wait_for(3)  # closed: returns at once instead of waiting
    with pytest.raises(InputError, match="closed"):
        s.append(frames[3])


def test_live_results_equal_offline_with_a_producer_thread_and_an_object_added_mid_stream(model, frames):
    stream = FrameStream(SHAPE, np.uint8)
    rng = np.random.default_rng(1)
    pauses = rng.uniform(0, 0.02, len(frames))
    done = [threading.Event() for _ in frames]  # the consumer's progress

    def produce():  # at most two frames ahead of the tracking, so the stream is short while it runs
        for k, (f, p) in enumerate(zip(frames, pauses)):
            if k >= 2:
                done[k - 2].wait(JOIN_S)
            threading.Event().wait(p)  # small random gaps between frames
            stream.append(f)
        stream.close()

    threading.Thread(target=produce, daemon=True).start()
    live = VideoSession(model, stream)

    def consume():
        assert stream.wait_for(0, timeout=JOIN_S)
        live.add_points(0, 1, [[24, 20]], [1])
        out = []
        for r in live.propagate("forward", follow=True):
            out.append(r)
            done[r.frame].set()
            if r.frame == 7:  # the second object, on the next frame, as soon as it exists
                assert stream.wait_for(8, timeout=JOIN_S)
                live.add_points(8, 2, [[10, 50]], [1])
        return out

    got, err = run_in_thread(consume)
    assert err is None, err
    ref = VideoSession(model, np.stack(frames))
    ref.add_points(0, 1, [[24, 20]], [1])
    want = list(ref.propagate("forward", stop=7))
    ref.add_points(8, 2, [[10, 50]], [1])
    want += list(ref.propagate("forward", start=8))
    assert [r.frame for r in got] == list(range(20))
    for a, b in zip(got, want):
        same(a, b)
    assert got[-1].obj_ids == (1, 2) and all(r.masks[0].any() for r in got)
    assert all(r.latency is not None and r.latency >= 0 for r in got)


def test_a_short_stream_uses_the_pointer_scale_of_16_frames_or_more(model, frames, offline_one):
    stream = FrameStream(SHAPE, np.uint8)
    for f in frames[:10]:
        stream.append(f)
    stream.close()
    live = VideoSession(model, stream)
    live.add_points(0, 1, [[24, 20]], [1])
    got = list(live.propagate("forward", follow=True))
    for a, b in zip(got, offline_one[:10], strict=True):
        same(a, b)  # the first 10 frames of a 20-frame video, not a 10-frame video
    short = VideoSession(model, np.stack(frames[:10]))
    short.add_points(0, 1, [[24, 20]], [1])
    other = list(short.propagate("forward"))
    assert any(not np.array_equal(a.object_score_logits, b.object_score_logits) for a, b in zip(got, other))


def test_a_prompt_on_a_frame_not_yet_arrived_says_which_frames_exist(model, frames):
    stream = FrameStream(SHAPE, np.uint8)
    live = VideoSession(model, stream)
    with pytest.raises(PromptError, match="has not arrived yet: the stream has no frames yet"):
        live.add_points(0, 1, [[24, 20]], [1])
    for f in frames[:3]:
        stream.append(f)
    with pytest.raises(PromptError, match="Frame 5 has not arrived yet: the stream has frames 0 to 2"):
        live.add_points(5, 1, [[24, 20]], [1])
    assert live.num_frames == 3
    assert live.add_points(2, 1, [[24, 20]], [1]).obj_ids == (1,)


def test_the_consumer_ends_with_the_producers_error_not_a_hang(model, frames):
    def camera():
        yield from frames[:5]
        raise RuntimeError("camera unplugged")

    stream = FrameStream.from_iter(camera())
    assert stream.frame_shape == SHAPE and stream.dtype == np.uint8
    live = VideoSession(model, stream)
    assert stream.wait_for(0, timeout=JOIN_S)
    live.add_points(0, 1, [[24, 20]], [1])
    seen: list[int] = []

    def consume():
        for r in live.propagate("forward", follow=True):
            seen.append(r.frame)

    _, err = run_in_thread(consume)
    assert isinstance(err, RuntimeError) and "camera unplugged" in str(err)
    assert seen == [0, 1, 2, 3, 4]  # every frame that arrived was tracked first
    with pytest.raises(InputError, match="closed"):
        stream.append(frames[5])


def test_cancel_ends_a_waiting_follow_and_the_session_stays_usable(model, frames):
    stream = FrameStream(SHAPE, np.uint8)
    for f in frames[:3]:
        stream.append(f)  # and no more: the propagation waits for frame 3
    live = VideoSession(model, stream)
    live.add_points(0, 1, [[24, 20]], [1])
    cancel, done_three = threading.Event(), threading.Event()

    def consume():
        out = []
        for r in live.propagate("forward", follow=True, cancel=cancel):
            out.append(r.frame)
            if r.frame == 2:
                done_three.set()
        return out

    t = threading.Thread(target=lambda: box.append(consume()), daemon=True)
    box: list = []
    t.start()
    assert done_three.wait(JOIN_S)
    cancel.set()
    t.join(JOIN_S)
    assert not t.is_alive() and box == [[0, 1, 2]]
    assert [r.frame for r in live.propagate("forward")] == [0, 1, 2]  # not busy any more


def test_drop_oldest_skips_to_the_newest_frame_and_counts(model, frames):
    stream = FrameStream(SHAPE, np.uint8)
    for f in frames[:10]:
        stream.append(f)  # all there before tracking starts: the model is "behind" by 9 frames
    stream.close()
    live = VideoSession(model, stream)
    live.add_points(0, 1, [[24, 20]], [1])
    got = list(live.propagate("forward", follow=True, drop="oldest"))
    assert [(r.frame, r.skipped) for r in got] == [(0, 0), (9, 8)]
    assert live.live.frames_skipped == 8
    with pytest.raises(PromptError, match="drop must be"):
        next(live.propagate("forward", follow=True, drop="newest"))


def test_keep_last_drops_old_frames_while_tracking_and_the_device_state_stays_bounded(model):
    frames = blob_stack(60, (32, 40), seed=3)
    stream = FrameStream((32, 40), np.uint8, keep_last=8)
    stream.append(frames[0])
    stream.append(frames[1])
    live = VideoSession(model, stream)
    live.add_points(0, 1, [[16, 20]], [1])
    seen, state = [], {}
    for r in live.propagate("forward", follow=True):
        seen.append(r.frame)
        state[r.frame] = live.state_bytes
        nxt = r.frame + 2
        if nxt < len(frames):
            stream.append(frames[nxt])  # the producer stays two frames ahead
        elif nxt == len(frames):
            stream.close()
    assert seen == list(range(60))
    assert stream.first_kept == 52 and stream.shape == (60, 32, 40)
    with pytest.raises(InputError, match="dropped"):
        stream[10]
    assert state[59] == state[30]  # the device keeps the same window of memories
    assert live.result(10).masks.shape == (1, 32, 40)  # results of old frames are still there


def test_a_uint16_stream_holds_the_range_estimated_at_the_first_read(model, frames):
    stream = FrameStream(SHAPE, np.uint16)
    for f in frames[:3]:
        stream.append(f.astype(np.uint16) * 100 + 500)
    live = VideoSession(model, stream)
    assert live.intensity_range is None
    live.add_points(0, 1, [[24, 20]], [1])
    held = live.intensity_range
    assert held is not None and held[0] < held[1]
    stream.append(np.full(SHAPE, 60000, np.uint16))
    stream.close()
    assert len(list(live.propagate("forward", follow=True))) == 4
    assert live.intensity_range == held
    with pytest.raises(InputError, match="axis=0"):
        VideoSession(model, FrameStream(SHAPE, np.uint8), axis=1)


def test_a_byte_budget_keeps_the_newest_frames_in_ram_and_the_rest_on_disk(frames, tmp_path):
    fb = SHAPE[0] * SHAPE[1]
    s = FrameStream(SHAPE, np.uint8, max_bytes=5 * fb + 7, spill_dir=tmp_path)
    for k, f in enumerate(frames):
        s.append(f)
        assert s.ram_bytes == min(k + 1, 5) * fb <= s.max_bytes
        assert s.disk_bytes == max(k + 1 - 5, 0) * fb
    np.testing.assert_array_equal(s[:], np.stack(frames))  # read back from disk and RAM alike
    assert not s.frame(0).flags.writeable and not s.frame(19).flags.writeable
    assert list(tmp_path.iterdir()) == []  # the spill file has no name on disk
    s.close()
    np.testing.assert_array_equal(s[3], frames[3])  # closing ends the appends, not the reading
    s.release()
    assert s.ram_bytes == s.disk_bytes == 0
    with pytest.raises(InputError, match="released"):
        s[3]
    with pytest.raises(InputError, match="max_bytes"):
        FrameStream(SHAPE, np.uint8, max_bytes=-1)
    with pytest.raises(InputError, match="spill_dir"):
        FrameStream(SHAPE, np.uint8, max_bytes=0, spill_dir=tmp_path / "missing")


def test_keep_last_with_a_byte_budget_reuses_the_disk_slots(frames):
    fb = SHAPE[0] * SHAPE[1]
    s = FrameStream(SHAPE, np.uint8, keep_last=6, max_bytes=2 * fb)
    for f in frames:
        s.append(f)
        assert s.ram_bytes <= 2 * fb and s.disk_bytes <= 4 * fb
    assert s.first_kept == 14 and s.disk_bytes == 4 * fb
    np.testing.assert_array_equal(s[14:], np.stack(frames[14:]))
    with pytest.raises(InputError, match="dropped"):
        s[13]


def test_a_producer_far_ahead_with_a_byte_budget_tracks_like_offline(model, frames, offline_one):
    fb = SHAPE[0] * SHAPE[1]
    stream = FrameStream.from_iter(iter(frames), max_bytes=3 * fb)  # all 20 frames arrive before tracking
    stream.producer.join(JOIN_S)
    assert stream.closed and stream.ram_bytes == 3 * fb and stream.disk_bytes == 17 * fb
    live = VideoSession(model, stream)
    live.add_points(0, 1, [[24, 20]], [1])
    got = list(live.propagate("forward", follow=True))  # drop="none": every frame, read back from disk
    assert len(got) == 20
    for a, b in zip(got, offline_one):
        same(a, b)


def rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_the_process_memory_stays_under_the_budget_while_the_producer_runs_far_ahead():
    shape, n, budget = (1024, 1024), 160, 8 * 2**20  # 160 MiB of frames, 8 MiB of RAM
    frame = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    s = FrameStream(shape, np.uint8, max_bytes=budget)
    before = rss_bytes()
    for k in range(n):
        frame[0, 0] = k  # each frame differs
        s.append(frame)
    grown = rss_bytes() - before
    assert s.ram_bytes <= budget and s.disk_bytes == n * 2**20 - s.ram_bytes
    assert grown < budget + 32 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB for an 8 MiB budget"
    assert int(s[37][0, 0]) == 37 and int(s[n - 1][0, 0]) == n - 1
    s.release()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the crash is the test
def test_a_producer_thread_that_dies_without_closing_the_stream_ends_the_wait(frames):
    stream = FrameStream(SHAPE, np.uint8)

    def camera_thread():
        for f in frames[:3]:
            stream.append(f)
        raise RuntimeError("driver crashed")  # never calls stream.fail

    stream.producer = threading.Thread(target=camera_thread, daemon=True)
    stream.producer.start()
    with pytest.raises(InputError, match="ended without closing the stream, so frame 3 will never come"):
        stream.wait_for(3)  # no timeout: it would hang without the check
    assert len(stream) == 3 and stream.wait_for(2)
