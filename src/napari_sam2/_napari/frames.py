"""Frame bookkeeping shared by the widget's parts: keys, session frame arguments, default axis.

A *frame key* is the tuple of ALL leading (non-YX) indices of a frame in the data's own order,
e.g. ``(t,)`` for a (T, Y, X) stack or ``(t, z)`` for (T, Z, Y, X): exactly a napari data
coordinate without its last two entries. ``VideoSession`` takes an int for 3D data and this
tuple for N-D data; :func:`session_frame` converts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_sam2.layer_prompts import FrameKey, key_of, result_key, round_key, session_frame  # noqa: F401

_TIME_NAMES = ("t", "time", "frame", "frames")
_Z_NAMES = ("z", "depth", "slice", "plane")


def default_axis(axis_labels: Sequence[str] | None, n_leading: int) -> int:
    """Which leading axis to propagate along when the user has not chosen.

    A labelled time axis wins (video tracking), then a Z axis, then the first axis.
    """
    if n_leading <= 0:
        return 0
    labels = [str(a).strip().lower() for a in (axis_labels or [])][:n_leading]
    for names in (_TIME_NAMES, _Z_NAMES):
        for i, lab in enumerate(labels):
            if lab in names:
                return i
    return 0


def axis_names(axis_labels: Sequence[str] | None, shape: Sequence[int], n_leading: int) -> list[str]:
    """Human names for the leading axes, e.g. ``["axis 0 (t, 40)", "axis 1 (z, 12)"]``."""
    labels = list(axis_labels or [])
    out = []
    for i in range(n_leading):
        lab = str(labels[i]) if i < len(labels) else ""
        named = lab and not lab.lstrip("-").isdigit()
        out.append(f"axis {i} ({lab}, {shape[i]} frames)" if named else f"axis {i} ({shape[i]} frames)")
    return out


def count_frames(n: int, direction: str, start: int, stop: Any = None) -> int:
    """How many frames a propagation from ``start`` visits in a sequence of ``n`` (progress bars).

    ``stop`` as ``VideoSession.propagate`` takes it: the last frame for forward / backward, a
    (first, last) pair for both directions.
    """
    start = min(max(int(start), 0), n - 1)
    lo, hi = 0, n - 1
    if stop is not None:
        if direction == "both":
            lo, hi = (int(v) for v in stop)
        elif direction == "forward":
            hi = int(stop)
        else:
            lo = int(stop)
        lo, hi = max(lo, 0), min(hi, n - 1)
    if direction == "forward":
        return max(hi - start + 1, 1)
    if direction == "backward":
        return max(start - lo + 1, 1)
    return max(hi - start + 1, 0) + max(start - lo, 0) or 1
