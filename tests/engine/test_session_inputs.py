"""Input handling of VideoSession: dtypes, channels, lazy array-likes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2 import VideoSession
from napari_sam2.engine.layout import guess_layout
from napari_sam2.errors import InputError, PromptError


class CountingArray:
    """An array-like that records which frames were read and refuses whole-array reads."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.reads: list = []

    def __getitem__(self, idx):
        self.reads.append(idx)
        out = self._data[idx]
        assert out.ndim <= self._data.ndim - 1, f"read of a whole block {idx}"
        return out

    def __array__(self, *a, **k):
        raise AssertionError("the whole stack was materialised")

    def __len__(self):
        return self.shape[0]


def test_frames_are_read_lazily_one_at_a_time(model, stack):
    lazy = CountingArray(stack)
    s = VideoSession(model, lazy)
    n_sample_reads = len(lazy.reads)  # the uint8 stack needs no intensity sampling
    assert n_sample_reads == 0
    s.add_points(0, 1, [[36, 20]], [1])
    list(s.propagate(stop=5))
    frames_read = [i[0] if isinstance(i, tuple) else i for i in lazy.reads]
    assert sorted(set(frames_read)) == [0, 1, 2, 3, 4, 5, 6, 7][: len(set(frames_read))]
    assert set(frames_read) <= set(range(8))  # at most a couple prefetched beyond frame 5


def test_dask_array_input(model, stack):
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(stack, chunks=(1, 72, 96))
    a = VideoSession(model, lazy)
    b = VideoSession(model, stack)
    ra = a.add_points(2, 1, [[36, 24]], [1])
    rb = b.add_points(2, 1, [[36, 24]], [1])
    np.testing.assert_array_equal(ra.masks, rb.masks)


def test_uint16_uses_one_intensity_range_for_the_whole_stack(model, make_stack):
    st16 = make_stack(dtype=np.uint16)
    st16[6:] = st16[6:] // 2  # a dimmer second half must stay dimmer (no per-frame rescale)
    s = VideoSession(model, st16)
    lo, hi = s.intensity_range
    assert lo < hi
    src = s._clip(()).source
    a, b = src.get(0), src.get(8)
    assert b.mean() < a.mean()
    manual = VideoSession(model, st16, intensity_range=(1000.0, 60000.0))
    assert manual.intensity_range == (1000.0, 60000.0)
    assert not np.allclose(manual._clip(()).source.get(0), a)


def test_float_data_with_some_nans_works(model, make_stack):
    """NaN pixels count as the stack's darkest value: the same as the stack with them filled in."""
    st = make_stack(dtype=np.float32)
    st[:, :5, :5] = np.nan
    s = VideoSession(model, st)
    lo, hi = s.intensity_range
    assert np.isfinite([lo, hi]).all() and lo < hi
    x = np.asarray(s._clip(()).source.get(0))
    assert np.isfinite(x).all()
    filled = VideoSession(model, np.where(np.isnan(st), lo, st), intensity_range=(lo, hi))
    np.testing.assert_array_equal(x, np.asarray(filled._clip(()).source.get(0)))
    r = s.add_points(0, 1, [[36, 20]], [1], return_logits=True)
    f = filled.add_points(0, 1, [[36, 20]], [1], return_logits=True)
    assert r.masks.shape == (1, 72, 96) and np.isfinite(r.logits).all() and np.isfinite(r.scores).all()
    np.testing.assert_array_equal(r.masks, f.masks)
    np.testing.assert_array_equal(r.logits, f.logits)
    tracked = list(s.propagate(stop=3))
    for a, b in zip(tracked, filled.propagate(stop=3), strict=True):
        np.testing.assert_array_equal(a.masks, b.masks, err_msg=f"frame {a.frame}")
        assert np.isfinite(a.scores).all()
    assert [t.frame for t in tracked] == [0, 1, 2, 3]


def test_grayscale_becomes_three_channels_and_channel_can_be_chosen(model, stack):
    s = VideoSession(model, stack)
    x = s._clip(()).source.get(0)
    assert x.shape == (3, 256, 256)
    assert np.allclose((x[0] * 0.229 + 0.485), (x[1] * 0.224 + 0.456), atol=1e-5)
    two = np.stack([np.zeros_like(stack), stack], axis=-1)  # (T, Y, X, 2)
    c1 = VideoSession(model, two, channel=1)
    assert c1.layout.rgb and c1.frame_shape == (72, 96)
    np.testing.assert_allclose(c1._clip(()).source.get(0), x)
    with pytest.raises(InputError, match="choose one with channel"):
        VideoSession(model, two, rgb=True)._clip(()).source.get(0)


