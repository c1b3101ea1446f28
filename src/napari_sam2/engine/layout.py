"""The one stack geometry: which axes are what, frame keys, frame counting, prompt checks.

A *frame key* is the tuple of ALL leading (non-YX, non-channel) indices of a frame, in the
data's own order: ``(t,)`` for a (T, Y, X) stack, ``(t, z)`` for (T, Z, Y, X). It is exactly a
napari point coordinate without (row, col). Every boundary (prompts, results, the widget, the
CLI, the console API) speaks frame keys; :class:`StackLayout` owns the rules that turn user
input into keys, count the frames a propagation visits and check prompts against the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import InputError, PromptError
from .prompt_checks import checked_box, points_inside, show, visit_range

if TYPE_CHECKING:
    from .prompts import PromptSet

FrameKey = tuple[int, ...]
#: How far a leading coordinate may be from a whole index (float noise of napari transforms).
FRAME_TOLERANCE = 0.01
DIRECTIONS = ("forward", "backward", "both")


def frame_key(frame: Any) -> FrameKey:
    """An int (one leading axis) or a sequence of leading indices -> the frame key (whole numbers)."""
    values = [frame] if np.ndim(frame) == 0 else list(np.asarray(frame).reshape(-1))
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise PromptError(f"Frame {show(frame)} is not an integer: a frame is a whole number or a tuple "
                          "of whole numbers.") from None
    if not values or not all(np.isfinite(f) and f == round(f) for f in floats):
        raise PromptError(f"Frame {show(frame)} is not an integer: a frame is a whole number or a tuple "
                          "of whole numbers.")
    return tuple(int(f) for f in floats)


def key_text(key: FrameKey) -> str:
    """A frame key for a message: ``2`` for ``(2,)``, ``(1, 2)`` for N-D stacks."""
    return str(key[0]) if len(key) == 1 else show(tuple(key))


def coords_key(coords: Sequence[float], what: str) -> FrameKey:
    """Leading data coordinates of a napari point or shape vertices -> a frame key.

    ``coords`` is (L,) for one point or (K, L) for the vertices of one shape; all must lie on the
    same whole frame index (within :data:`FRAME_TOLERANCE`), otherwise a :class:`PromptError`.
    """
    arr = np.atleast_2d(np.asarray(coords, dtype=np.float64))
    if not np.all(np.isfinite(arr)):
        raise PromptError(f"{what} has no finite frame position.")
    key = np.round(arr)
    if np.ptp(key, axis=0).max(initial=0) > 0:
        raise PromptError(f"{what} has vertices on different frames; draw each box on one frame.")
    if np.abs(arr - key).max(initial=0) > FRAME_TOLERANCE:
        raise PromptError(f"{what} is between frames (leading coordinates {show(arr[0])}); use whole indices.")
    return tuple(int(k) for k in key[0])


def guess_rgb(shape: Sequence[int]) -> bool:
    """The one colour rule (napari's, for stacks): a last axis of 3 or 4 is colour on >= 4-D data,
    and on 3-D data whose first two axes are larger than 30 (napari's ``guess_rgb``).

    napari layers say it themselves (``layer.rgb``); this rule is for arrays and files alone.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3 or shape[-1] not in (3, 4):
        return False
    return len(shape) >= 4 or min(shape[:2]) > 30


@dataclass(frozen=True)
class StackLayout:
    """Which axes of the data are what: leading axes, the propagation axis, Y, X, channels."""

    shape: tuple[int, ...]
    axis: int  # propagation axis (an index into shape, and into the frame key)
    rgb: bool  # last axis holds channels

    # ---- axes ------------------------------------------------------------------------------------
    @property
    def leading(self) -> tuple[int, ...]:
        """Indices of all non-spatial, non-channel axes (propagation axis included)."""
        return tuple(range(len(self.shape) - 2 - int(self.rgb)))

    @property
    def leading_shape(self) -> tuple[int, ...]:
        """Sizes of the leading axes: the shape frame keys index into."""
        return tuple(self.shape[a] for a in self.leading)

    @property
    def outer_axes(self) -> tuple[int, ...]:
        return tuple(a for a in self.leading if a != self.axis)

    @property
    def outer_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in self.outer_axes)

    @property
    def num_frames(self) -> int:
        return self.shape[self.axis]

    @property
    def frame_shape(self) -> tuple[int, int]:
        y = len(self.shape) - 2 - int(self.rgb)
        return self.shape[y], self.shape[y + 1]

    @property
    def labels_shape(self) -> tuple[int, ...]:
        """Shape of the labels of this stack: the leading shape plus (Y, X), no channels."""
        return (*self.leading_shape, *self.frame_shape)

    # ---- frame keys ------------------------------------------------------------------------------
    def index(self, outer: tuple[int, ...], frame: int) -> FrameKey:
        """The frame key (data index of all leading axes) of ``frame`` in sequence ``outer``."""
        idx: list[int] = []
        it = iter(outer)
        for a in self.leading:
            idx.append(int(frame) if a == self.axis else int(next(it)))
        return tuple(idx)

    def key(self, frame: Any, prompt: bool = False) -> FrameKey:
        """A frame argument (an int for one leading axis, else all leading indices) -> checked key.

        ``prompt``: phrase a frame off the stack as a prompt's mistake (files, arrays of prompts).
        """
        if np.ndim(frame) == 0 and len(self.leading) > 1:
            raise PromptError(
                f"This stack has {len(self.leading)} non-spatial axes; give the frame as a tuple "
                f"of {len(self.leading)} indices (napari's point coordinates without row, col)."
            )
        key = frame_key(frame)
        if len(key) != len(self.leading):
            raise PromptError(
                f"The frame {show(frame)} must give {len(self.leading)} leading indices for a stack of "
                f"shape {self.labels_shape}."
            )
        for a, (k, n) in enumerate(zip(key, self.leading_shape)):
            if not 0 <= k < n:
                if a == self.axis and prompt:
                    raise PromptError(f"A prompt is on frame {k} but the stack has {n} frames (0 to {n - 1}); "
                                      "fix the frame index.")
                if a == self.axis:
                    raise PromptError(f"Frame {k} is outside the stack, which has {n} frames (0 to {n - 1}); "
                                      "fix the frame index.")
                raise PromptError(f"Index {k} of leading axis {a} is outside the stack, which has {n} "
                                  f"positions there (0 to {n - 1}); fix the index.")
        return key

    def split(self, frame: Any) -> tuple[tuple[int, ...], int]:
        """A frame argument -> (outer index, frame along the propagation axis), checked."""
        key = self.key(frame)
        return tuple(key[a] for a in self.outer_axes), key[self.axis]

    # ---- counting --------------------------------------------------------------------------------
    def starts(self, prompts: PromptSet) -> dict[tuple[int, ...], int]:
        """Per sequence (outer index), the earliest prompted frame: where propagation starts."""
        out: dict[tuple[int, ...], int] = {}
        for key in prompts.frames:
            outer, f = self.split(key)
            out[outer] = min(out.get(outer, f), f)
        return out

    def count_visits(self, direction: str, start: int, stop: Any = None) -> int:
        """How many frames a propagation from ``start`` visits in one sequence (progress bars).

        ``stop`` as ``VideoSession.propagate`` takes it: the last frame for forward / backward, a
        (first, last) pair for both directions; checked by the session's own rule (``visit_range``).
        """
        lo, hi = visit_range(direction, int(start), stop, self.num_frames)
        return {"forward": hi - start + 1, "backward": start - lo + 1, "both": hi - lo + 1}[direction]

    def count_frames(self, prompts: PromptSet, direction: str) -> int:
        """How many frames propagating every prompted sequence from its first prompt visits."""
        return sum(self.count_visits(direction, s) for s in self.starts(prompts).values())

    def in_page_order(self, prompts: PromptSet, direction: str) -> bool:
        """Whether propagation yields frames in increasing page (flat leading index) order."""
        starts = self.starts(prompts)
        if self.axis != len(self.leading) - 1 and len(starts) > 1:
            return False  # several sequences along a non-last axis interleave pages
        return direction == "forward" or (direction == "both" and all(s == 0 for s in starts.values()))

    # ---- prompts ---------------------------------------------------------------------------------
    def check_prompts(self, prompts: PromptSet, source: str = "prompts") -> PromptSet:
        """``prompts`` checked against this stack, with boxes clipped to the image; PromptError if not.

        The rules are the session's own (``prompt_checks``): frames on the stack, object ids
        whole numbers >= 1, clicks on the image, boxes of non-zero area overlapping it (clipped to
        it, as users draw boxes past the border), masks of the frame shape. Raising here lets the
        API and the CLI refuse a wrong prompt before any model is loaded.
        """
        from .prompts import BoxPrompt, PromptSet

        if not prompts:
            raise PromptError(f"{source}: there are no prompts; give points, boxes or masks.")
        h, w = self.frame_shape

        def checked(p: Any) -> None:
            try:
                self.key(p.frame, prompt=True)
            except PromptError as err:
                raise PromptError(f"{source}: {err}") from None
            if isinstance(p.obj_id, (bool, np.bool_)) or int(p.obj_id) != p.obj_id or p.obj_id < 1:
                raise PromptError(f"{source}: object id {show(p.obj_id)} must be a whole number >= 1.")

        boxes = []
        for p in prompts.points:
            checked(p)
            try:
                points_inside(p.points, self.frame_shape, "click")
            except PromptError as err:
                raise PromptError(f"{source}: object {p.obj_id} on frame {key_text(p.frame)}: {err} "
                                  "Move or delete it.") from None
        for b in prompts.boxes:
            checked(b)
            try:
                corners = checked_box(b.box, self.frame_shape)
            except PromptError as err:
                raise PromptError(f"{source}: object {b.obj_id} on frame {key_text(b.frame)}: {err} "
                                  "Redraw it.") from None
            boxes.append(BoxPrompt(b.frame, b.obj_id, corners.reshape(4)))
        for m in prompts.masks:
            checked(m)
            if tuple(m.mask.shape) != (h, w):
                raise PromptError(f"{source}: the mask of object {m.obj_id} on frame {key_text(m.frame)} has shape "
                                  f"{tuple(m.mask.shape)}, not the {h} x {w} of the frames; use labels of the "
                                  "same size.")
        return PromptSet(points=list(prompts.points), boxes=boxes, masks=list(prompts.masks))


def guess_layout(data: Any, axis: int, rgb: bool | None, channel: int | None) -> StackLayout:
    """The layout of a stack: colour by :func:`guess_rgb` unless told, ``axis`` checked."""
    shape = tuple(int(s) for s in data.shape)
    if rgb is None:
        rgb = guess_rgb(shape) or (channel is not None and len(shape) >= 4)
    n_leading = len(shape) - 2 - int(rgb)
    if n_leading < 1:
        raise InputError(
            f"A stack of shape {shape} has no axis to propagate along (need (T, Y, X) or more). "
            "For one 2D image use ImagePredictor."
        )
    if axis < 0:
        axis += n_leading
    if not 0 <= axis < n_leading:
        raise InputError(f"axis={axis} is not one of the stack's non-spatial axes (0..{n_leading - 1}).")
    if any(s == 0 for s in shape):
        raise InputError(f"The stack of shape {shape} is empty.")
    if channel is not None:
        if int(channel) != channel:
            raise InputError(f"channel must be a whole number; got {channel!r}.")
        if not rgb:
            raise InputError(
                f"channel={channel} picks a channel of multichannel frames (Y, X, C), but this stack "
                f"of shape {shape} has no channel axis; leave channel unset."
            )
        if not 0 <= channel < shape[-1]:
            raise InputError(
                f"channel {channel} does not exist: frames have {shape[-1]} channels (0..{shape[-1] - 1})."
            )
    return StackLayout(shape, axis, bool(rgb))
