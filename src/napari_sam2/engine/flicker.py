"""Streaming removal of one-frame flickers: an object on frame t, absent on t - 1 and t + 1.

Presence is judged on the incoming planes (a removal never causes another). At the ends of a
sequence only the existing neighbour counts (an object only on the first frame and not on the
second is a flicker); a one-frame sequence is left as it is. Planes are never changed in
place: a plane that loses an object is copied.

Memory stays flat with stack length: :class:`FlickerFilter` keeps one pending plane and the
ids of its neighbours (a window of three frames). :class:`FlickerWriter` runs one filter per
sequence of an N-D stack (pages in page order, as label TIFFs are written) and hands the
pages on in page order, holding at most one page per sequence plus the pages of one step
along the propagation axis.
"""

from __future__ import annotations

import heapq
from typing import Any, Sequence

import numpy as np

from ..errors import OutputError


def _present(plane: np.ndarray) -> np.ndarray:
    ids = np.unique(plane)
    return ids[ids != 0]


def _without(plane: np.ndarray, drop: np.ndarray) -> np.ndarray:
    if drop.size == 0:
        return plane
    out = np.array(plane, copy=True)
    out[np.isin(out, drop)] = 0
    return out


class FlickerFilter:
    """One sequence of planes in order; :meth:`push` and :meth:`finish` return the planes that are done."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None  # ids of the frame before the pending one
        self._pending: tuple[Any, np.ndarray, np.ndarray] | None = None  # (tag, plane, ids)

    def push(self, plane: np.ndarray, tag: Any = None) -> list[tuple[Any, np.ndarray]]:
        """Add the next plane; returns ``[(tag, cleaned plane)]`` of the previous one (or nothing)."""
        plane = np.asarray(plane)
        ids = _present(plane)
        done = []
        if self._pending is not None:
            done.append(self._decide(ids))
        self._pending = (tag, plane, ids)
        return done

    def finish(self) -> list[tuple[Any, np.ndarray]]:
        """The last plane (judged on its previous neighbour only); the filter is then empty."""
        done = [self._decide(None)] if self._pending is not None else []
        self._pending, self._prev = None, None
        return done

    def _decide(self, nxt: np.ndarray | None) -> tuple[Any, np.ndarray]:
        assert self._pending is not None
        tag, plane, ids = self._pending
        neighbours = [n for n in (self._prev, nxt) if n is not None]
        if neighbours:
            drop = np.setdiff1d(ids, np.concatenate(neighbours), assume_unique=False)
            plane = _without(plane, drop)
        self._prev = ids
        return tag, plane


def drop_flicker_array(labels: np.ndarray, axis: int = 0) -> np.ndarray:
    """Remove one-frame flickers along leading ``axis`` of a (..., Y, X) array, in place; returns it."""
    lead = labels.shape[:-2]
    other = lead[:axis] + lead[axis + 1:]
    for rest in np.ndindex(*other):
        filt = FlickerFilter()
        for t in range(lead[axis]):
            key = rest[:axis] + (t,) + rest[axis:]
            for k, plane in filt.push(labels[key], key):
                labels[k] = plane
        for k, plane in filt.finish():
            labels[k] = plane
    return labels


class FlickerWriter:
    """A labels writer (``LabelsTiffWriter`` / ``LabelsZarrWriter``) with flickers dropped on the way in.

    ``write(index, labels)`` takes pages in increasing order (skipped pages count as empty);
    ``close`` passes the rest on and closes ``writer``; ``abort`` aborts it.
    """

    def __init__(self, writer: Any, leading_shape: Sequence[int], axis: int = 0) -> None:
        self.writer = writer
        self.leading_shape = tuple(int(n) for n in leading_shape)
        if not 0 <= axis < len(self.leading_shape):
            raise OutputError(f"axis {axis} is not a leading axis of {self.leading_shape}.")
        self.axis = axis
        self.shape, self.dtype, self.n_pages = writer.shape, writer.dtype, writer.n_pages
        self._filters: dict[tuple[int, ...], FlickerFilter] = {}
        self._heap: list[tuple[int, int, np.ndarray]] = []
        self._count = 0  # tie-breaker for the heap
        self._next_in = 0
        self._next_out = 0
        self._zeros: np.ndarray | None = None

    def write(self, index: int | Sequence[int], labels: np.ndarray) -> None:
        if isinstance(index, (int, np.integer)):
            page = int(index)
        else:
            page = int(np.ravel_multi_index(tuple(int(i) for i in index), self.leading_shape))
        if page < self._next_in:
            raise OutputError(f"page {page} came after page {self._next_in - 1}; write frames in order.")
        while self._next_in < page:
            self._feed(self._next_in, self._zero())
        self._feed(page, np.asarray(labels))

    def _zero(self) -> np.ndarray:
        if self._zeros is None:
            self._zeros = np.zeros(self.shape[-2:], self.dtype)
        return self._zeros

    def _feed(self, page: int, plane: np.ndarray) -> None:
        key = np.unravel_index(page, self.leading_shape)
        rest = tuple(int(k) for i, k in enumerate(key) if i != self.axis)
        filt = self._filters.setdefault(rest, FlickerFilter())
        done = filt.push(plane, page)
        if int(key[self.axis]) == self.leading_shape[self.axis] - 1:  # the sequence is complete
            done += filt.finish()
            del self._filters[rest]
        self._next_in = page + 1
        for p, out in done:
            heapq.heappush(self._heap, (p, self._count, out))
            self._count += 1
        while self._heap and self._heap[0][0] == self._next_out:
            p, _, out = heapq.heappop(self._heap)
            self.writer.write(p, out)
            self._next_out += 1

    @property
    def pages_written(self) -> int:
        return self._next_out

    def close(self) -> None:
        """Judge and write the remaining pages (missing ones are empty), then close the writer."""
        while self._next_in < self.n_pages:
            self._feed(self._next_in, self._zero())
        self.writer.close()

    def abort(self) -> None:
        self._filters.clear()
        self._heap.clear()
        self.writer.abort()
