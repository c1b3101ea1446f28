"""A bounded, compressed undo history for what the widget writes into a napari Labels layer.

napari's ``Labels.data_setitem`` records each write as (fancy indices, old values, new values): about
30 bytes per changed pixel, kept for up to 100 undo steps, so one propagation over a long stack held
gigabytes. Here each written frame becomes one :class:`FrameDiff` (the changed pixels' mask in their
bounding box, old and new values, zlib-compressed: a few KiB per frame) that stands in for napari's
atom in the layer's own history, so Ctrl+Z / ``layer.undo()`` / ``redo()`` work as before: napari
replays an atom by unpacking it into (indices, old values, new values), which a FrameDiff does on
demand. :class:`UndoBudget` keeps the whole history of the layer (every step, the user's too) under a
byte budget by dropping the OLDEST steps, which keeps undo exact (steps are undone newest first).

It uses napari's history containers (``_undo_history``, ``_redo_history``, ``_staged_history``,
``_save_history``: the same in napari 0.5 to 0.9); where a napari version lacks them, writes keep
napari's own atoms and nothing is dropped.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

ENV_UNDO_MIB = "NAPARI_SAM2_UNDO_MIB"
DEFAULT_UNDO_MIB = 256
_OVERHEAD = 200  # the object, its key and bounding box


def default_budget() -> int:
    """The undo budget in bytes: ``$NAPARI_SAM2_UNDO_MIB`` MiB, else 256 MiB."""
    try:
        mib = float(os.environ.get(ENV_UNDO_MIB, DEFAULT_UNDO_MIB))
    except ValueError:
        mib = DEFAULT_UNDO_MIB
    return int(max(mib, 0.0) * 2**20)


class FrameDiff:
    """The change of one (Y, X) frame at ``key``, compressed; a napari Labels history atom.

    ``changed`` is the frame's mask of changed pixels, ``old`` / ``new`` their values in row-major
    order (as ``frame[changed]``). Unpacking gives napari's triple (indices, old values, new values).
    """

    __slots__ = ("key", "box", "dtype", "count", "_mask", "_old", "_new")

    def __init__(self, key: Sequence[int], changed: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        rows = np.flatnonzero(changed.any(axis=1))
        cols = np.flatnonzero(changed.any(axis=0))
        self.key = tuple(int(k) for k in key)
        if rows.size == 0:
            r0 = r1 = c0 = c1 = 0
        else:
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        self.box = (r0, r1, c0, c1)
        self.dtype = np.dtype(new.dtype)
        self.count = int(old.size)
        crop = np.ascontiguousarray(changed[r0:r1, c0:c1])
        self._mask = zlib.compress(np.packbits(crop).tobytes(), 1)
        self._old = zlib.compress(np.ascontiguousarray(old, dtype=self.dtype).tobytes(), 1)
        self._new = zlib.compress(np.ascontiguousarray(new, dtype=self.dtype).tobytes(), 1)

    @property
    def nbytes(self) -> int:
        """Bytes held (compressed buffers plus a fixed overhead)."""
        return len(self._mask) + len(self._old) + len(self._new) + _OVERHEAD

    def indices(self) -> tuple[np.ndarray, ...]:
        """napari's fancy index of the changed pixels: one array per axis of the labels."""
        r0, r1, c0, c1 = self.box
        h, w = r1 - r0, c1 - c0
        bits = np.frombuffer(zlib.decompress(self._mask), np.uint8)
        crop = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
        rows, cols = np.nonzero(crop)
        lead = tuple(np.full(rows.size, k, dtype=np.intp) for k in self.key)
        return lead + (rows + r0, cols + c0)

    def values(self, before: bool) -> np.ndarray:
        """The changed pixels' values before (``before``) or after the write."""
        return np.frombuffer(zlib.decompress(self._old if before else self._new), self.dtype).copy()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.indices(), self.values(True), self.values(False)))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> Any:
        return tuple(self)[i]

    def __repr__(self) -> str:
        return f"FrameDiff(key={self.key}, pixels={self.count}, bytes={self.nbytes})"


