"""Worker generators, iterated directly (no Qt): model loading with progress, prompt sync, runner guard."""

import threading

import numpy as np
import pytest

from napari_sam2._napari import workers as W
from napari_sam2._napari.prompt_sync import PromptTracker
from napari_sam2._napari.runner import InlineWorkers, Job, JobError, JobRunner, _guarded
from napari_sam2.engine.prompts import BoxPrompt, PointPrompt, PromptSet
from napari_sam2.engine.video_session import VideoSession
from napari_sam2.errors import Cancelled, CheckpointError, DownloadCancelled, LoadCancelled
from napari_sam2.model import loading


def _drain(gen):
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration as stop:
        return items, stop.value


def test_load_model_job_reports_download_progress(monkeypatch):
    def fake_load(name, device, image_size, progress, cancel):
        for done in (0, 400_000, 1_500_000, 3_000_000):
            progress(done, 3_000_000)
        return ("model", name, device, image_size)

    monkeypatch.setattr(loading, "load_model", fake_load)
    items, model = _drain(W.load_model_job("sam2.1_hiera_tiny", "cpu", 512))
    assert model == ("model", "sam2.1_hiera_tiny", "cpu", 512)
    texts = [i.text for i in items]
    assert texts[0] == "Loading sam2.1_hiera_tiny on cpu..."
    assert texts[1:] == [f"Downloading sam2.1_hiera_tiny: {mb} of 3 MB..." for mb in (0, 1, 3)]


def test_load_model_job_raises_the_loader_error(monkeypatch):
    def broken(*a, **k):
        raise CheckpointError("broken.pt is not a SAM 2 checkpoint")

    monkeypatch.setattr(loading, "load_model", broken)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint"):
        _drain(W.load_model_job("broken.pt", "cpu"))


def test_load_model_job_stops_waiting_for_a_loader_that_ignores_cancel(monkeypatch):
    release = threading.Event()
    returned = threading.Event()

    def stuck(*args, cancel, **kwargs):  # e.g. reading or building a large model: cancel is not seen
        release.wait(600)  # until the test lets it go (the bound only keeps a broken run from hanging)
        returned.set()

    monkeypatch.setattr(loading, "load_model", stuck)
    cancel = threading.Event()
    gen = W.load_model_job("sam2.1_hiera_tiny", "cpu", cancel=cancel)
    assert next(gen).text.startswith("Loading")
    cancel.set()
    try:
        with pytest.raises(Cancelled, match="loading of sam2.1_hiera_tiny was cancelled") as info:
            next(gen)
        assert isinstance(info.value, LoadCancelled)  # nothing was downloading: "loading cancelled"
        assert not isinstance(info.value, DownloadCancelled)
        assert not returned.is_set(), "the job waited for the stuck loader instead of giving up"
    finally:
        release.set()  # the daemon thread ends on its own once the loader returns


def test_sync_job_sends_ops_and_yields_frames(model):
    frames = np.random.default_rng(0).normal(size=(5, 32, 32)).astype(np.float32)
    session = VideoSession(model, frames)
    tracker = PromptTracker()
    pts = PointPrompt(1, 1, np.array([[10.0, 10.0]], np.float32), np.array([1], np.int32))
    box = BoxPrompt(2, 2, np.array([2, 2, 8, 8], np.float32))
    ops = tracker.diff(PromptSet(points=[pts], boxes=[box]))
    items, _ = _drain(W.sync_job(session, ops))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["OpDone", "FrameResult", "OpDone", "FrameResult"]
    assert [(i.frame, i.obj_ids) for i in items[1::2]] == [(1, (1,)), (2, (1, 2))]
    tracker.commit(ops)
    ops = tracker.diff(PromptSet(points=[pts]))  # the box was deleted
    items, _ = _drain(W.sync_job(session, ops))
    assert [o.kind for o in ops] == ["clear", "remove"]
    assert W.Erase((2,), (2,)) in items and session.obj_ids == [1]  # no remove: clearing removed it already


def test_guard_turns_runtime_errors_into_job_errors():
    def job():
        yield 1
        raise RuntimeError("CUDA out of memory")  # superqt would swallow a bare RuntimeError

    gen = _guarded(job)
    assert next(gen) == 1
    with pytest.raises(JobError) as info:
        next(gen)
    assert isinstance(info.value.original, RuntimeError)


def test_runner_runs_plain_functions_and_generators_in_order():
    workers = InlineWorkers()
    busy, got = [], []
    runner = JobRunner(on_busy=lambda b, name: busy.append((b, name)), start=workers)
    runner.submit(Job("plain", lambda: (lambda x: x * 2, (21,), {}), on_return=got.append))
    runner.submit(Job("gen", lambda: (_two, (), {}), on_yield=got.append, on_return=got.append))
    assert runner.running("plain") and runner.pending == ["gen"]
    workers.run()
    assert got == [42, 1, 2, "end"] and not runner.busy
    assert busy == [(True, "plain"), (True, "gen"), (False, "gen")]


def _two():
    yield 1
    yield 2
    return "end"
