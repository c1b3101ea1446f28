"""``VideoSession``: prompt objects on any frames of a stack and propagate them with SAM 2.

The one engine behind the widget, the console API and the CLI. It knows nothing of
napari or Qt. Coordinates follow napari: points are (row, col), boxes
(row0, col0, row1, col1), masks (Y, X) booleans at the stack's resolution.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import BusyError, InputError, PromptError
from ..model.sam2 import Sam2Model
from .clip import Clip
from .history import HistoryStore
from .prompt_checks import as_labels, as_points, checked_box, model_xy, visit_range
from .frames import FrameSource, as_array_like, stack_intensity_range
from .layout import DIRECTIONS, FrameKey, StackLayout, guess_layout
from .lineage import Lineage
from .live import LiveStack, follow as follow_stream
from .results import FrameResult
from .everything import segment_everything
from .session_file import SessionRecorder, load_session, recorded, recorded_propagation, write_session
from .session_helpers import MAX_OBJ_ID, checked_mask, checked_obj_id, locked_steps, select_objects  # noqa: F401

Frame = int | Sequence[int]  # a frame key; an int on stacks with one leading axis


class VideoSession:
    """Segment and track objects through a stack along one axis.

    Parameters
    ----------
    model : a ``Sam2Model`` from :func:`napari_sam2.load_model`.
    frames : any array-like (numpy, dask, zarr, memory-mapped TIFF, a growing ``FrameStream``) of
        shape (T, Y, X), (T, Y, X, C) or with more leading axes (e.g. (T, Z, Y, X)), read lazily.
    axis : the leading axis to propagate along (default 0). With more leading axes, each index of
        the others is its own sequence (``axis=1`` on T x Z x Y x X propagates along Z for every
        time point), and frame arguments are tuples of all leading indices (napari coordinates).
    channel : pick one channel of multichannel data (repeated to RGB); RGB(A) is used as is.
    intensity_range : (low, high) mapped to 0..255 for non-uint8 data; default: the stack's
        0.5-99.5 % percentiles (one range for the whole stack, no flicker).
    rgb : whether the last axis is colour; default napari's guess (size 3 or 4 on >= 4-D).
    fill_hole_area : fill holes up to this many low-res pixels in each mask (8, as the official
        video builder; 0 switches it off).
    corrections_as_conditioning : clicks on tracked frames become conditioning frames, so they
        stick when propagating again (official ``add_all_frames_to_correct_as_cond``).
    feature_cache_bytes : cached image features per sequence (64 MiB: four 1024-px frames of tiny).
    max_cond_frames_in_attn : attend to at most this many conditioning frames, the temporally
        closest (official ``max_cond_frames_in_attn``); the others act as ordinary memories. 16 keeps
        the cost per frame bounded however many frames a user corrects; -1 uses all (the official
        default, used by the parity fixtures). Must be -1 or at least 2.
    history_ram_bytes : host RAM for outputs of frames off the device (every tracked frame is kept,
        as in the official predictor, so corrections anywhere are exact); beyond it the oldest go to
        an anonymous temporary file in ``spill_dir`` (default the system's), deleted with the
        session. 1 GiB holds about 1,300 object-frames at 1024 px, 5,000 at 512 px.
    """

    def __init__(
        self,
        model: Sam2Model,
        frames: Any,
        axis: int = 0,
        *,
        channel: int | None = None,
        intensity_range: tuple[float, float] | None = None,
        rgb: bool | None = None,
        fill_hole_area: int = 8,
        corrections_as_conditioning: bool = True,
        feature_cache_bytes: int = 64 * 2**20,
        max_cond_frames_in_attn: int = 16,
        history_ram_bytes: int = 2**30,
        spill_dir: str | None = None,
    ) -> None:
        if int(max_cond_frames_in_attn) != max_cond_frames_in_attn or not (
            max_cond_frames_in_attn == -1 or max_cond_frames_in_attn >= 2
        ):
            raise InputError(
                f"max_cond_frames_in_attn must be -1 (all) or at least 2; got {max_cond_frames_in_attn!r}."
            )
        if int(history_ram_bytes) < 0:
            raise InputError(f"history_ram_bytes must be 0 or more; got {history_ram_bytes!r}.")
        self.model = model
        self.data = as_array_like(frames)
        self.live = LiveStack.of(self.data, axis, rgb, channel)  # None unless a FrameStream (engine/live.py)
        self.layout: StackLayout = self.live.layout if self.live else guess_layout(self.data, axis, rgb, channel)
        self.channel = channel
        if intensity_range is None:  # a FrameStream's is estimated at its first read (engine/live.py)
            intensity_range = None if self.live else stack_intensity_range(self.data, self.layout, channel)
        elif not np.all(np.isfinite(intensity_range)) or intensity_range[1] <= intensity_range[0]:
            raise InputError(f"intensity_range must be (low, high) with low < high; got {intensity_range}.")
        self.intensity_range = intensity_range
        self.fill_hole_area = int(fill_hole_area)
        self.corrections_as_conditioning = bool(corrections_as_conditioning)
        self.feature_cache_bytes = int(feature_cache_bytes)
        self.max_cond_frames_in_attn = int(max_cond_frames_in_attn)
        self._history = HistoryStore(int(history_ram_bytes), spill_dir)
        self._running = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-sam2-frames")
        self._clips: dict[tuple[int, ...], Clip] = {}
        self._lock = threading.RLock()
        self.recorder = SessionRecorder()  # every prompt call, in order: ``save`` writes them
        self.lineage = Lineage()  # divisions found while tracking (engine.discovery), for the exports

    @property
    def num_frames(self) -> int:
        """Length of the propagation axis."""
        return self.layout.num_frames

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.layout.frame_shape

    @property
    def obj_ids(self) -> list[int]:
        ids: set[int] = set()
        for clip in self._clips.values():
            ids |= set(clip.tracks)
        return sorted(ids)

    def prompted_frames(self, obj_id: int | None = None) -> list[FrameKey]:
        """Frame keys (tuples of all leading indices) that hold prompts, optionally for one object."""
        return sorted({self.layout.index(idx, f) for idx, clip in self._clips.items()
                       for f in clip.prompted_frames(obj_id)})

    _obj = staticmethod(checked_obj_id)

    def _clip(self, outer: tuple[int, ...]) -> Clip:
        if outer not in self._clips:
            kinds = (FrameSource, Clip) if self.live is None else self.live.kinds(self)
            src = kinds[0](self.data, self.layout, outer, self.model.image_size,
                              self.intensity_range, self.channel, self._executor)
            self._clips[outer] = kinds[1](self.model, src, self.frame_shape, self.fill_hole_area,
                                      self.corrections_as_conditioning, self.feature_cache_bytes,
                                      self._history, self.max_cond_frames_in_attn, outer)
        return self._clips[outer]

    def _locate(self, frame: Frame) -> tuple[Clip, int]:
        outer, f = self.layout.split(frame)
        return self._clip(outer), f

    def _model_xy(self, rc: np.ndarray, what: str) -> torch.Tensor:
        """(N, 2) (row, col) -> (N, 2) (x, y) model-input pixels, checking the bounds."""
        return model_xy(rc, self.frame_shape, self.model.image_size, what)

    # -------------------------------------------------------------- prompting
    @recorded("add_points")
    def add_points(self, frame: Frame, obj_id: int, points: np.ndarray, labels: Sequence[int],
                   clear: bool = True, *, return_logits: bool = False) -> FrameResult:
        """Clicks (N, 2) as (row, col) with labels 1 (positive) / 0 (negative).

        ``clear=True`` replaces this object's earlier clicks on that frame (send all
        clicks each time, as a napari Points layer holds them); ``False`` appends.
        Returns the masks of all objects on that frame.
        """
        obj_id = self._obj(obj_id)
        pts = as_points(points, "point") if points is not None else np.zeros((0, 2))
        if len(pts) == 0:
            raise PromptError("add_points needs at least one point.")
        lbl = as_labels(labels, len(pts))
        with self._lock:
            clip, f = self._locate(frame)
            xy = self._model_xy(pts, "point")
            return clip.add_points(f, obj_id, xy, torch.as_tensor(lbl, dtype=torch.int32), clear, return_logits)

    @recorded("add_box")
    def add_box(self, frame: Frame, obj_id: int, box: Sequence[float], points: np.ndarray | None = None,
                labels: Sequence[int] | None = None, *, return_logits: bool = False) -> FrameResult:
        """A box (row0, col0, row1, col1), optionally with clicks on the same frame.

        A box reaching past the image border is clipped to it; one entirely outside is refused.
        """
        obj_id = self._obj(obj_id)
        corners = checked_box(box, self.frame_shape)
        with self._lock:
            clip, f = self._locate(frame)
            xy = self._model_xy(corners, "box")
            lbl = torch.tensor([2, 3], dtype=torch.int32)
            pts = as_points(points, "point") if points is not None else np.zeros((0, 2))
            if len(pts):
                pl = as_labels(labels, len(pts))
                xy = torch.cat([xy, self._model_xy(pts, "point")])
                lbl = torch.cat([lbl, torch.as_tensor(pl, dtype=torch.int32)])
            return clip.add_points(f, obj_id, xy, lbl, clear=True, return_logits=return_logits)

    @recorded("add_mask")
    def add_mask(self, frame: Frame, obj_id: int, mask: np.ndarray, *, return_logits: bool = False) -> FrameResult:
        """A (Y, X) mask (bool, or 0/1) as the object's segmentation on that frame.

        An all-False mask is a valid prompt, as in SAM 2: "the object is not on this frame"
        (it is tracked as absent until it is seen again).
        """
        obj_id = self._obj(obj_id)
        m = checked_mask(mask, self.frame_shape)
        with self._lock:
            clip, f = self._locate(frame)
            return clip.add_mask(f, obj_id, torch.from_numpy(m), return_logits)

    def num_candidates(self, frame: Frame, obj_id: int) -> int:
        """How many multimask candidates the object's prompt on that frame has (3 or 0)."""
        st = self.frame_state(frame, obj_id)
        return 0 if st is None or st.candidates is None else int(st.candidates.shape[1])

    @recorded("choose_candidate")
    def choose_candidate(self, frame: Frame, obj_id: int, k: int) -> FrameResult:
        """Use multimask candidate ``k`` of a single click (cycle with k + 1)."""
        with self._lock:
            clip, f = self._locate(frame)
            return clip.choose_candidate(f, self._obj(obj_id), k)

    def prefetch(self, frame: Frame) -> None:
        """Compute the image features of a frame now, so the next click there is instant."""
        with self._lock:
            clip, f = self._locate(frame)
            with torch.inference_mode():
                clip.prefetch(f)

    # ------------------------------------------------------------ bookkeeping
    @recorded("remove_object")
    def remove_object(self, obj_id: int) -> None:
        obj_id = self._obj(obj_id)
        with self._lock:
            found = [clip for clip in self._clips.values() if obj_id in clip.tracks]
            if not found:
                raise PromptError(f"There is no object {obj_id}; objects: {self.obj_ids or 'none'}.")
            for clip in found:
                clip.remove_object(obj_id)

    @recorded("clear_prompts")
    def clear_prompts(self, frame: Frame, obj_id: int | None = None) -> None:
        """Remove the prompts on a frame (of one object, or of all objects).

        Its output stays as an ordinary tracked frame, as in the official predictor; an
        object left with no prompt at all is removed.
        """
        with self._lock:
            clip, f = self._locate(frame)
            ids = list(clip.tracks) if obj_id is None else [self._obj(obj_id)]
            if not clip.tracks.keys() >= set(ids):
                raise PromptError(f"There is no object {ids[0]}; objects: {self.obj_ids or 'none'}.")
            clip.clear_prompts(f, ids)

    @recorded("end_object")
    def end_object(self, frame: Frame, obj_id: int) -> None:
        """Stop tracking ``obj_id`` from ``frame`` on (it left, or divided): its outputs there and after
        are dropped and propagation skips it; a new prompt on it resumes it."""
        with self._lock:
            clip, f = self._locate(frame)
            if self._obj(obj_id) not in clip.tracks:
                raise PromptError(f"There is no object {obj_id}; objects: {self.obj_ids or 'none'}.")
            clip.end_object(obj_id, f)

    def segment_everything(self, frame: Frame, **settings: Any) -> list[int]:
        """New objects (mask prompts) for what SAM 2's mask generator finds on ``frame``; their ids."""
        return segment_everything(self, frame, **settings)

    @recorded("reset")
    def reset(self) -> None:
        """Forget all objects, prompts, memories and the lineage (cached image features are kept)."""
        with self._lock:
            self.lineage = Lineage()
            for clip in self._clips.values():
                clip.reset()

    # ------------------------------------------------------------- propagation
    @recorded_propagation
    def propagate(
        self,
        direction: str = "forward",
        start: Frame | None = None,
        stop: int | tuple[int, int] | None = None,
        *,
        cancel: threading.Event | None = None,
        return_logits: bool = False, follow: bool = False, drop: str = "none",
        discover_every: int | None = None, **everything: Any,
    ) -> Iterator[FrameResult]:
        """Track every object through the stack, yielding each frame's result as it is done.

        ``direction``: "forward", "backward" or "both" (forward, then backward from the same
        start; the start frame is yielded once). ``start``: default the earliest prompted
        frame (as the official predictor). ``stop``: the last frame to visit (inclusive);
        for "both" a pair (first, last) around the start. Stops before the next frame when
        ``cancel`` is set or the caller stops iterating; everything finished so far is kept.
        One propagation runs at a time per session: a second one while another is unfinished
        raises :class:`~napari_sam2.errors.BusyError` (close or exhaust the first iterator).
        ``follow`` / ``drop``: live tracking of a FrameStream as frames arrive (``engine.live.follow``).
        ``discover_every``, ``end_after_absent``, ``divisions``, ...: ``engine.discovery.track_everything``.
        """
        if discover_every or everything:
            from .discovery import track_everything

            yield from track_everything(self, direction, start, stop, cancel=cancel, return_logits=return_logits,
                                        discover_every=discover_every, **everything)
            return
        if direction not in DIRECTIONS:
            raise PromptError(f"direction must be 'forward', 'backward' or 'both', not {direction!r}.")
        with self._lock:
            if self._running:
                raise BusyError("A propagation is already running on this session: let it finish, cancel it, "
                                "or close its iterator (.close()) before starting another.")
            clips = self._ready_clips(start)
            ranges = [visit_range(direction, first, stop, self.num_frames) for _, first in clips]
            self._running = True
        try:
            yield from follow_stream(self, clips, direction, stop, cancel, return_logits, drop) if follow else ()
            for (clip, first), (lo, hi) in zip(clips, ranges) if not follow else ():
                if direction in ("forward", "both"):
                    yield from locked_steps(self._lock, clip.propagate(list(range(first, hi + 1)), False, cancel,
                                                                       return_logits))
                if direction in ("backward", "both"):
                    if cancel is not None and cancel.is_set():
                        return
                    yield from locked_steps(self._lock, clip.propagate(list(range(first, lo - 1, -1)), True, cancel,
                                                                       return_logits, direction == "both"))
        finally:
            self._running = False

    def _ready_clips(self, start: Frame | None) -> list[tuple[Clip, int]]:
        clips = [(idx, c) for idx, c in sorted(self._clips.items()) if c.tracks]
        if not clips:
            raise PromptError("There is nothing to propagate: add a click, box or mask first.")
        if start is not None:
            clip, f = self._locate(start)
            clips = [(clip.index, clip)]
        out = []
        for _, clip in clips:
            earliest = clip.prepare()  # encodes pending memories; refuses objects without prompts
            out.append((clip, f if start is not None else earliest))
        return out

    def result(self, frame: Frame, obj_ids: Sequence[int] | None = None,
               return_logits: bool = False) -> FrameResult:
        """The current masks on a frame (of all objects, or of ``obj_ids``), without computing.

        Objects with no output on that frame come back empty and absent.
        """
        with self._lock:
            clip, f = self._locate(frame)
            res = clip.result(f, return_logits=return_logits)
        if obj_ids is None:
            return res
        return select_objects(res, obj_ids)

    def frame_state(self, frame: Frame, obj_id: int):
        """Diagnostics: the stored per-object state on a frame (object pointer, score, ...)."""
        clip, f = self._locate(frame)
        return clip.output(f, self._obj(obj_id))

    # ------------------------------------------------------------------ memory
    @property
    def state_bytes(self) -> int:
        """Bytes of per-object state (memories, pointers, masks) held on the compute device."""
        return sum(c.state_bytes for c in self._clips.values())

    @property
    def history_bytes(self) -> dict[str, int]:
        """Bytes of the off-device history of tracked frames: ``{"ram": ..., "disk": ...}``."""
        return {"ram": self._history.ram_bytes, "disk": self._history.disk_bytes}

    def close(self) -> None:
        """Stop the prefetch thread, drop cached features and delete the history's spill file.

        The session cannot track any more afterwards.
        """
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for clip in self._clips.values():
                clip.features.clear()
                clip.reset()
            self._history.close()

    def save(self, path: str | Path, **settings: Any) -> Path:
        """Write the prompt calls made so far as a session file (``*.sam2.json``, docs/sessions.md).

        ``settings``: what the session does not know: ``model`` (name), ``checkpoint_sha256``,
        ``image_path``, ``direction``, ``range`` (propagation), ``objects`` ({id: {name, parent}}).
        """
        return write_session(self, path, **settings)

    @classmethod
    def load(cls, path: str | Path, model: Sam2Model, frames: Any, **overrides: Any) -> "VideoSession":
        """A new session on ``frames`` with a session file's settings and prompt calls replayed in order.

        ``overrides``: ``VideoSession`` keyword arguments that replace the file's. Frames of another
        shape or dtype are refused (InputError); other pixels are a warning (``session.replay_mismatch``).
        """
        return load_session(cls, path, model, frames, **overrides)

    def __enter__(self) -> "VideoSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

