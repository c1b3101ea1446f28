"""Which leading axis the widget offers to propagate along, and how it names the leading axes.

Frame keys and frame counting are the engine's (:mod:`napari_sam2.engine.layout`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