def atom_bytes(atom: Any) -> int:
    """Bytes of one history atom: a FrameDiff, napari's triple or mask atom (arrays summed)."""
    if isinstance(atom, FrameDiff):
        return atom.nbytes
    if isinstance(atom, np.ndarray):
        return int(atom.nbytes)
    if isinstance(atom, (tuple, list)):
        return sum(atom_bytes(a) for a in atom) + 64
    return 64


def history_bytes(layer: Any) -> int:
    """Bytes held by ``layer``'s undo, redo and staged history (0 where napari keeps none we know)."""
    items = list(getattr(layer, "_undo_history", ())) + list(getattr(layer, "_redo_history", ()))
    return sum(atom_bytes(a) for item in items for a in item) + sum(
        atom_bytes(a) for a in getattr(layer, "_staged_history", ())
    )


class UndoBudget:
    """Keeps one Labels layer's undo history under ``limit`` bytes while a writer records into it.

    :meth:`store` swaps the atom napari just staged for a :class:`FrameDiff` and drops the oldest
    steps (undo first, then the far end of redo) when the history grows past the limit. A single
    step larger than the limit on its own cannot be kept: the history is cleared and the rest of that
    step is not recorded (``abandoned``), since undoing older steps over unrecorded writes would not
    be exact. ``dropped`` counts the steps dropped since :meth:`reset`.
    """

    def __init__(self, layer: Any, limit: int) -> None:
        self.layer = layer
        self.limit = int(limit)
        self.supported = all(
            hasattr(layer, a) for a in ("_undo_history", "_redo_history", "_staged_history", "_save_history", "block_history")
        )
        self.reset()

    def reset(self) -> None:
        """A new step starts (a propagation or a single write)."""
        self.dropped = 0
        self.abandoned = False
        self._staged = 0
        self._sig: tuple | None = None
        self._committed = 0

    def mark(self) -> int:
        """Where the next staged atom will go."""
        return len(self.layer._staged_history) if self.supported else -1

    def store(self, mark: int, diff: FrameDiff) -> None:
        """Replace the atom napari staged at ``mark`` by ``diff`` and keep the history in budget."""
        if not self.supported:
            return
        staged = self.layer._staged_history
        if len(staged) != mark + 1:  # napari staged nothing, or more than one atom: leave them
            return
        if self.abandoned:
            staged.pop()
            return
        staged[mark] = diff
        self._staged += diff.nbytes
        self.fit()

    def committed_step(self) -> None:
        """The staged step was committed (its bytes are now in the undo history): check the budget."""
        self._staged = 0
        self.fit()

    def committed(self) -> int:
        """Bytes of the committed undo and redo steps (cached while they stay the same)."""
        undo, redo = self.layer._undo_history, self.layer._redo_history
        sig = (len(undo), len(redo), id(undo[0]) if undo else 0, id(undo[-1]) if undo else 0,
               id(redo[0]) if redo else 0)
        if sig != self._sig:
            self._committed = sum(atom_bytes(a) for item in list(undo) + list(redo) for a in item)
            self._sig = sig
        return self._committed

    def fit(self) -> None:
        """Drop the oldest steps while the history (committed + the step being staged) is over the limit."""
        if not self.supported or self.committed() + self._staged <= self.limit:
            return
        undo, redo = self.layer._undo_history, self.layer._redo_history
        while (undo or redo) and self.committed() + self._staged > self.limit:
            (undo if undo else redo).popleft()
            self.dropped += 1
        if self._staged > self.limit:
            self.abandon()

    def abandon(self) -> None:
        """The step being staged is over the limit alone: clear the history, record no more of it."""
        layer = self.layer
        self.dropped += len(layer._undo_history) + len(layer._redo_history)
        layer._undo_history.clear()
        layer._redo_history.clear()
        layer._staged_history.clear()
        self._staged = 0
        self.abandoned = True

    def note(self) -> str:
        """One sentence for the status when the history had to shrink (else '')."""
        mib = f"{self.limit / 2**20:.0f} MiB"
        if self.abandoned:
            return (f" This propagation cannot be undone: its changes exceed the {mib} undo budget, so the undo "
                    f"history was cleared (set {ENV_UNDO_MIB} to raise it).")
        if self.dropped:
            steps = len(self.layer._undo_history)
            return (f" Undo keeps the last {steps} steps: {self.dropped} older ones were dropped to stay within "
                    f"{mib} ({ENV_UNDO_MIB}).")
        return ""
