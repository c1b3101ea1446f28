"""Headless API for the napari console and scripts: one call from a stack and prompts to labels.

Everything goes through :class:`~napari_sam2.engine.video_session.VideoSession` with the
widget's defaults (``fill_hole_area=8``, ``corrections_as_conditioning=True``)::

    from napari_sam2 import segment_video
    labels = segment_video(stack, points=[[0, 120, 88]])          # (T, Y, X) -> (T, Y, X) labels

Prompt forms accepted by :func:`segment_video` (coordinates in napari's data order; ``L`` is
the number of leading, non-spatial axes of the stack: 1 for (T, Y, X[, C]), 2 for (T, Z, Y, X)):

* ``points``: an (N, L + 2) array of (frame, row, col) (napari Points ``layer.data``), with
  ``point_ids`` (object id per point, default 1) and ``point_labels`` (1/True positive, 0/False
  negative, default all positive). Points of one object on one frame are sent together.
* ``boxes``: an (N, K, L + 2) array of K >= 2 vertices per box (corner pairs, or napari
  rectangles as in ``shapes_layer.data``), each box on one frame; or an (N, L + 4) array of
  (frame, row0, col0, row1, col1) rows. ``box_ids`` gives the objects (default 1, 2, ..., N).
  A box and clicks of the same object on the same frame are combined, as SAM 2 expects.
* ``masks``: a labels array of the stack's leading shape plus (Y, X); every nonzero id on
  every frame becomes a mask prompt for that object (frames without labels are skipped).
* ``prompts``: a :class:`~napari_sam2.engine.prompts.PromptSet`, e.g. from
  :func:`prompts_from_layers` or :func:`napari_sam2.io.read_prompts` (frames are ints for one
  leading axis, tuples of all leading indices otherwise). It may be combined with the above.

Wrong forms raise :class:`~napari_sam2.errors.PromptError` before any model is loaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .layer_prompts import prompts_from_layers, result_key, session_frame
from .engine.prompts import BoxPrompt, MaskPrompt, PointPrompt, PromptSet, mask_prompts_from_planes
from .engine.results import FrameResult
from .errors import InputError, PromptError
from .io import ObjectTable, labels_dtype, tracks_from_table
from .io.prompt_files import check_prompts

__all__ = [
    "DEFAULT_MODEL",
    "TEST_MODEL",
    "add_labels_to_viewer",
    "add_tracks_to_viewer",
    "build_prompts",
    "get_model",
    "object_table",
    "prompts_from_layers",
    "segment_video",
    "tracks_from_labels",
]

DEFAULT_MODEL = "sam2.1_hiera_tiny"
#: Model name of the miniature random-weights model, for tests and benchmarks only (masks are meaningless).
TEST_MODEL = "test-random"
_SESSION_KWARGS = ("rgb", "fill_hole_area", "corrections_as_conditioning", "feature_cache_bytes",
                   "max_cond_frames_in_attn", "history_ram_bytes", "spill_dir")
_DIRECTIONS = ("forward", "backward", "both")
_model_cache: dict[tuple, Any] = {}


# ------------------------------------------------------------------------------ models
def _load(name: str, device: str, image_size: int | None, progress: Callable | None) -> Any:
    if name == TEST_MODEL:
        from .model.testing import random_model

        return random_model(image_size=image_size, device=device)
    from .model.loading import load_model

    return load_model(name, device=device, image_size=image_size, progress=progress)


def get_model(model: Any = DEFAULT_MODEL, device: str = "auto", image_size: int | None = None,
              progress: Callable[[int, int | None], Any] | None = None) -> Any:
    """A ``Sam2Model`` from a registry name or ``.pt`` path, kept for the next call (one model cached).

    An already loaded ``Sam2Model`` is returned as is. ``progress(done, total)`` follows a download.
    """
    if not isinstance(model, str) and not hasattr(model, "__fspath__"):
        from .model.sam2 import Sam2Model

        if isinstance(model, Sam2Model):
            return model
        raise TypeError(f"model must be a model name, a .pt path or a loaded Sam2Model, not {type(model).__name__}.")
    key = (str(model), str(device), image_size)
    if key not in _model_cache:
        _model_cache.clear()  # one model at a time: they are large
        _model_cache[key] = _load(str(model), str(device), image_size, progress)
    return _model_cache[key]


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """What prompts are checked against: the leading (non-spatial) shape and the frame shape."""

    leading: tuple[int, ...]  # sizes of the leading axes, data order (propagation axis included)
    frame_shape: tuple[int, int]
    axis: int = 0  # propagation axis, an index into ``leading``

    @property
    def labels_shape(self) -> tuple[int, ...]:
        return (*self.leading, *self.frame_shape)

    def frame_arg(self, key: Sequence[int]) -> Any:
        """The frame argument VideoSession takes: an int with one leading axis, else the tuple."""
        return session_frame(key)

    def key(self, frame: Any) -> tuple[int, ...]:
        """A PromptSet / VideoSession frame argument -> the tuple of all leading indices."""
        key = tuple(int(f) for f in np.atleast_1d(np.asarray(frame)).tolist())
        if len(key) != len(self.leading):
            raise PromptError(
                f"A prompt's frame {frame!r} must give {len(self.leading)} leading indices for a stack of "
                f"shape {self.labels_shape}."
            )
        for i, (k, n) in enumerate(zip(key, self.leading)):
            if not 0 <= k < n:
                if i == self.axis:
                    raise PromptError(f"A prompt is on frame {k} but the stack has {n} frames (0 to {n - 1}); "
                                      "fix the frame index.")
                raise PromptError(f"A prompt is at index {k} of leading axis {i}, which has {n} positions "
                                  f"(0 to {n - 1}); fix the index.")
        return key

    def result_key(self, result: FrameResult) -> tuple[int, ...]:
        """The leading indices of a FrameResult (its outer ``index`` with ``frame`` at ``axis``)."""
        return result_key(result, self.axis)

    def starts(self, prompts: PromptSet) -> dict[tuple[int, ...], int]:
        """Per sequence (outer index), the earliest prompted frame: where propagation starts."""
        out: dict[tuple[int, ...], int] = {}
        for p in (*prompts.points, *prompts.boxes, *prompts.masks):
            key = self.key(p.frame)
            outer = key[: self.axis] + key[self.axis + 1 :]
            out[outer] = min(out.get(outer, key[self.axis]), key[self.axis])
        return out

    def count_frames(self, prompts: PromptSet, direction: str) -> int:
        """How many frames a propagation visits (for progress bars)."""
        n = self.leading[self.axis]
        per = {"forward": lambda s: n - s, "backward": lambda s: s + 1, "both": lambda s: n}[direction]
        return sum(per(s) for s in self.starts(prompts).values())

    def in_page_order(self, prompts: PromptSet, direction: str) -> bool:
        """Whether propagation yields frames in increasing page (flat leading index) order."""
        if self.axis != len(self.leading) - 1 and len(self.starts(prompts)) > 1:
            return False  # several sequences along a non-last axis interleave pages
        return direction == "forward" or (
            direction == "both" and all(s == 0 for s in self.starts(prompts).values())
        )


def _layout_geometry(frames: Any, axis: int, channel: int | None, rgb: bool | None) -> tuple[Any, Geometry]:
    from .engine.frames import as_array_like, guess_layout

    data = as_array_like(frames)
    layout = guess_layout(data, axis, rgb, channel)
    lead = tuple(layout.shape[a] for a in layout.leading)
    return data, Geometry(lead, tuple(layout.frame_shape), layout.axis)


# ----------------------------------------------------------------------------- prompts
def _ids(values: Any, n: int, default: np.ndarray, what: str) -> np.ndarray:
    if values is None:
        return default
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise PromptError(f"{what} must be one value or {n} values (one per prompt); got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf" or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise PromptError(f"{what} must be whole numbers >= 1 (0 is the background label); got {arr.tolist()}.")
    return arr.astype(np.int64)


def _coords(values: Any, what: str, shape_hint: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"{what} must be a numeric array {shape_hint}.") from None
    if not np.all(np.isfinite(arr)):
        raise PromptError(f"{what} contain NaN or infinite coordinates.")
    return arr


def _frame_key(lead: np.ndarray, what: str, geo: Geometry) -> tuple[int, ...]:
    key = np.round(lead).astype(np.int64)
    if np.any(np.abs(lead - key) > 0.01):
        raise PromptError(f"{what} is between frames (leading coordinates {lead.tolist()}); use whole indices.")
    return geo.key(key)


def _point_prompts(points: Any, ids: Any, labels: Any, geo: Geometry) -> list[PointPrompt]:
    d = len(geo.leading) + 2
    hint = f"of shape (N, {d}): ({', '.join(['frame'] * (d - 2))}, row, col) per point"
    pts = _coords(points, "points", hint)
    if pts.ndim == 1 and pts.size == d:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != d:
        raise PromptError(f"points must be an array {hint}; got shape {pts.shape}.")
    n = len(pts)
    obj = _ids(ids, n, np.ones(n, np.int64), "point_ids")
    if labels is None:
        lbl = np.ones(n, np.int64)
    else:
        lbl = np.asarray(labels).reshape(-1) if np.ndim(labels) else np.full(n, labels)
        if lbl.shape != (n,) or not np.isin(lbl, (0, 1)).all():
            raise PromptError(f"point_labels must give {n} value(s), one per point: 1/True (positive) "
                              "or 0/False (negative).")
        lbl = lbl.astype(np.int64)
    groups: dict[tuple[tuple[int, ...], int], list[int]] = {}
    for i, row in enumerate(pts):
        key = _frame_key(row[:-2], f"point {i}", geo)
        groups.setdefault((key, int(obj[i])), []).append(i)
    return [PointPrompt(frame=geo.frame_arg(key), obj_id=o, points=pts[rows, -2:], labels=lbl[rows])
            for (key, o), rows in groups.items()]


def _box_prompts(boxes: Any, ids: Any, geo: Geometry) -> list[BoxPrompt]:
    d = len(geo.leading) + 2
    hint = f"of shape (N, 2, {d}) (corner pairs), (N, 4, {d}) (napari rectangles) or (N, {d + 2}) rows " \
           f"({', '.join(['frame'] * (d - 2))}, row0, col0, row1, col1)"
    if isinstance(boxes, (list, tuple)) and boxes and all(np.ndim(b) == 2 for b in boxes):
        items = [_coords(b, "boxes", hint) for b in boxes]  # napari shapes_layer.data: a list of (K, D)
    else:
        arr = _coords(boxes, "boxes", hint)
        if arr.ndim == 2 and arr.shape[1] == d + 2:
            lead, rc = arr[:, : d - 2], arr[:, d - 2 :].reshape(-1, 2, 2)
            items = [np.concatenate([np.repeat(ld[None], 2, 0), c], axis=1) for ld, c in zip(lead, rc)]
        elif arr.ndim == 3:
            items = list(arr)
        else:
            raise PromptError(f"boxes must be an array {hint}; got shape {arr.shape}.")
    obj = _ids(ids, len(items), np.arange(1, len(items) + 1), "box_ids")
    out: list[BoxPrompt] = []
    seen: set[tuple[tuple[int, ...], int]] = set()
    for i, verts in enumerate(items):
        if verts.ndim != 2 or verts.shape[0] < 2 or verts.shape[1] != d:
            raise PromptError(f"box {i} has shape {verts.shape}; boxes must be arrays {hint}.")
        lead = verts[:, :-2]
        if np.ptp(lead, axis=0).max(initial=0) > 0.01:
            raise PromptError(f"box {i} has vertices on different frames; draw each box on one frame.")
        key = _frame_key(lead[0], f"box {i}", geo)
        (r0, c0), (r1, c1) = verts[:, -2:].min(axis=0), verts[:, -2:].max(axis=0)
        if r1 <= r0 or c1 <= c0:
            raise PromptError(f"box {i} has zero area; give two opposite corners.")
        if (key, int(obj[i])) in seen:
            raise PromptError(f"box {i}: object {int(obj[i])} already has a box on frame {key}; SAM 2 takes one.")
        seen.add((key, int(obj[i])))
        out.append(BoxPrompt(frame=geo.frame_arg(key), obj_id=int(obj[i]), box=np.array([r0, c0, r1, c1])))
    return out


def _mask_prompts(masks: Any, geo: Geometry) -> list[MaskPrompt]:
    if not hasattr(masks, "shape"):
        masks = np.asarray(masks)
    if tuple(masks.shape) != geo.labels_shape:
        raise PromptError(f"masks must be a labels array of shape {geo.labels_shape} (the stack without "
                          f"channels); got {tuple(masks.shape)}.")
    if np.dtype(masks.dtype).kind not in "biu":
        raise PromptError(f"masks must be an integer labels array (a Labels layer's data), not {masks.dtype}.")
    planes = ((geo.frame_arg(key), np.asarray(masks[key])) for key in np.ndindex(*geo.leading))
    return mask_prompts_from_planes(planes, "masks")


def check_prompt_set(prompts: PromptSet, geo: Geometry, source: str = "prompts") -> PromptSet:
    """Raise PromptError for frames outside the stack, bad object ids, clicks outside the frames.

    Returns the prompts with boxes clipped to the image (a box drawn past the border is fine).
    """
    if not prompts:
        raise PromptError(f"{source}: there are no prompts; give points, boxes or masks.")
    for p in (*prompts.points, *prompts.boxes, *prompts.masks):
        geo.key(p.frame)
        if isinstance(p.obj_id, (bool, np.bool_)) or int(p.obj_id) != p.obj_id or p.obj_id < 1:
            raise PromptError(f"{source}: object id {p.obj_id!r} must be a whole number >= 1.")
    check_prompts(prompts, source, frame_shape=geo.frame_shape)
    hi = np.array([*geo.frame_shape, *geo.frame_shape], np.float64) - 0.5
    boxes = [BoxPrompt(b.frame, b.obj_id, np.clip(np.asarray(b.box, np.float64), -0.5, hi)) for b in prompts.boxes]
    return PromptSet(points=list(prompts.points), boxes=boxes, masks=list(prompts.masks))


def build_prompts(geo: Geometry, points: Any = None, boxes: Any = None, masks: Any = None, *,
                  prompts: PromptSet | None = None, point_ids: Any = None, point_labels: Any = None,
                  box_ids: Any = None) -> PromptSet:
    """One checked PromptSet from the forms :func:`segment_video` accepts (see the module docstring)."""
    out = PromptSet()
    if isinstance(points, PromptSet):
        prompts, points = (points if prompts is None else _merge(prompts, points)), None
    if prompts is not None:
        if not isinstance(prompts, PromptSet):
            raise PromptError("prompts must be a PromptSet (e.g. from prompts_from_layers), "
                              f"not {type(prompts).__name__}.")
        out = _merge(out, prompts)
    if not _empty(points):
        out.points.extend(_point_prompts(points, point_ids, point_labels, geo))
    if not _empty(boxes):
        out.boxes.extend(_box_prompts(boxes, box_ids, geo))
    if masks is not None:
        out.masks.extend(_mask_prompts(masks, geo))
    return check_prompt_set(out, geo)


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    return getattr(value, "size", 1) == 0


def _merge(a: PromptSet, b: PromptSet) -> PromptSet:
    return PromptSet(points=[*a.points, *b.points], boxes=[*a.boxes, *b.boxes], masks=[*a.masks, *b.masks])


# --------------------------------------------------------------------------- running
def iter_results(session: Any, prompts: PromptSet, direction: str,
                 cancel: threading.Event | None = None) -> Iterator[FrameResult]:
    """Send ``prompts`` to ``session`` and yield every propagated frame (the CLI uses this too)."""
    prompts.apply(session)
    yield from session.propagate(direction, cancel=cancel)


def _progress_callback(progress: Any, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    if progress is None or progress is False:
        return (lambda done: None), (lambda: None)
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc="SAM 2")
        return (lambda done: bar.update(done - bar.n)), bar.close
    return (lambda done: progress(done, total)), (lambda: None)


def segment_video(
    frames: Any,
    points: Any = None,
    boxes: Any = None,
    masks: Any = None,
    *,
    prompts: PromptSet | None = None,
    point_ids: Any = None,
    point_labels: Any = None,
    box_ids: Any = None,
    model: Any = DEFAULT_MODEL,
    device: str = "auto",
    image_size: int | None = None,
    axis: int = 0,
    direction: str = "both",
    channel: int | None = None,
    intensity_range: tuple[float, float] | None = None,
    progress: bool | Callable[[int, int], Any] | None = None,
    cancel: threading.Event | None = None,
    table: ObjectTable | None = None,
    **session_kwargs: Any,
) -> np.ndarray:
    """Segment and track the prompted objects through ``frames``; return the labels.

    ``frames``: any array-like (numpy, dask, zarr, a napari layer's ``data``) of shape (T, Y, X),
    (T, Y, X, C) or with more leading axes. Prompts: see the module docstring (``points``,
    ``boxes``, ``masks``, ``prompts``). ``model``: a registry name (downloaded once), a ``.pt``
    path or a loaded ``Sam2Model``; loaded models are reused by the next call. ``device``:
    "auto", "cpu", "cuda", "mps". ``image_size``: run the model at a lower resolution.
    ``axis``: the leading axis to propagate along. ``direction``: "forward", "backward" or
    "both" from the earliest prompted frame (frames not visited stay 0). ``channel``,
    ``intensity_range`` and ``session_kwargs`` (``rgb``, ``fill_hole_area``,
    ``corrections_as_conditioning``, ``feature_cache_bytes``, ``max_cond_frames_in_attn``,
    ``history_ram_bytes``, ``spill_dir``) go to ``VideoSession``.
    ``progress``: True for a tqdm bar, or ``callable(done, total)`` after each frame.
    ``cancel``: a ``threading.Event``; when set, the frames done so far are returned.
    ``table``: an :func:`object_table` filled with one row per object and frame.

    Returns an array of shape ``frames.shape`` without channels, one id per object, in the
    smallest unsigned dtype that holds the largest id.
    """
    if direction not in _DIRECTIONS:
        raise PromptError(f"direction must be 'forward', 'backward' or 'both', not {direction!r}.")
    unknown = set(session_kwargs) - set(_SESSION_KWARGS)
    if unknown:
        raise TypeError(f"segment_video() got unexpected arguments {sorted(unknown)}; "
                        f"VideoSession options are {list(_SESSION_KWARGS)}.")
    data, geo = _layout_geometry(frames, axis, channel, session_kwargs.get("rgb"))
    ps = build_prompts(geo, points, boxes, masks, prompts=prompts, point_ids=point_ids,
                       point_labels=point_labels, box_ids=box_ids)
    net = get_model(model, device, image_size)
    from .engine.video_session import VideoSession

    dtype = labels_dtype(max(ps.obj_ids))
    labels = np.zeros(geo.labels_shape, dtype)
    step, done = _progress_callback(progress, geo.count_frames(ps, direction))
    try:
        with VideoSession(net, data, axis, channel=channel, intensity_range=intensity_range,
                          **session_kwargs) as session:
            for i, result in enumerate(iter_results(session, ps, direction, cancel), 1):
                labels[geo.result_key(result)] = result.to_labels(dtype)
                if table is not None:
                    table.add(result)
                step(i)
    finally:
        done()
    return labels


# -------------------------------------------------------------------- tables, layers
def object_table(labels: Any = None, *, pixel_size: Sequence[float] | None = None, unit: str | None = None,
                 axis: int = 0) -> ObjectTable:
    """A per-object, per-frame table (:class:`napari_sam2.io.ObjectTable`).

    Without ``labels``: an empty table to pass as ``segment_video(..., table=table)``; it gets
    SAM 2's presence scores. With a labels array (e.g. the result of ``segment_video`` or a
    Labels layer's data): measured from the labels (``present`` = the object has pixels,
    ``score`` and ``iou`` empty). ``pixel_size`` = (row, col) size in ``unit`` adds a physical
    area column. Columns: see ``docs/io.md``; ``table.to_dataframe()``, ``table.write_csv(path)``.
    """
    table = ObjectTable(pixel_size=pixel_size, unit=unit)
    if labels is None:
        return table
    data = labels if hasattr(labels, "shape") else np.asarray(labels)
    if data.ndim < 3:
        raise InputError(f"labels must have a leading (frame) axis; got shape {tuple(data.shape)}.")
    lead = tuple(data.shape[:-2])
    all_ids = set()
    for key in np.ndindex(*lead):
        all_ids |= set(np.unique(np.asarray(data[key])).tolist())
    ids = np.array(sorted(i for i in all_ids if i > 0), np.int64)
    nan = np.full(len(ids), np.nan, np.float32)
    for key in np.ndindex(*lead):
        plane = np.asarray(data[key])
        m = plane[None] == ids[:, None, None]
        table.add(FrameResult(frame=key[axis], obj_ids=tuple(int(i) for i in ids), masks=m,
                              scores=nan, present=m.any(axis=(1, 2)), iou=nan, object_score_logits=nan,
                              index=key[:axis] + key[axis + 1:]))
    return table


def tracks_from_labels(labels: Any, axis: int = 0) -> np.ndarray:
    """(N, 4) ``[track_id, t, row, col]`` centroid tracks of a (T, Y, X) labels array."""
    return tracks_from_table(object_table(labels, axis=axis))


def _layer_transform(image_layer: Any, ndim: int) -> dict[str, Any]:
    if image_layer is None:
        return {}
    scale, translate = tuple(image_layer.scale), tuple(image_layer.translate)
    return {"scale": scale[-ndim:], "translate": translate[-ndim:]}


def add_labels_to_viewer(viewer: Any, labels: np.ndarray, name: str = "SAM 2", *, image_layer: Any = None,
                         **kwargs: Any) -> Any:
    """Show ``labels`` as a Labels layer aligned with ``image_layer``; an existing layer ``name`` is updated."""
    from napari.layers import Labels

    if name in viewer.layers and isinstance(viewer.layers[name], Labels):
        layer = viewer.layers[name]
        layer.data = labels
        return layer
    return viewer.add_labels(labels, name=name, **_layer_transform(image_layer, labels.ndim), **kwargs)


def add_tracks_to_viewer(viewer: Any, source: Any, name: str = "SAM 2 tracks", *, image_layer: Any = None,
                         **kwargs: Any) -> Any:
    """A Tracks layer of object centroids from an ObjectTable, a (T, Y, X) labels array or (N, 4) tracks."""
    if isinstance(source, ObjectTable):
        data = tracks_from_table(source)
    else:
        arr = np.asarray(source)
        data = arr if arr.ndim == 2 and arr.shape[1] == 4 and arr.dtype.kind == "f" else tracks_from_labels(arr)
    if len(data) == 0:
        raise InputError("There are no tracks to show: no object is present on any frame.")
    return viewer.add_tracks(data, name=name, **_layer_transform(image_layer, 3), **kwargs)
