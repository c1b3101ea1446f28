"""The decisions of ``track_everything`` (new objects, absent objects ending, divisions, restarts)
on a scripted world: a stand-in session whose "tracker" returns each followed entity's true mask,
and a generator that returns the true masks of what is visible. The real engine runs in
test_everything.py; here every frame's right answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2.engine.discovery import track_everything
from napari_sam2.engine.divisions import DivisionWatch
from napari_sam2.engine.layout import StackLayout
from napari_sam2.engine.results import FrameResult
from napari_sam2.errors import InputError

T, H, W = 10, 40, 60
YY, XX = np.mgrid[:H, :W]


def disc(cy, cx, r=4):
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


def world():
    """entity -> per-frame true masks. A divides on frame 4 into A1 and A2 (A is their union from
    then on, as a tracker following the mother sees it); B enters on 6; C leaves after frame 2."""
    empty = np.zeros((H, W), bool)
    ents = {name: [empty] * T for name in ("A", "A1", "A2", "B", "C")}
    for t in range(T):
        if t < 4:
            ents["A"][t] = disc(20, 15, 6)
        else:
            ents["A1"][t], ents["A2"][t] = disc(12, 15), disc(28, 15)
            ents["A"][t] = ents["A1"][t] | ents["A2"][t]
        if t >= 6:
            ents["B"][t] = disc(20, 45)
        if t < 3:
            ents["C"][t] = disc(8, 50, 3)
    return ents


VISIBLE = ("A1", "A2", "B", "C")  # what a generator sees (A is A1 + A2 once divided)


class Generator:
    def __init__(self, ents):
        self.ents, self.frame, self.calls = ents, None, []

    def generate(self, image):
        self.calls.append(self.frame)
        names = ("A",) + VISIBLE if self.frame < 4 else VISIBLE
        return [{"segmentation": self.ents[n][self.frame], "predicted_iou": 0.9} for n in names
                if self.ents[n][self.frame].any()]


class ScriptedSession:
    """The parts of VideoSession that track_everything uses; objects follow entities exactly."""

    live = None
    model = None

    def __init__(self, ents, generator):
        self.ents, self.gen = ents, generator
        self.layout = StackLayout((T, H, W), 0, False)
        self.num_frames, self.frame_shape = T, (H, W)
        self.follows: dict[int, str] = {}
        self.starts: dict[int, int] = {}
        self.ended: dict[int, int] = {}
        self.data = np.zeros((T, H, W), np.uint8)
        self.visits: list[int] = []

    @property
    def obj_ids(self):
        return sorted(self.follows)

    def prompted_frames(self):
        return sorted({(f,) for f in self.starts.values()})

    def add_mask(self, frame, obj_id, mask):
        best = max(self.ents, key=lambda n: (mask & self.ents[n][frame]).sum() / (mask | self.ents[n][frame]).sum())
        self.follows[obj_id], self.starts[obj_id] = best, frame
        self.ended.pop(obj_id, None)

    def end_object(self, frame, obj_id):
        self.ended[obj_id] = frame

    def _locate(self, frame):
        gen = self.gen

        class Source:
            def rgb8(self, f):
                gen.frame = f
                return np.zeros((H, W, 3), np.uint8)

        clip = type("Clip", (), {"source": Source()})()
        return clip, self.layout.split(frame)[1]

    def result(self, f):
        ids = self.obj_ids
        masks = np.stack([self.ents[self.follows[o]][f] if self.starts[o] <= f < self.ended.get(o, T)
                          else np.zeros((H, W), bool) for o in ids])
        present = masks.any((1, 2))
        n = len(ids)
        return FrameResult(frame=f, obj_ids=tuple(ids), masks=masks, scores=present.astype(np.float32),
                           present=present, iou=np.ones(n, np.float32), object_score_logits=np.where(present, 5.0, -5.0),
                           key=(f,))

    def propagate(self, direction, start, stop, cancel=None, return_logits=False):
        for f in range(self.layout.split(start)[1], stop + 1):
            self.visits.append(f)
            yield self.result(f)


class Lineage:
    def __init__(self):
        self.divisions = []

    def add_division(self, parent, daughters, frame):
        self.divisions.append((parent, tuple(daughters), frame))


def start(ents, gen):
    s = ScriptedSession(ents, gen)
    s.add_mask(0, 1, ents["A"][0])
    s.add_mask(0, 2, ents["C"][0])
    return s


def test_new_objects_leavers_and_a_division_each_frame_handed_on_once_and_final():
    ents = world()
    gen = Generator(ents)
    s, lineage = start(ents, gen), Lineage()
    out = list(track_everything(s, discover_every=2, generator=gen, end_after_absent=2, divisions=True,
                                division_frames=3, lineage=lineage))
    assert [r.frame for r in out] == list(range(T))  # every frame once, in order
    assert lineage.divisions == [(1, (3, 4), 4)]  # A divided on frame 4 (confirmed on 6)
    assert s.follows == {1: "A", 2: "C", 3: "A1", 4: "A2", 5: "B"}
    assert s.ended == {1: 4, 2: 5}  # A ends where it divided; C after two absent frames (3, 4)
    assert s.starts[5] == 6  # B found on the first discovery frame it is visible on
    for r in out:
        by_id = dict(zip(r.obj_ids, r.masks))
        # what was handed on is final: the mother is gone from the division on, daughters are there
        assert by_id[1].any() == (r.frame < 4)
        for d, name in ((3, "A1"), (4, "A2")):
            assert np.array_equal(by_id.get(d, np.zeros((H, W), bool)), ents[name][r.frame])
        assert np.array_equal(by_id.get(5, np.zeros((H, W), bool)), ents["B"][r.frame])
    # tracking resumed on frame 4 (division) and on frame 6 (B); discovery ran on 2, 4, 6, 8 (6 twice:
    # once before the division was confirmed, once after resuming)
    assert s.visits == [0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 6, 7, 8, 9]
    assert sorted(gen.calls) == [2, 4, 6, 8]


def test_a_brief_pinch_is_not_a_division():
    ents = world()
    for t in range(5, T):  # A1 and A2 merge again one frame after splitting
        ents["A"][t] = disc(20, 15, 6)
    s = start(ents, Generator(ents))
    lineage = Lineage()
    out = list(track_everything(s, divisions=True, division_frames=3, lineage=lineage))
    assert lineage.divisions == [] and [r.frame for r in out] == list(range(T))
    assert s.obj_ids == [1, 2]


def test_without_discovery_the_generator_never_runs_and_nothing_is_added():
    ents = world()
    gen = Generator(ents)
    s = start(ents, gen)
    out = list(track_everything(s, end_after_absent=1))
    assert gen.calls == [] and s.obj_ids == [1, 2] and s.ended == {2: 4}
    assert len(out) == T


def test_division_watch_needs_two_sizeable_parts():
    w = DivisionWatch(frames=1, min_fraction=0.2, min_area=5)
    one = disc(20, 20, 6)
    speck = one | ((YY == 2) & (XX == 2))
    assert w.parts(one) is None and w.parts(speck) is None  # a one-pixel speck is no daughter
    two = disc(10, 20) | disc(30, 20)
    a, b = w.parts(two)
    assert np.array_equal(a | b, two) and not (a & b).any()


@pytest.mark.parametrize("kw", [dict(direction="backward"), dict(discover_every=0), dict(end_after_absent=1.5),
                                dict(divisions=True, division_frames=0)])
def test_bad_settings_are_refused_with_one_sentence(kw):
    ents = world()
    s = start(ents, Generator(ents))
    with pytest.raises(InputError):
        list(track_everything(s, **kw))
