"""Write ``FrameResult`` masks into a napari Labels layer without trampling anyone's labels.

Rules: on a frame, only the pixels of the result's own object ids are cleared, then each object's new
mask is painted; pixels holding OTHER ids (a Cellpose result, hand-painted labels) are left alone
unless ``overwrite_other`` is set. Every write is recorded in the layer's own undo history, so
``layer.undo()`` (Ctrl+Z) steps back; writes between :meth:`LabelsWriter.begin_group` and
:meth:`LabelsWriter.end_group` (a whole propagation) form ONE undo step.

Runs on the main thread (called from a worker's ``yielded`` signal); one frame costs a few array
passes over (Y, X), no copies of the stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from napari_sam2._napari.frames import FrameKey, result_key
from napari_sam2.errors import InputError

# a napari Labels history atom in the long-supported 3-tuple form: (indices, old values, new values)
Atom = tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]


class OutputLayerError(InputError, ValueError):
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
    """Writes results into ``layer``; ``axis`` is the session's propagation axis."""

    def __init__(self, layer: Any, axis: int = 0, overwrite_other: bool = False) -> None:
        self.layer = layer
        self.axis = int(axis)
        self.overwrite_other = bool(overwrite_other)
        self._group: list[Atom] | None = None
        self.frames_written = 0

    # ---- writing -----------------------------------------------------------------------------
    def write(self, result: Any, refresh: bool = True) -> int:
        """Write one FrameResult; returns the number of pixels changed."""
        key = result_key(result, self.axis)
        check_output(self.layer, self.layer.data.shape, max((int(i) for i in result.obj_ids), default=0))
        if len(result.obj_ids):
            new = result.to_labels(dtype=self._dtype)
        else:
            new = np.zeros(result.masks.shape[1:], dtype=self._dtype)
        return self.write_labels(key, new, result.obj_ids, refresh=refresh)

    def erase(self, key: FrameKey, obj_ids: Sequence[int], refresh: bool = True) -> int:
        """Remove ``obj_ids`` from frame ``key`` (their prompts there were deleted)."""
        shape = self.layer.data.shape[len(key) :]
        return self.write_labels(key, np.zeros(shape, self._dtype), obj_ids, refresh=refresh)

    def write_labels(self, key: FrameKey, new: np.ndarray, obj_ids: Sequence[int], refresh: bool = True) -> int:
        data = self.layer.data
        key = tuple(int(k) for k in key)
        if len(key) + new.ndim != data.ndim or tuple(data.shape[len(key) :]) != new.shape:
            raise ValueError(f"result of shape {new.shape} at {key} does not fit labels of shape {data.shape}")
        current = np.asarray(data[key])
        merged = merge_frame(current, new, obj_ids, self.overwrite_other)
        changed = merged != current
        n = int(changed.sum())
        self.frames_written += 1
        if n == 0:
            return 0
        rows, cols = np.nonzero(changed)
        atom: Atom = (
            tuple(np.full(n, k, dtype=np.intp) for k in key) + (rows, cols),
            current[changed],
            merged[changed],
        )
        data[key] = merged
        self._record(atom)
        if refresh:
            self.refresh()
        return n

    def refresh(self) -> None:
        self.layer.refresh()

    @property
    def _dtype(self):
        dt = np.dtype(self.layer.data.dtype)
        return dt if dt.kind in "iu" else np.dtype(np.int64)

    # ---- undo --------------------------------------------------------------------------------
    def begin_group(self) -> None:
        """Collect the following writes into one undo step (until :meth:`end_group`)."""
        if self._group is None:
            self._group = []

    def end_group(self) -> None:
        atoms, self._group = self._group, None
        if atoms:
            self._commit(atoms)

    @property
    def grouping(self) -> bool:
        return self._group is not None

    def _record(self, atom: Atom) -> None:
        if self._group is not None:
            self._group.append(atom)
        else:
            self._commit([atom])

    def _commit(self, atoms: list[Atom]) -> None:
        """Push ``atoms`` as one item onto napari's Labels undo history (napari >= 0.5 API)."""
        layer = self.layer
        save = getattr(layer, "_save_history", None)
        block = getattr(layer, "block_history", None)
        if save is None or block is None:  # an unknown napari: no undo rather than an error
            return
        with block():
            for atom in atoms:
                save(atom)
