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
  :func:`prompts_from_layers` or :func:`napari_sam2.io.read_prompts` (frames are frame keys:
  tuples of all leading indices). It may be combined with the above.

The arrays are read by :mod:`napari_sam2.engine.prompt_arrays` and checked by the stack's
:class:`~napari_sam2.engine.layout.StackLayout`; wrong forms raise
:class:`~napari_sam2.errors.PromptError` before any model is loaded.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .engine.cleanup import Cleanup
from .engine.frames import as_array_like
from .engine.layout import DIRECTIONS, guess_layout
from .engine.prompt_arrays import build_prompts
from .engine.prompts import PromptSet
from .engine.lineage import Lineage
from .engine.results import FrameResult
from .engine.track_all import Everything, run_everything
from .errors import InputError, PromptError
from .io import ObjectTable, labels_dtype, tracks_from_table
from .io.channel_view import channels_last
from .layer_prompts import prompts_from_layers

__all__ = [
    "DEFAULT_MODEL",
    "add_labels_to_viewer",
    "add_tracks_to_viewer",
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


# --------------------------------------------------------------------------- running
def iter_results(session: Any, prompts: PromptSet, direction: str,
                 cancel: threading.Event | None = None) -> Iterator[FrameResult]:
    """Send ``prompts`` to ``session`` and yield every propagated frame (the CLI uses this too)."""
    prompts.apply(session)
    yield from session.propagate(direction, cancel=cancel)


def _nothing(x: Any) -> bool:
    return x is None or (hasattr(x, "__len__") and len(x) == 0)


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
    cleanup: Cleanup | None = None,
    everything: bool | Everything = False,
    lineage: Lineage | None = None,
    **session_kwargs: Any,
) -> np.ndarray:
    """Segment and track the prompted objects through ``frames``; return the labels.

    ``frames``: any array-like (numpy, dask, zarr, a napari layer's ``data``) of shape (T, Y, X),
    (T, Y, X, C) or with more leading axes; or a path that :func:`napari_sam2.io.read_stack`
    opens (TIFF, .npy, video clip, DICOM, zarr / OME-Zarr, folder of images), read lazily. Prompts: see the module docstring (``points``,
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
    ``table``: an :func:`object_table` filled with one row per object and frame (SAM 2's masks).
    ``cleanup``: a :class:`~napari_sam2.engine.cleanup.Cleanup` applied to each labels frame
    (holes, islands, opening / closing), then along ``axis`` (one-frame flickers); docs/cleanup.md.
    ``everything``: True or an :class:`~napari_sam2.engine.track_all.Everything` (filters, new objects
    every N frames, divisions): segment every object SAM 2's mask generator finds on a frame and
    track them all; prompts are optional then. ``lineage``: a ``Lineage`` that receives the divisions.

    Returns an array of shape ``frames.shape`` without channels, one id per object, in the
    smallest unsigned dtype that holds the largest id.
    """
    if direction not in DIRECTIONS:
        raise PromptError(f"direction must be 'forward', 'backward' or 'both', not {direction!r}.")
    unknown = set(session_kwargs) - set(_SESSION_KWARGS)
    if unknown:
        raise TypeError(f"segment_video() got unexpected arguments {sorted(unknown)}; "
                        f"VideoSession options are {list(_SESSION_KWARGS)}.")
    if cleanup is not None and not isinstance(cleanup, Cleanup):
        raise InputError(f"cleanup must be a napari_sam2.engine.cleanup.Cleanup, not {type(cleanup).__name__}.")
    if isinstance(frames, (str, os.PathLike)):
        from .io import read_stack

        with read_stack(frames) as stack:
            data, rgb = channels_last(stack)
            session_kwargs.setdefault("rgb", rgb)
            return segment_video(data, points, boxes, masks, prompts=prompts, point_ids=point_ids,
                                 point_labels=point_labels, box_ids=box_ids, model=model, device=device,
                                 image_size=image_size, axis=axis, direction=direction, channel=channel,
                                 intensity_range=intensity_range, progress=progress, cancel=cancel,
                                 table=table, cleanup=cleanup, everything=everything, lineage=lineage,
                                 **session_kwargs)
    data = as_array_like(frames)
    layout = guess_layout(data, axis, session_kwargs.get("rgb"), channel)
    ev = Everything() if everything is True else everything or None
    if ev is not None:
        ev.check(layout)
    no_prompts = ev is not None and prompts is None and all(_nothing(x) for x in (points, boxes, masks))
    ps = PromptSet() if no_prompts else build_prompts(layout, points, boxes, masks, prompts=prompts,
                                                     point_ids=point_ids, point_labels=point_labels, box_ids=box_ids)
    net = get_model(model, device, image_size)
    from .engine.video_session import VideoSession

    dtype = np.dtype(np.uint32) if ev is not None else labels_dtype(max(ps.obj_ids))
    labels = np.zeros(layout.labels_shape, dtype)
    total = (ev.count_visits(layout, direction, min(layout.starts(ps).values(), default=None))
             if ev is not None else layout.count_frames(ps, direction))
    step, done = _progress_callback(progress, total)
    try:
        with VideoSession(net, data, axis, channel=channel, intensity_range=intensity_range,
                          **session_kwargs) as session:
            results = (iter_results(session, ps, direction, cancel) if ev is None else
                       run_everything(session, ev, direction, ps, cancel, lineage=lineage))
            for i, result in enumerate(results, 1):
                plane = result.to_labels(dtype)
                labels[result.key] = cleanup.apply(plane) if cleanup is not None else plane
                if table is not None:
                    table.add(result)
                step(i)
    finally:
        done()
    if cleanup is not None and cleanup.drop_flicker:
        from .engine.flicker import drop_flicker_array

        drop_flicker_array(labels, layout.axis)
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
                              index=key[:axis] + key[axis + 1:], key=key))
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
                         lineage: Any = None, **kwargs: Any) -> Any:
    """A Tracks layer of object centroids from an ObjectTable, a (T, Y, X) labels array or (N, 4) tracks;
    a :class:`~napari_sam2.engine.lineage.Lineage` adds its divisions as the layer's ``graph``."""
    if isinstance(source, ObjectTable):
        data = tracks_from_table(source)
    else:
        arr = np.asarray(source)
        data = arr if arr.ndim == 2 and arr.shape[1] == 4 and arr.dtype.kind == "f" else tracks_from_labels(arr)
    if len(data) == 0:
        raise InputError("There are no tracks to show: no object is present on any frame.")
    if lineage is not None:
        from .io.tracks import tracks_graph

        kwargs.setdefault("graph", tracks_graph(data, lineage))
    return viewer.add_tracks(data, name=name, **_layer_transform(image_layer, 3), **kwargs)
