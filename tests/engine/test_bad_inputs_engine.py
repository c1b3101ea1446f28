"""Catalogue of bad inputs to the engine (``VideoSession``, ``ImagePredictor``): each gives one
clear message naming the fix, and the session stays usable afterwards. docs/errors.md lists them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sam2 import ImagePredictor, VideoSession
from napari_sam2.errors import BusyError, InputError, PromptError

H, W = 72, 96


def usable(session: VideoSession) -> None:
    """A valid click still segments, with finite scores."""
    r = session.add_points(0, 1, [[36, 26]], [1])
    assert r.masks.shape == (1, H, W) and np.isfinite(r.object_score_logits).all()


SESSION_CASES = [
    # (id, call, error, message fragment)
    ("object id 0", lambda s: s.add_points(0, 0, [[30, 20]], [1]), PromptError, "integers from 1 to 4294967295"),
    ("object id above uint32", lambda s: s.add_points(0, 2**33, [[30, 20]], [1]), PromptError, "from 1 to 4294967295"),
    ("object id text", lambda s: s.add_points(0, "cell", [[30, 20]], [1]), PromptError, "got 'cell'"),
    ("object id bool", lambda s: s.add_points(0, True, [[30, 20]], [1]), PromptError, "integers from 1"),
    ("flat point with frame", lambda s: s.add_points(0, 1, [30, 30, 1], [1]), PromptError, "Give the frame separately"),
    ("point not numbers", lambda s: s.add_points(0, 1, [["a", "b"]], [1]), PromptError, "pair of numbers"),
    ("NaN point", lambda s: s.add_points(0, 1, [[np.nan, 20]], [1]), PromptError, "non-finite"),
    ("infinite point", lambda s: s.add_points(0, 1, [[np.inf, 20]], [1]), PromptError, "non-finite"),
    ("point outside", lambda s: s.add_points(0, 1, [[100, 20]], [1]), PromptError, "outside the 72 x 96 image"),
    ("label 5", lambda s: s.add_points(0, 1, [[30, 20]], [5]), PromptError, r"1 \(positive\) or 0 \(negative\); got \[5\]"),
    ("labels count", lambda s: s.add_points(0, 1, [[30, 20], [3, 3]], [1]), PromptError, "2 points but 1 labels"),
    ("no points", lambda s: s.add_points(0, 1, [], []), PromptError, "at least one point"),
    ("frame outside", lambda s: s.add_points(12, 1, [[30, 20]], [1]), PromptError, "Frame 12 is outside the stack"),
    ("frame not whole", lambda s: s.add_points(0.5, 1, [[30, 20]], [1]), PromptError, "not an integer"),
    ("box zero area", lambda s: s.add_box(0, 1, (10, 10, 10, 40)), PromptError, r"\[10, 10, 10, 40\] has zero area"),
    ("box outside", lambda s: s.add_box(0, 1, (80, 10, 90, 40)), PromptError, "lies outside the 72 x 96 image"),
    ("box three numbers", lambda s: s.add_box(0, 1, (1, 2, 3)), PromptError, "four numbers"),
    ("box NaN", lambda s: s.add_box(0, 1, (1, 2, np.nan, 5)), PromptError, "non-finite"),
    ("box points without labels", lambda s: s.add_box(0, 1, (10, 10, 40, 40), points=[[20, 20]]), PromptError,
     "1 points but 0 labels"),
    ("mask wrong shape", lambda s: s.add_mask(0, 1, np.ones((10, 10), bool)), PromptError, "frames are"),
    ("mask of labels", lambda s: s.add_mask(0, 1, np.full((H, W), 5, np.uint8)), PromptError, "labels == obj_id"),
    ("mask of text", lambda s: s.add_mask(0, 1, np.full((H, W), "x")), PromptError, "boolean"),
    ("remove unknown", lambda s: s.remove_object(5), PromptError, "no object 5"),
    ("clear unknown", lambda s: s.clear_prompts(0, 5), PromptError, "no object 5"),
    ("nothing to propagate", lambda s: list(s.propagate()), PromptError, "nothing to propagate"),
    ("unknown direction", lambda s: list(s.propagate(direction="sideways")), PromptError, "direction must be"),
]

PROMPTED_CASES = [
    ("start outside", lambda s: list(s.propagate(start=40)), PromptError, "Frame 40 is outside the stack"),
    ("stop outside", lambda s: list(s.propagate(stop=40)), PromptError, "give a frame from 0 to 11"),
    ("stop before start", lambda s: list(s.propagate(start=5, stop=2)), PromptError, "give a frame from 5 to 11"),
    ("backward stop after start", lambda s: list(s.propagate("backward", start=5, stop=8)), PromptError,
     "give a frame from 0 to 5"),
    ("int stop with both", lambda s: list(s.propagate("both", stop=3)), PromptError, "stop is a pair"),
    ("pair stop with forward", lambda s: list(s.propagate(stop=(1, 3))), PromptError, "is for direction 'both'"),
    ("both range not around start", lambda s: list(s.propagate("both", start=5, stop=(6, 9))), PromptError,
     "0 <= first <= 5 <= last <= 11"),
    ("stop not whole", lambda s: list(s.propagate(stop=2.5)), PromptError, "whole frame number; got 2.5"),
]


@pytest.mark.parametrize("name, call, error, match", SESSION_CASES, ids=[c[0] for c in SESSION_CASES])
def test_bad_prompt_gives_one_message_and_the_session_goes_on(model, stack, name, call, error, match):
    s = VideoSession(model, stack)
    with pytest.raises(error, match=match) as info:
        call(s)
    assert "np.float64" not in str(info.value) and "\n" not in str(info.value)
    usable(s)


@pytest.mark.parametrize("name, call, error, match", PROMPTED_CASES, ids=[c[0] for c in PROMPTED_CASES])
def test_bad_propagation_gives_one_message_and_the_session_goes_on(model, stack, name, call, error, match):
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 26]], [1])
    with pytest.raises(error, match=match):
        call(s)
    assert len(list(s.propagate(stop=2))) == 3  # not left "running"
    usable(s)


STACK_CASES = [
    ("2D image", lambda m: VideoSession(m, np.zeros((H, W), np.uint8)), InputError, "ImagePredictor"),
    ("empty stack", lambda m: VideoSession(m, np.zeros((0, H, W), np.uint8)), InputError, "empty"),
    ("frames of mixed shapes", lambda m: VideoSession(m, [np.zeros((4, 4)), np.zeros((5, 4))]), InputError,
     "inconsistent shapes"),
    ("not an array", lambda m: VideoSession(m, "movie.tif"), InputError, "type str"),
    ("all NaN", lambda m: VideoSession(m, np.full((3, H, W), np.nan, np.float32)), InputError, "no finite values"),
    ("constant uint16", lambda m: VideoSession(m, np.full((3, H, W), 7, np.uint16)), InputError, "constant intensity"),
    ("channel 5 on RGB", lambda m: VideoSession(m, np.zeros((3, H, W, 3), np.uint8), channel=5), InputError,
     r"3 channels \(0..2\)"),
    ("channel on grey", lambda m: VideoSession(m, np.zeros((3, H, W), np.uint8), channel=1), InputError,
     "no channel axis"),
    ("axis out of range", lambda m: VideoSession(m, np.zeros((3, H, W), np.uint8), axis=2), InputError,
     "not one of the stack's non-spatial axes"),
    ("inverted intensity range", lambda m: VideoSession(m, np.zeros((3, H, W), np.uint16), intensity_range=(9, 1)),
     InputError, "low < high"),
    ("max_cond 1", lambda m: VideoSession(m, np.zeros((3, H, W), np.uint8), max_cond_frames_in_attn=1), InputError,
     "at least 2"),
    ("negative history budget", lambda m: VideoSession(m, np.zeros((3, H, W), np.uint8), history_ram_bytes=-1),
     InputError, "0 or more"),
]


@pytest.mark.parametrize("name, call, error, match", STACK_CASES, ids=[c[0] for c in STACK_CASES])
def test_bad_stack_gives_one_message(model, name, call, error, match):
    with pytest.raises(error, match=match):
        call(model)


def test_torch_tensor_and_infinite_values_are_accepted(model, stack):
    ref = VideoSession(model, stack).add_points(0, 1, [[36, 26]], [1])
    from_torch = VideoSession(model, torch.from_numpy(stack)).add_points(0, 1, [[36, 26]], [1])
    np.testing.assert_array_equal(ref.masks, from_torch.masks)
    hot = stack.astype(np.float32)
    hot[0, 0, :5] = np.inf
    r = VideoSession(model, hot).add_points(0, 1, [[36, 26]], [1])
    assert np.isfinite(r.object_score_logits).all()


def test_an_outside_click_does_not_spoil_later_clicks_of_that_object(model, stack):
    s = VideoSession(model, stack)
    with pytest.raises(PromptError):
        s.add_points(0, 1, [[36, 26], [500, 500]], [1, 1])
    assert s.obj_ids == []  # nothing was half-added
    r = s.add_points(0, 1, [[36, 26]], [1])
    ref = VideoSession(model, stack).add_points(0, 1, [[36, 26]], [1])
    np.testing.assert_array_equal(r.masks, ref.masks)


def test_a_second_propagation_is_refused_while_the_first_runs_and_the_first_is_unharmed(model, stack):
    ref = VideoSession(model, stack)
    ref.add_points(0, 1, [[36, 26]], [1])
    want = {r.frame: r.masks for r in ref.propagate()}
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 26]], [1])
    first = s.propagate()
    got = {next(first).frame: None}
    with pytest.raises(BusyError, match="already running"):
        next(s.propagate())
    got = {0: want[0], **{r.frame: r.masks for r in first}}
    assert got.keys() == want.keys()
    for f in want:
        np.testing.assert_array_equal(got[f], want[f])
    assert len(list(s.propagate())) == len(want)  # free again once the first is exhausted


def test_breaking_out_of_propagate_and_continuing_gives_the_uninterrupted_result(model, stack):
    ref = VideoSession(model, stack)
    ref.add_points(0, 1, [[36, 26]], [1])
    want = {r.frame: r.masks for r in ref.propagate()}
    s = VideoSession(model, stack)
    s.add_points(0, 1, [[36, 26]], [1])
    for r in s.propagate():
        if r.frame == 4:
            break
    rest = {r.frame: r.masks for r in s.propagate(start=5)}
    assert sorted(rest) == list(range(5, 12))
    for f in rest:
        np.testing.assert_array_equal(rest[f], want[f])


IMAGE_CASES = [
    ("predict before set_image", None, lambda p: p.predict(points=[[1, 1]], labels=[1]), PromptError, "set_image"),
    ("stack as image", lambda p: p.set_image(np.zeros((6, H, W), np.uint8)), None, InputError, "VideoSession"),
    ("4-D image", lambda p: p.set_image(np.zeros((2, 6, H, W), np.uint8)), None, InputError, "For a stack"),
    ("text image", lambda p: p.set_image(np.full((H, W), "x")), None, InputError, "numeric"),
    ("no prompt", "set", lambda p: p.predict(), PromptError, "at least one point"),
    ("click outside", "set", lambda p: p.predict(points=[[100, 5]], labels=[1]), PromptError, "outside the 72 x 96"),
    ("NaN click", "set", lambda p: p.predict(points=[[np.nan, 5]], labels=[1]), PromptError, "non-finite"),
    ("label 5", "set", lambda p: p.predict(points=[[5, 5]], labels=[5]), PromptError, "got \\[5\\]"),
    ("missing labels", "set", lambda p: p.predict(points=[[5, 5]]), PromptError, "1 points but 0 labels"),
    ("zero-area box", "set", lambda p: p.predict(box=(5, 5, 5, 9)), PromptError, "zero area"),
    ("mask_input shape", "set", lambda p: p.predict(mask_input=np.zeros((8, 8))), PromptError, "low-res logits"),
]


@pytest.mark.parametrize("name, setup, call, error, match", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_image_prompt_gives_one_message(model, stack, name, setup, call, error, match):
    pred = ImagePredictor(model)
    if setup == "set":
        pred.set_image(stack[0])
    elif setup is not None:
        call = setup
    with pytest.raises(error, match=match):
        call(pred)
    pred.set_image(stack[0])
    out = pred.predict(points=[[36, 26]], labels=[1])
    assert out.masks.shape == (3, H, W)
