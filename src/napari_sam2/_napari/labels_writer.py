"""Write ``FrameResult`` masks into a napari Labels layer without trampling anyone's labels.

Rules: on a frame, only the pixels of the result's own object ids are cleared, then each object's new
mask is painted; pixels holding OTHER ids (a Cellpose result, hand-painted labels) are left alone
unless ``overwrite_other`` is set. Each written frame is recorded in the layer's own undo history
as a compressed :class:`~.undo_history.FrameDiff` (a few KiB per frame instead of napari's ~30 bytes
per changed pixel) and the whole history is kept under a byte budget
(:class:`~.undo_history.UndoBudget`), so ``layer.undo()`` / Ctrl+Z step back exactly.
``Labels.block_history`` held open from :meth:`LabelsWriter.begin_group` to
:meth:`LabelsWriter.end_group` makes a whole propagation ONE undo step. A single write (a preview)
goes through ``Labels.data_setitem``, which paints the changed pixels at once; a propagation's
frames (``refresh=False``) are written as one box per frame and painted a few times a second by
:meth:`LabelsWriter.refresh` (see ``refresh_throttle.py``).

Runs on the main thread (called from a worker's ``yielded`` signal); one frame costs a few array
passes over (Y, X), no copies of the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np

from ..engine.layout import FrameKey
from ..errors import OutputError
from .undo_history import FrameDiff, UndoBudget, default_budget


class OutputLayerError(OutputError, ValueError):
    """The chosen output Labels layer cannot receive the masks (shape or dtype); names the fix."""


def check_output(layer: Any, shape: Sequence[int], top_id: int = 0) -> None:
    """Raise :class:`OutputLayerError` unless ``layer`` has ``shape`` and its dtype holds ``top_id``."""
    shape = tuple(int(s) for s in shape)
    name = getattr(layer, "name", "labels")
    if tuple(layer.data.shape) != shape:
        raise OutputLayerError(
            f"The output layer '{name}' has shape {tuple(layer.data.shape)}, but the image needs {shape}: "
            f"choose '(new layer)' under 'Output labels', or a Labels layer of shape {shape}."
        )
    dt = np.dtype(layer.data.dtype)
    top = np.iinfo(dt).max if dt.kind in "iu" else None
    if top is not None and int(top_id) > top:
        raise OutputLayerError(
            f"Object id {int(top_id)} does not fit the {dt} labels of '{name}' (at most {top}): choose "
            f"'(new layer)' under 'Output labels' (uint32), convert '{name}' to uint32, or use object ids "
            f"up to {top}."
        )


def merge_frame(
    current: np.ndarray,
    new_labels: np.ndarray,
    obj_ids: Iterable[int],
    overwrite_other: bool = False,
) -> np.ndarray:
    """The frame after writing: ``current`` with ``obj_ids`` replaced by ``new_labels``.

    ``new_labels`` is a (Y, X) label image holding only ids from ``obj_ids`` (0 elsewhere).
    """
    ids = np.asarray(list(obj_ids), dtype=current.dtype if current.dtype.kind in "iu" else np.int64)
    out = np.array(current, copy=True)
    if ids.size:
        out[np.isin(current, ids)] = 0
    paint = new_labels != 0
    if not overwrite_other:
        paint &= out == 0
    out[paint] = new_labels[paint].astype(out.dtype, copy=False)
    return out


class LabelsWriter:
    """Writes results into the Labels ``layer`` (each at its frame key, ``result.key``)."""

    def __init__(self, layer: Any, overwrite_other: bool = False, budget_bytes: int | None = None) -> None:
        self.layer = layer
        self.overwrite_other = bool(overwrite_other)
        self._group: ExitStack | None = None
        self.history = UndoBudget(layer, default_budget() if budget_bytes is None else budget_bytes)

    # ---- writing -----------------------------------------------------------------------------
    def write(self, result: Any, refresh: bool = True) -> int:
        """Write one FrameResult; returns the number of pixels changed."""
        check_output(self.layer, self.layer.data.shape, max((int(i) for i in result.obj_ids), default=0))
        if len(result.obj_ids):
            new = result.to_labels(dtype=self._dtype)
        else:
            new = np.zeros(result.masks.shape[1:], dtype=self._dtype)
        return self.write_labels(result.key, new, result.obj_ids, refresh=refresh)

    def erase(self, key: FrameKey, obj_ids: Sequence[int], refresh: bool = True) -> int:
        """Remove ``obj_ids`` from frame ``key`` (their prompts there were deleted)."""
        shape = self.layer.data.shape[len(key) :]
        return self.write_labels(key, np.zeros(shape, self._dtype), obj_ids, refresh=refresh)

    def write_labels(self, key: FrameKey, new: np.ndarray, obj_ids: Sequence[int], refresh: bool = True) -> int:
        """Merge the (Y, X) labels ``new`` into frame ``key`` (see :func:`merge_frame`); pixels changed."""
        data = self.layer.data
        key = tuple(int(k) for k in key)
        if len(key) + new.ndim != data.ndim or tuple(data.shape[len(key) :]) != new.shape:
            name = getattr(self.layer, "name", "labels")
            raise OutputLayerError(
                f"A result of shape {new.shape} on frame {key} does not fit the labels of '{name}' of shape "
                f"{tuple(data.shape)}: choose '(new layer)' under 'Output labels', or a Labels layer of the "
                "image's shape."
            )
        current = np.asarray(data[key])
        merged = merge_frame(current, new, obj_ids, self.overwrite_other)
        changed = merged != current
        n = int(changed.sum())
        if n == 0:
            return 0
        values = merged[changed]
        if not self.history.supported:  # napari's own atoms, no budget
            return self._setitem(key, changed, values, refresh)
        diff = FrameDiff(key, changed, current[changed], values)
        if self.grouping and not refresh:  # a propagation: write the frame's box now, paint it later
            mark = self.history.mark()
            self.layer._save_history(diff)
            self.history.store(mark, diff)
            r0, r1, c0, c1 = diff.box
            self.layer.data[key + (slice(r0, r1), slice(c0, c1))] = merged[r0:r1, c0:c1]
            return n
        with ExitStack() as step:
            if not self.grouping:  # a step of its own
                self.history.reset()
                step.enter_context(self.layer.block_history())
            mark = self.history.mark()
            self._setitem(key, changed, values, refresh)
            self.history.store(mark, diff)  # the compressed atom instead of napari's, within the budget
        if not self.grouping:
            self.history.committed_step()
        return n

    def _setitem(self, key: FrameKey, changed: np.ndarray, values: np.ndarray, refresh: bool) -> int:
        """``Labels.data_setitem``: writes, stages napari's undo atom, updates the visible pixels."""
        rows, cols = np.nonzero(changed)
        indices = tuple(np.full(rows.size, k, dtype=np.intp) for k in key) + (rows, cols)
        self.layer.data_setitem(indices, values, refresh=refresh)
        return int(rows.size)

    # ---- painting ----------------------------------------------------------------------------
    def refresh(self, keys: set, shown: FrameKey | None, full: bool = False) -> None:
        """Paint frames ``keys`` written with ``refresh=False``; only the frame ``shown`` is visible.

        The layer is re-sliced (napari slices only what is displayed) when ``shown`` is among
        ``keys`` or when ``full`` (the end of a job: the thumbnail too); frames not shown need no paint.
        """
        if full or shown is None or tuple(shown) in keys:
            self.layer.refresh()
        self.discard_refresh()

    def discard_refresh(self) -> None:
        """Forget the changed region napari keeps for a partial refresh (the view re-slices anyway)."""
        if getattr(self.layer, "_updated_slice", None) is not None:
            self.layer._updated_slice = None

    @property
    def _dtype(self):
        dt = np.dtype(self.layer.data.dtype)
        return dt if dt.kind in "iu" else np.dtype(np.int64)

    # ---- undo --------------------------------------------------------------------------------
    def begin_group(self) -> None:
        """Collect the following writes into one undo step (until :meth:`end_group`)."""
        if self._group is None:
            group = ExitStack()
            group.enter_context(self.layer.block_history())
            self._group = group
            self.history.reset()

    def end_group(self) -> str:
        """Close the undo step opened by :meth:`begin_group` (nothing happens without one).

        Returns a sentence for the status when the undo history had to shrink to stay in budget
        (older steps dropped, or this step too large to keep), else ''.
        """
        group, self._group = self._group, None
        if group is None:
            return ""
        group.close()
        self.history.committed_step()
        return self.history.note()

    @property
    def grouping(self) -> bool:
        return self._group is not None


