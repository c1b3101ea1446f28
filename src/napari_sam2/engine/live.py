"""Live tracking on a :class:`~.stream.FrameStream`: a session whose stack grows while it tracks.

``VideoSession(model, stream)`` gets a :class:`LiveStack`: a layout whose length is the stream's
current one (a prompt on a frame not yet arrived is refused, naming the frames there are), a
frame source that estimates the intensity range once, from the frames present at its first read,
and a clip whose tracks grow with the stream. ``propagate("forward", follow=True)`` runs
:func:`follow`: it tracks each frame as soon as it exists and waits for the next one.

Streams track exactly as forward propagation over the same frames loaded at once: the object
pointers' temporal positions are scaled by ``min(T, 16) - 1``, which for a stream of unknown
length is always 15 (the value of any video of 16 frames or more; shorter streams use it too).
"""

from __future__ import annotations

import functools
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..errors import InputError, PromptError
from ..model.sam2 import MAX_OBJ_PTRS
from .clip import Clip
from .frames import FrameSource, stack_intensity_range
from .layout import StackLayout, frame_key, guess_layout
from .memory_bank import ObjectTrack
from .preprocess import sample_indices
from .results import FrameResult
from .stream import FrameStream

if TYPE_CHECKING:
    from .video_session import VideoSession

DROPS = ("none", "oldest")
#: How often a waiting propagation looks at its cancel event (seconds).
POLL_S = 0.05


class StreamLayout(StackLayout):
    """A (T, Y, X[, C]) layout whose T is the stream's current length."""

    def __init__(self, stream: FrameStream, rgb: bool) -> None:
        object.__setattr__(self, "stream", stream)
        object.__setattr__(self, "axis", 0)
        object.__setattr__(self, "rgb", rgb)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.stream.shape

    def key(self, frame: Any, prompt: bool = False) -> tuple[int, ...]:
        k = frame_key(frame)
        n = len(self.stream)
        if len(k) == 1 and k[0] >= n:
            have = "no frames yet" if n == 0 else f"frames 0 to {n - 1} so far"
            raise PromptError(f"Frame {k[0]} has not arrived yet: the stream has {have}; wait for it "
                              f"(stream.wait_for({k[0]})) before prompting there.")
        return super().key(frame, prompt)


class LiveStack:
    """What a session on a FrameStream needs: its layout, and sources and clips that follow it."""

    def __init__(self, stream: FrameStream, axis: int, rgb: bool | None, channel: int | None) -> None:
        if axis not in (0, -1):
            raise InputError(f"A FrameStream grows along its first axis; use axis=0, not axis={axis}.")
        rgb = len(stream.frame_shape) == 3 if rgb is None else rgb
        proto = guess_layout(SimpleNamespace(shape=(1, *stream.frame_shape)), 0, rgb, channel)  # checks
        self.stream = stream
        self.layout = StreamLayout(stream, proto.rgb)
        self.frames_skipped = 0  # by the last follow=True propagation with drop="oldest"
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data: Any, axis: int, rgb: bool | None, channel: int | None) -> "LiveStack | None":
        return cls(data, axis, rgb, channel) if isinstance(data, FrameStream) else None

    def kinds(self, session: "VideoSession") -> tuple[Any, type]:
        """The (frame source, clip) constructors ``VideoSession._clip`` uses for this stream."""
        return functools.partial(StreamSource, held_range=functools.partial(self.held_range, session)), StreamClip

    def held_range(self, session: "VideoSession") -> tuple[float, float] | None:
        """The session's intensity range, estimated once from the frames present (then held)."""
        with self._lock:
            if session.intensity_range is None and self.stream.dtype != np.uint8:
                n, lo = len(self.stream), self.stream.first_kept
                picks = [self.stream.frame(lo + int(k)) for k in sample_indices(n - lo, 12)]
                sample = np.stack(picks)
                session.intensity_range = stack_intensity_range(
                    sample, guess_layout(sample, 0, self.layout.rgb, session.channel), session.channel)
            return session.intensity_range


class StreamSource(FrameSource):
    """Frames of a stream; the intensity range is fixed at the first read (``held_range``)."""

    def __init__(self, *args: Any, held_range: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._held_range = held_range

    def rgb8(self, frame: int):
        if self.intensity_range is None and self.data.dtype != np.uint8:
            self.intensity_range = self._held_range()
        return super().rgb8(frame)


def grow_track(track: ObjectTrack, n: int) -> None:
    """Make an object's per-frame bookkeeping hold ``n`` frames (doubling, so appends stay cheap)."""
    cap = track.num_frames_held
    if cap < n:
        track.grow(max(n, 2 * cap))


class StreamClip(Clip):
    """A clip on a growing stream: tracks grow with it, and the pointer scale is that of T >= 16."""

    @property
    def num_frames(self) -> int:  # what memory selection sees: never below 16 (pointer scale 15)
        return max(self.source.num_frames, MAX_OBJ_PTRS)

    def grow(self) -> None:
        n = self.num_frames
        for tr in self.tracks.values():
            grow_track(tr, n)

    def track(self, obj_id: int) -> ObjectTrack:
        tr = super().track(obj_id)
        grow_track(tr, self.num_frames)
        return tr

    def prepare(self) -> int | None:
        self.grow()
        return super().prepare()

    def propagate(self, *args: Any, **kw: Any) -> Iterator[FrameResult]:
        self.grow()
        return super().propagate(*args, **kw)


def _has_pending(clip: Clip) -> bool:
    return any(tr.pending_cond or tr.pending_non_cond for tr in clip.tracks.values())


def follow(session: "VideoSession", clips: list, direction: str, stop: Any, cancel: threading.Event | None,
           return_logits: bool, drop: str) -> Iterator[FrameResult]:
    """Track forward on a stream frame by frame as frames arrive, until it closes or ``cancel`` is set.

    Objects prompted meanwhile (on a frame not yet tracked) join from the next frame on, exactly as
    ``propagate(start=that frame)`` would. ``drop="oldest"`` skips to the newest frame when frames
    arrive faster than the model runs (``result.skipped`` counts the frames skipped before it, and
    ``session.live.frames_skipped`` all of them). Each result's ``latency`` is seconds from ``append``.
    """
    live = session.live
    if live is None:
        raise InputError("follow=True needs a FrameStream: VideoSession(model, FrameStream(...)).")
    if direction != "forward" or stop is not None:
        raise PromptError("follow=True tracks forward as frames arrive: use direction='forward' and no stop.")
    if drop not in DROPS:
        raise PromptError(f"drop must be 'none' or 'oldest', not {drop!r}.")
    stream = live.stream
    clip, frame = clips[0]
    live.frames_skipped = 0
    first = True
    while True:
        while not stream.wait_for(frame, POLL_S):  # raises the producer's error
            if (cancel is not None and cancel.is_set()) or (stream.closed and len(stream) <= frame):
                return
        if cancel is not None and cancel.is_set():
            return
        skipped = 0
        if drop == "oldest" and not first:  # the start frame (a prompt) is never skipped
            newest = len(stream) - 1
            skipped, frame = newest - frame, newest
            live.frames_skipped += skipped
        with session._lock:
            if _has_pending(clip):
                clip.prepare()
            clip.source.prefetch([frame + 1, frame + 2])
            (result,) = list(clip.propagate([frame], False, None, return_logits))
        result.latency = time.perf_counter() - stream.append_time(frame)
        result.skipped = skipped
        yield result
        frame, first = frame + 1, False
