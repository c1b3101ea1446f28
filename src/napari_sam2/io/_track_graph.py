"""The track graph of label frames, shared by the GEFF and TrackMate exports.

Nodes are (object, frame) pairs where the object has pixels, measured as frames stream by
(centroid, area; a few numbers per node, never masks). Edges join consecutive appearances of
one object (across frames where it is missing, too) and, for each division of a
:class:`~napari_sam2.engine.lineage.Lineage`, the parent's last node before the daughter's
first frame to that first node. ``component`` numbers the weakly connected components (a
lineage tree, as far as its objects appear) and ``lineage_id`` names each by its oldest object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..engine.lineage import Lineage
from ..engine.results import FrameResult
from ..errors import InputError


@dataclass
class TrackGraph:
    t: np.ndarray  # int64 (N,) frame of each node
    seg: np.ndarray  # int64 (N,) object id (label value)
    area: np.ndarray  # int64 (N,) pixels or voxels
    centroid: np.ndarray  # float64 (N, ndim) in pixels, (z,) y, x
    frame_shape: tuple[int, ...]  # (Y, X) or (Z, Y, X); () when there were no frames
    n_frames: int
    src: np.ndarray  # int64 (E,) node index
    dst: np.ndarray  # int64 (E,)
    division: np.ndarray  # bool (E,) parent -> daughter edge
    component: np.ndarray  # int64 (N,) 0..K-1
    lineage_id: np.ndarray  # int64 (N,) the oldest object of the node's component

    @property
    def axis_names(self) -> tuple[str, ...]:
        return ("z", "y", "x")[3 - max(len(self.frame_shape), 2):]


def _measure(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids present on a label frame, their areas and their centroids (one column per axis)."""
    ids = np.unique(labels)
    if ids.size and ids[0] < 0:
        raise InputError(f"negative label {ids[0]}.")
    ids = ids[ids > 0]
    if ids.size == 0:
        return ids.astype(np.int64), np.zeros(0, np.int64), np.zeros((0, labels.ndim))
    compact = np.searchsorted(np.concatenate([np.zeros(1, ids.dtype), ids]), labels).ravel()
    counts = np.bincount(compact, minlength=ids.size + 1)
    cols = []
    for ax in range(labels.ndim):
        shape = [1] * labels.ndim
        shape[ax] = -1
        coord = np.broadcast_to(np.arange(labels.shape[ax], dtype=np.float64).reshape(shape), labels.shape)
        cols.append(np.bincount(compact, weights=coord.ravel(), minlength=ids.size + 1)[1:] / counts[1:])
    return ids.astype(np.int64), counts[1:].astype(np.int64), np.stack(cols, axis=1)


def build_track_graph(frames: Iterable[np.ndarray | FrameResult], lineage: Lineage | None = None) -> TrackGraph:
    """Measure label frames (2D or 3D integer arrays, or FrameResults; frame ``t`` in order) into a graph."""
    ts, segs, areas, cents = [], [], [], []
    shape: tuple[int, ...] | None = None
    n = 0
    for t, item in enumerate(frames):
        labels = item.to_labels(np.uint32) if isinstance(item, FrameResult) else np.asarray(item)
        if labels.dtype.kind not in "biu" or labels.ndim not in (2, 3):
            raise InputError(f"frame {t}: expected a 2D or 3D integer label image, got {labels.dtype} {labels.shape}.")
        if shape is None:
            shape = labels.shape
        elif labels.ndim != len(shape):
            raise InputError(f"frame {t} has {labels.ndim} dimensions, the earlier frames {len(shape)}.")
        try:
            ids, area, cent = _measure(labels)
        except InputError as err:
            raise InputError(f"frame {t}: {err}") from None
        ts.append(np.full(ids.size, t, np.int64))
        segs.append(ids)
        areas.append(area)
        cents.append(cent)
        n = t + 1
    ndim = len(shape) if shape else 2
    t = np.concatenate(ts) if ts else np.zeros(0, np.int64)
    seg = np.concatenate(segs) if segs else np.zeros(0, np.int64)
    area = np.concatenate(areas) if areas else np.zeros(0, np.int64)
    cent = np.concatenate(cents) if cents else np.zeros((0, ndim))
    src, dst, division = _edges(t, seg, lineage)
    component, lineage_id = _components(t, seg, src, dst)
    return TrackGraph(t, seg, area, cent, tuple(shape or ()), n, src, dst, division, component, lineage_id)


def _edges(t: np.ndarray, seg: np.ndarray, lineage: Lineage | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((t, seg))  # by object, then time
    seg_sorted, t_sorted = seg[order], t[order]
    same = seg_sorted[1:] == seg_sorted[:-1]
    src, dst = order[:-1][same], order[1:][same]
    n_track = src.size
    div_src: list[int] = []
    div_dst: list[int] = []
    for div in (lineage or ()):
        lo, hi = np.searchsorted(seg_sorted, div.parent, "left"), np.searchsorted(seg_sorted, div.parent, "right")
        for kid in div.daughters:
            k = np.searchsorted(seg_sorted, kid, "left")
            if k == seg_sorted.size or seg_sorted[k] != kid:
                continue  # the daughter never appears
            before = lo + np.searchsorted(t_sorted[lo:hi], t_sorted[k], "left")  # parent nodes before it
            if before > lo:
                div_src.append(int(order[before - 1]))
                div_dst.append(int(order[k]))
    src = np.concatenate([src, np.array(div_src, np.int64)]).astype(np.int64)
    dst = np.concatenate([dst, np.array(div_dst, np.int64)]).astype(np.int64)
    division = np.zeros(src.size, bool)
    division[n_track:] = True
    return src, dst, division


def _components(t: np.ndarray, seg: np.ndarray, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = t.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    adj = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(adj, directed=True, connection="weak")
    comp = comp.astype(np.int64)
    first = np.lexsort((seg, t, comp))  # per component: earliest node, lowest id on a tie
    starts = np.flatnonzero(np.r_[True, comp[first][1:] != comp[first][:-1]])
    oldest = np.empty(comp.max() + 1, np.int64)
    oldest[comp[first][starts]] = seg[first][starts]
    return comp, oldest[comp]
