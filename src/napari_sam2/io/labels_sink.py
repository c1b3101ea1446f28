"""Label frames in any order, one TIFF out in page order, with bounded memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


class LabelsSink:
    """Label frames in, in any order; one TIFF out, written in page order with bounded memory.

    Frames are put at their frame key (``FrameResult.key``), pages of ``leading_shape`` (the
    stack layout's). With ``spool`` None, frames must come in increasing page order and go straight to the
    writer. Otherwise each frame is stored raw at its offset in a sparse temporary file and
    :meth:`finish` copies the stored frames into the writer in order (frames never stored
    are written as zeros by the writer).
    """

    def __init__(self, writer: Any, leading_shape: tuple[int, ...], spool: Path | None) -> None:
        self.writer = writer
        self.leading_shape = leading_shape
        self.spool = spool
        self.frame_shape = writer.shape[-2:]
        self.dtype = writer.dtype
        self.page_bytes = int(np.prod(self.frame_shape)) * self.dtype.itemsize
        self._fh = None
        if spool is not None:
            self._fh = open(spool, "w+b")
            self._fh.truncate(writer.n_pages * self.page_bytes)  # sparse: unwritten pages cost no disk
            self._stored = np.zeros(writer.n_pages, bool)

    def put(self, key: Sequence[int], labels: np.ndarray) -> None:
        page = int(np.ravel_multi_index(tuple(key), self.leading_shape))
        if self._fh is None:
            self.writer.write(page, labels)
            return
        self._fh.seek(page * self.page_bytes)
        self._fh.write(np.ascontiguousarray(labels, dtype=self.dtype).tobytes())
        self._stored[page] = True

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            for page in np.flatnonzero(self._stored):
                self._fh.seek(int(page) * self.page_bytes)
                frame = np.frombuffer(self._fh.read(self.page_bytes), self.dtype).reshape(self.frame_shape)
                self.writer.write(int(page), frame)
        self.writer.close()

    def close(self) -> None:
        """Release the temporary file (after finish, or on failure)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)
