"""Qt-free helpers: frame keys and frame counts (the engine's StackLayout, as the widget uses them),
default axis, progress text, error messages."""

import numpy as np
import pytest
import torch

from napari_sam2._napari import messages as M
from napari_sam2._napari.frames import axis_names, default_axis
from napari_sam2._napari.progress import ProgressMeter, format_seconds
from napari_sam2.engine.layout import StackLayout, coords_key, frame_key
from napari_sam2.engine.results import FrameResult
from napari_sam2.errors import CheckpointError, DownloadCancelled, LoadCancelled, OutputError, PromptError


def _result(frame, index=()):
    return FrameResult(
        frame=frame,
        obj_ids=(1,),
        masks=np.zeros((1, 4, 4), bool),
        scores=np.ones(1, np.float32),
        present=np.ones(1, bool),
        iou=np.ones(1, np.float32),
        object_score_logits=np.ones(1, np.float32),
        index=index,
    )


def test_frame_keys_round_trip():
    assert frame_key(3) == (3,) and frame_key((1, 2)) == (1, 2)
    assert coords_key([3.004, 0.0], "a click") == (3, 0)  # napari's float coordinates, rounded
    with pytest.raises(PromptError):
        coords_key([2.6, 0.4], "a click")  # between frames: refused, not rounded


def test_result_key_inserts_frame_at_axis():
    # the session builds ``FrameResult.key`` with ``layout.index(outer index, frame)``
    assert StackLayout((9, 8, 8), 0, False).index((), 5) == (5,)
    assert _result(5).key == (5,)
    # T x Z x Y x X propagated along Z (axis 1): index holds t
    assert StackLayout((3, 9, 8, 8), 1, False).index((2,), 7) == (2, 7)
    assert StackLayout((9, 3, 8, 8), 0, False).index((2,), 7) == (7, 2)


def test_default_axis_prefers_time_then_z():
    assert default_axis(("t", "y", "x"), 1) == 0
    assert default_axis(("z", "t", "y", "x"), 2) == 1
    assert default_axis(("c", "z", "y", "x"), 2) == 1
    assert default_axis(("0", "1", "2", "3"), 2) == 0
    assert default_axis(None, 1) == 0


def test_axis_names_show_label_and_length():
    names = axis_names(("t", "z", "y", "x"), (40, 12, 64, 64), 2)
    assert names == ["axis 0 (t, 40 frames)", "axis 1 (z, 12 frames)"]
    assert axis_names(("0", "1", "2"), (5, 8, 8), 1) == ["axis 0 (5 frames)"]


@pytest.mark.parametrize(
    "direction,start,stop,expected",
    [
        ("forward", 3, None, 7),
        ("forward", 3, 5, 3),
        ("backward", 3, None, 4),
        ("backward", 3, 2, 2),
        ("both", 3, None, 10),
        ("both", 3, (1, 6), 6),
    ],
)
def test_count_frames(direction, start, stop, expected):
    assert StackLayout((10, 8, 8), 0, False).count_visits(direction, start, stop) == expected


def test_progress_meter_fps_and_eta():
    t = [0.0]
    meter = ProgressMeter(11, clock=lambda: t[0])
    assert "?" in meter.text()
    t[0] = 1.0
    meter.tick()  # first frame: warm-up, not counted for the rate
    for _ in range(5):
        t[0] += 0.5
        meter.tick()
    assert meter.fps == pytest.approx(2.0)
    assert meter.seconds_left == pytest.approx(2.5)
    assert meter.percent == 54
    assert "2.0 frames/s" in meter.text() and "2 s left" in meter.text()
    assert format_seconds(75) == "1 min 15 s" and format_seconds(7300) == "2 h 01 min"


def test_messages_name_the_fix():
    level, text = M.describe(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert level == "error" and "smaller model" in text and "cpu" in text
    assert "smaller model" in M.describe(MemoryError())[1]
    assert M.describe(CheckpointError("file x.pt is not a SAM 2 checkpoint"))[1] == "SAM 2: file x.pt is not a SAM 2 checkpoint"
    assert "ValueError" in M.describe(ValueError("boom"))[1]
    # every user error is its own message (never "unexpectedly"); Cancel is a notice
    assert M.describe(OutputError("the layer is in the way")) == ("error", "SAM 2: the layer is in the way")
    assert M.describe(PromptError("frame 9 is outside")) == ("error", "SAM 2: frame 9 is outside")
    assert M.describe(DownloadCancelled("stopped")) == ("info", M.DOWNLOAD_CANCELLED)
    assert M.describe(LoadCancelled("stopped")) == ("info", M.LOAD_CANCELLED)
    assert "unexpectedly" in M.describe(RuntimeError("a bug"))[1] and M.is_bug(RuntimeError("a bug"))