def test_rgb_stack_is_used_as_is(model, stack):
    rgb = np.stack([stack, stack // 2, stack // 3], axis=-1)
    s = VideoSession(model, rgb)
    assert s.layout.rgb and s.frame_shape == (72, 96)
    assert s.add_points(0, 1, [[36, 20]], [1]).masks.shape == (1, 72, 96)


def test_layout_guess_follows_napari():
    assert guess_layout(np.zeros((5, 8, 8, 3)), 0, None, None).rgb
    assert not guess_layout(np.zeros((5, 8, 8)), 0, None, None).rgb
    lay = guess_layout(np.zeros((2, 5, 8, 8)), 1, None, None)
    assert not lay.rgb and lay.outer_axes == (0,) and lay.num_frames == 5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: s.add_points(0, 1, [[100, 20]], [1]), "outside the 72 x 96 image"),
        (lambda s: s.add_points(0, 1, [[-3, 20]], [1]), "outside"),
        (lambda s: s.add_points(12, 1, [[30, 20]], [1]), "Frame 12 is outside the stack"),
        (lambda s: s.add_points(-1, 1, [[30, 20]], [1]), "outside the stack"),
        (lambda s: s.add_points(0, 1, [[30, 20]], [1, 0]), "one label per point"),
        (lambda s: s.add_points(0, 1, [[30, 20]], [2]), "1 .positive. or 0"),
        (lambda s: s.add_points(0, 0, [[30, 20]], [1]), "integers from 1 to 4294967295"),
        (lambda s: s.add_points(0.5, 1, [[30, 20]], [1]), "not an integer"),
        (lambda s: s.add_box(0, 1, (10, 10, 10, 40)), "zero area"),
        (lambda s: s.add_box(0, 1, (80, 10, 90, 40)), "lies outside the 72 x 96 image"),
        (lambda s: s.add_mask(0, 1, np.full((72, 96), 5, np.uint8)), "only 0 and 1"),
        (lambda s: s.add_mask(0, 1, np.ones((10, 10), bool)), "shape"),
        (lambda s: s.remove_object(5), "no object 5"),
        (lambda s: s.clear_prompts(0, 5), "no object 5"),
        (lambda s: list(s.propagate()), "nothing to propagate"),
        (lambda s: list(s.propagate(direction="sideways")), "direction must be"),
    ],
)
def test_bad_prompts_get_one_clear_error(model, stack, call, match):
    s = VideoSession(model, stack)
    with pytest.raises(PromptError, match=match):
        call(s)


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((72, 96), np.uint8), "no axis to propagate along"),
        ([np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8)], "inconsistent shapes"),
        (np.full((4, 16, 16), np.nan, np.float32), "no finite values"),
        (np.full((4, 16, 16), 7, np.uint16), "constant intensity"),
        (np.zeros((0, 16, 16), np.uint8), "empty"),
        ("not an array", "Cannot use"),
    ],
)
def test_bad_stacks_get_one_clear_error(model, frames, match):
    with pytest.raises(InputError, match=match):
        VideoSession(model, frames)


def test_bad_intensity_range(model, stack):
    with pytest.raises(InputError, match="low < high"):
        VideoSession(model, stack, intensity_range=(5, 5))


def test_list_of_frames_is_accepted(model, stack):
    s = VideoSession(model, list(stack[:4]))
    assert s.num_frames == 4 and s.frame_shape == (72, 96)
    a = VideoSession(model, stack[:4])
    np.testing.assert_array_equal(s.add_points(1, 1, [[36, 24]], [1]).masks, a.add_points(1, 1, [[36, 24]], [1]).masks)


def test_laptop_mode_runs_at_lower_internal_size_and_returns_full_resolution(stack):
    from napari_sam2.model.testing import random_model

    small = random_model(image_size=256)
    big = random_model(image_size=384)
    assert big.image_size == 384 and big.sam_prompt_encoder.embedding_size == 24
    rs = VideoSession(small, stack).add_points(0, 1, [[36, 20]], [1])
    s = VideoSession(big, stack)
    rb = s.add_points(0, 1, [[36, 20]], [1])
    assert rb.masks.shape == rs.masks.shape == (1, 72, 96)
    assert [r.frame for r in s.propagate(stop=2)] == [0, 1, 2]


def test_next_frames_are_prepared_in_a_background_thread(model, stack, monkeypatch):
    import threading

    from napari_sam2.engine.frames import FrameSource

    threads = []
    original = FrameSource._load

    def spy(self, frame):
        threads.append((frame, threading.current_thread().name))
        return original(self, frame)

    monkeypatch.setattr(FrameSource, "_load", spy)
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 20]], [1])
    list(s.propagate())
    background = {f for f, name in threads if name.startswith("napari-sam2-frames")}
    assert len(background) >= 5, threads
    assert sorted({f for f, _ in threads}) == list(range(12))


def test_box_past_the_border_is_clipped(model, stack):
    a = VideoSession(model, stack).add_box(0, 1, (40, 60, 200, 300))
    b = VideoSession(model, stack).add_box(0, 1, (40, 60, 71.5, 95.5))
    np.testing.assert_array_equal(a.masks, b.masks)


def test_mask_prompts_from_labels_arrays_and_layers_are_built_on_use():
    """API arrays, Labels layers and label files share one bounded mask-prompt builder."""
    from types import SimpleNamespace

    from napari_sam2.engine.layout import StackLayout
    from napari_sam2.engine.prompt_arrays import build_prompts
    from napari_sam2.engine.prompts import LabelMask
    from napari_sam2.layer_prompts import mask_prompts

    labels = np.zeros((3, 20, 30), np.uint16)
    labels[0, 2:6, 3:9] = 4
    labels[2, 10:15, 10:20] = 9
    from_api = build_prompts(StackLayout((3, 20, 30), 0, False), masks=labels).masks
    from_layer = mask_prompts(SimpleNamespace(data=labels, name="cellpose"))
    for got in (from_api, from_layer):
        assert [(m.frame, m.obj_id) for m in got] == [((0,), 4), ((2,), 9)]
        assert all(isinstance(m.mask, LabelMask) for m in got)
        for m in got:
            np.testing.assert_array_equal(np.asarray(m.mask), labels[m.frame] == m.obj_id)
    with pytest.raises(PromptError, match="cellpose, frame 2: label -2 is negative"):
        mask_prompts(SimpleNamespace(data=np.where(labels == 9, -2, labels).astype(np.int16), name="cellpose"))
