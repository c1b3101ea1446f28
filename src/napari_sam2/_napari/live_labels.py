"""Grow the output Labels layer along T with a live stack, without copying it at every frame.

The layer's data becomes a view ``buffer[:n]`` of a buffer whose capacity doubles when full, so a
stack growing one frame at a time costs amortised O(1) copies per frame; the labels already there
(the user's or the session's) are kept as they are. Results are still written through the
:class:`~.labels_writer.LabelsWriter` (only the session's own ids, napari's bounded undo).
No Qt; the layer is any object with a numpy-like ``data`` (a napari Labels layer).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GrowingLabels:
    """Keeps a Labels layer as long along its first axis as the stack it labels."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None

    def grow(self, layer: Any, n: int) -> bool:
        """Make ``layer.data`` hold ``n`` frames (never fewer than it has); True when it changed."""
        data = layer.data
        have = int(data.shape[0])
        if n <= have:
            return False
        buf = self._buffer
        mine = buf is not None and isinstance(data, np.ndarray) and data.base is buf and buf.shape[1:] == data.shape[1:]
        if not mine or buf.shape[0] < n:
            cap = max(int(n), 2 * have, 16)
            new = np.zeros((cap, *data.shape[1:]), dtype=data.dtype)
            new[:have] = np.asarray(data)
            self._buffer = buf = new
        layer.data = buf[:n]
        return True

    def release(self) -> None:
        """Forget the buffer (the layer keeps its data)."""
        self._buffer = None