class OutputLayer:
    """The Labels layer results go to, as the view picks it, and one :class:`LabelsWriter` while it stays.

    ``pick(create)`` returns the layer (``create``: make one when there is none, else None);
    ``shape()`` the labels shape of the image (None while unknown).
    """

    def __init__(self, pick: Callable[[bool], Any], shape: Callable[[], tuple[int, ...] | None]) -> None:
        self._pick, self._shape = pick, shape
        self.writer: LabelsWriter | None = None
        self._overwrite = False
        self.budget_bytes = default_budget()  # the output layer's undo history stays under this

    @property
    def overwrite(self) -> bool:
        return self._overwrite

    @overwrite.setter
    def overwrite(self, on: bool) -> None:
        self._overwrite = bool(on)
        if self.writer is not None:
            self.writer.overwrite_other = self._overwrite

    def check(self, top_id: int) -> None:
        """Raise :class:`OutputLayerError` when the layer cannot hold ids up to ``top_id``."""
        layer, shape = self._pick(False), self._shape()
        if layer is not None and shape is not None:
            check_output(layer, shape, top_id)

    def get(self) -> LabelsWriter:
        """The writer of the layer picked now (a new writer when the layer changed)."""
        layer = self._pick(True)
        if self.writer is None or self.writer.layer is not layer:
            grouping = self.writer is not None and self.writer.grouping
            self.drop()
            shape = self._shape()
            if shape is not None:
                check_output(layer, shape)
            self.writer = LabelsWriter(layer, self._overwrite, self.budget_bytes)
            if grouping:
                self.writer.begin_group()
        return self.writer

    def drop(self) -> None:
        """Forget the layer (removed, or another chosen); what was written stays undoable."""
        if self.writer is not None:
            self.writer.end_group()
        self.writer = None
