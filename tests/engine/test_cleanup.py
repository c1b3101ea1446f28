"""Clean-up of label planes: holes, islands, opening / closing, the conflict rule, flickers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import closing, disk, opening

from napari_sam2.engine.cleanup import Cleanup
from napari_sam2.engine.flicker import FlickerFilter, FlickerWriter, drop_flicker_array
from napari_sam2.errors import InputError, OutputError


def _disc(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_defaults_change_nothing():
    plane = np.arange(30, dtype=np.uint16).reshape(5, 6) % 4
    c = Cleanup()
    assert not c.active and c.describe() == "none"
    assert c.apply(plane) is plane


def test_fill_holes_up_to_the_area_only():
    plane = np.zeros((30, 30), np.uint16)
    plane[2:14, 2:14] = 5
    plane[5:7, 5:7] = 0  # 4 px hole
    plane[16:28, 16:28] = 7
    plane[19:25, 19:25] = 0  # 36 px hole
    plane[0:2, 20:24] = 0
    out = Cleanup(fill_holes=10).apply(plane)
    assert (out[5:7, 5:7] == 5).all()
    assert (out[19:25, 19:25] == 0).all()  # larger than 10 px: kept
    assert out.dtype == plane.dtype and (plane[5:7, 5:7] == 0).all()  # input untouched
    assert (Cleanup(fill_holes=36).apply(plane)[19:25, 19:25] == 7).all()


def test_background_on_the_image_border_is_not_a_hole():
    plane = np.full((10, 10), 3, np.uint8)
    plane[0, 4:6] = 0  # a notch open to the border
    assert (Cleanup(fill_holes=100).apply(plane) == plane).all()


def test_fill_never_takes_pixels_of_another_object():
    plane = np.zeros((20, 20), np.uint8)
    plane[2:18, 2:18] = 1
    plane[6:12, 6:12] = 0  # a hole ...
    plane[8:10, 8:10] = 2  # ... with object 2 inside it
    out = Cleanup(fill_holes=100).apply(plane)
    assert (out[8:10, 8:10] == 2).all()
    assert ((out == 1) == ((plane == 1) | ((plane == 0) & _box((20, 20), 6, 12)))).all()


def _box(shape, a, b):
    m = np.zeros(shape, bool)
    m[a:b, a:b] = True
    return m


def test_islands_and_keep_largest():
    plane = np.zeros((20, 20), np.uint16)
    plane[1:9, 1:9] = 4  # 64 px
    plane[12:15, 12:15] = 4  # 9 px island
    plane[18, 18] = 4  # 1 px island
    plane[12:16, 1:5] = 9  # another object, 16 px, untouched
    out = Cleanup(min_island=5).apply(plane)
    assert (out[12:15, 12:15] == 4).all() and out[18, 18] == 0
    out = Cleanup(keep_largest=True).apply(plane)
    assert ((out == 4) == _box((20, 20), 1, 9)).all()
    assert (out == 9).sum() == 16
    # an object made only of small pieces disappears
    assert not (Cleanup(min_island=100).apply(plane) == 9).any()


def test_diagonal_pixels_are_one_piece():
    plane = np.zeros((6, 6), np.uint8)
    plane[1, 1] = plane[2, 2] = plane[3, 3] = 1
    assert (Cleanup(min_island=3).apply(plane) == plane).all()


def test_opening_and_closing_equal_skimage_on_one_object():
    rng = np.random.default_rng(0)
    mask = ndi.binary_dilation(rng.random((64, 64)) > 0.97, iterations=2)
    plane = mask.astype(np.uint16) * 3
    for r in (1, 2, 3):
        opened = Cleanup(open_radius=r).apply(plane)
        assert ((opened == 3) == opening(mask, disk(r), mode="ignore")).all()
        closed = Cleanup(close_radius=r).apply(plane)
        assert ((closed == 3) == closing(np.pad(mask, r + 1), disk(r))[r + 1:-r - 1, r + 1:-r - 1]).all()


def test_closing_conflicts_stay_background_whatever_the_ids():
    plane = np.zeros((12, 20), np.uint8)
    plane[2:10, 2:9] = 1
    plane[2:10, 10:17] = 2  # a 1 px gap column 9 that both closings would fill? no: each closes itself
    plane[5, 4:7] = 0  # dent in object 1
    out = Cleanup(close_radius=2).apply(plane)
    assert (out[5, 4:7] == 1).all()
    assert (out[:, 9] == 0).all()  # contested or nobody's: stays 0
    swapped = np.where(plane == 1, 2, np.where(plane == 2, 1, 0)).astype(np.uint8)
    out_swapped = Cleanup(close_radius=2).apply(swapped)
    assert (np.where(out_swapped == 1, 2, np.where(out_swapped == 2, 1, 0)) == out).all()


def _interleaved():
    rng = np.random.default_rng(3)
    plane = rng.integers(1, 4, (40, 40)).astype(np.uint16)
    plane[rng.random(plane.shape) < 0.55] = 0  # three interleaved objects, many gaps
    return plane


def _rings():
    plane = np.zeros((15, 15), np.uint16)
    plane[2:13, 2:13] = 1
    plane[3:12, 3:12] = 0
    plane[5:10, 5:10] = 2  # a ring inside the ring of 1
    plane[6:9, 6:9] = 0  # the 9 px inside both rings
    return plane


@pytest.mark.parametrize("step, plane", [({"close_radius": 2}, _interleaved()), ({"fill_holes": 100}, _rings()),
                                         ({"close_radius": 1, "fill_holes": 5}, _interleaved())])
def test_gains_follow_the_conflict_rule(step, plane):
    cleanup = Cleanup(**step)
    alone = {k: cleanup.apply(np.where(plane == k, k, 0).astype(np.uint16)) == k for k in range(1, int(plane.max()) + 1)}
    wanted = sum((alone[k] & (plane == 0)).astype(int) for k in alone)
    out = cleanup.apply(plane)
    assert (wanted >= 2).any() and (wanted == 1).any()
    assert (out[wanted >= 2] == 0).all()  # contested: stays background
    for k in alone:
        assert (out[(wanted == 1) & alone[k]] == k).all()
        assert ((out == k) & (plane != 0) & (plane != k)).sum() == 0  # never another object's pixel
        assert ((out == k) == ((alone[k] & (plane == k)) | ((wanted == 1) & alone[k]))).all()


def test_huge_ids_and_bad_input():
    plane = np.zeros((8, 8), np.uint32)
    plane[1:6, 1:6] = 4_000_000_000
    plane[3, 3] = 0
    assert Cleanup(fill_holes=1).apply(plane)[3, 3] == 4_000_000_000
    with pytest.raises(InputError, match="2D integer"):
        Cleanup(fill_holes=1).apply(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="2D integer"):
        Cleanup(fill_holes=1).apply(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="negative"):
        Cleanup(fill_holes=1).apply(np.full((4, 4), -1, np.int16))
    with pytest.raises(InputError, match="fill_holes"):
        Cleanup(fill_holes=-1)
    with pytest.raises(InputError, match="keep_largest"):
        Cleanup(keep_largest=2)


# ------------------------------------------------------------------------------ flickers
def _stack(presence, shape=(6, 6)):
    """Frame t holds a 2x2 square of every id in presence[t], at a spot per id."""
    out = np.zeros((len(presence), *shape), np.uint16)
    for t, ids in enumerate(presence):
        for obj in ids:
            out[t, 2 * ((obj - 1) // 3):2 * ((obj - 1) // 3) + 2, 2 * ((obj - 1) % 3):2 * ((obj - 1) % 3) + 2] = obj
    return out


def _ids(stack):
    return [sorted(set(np.unique(p).tolist()) - {0}) for p in stack]


def test_one_frame_objects_are_dropped_two_frame_ones_kept():
    presence = [{1, 2}, {1, 3}, {1}, {1, 4}, {1, 4}, {1, 2}]
    out = drop_flicker_array(_stack(presence))
    assert _ids(out) == [[1], [1], [1], [1, 4], [1, 4], [1]]


def test_ends_use_the_one_neighbour_and_a_single_frame_is_kept():
    out = drop_flicker_array(_stack([{1, 2}, {2}]))
    assert _ids(out) == [[2], [2]]
    single = _stack([{1, 5}])
    assert _ids(drop_flicker_array(single.copy())) == [[1, 5]]


def test_presence_is_judged_on_the_incoming_planes():
    # 2 on frames 0 and 2 only: each is a flicker, even though frame 1 lacks it
    out = drop_flicker_array(_stack([{1, 2}, {1}, {1, 2}, {1}]))
    assert _ids(out) == [[1], [1], [1], [1]]


def test_filter_streams_and_never_changes_planes():
    planes = list(_stack([{1}, {2}, {1}]))
    originals = [p.copy() for p in planes]
    filt = FlickerFilter()
    outs = []
    for t, p in enumerate(planes):
        got = filt.push(p, t)
        assert len(got) == (0 if t == 0 else 1)  # one plane pending at a time
        outs += got
    outs += filt.finish()
    assert [t for t, _ in outs] == [0, 1, 2]
    assert all(not p.any() for _, p in outs)
    assert all((a == b).all() for a, b in zip(planes, originals))


class _Pages:
    """A stand-in labels writer that records pages."""

    def __init__(self, shape):
        self.shape, self.dtype, self.n_pages = shape, np.dtype(np.uint16), int(np.prod(shape[:-2]))
        self.pages, self.closed = [], False

    def write(self, page, labels):
        self.pages.append((page, np.array(labels)))

    def close(self):
        self.closed = True

    def abort(self):
        pass


@pytest.mark.parametrize("axis", [0, 1])
def test_writer_keeps_page_order_and_equals_the_array_filter(axis):
    rng = np.random.default_rng(axis)
    stack = rng.integers(0, 4, (5, 3, 6, 6)).astype(np.uint16)
    stack[rng.random(stack.shape) < 0.9] = 0  # sparse ids so that flickers happen
    expected = drop_flicker_array(stack.copy(), axis)
    sink = _Pages(stack.shape)
    writer = Cleanup(drop_flicker=True).wrap_writer(sink, stack.shape[:2], axis)
    flat = stack.reshape(-1, 6, 6)
    for page in range(0, len(flat)):
        if page % 4 == 3:
            continue  # skipped pages count as empty
        writer.write(page, flat[page])
    writer.close()
    assert sink.closed and [p for p, _ in sink.pages] == list(range(len(flat)))
    skipped = stack.reshape(-1, 6, 6).copy()
    skipped[3::4] = 0
    expected = drop_flicker_array(skipped.reshape(stack.shape), axis)
    got = np.stack([p for _, p in sink.pages]).reshape(stack.shape)
    assert (got == expected).all()
    assert (expected != stack).any()  # something was dropped


def test_writer_refuses_going_back():
    writer = FlickerWriter(_Pages((3, 4, 4)), (3,))
    writer.write(1, np.zeros((4, 4), np.uint16))
    with pytest.raises(OutputError, match="in order"):
        writer.write(0, np.zeros((4, 4), np.uint16))


def test_clean_stack_combines_both():
    stack = _stack([{1}, {1, 2}, {1}])
    stack[:, 0, 0] = 0  # a 1 px hole... at the border: not a hole
    stack[1, 4:6, 4:6] = 0
    Cleanup(min_island=4, drop_flicker=True).clean_stack(stack)
    assert _ids(stack) == [[], [], []]  # 1 lost its corner pixel (3 px < 4), 2 flickers
    with pytest.raises(InputError, match="leading"):
        Cleanup().clean_stack(np.zeros((4, 4), np.uint8))


@pytest.mark.slow
def test_segment_video_cleans_what_it_returns(model, make_stack):
    """The API with cleanup= equals cleaning the raw labels afterwards (real engine, random weights)."""
    from napari_sam2 import segment_video

    frames = make_stack(4)
    kwargs = dict(points=[[0, 36, 20], [2, 36, 40]], point_ids=[1, 2], model=model, direction="forward")
    raw = segment_video(frames, **kwargs)
    cleanup = Cleanup(fill_holes=30, min_island=20, open_radius=1, drop_flicker=True)
    cleaned = segment_video(frames, cleanup=cleanup, **kwargs)
    assert (cleaned == cleanup.clean_stack(raw.copy())).all()
    assert cleaned.dtype == raw.dtype and (cleaned != raw).any()
    with pytest.raises(InputError, match="Cleanup"):
        segment_video(frames, cleanup={"fill_holes": 3}, **kwargs)
