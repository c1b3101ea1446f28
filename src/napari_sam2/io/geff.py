"""Export tracks as a GEFF graph (Graph Exchange File Format of napari-geff, motile, traccuracy, ultrack).

A GEFF is a zarr group. Here it holds one node per (object, frame) where the object has pixels
in the label frames, with properties ``t``, (``z``,) ``y``, ``x`` (centroid, pixels), ``area``
(pixels or voxels), ``seg_id`` (the object's value in the labels written beside it),
``track_id`` (the object id: each object is one tracklet) and ``lineage_id`` (the oldest
object of its connected lineage: the root of its division tree when the root appears). Directed edges join consecutive appearances of one object (across frames where it
is missing, too) and, for each division of a :class:`~napari_sam2.engine.lineage.Lineage`,
the parent's last node before the daughter's first frame to that first node; the edge
property ``division`` tells them apart. Axes ``t``/``z``/``y``/``x`` carry the stack's
calibration as GEFF ``scale`` / ``scaled_unit``.

Writing and reading use the ``geff`` package (``pip install "napari-sam2[tracks]"``),
imported only here. Label frames stream through (``_track_graph``): only a few numbers per node are kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..engine.lineage import Lineage
from ..engine.results import FrameResult
from ..errors import InputError, OutputError
from ._track_graph import build_track_graph
from ._units import normalize_unit
from .labels_zarr import _NGFF_UNITS

_NEED = 'GEFF export needs the geff package: pip install "napari-sam2[tracks]".'


@dataclass(frozen=True)
class GeffSummary:
    """What :func:`write_geff` wrote."""

    path: Path
    nodes: int
    edges: int
    divisions: int


def require_geff() -> None:
    """OutputError now (before any work) when the geff package is missing."""
    _geff()


def _geff() -> Any:
    try:
        import geff
        import geff_spec
    except ImportError:
        raise OutputError(_NEED) from None
    return geff, geff_spec


def _axes(geff_spec: Any, names: Sequence[str], scale: Sequence[float] | None, unit: str | None,
          frame_interval: float | None) -> list[Any]:
    ngff = _NGFF_UNITS.get(normalize_unit(unit) or "")
    axes = [geff_spec.Axis(name="t", type="time", unit="frame",
                           **({"scale": float(frame_interval), "scaled_unit": "second"} if frame_interval else {}))]
    for i, name in enumerate(names):
        extra: dict[str, Any] = {}
        if scale is not None and scale[i]:
            extra["scale"] = float(scale[i])
            if ngff:
                extra["scaled_unit"] = ngff
        axes.append(geff_spec.Axis(name=name, type="space", unit="pixel", **extra))
    return axes


def write_geff(
    path: str | Path,
    frames: Iterable[np.ndarray | FrameResult],
    *,
    lineage: Lineage | None = None,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
    frame_interval: float | None = None,
    overwrite: bool = False,
) -> GeffSummary:
    """Write the tracks of label frames (2D or 3D integer arrays, or FrameResults, frame ``t`` in order).

    ``scale``: the pixel size per spatial axis (Y, X or Z, Y, X) in ``unit``; ``frame_interval``:
    seconds per frame. An existing ``path`` is replaced only with ``overwrite=True``.
    """
    geff, geff_spec = _geff()
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise OutputError(f"{path} already exists; choose another name or pass overwrite=True.")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    graph = build_track_graph(frames, lineage)
    names = graph.axis_names
    ndim = len(names)
    if scale is not None and len(scale) != ndim:
        raise InputError(f"scale {tuple(scale)} needs one value per spatial axis ({', '.join(names)}).")
    t, seg, area, cent = graph.t, graph.seg, graph.area, graph.centroid
    sources, targets, division = graph.src, graph.dst, graph.division
    lineage_id = graph.lineage_id
    node_ids = np.arange(t.size, dtype=np.int64)
    node_props = {"t": t, "seg_id": seg, "track_id": seg.copy(), "lineage_id": lineage_id, "area": area}
    node_props.update({name: cent[:, i] for i, name in enumerate(names)})
    metadata = geff_spec.GeffMetadata(
        directed=True,
        axes=_axes(geff_spec, names, scale, unit, frame_interval),
        node_props_metadata={},
        edge_props_metadata={},
        track_node_props={"tracklet": "track_id", "lineage": "lineage_id"},
        extra={"napari_sam2": {"lineage": (lineage or Lineage()).to_dict(), "seg_id": "label value in the "
                               "labels image written with this graph"}},
    )
    try:
        geff.core_io.write_arrays(
            str(path), node_ids, {k: {"values": v, "missing": None} for k, v in node_props.items()},
            np.stack([sources, targets], axis=1).astype(np.int64).reshape(-1, 2),
            {"division": {"values": division, "missing": None}}, metadata,
        )
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}; choose another place.") from None
    return GeffSummary(path, int(t.size), int(sources.size), int(division.sum()))


@dataclass
class GeffTracks:
    """A GEFF read back: node properties by name, ``edges`` (E, 2) node ids, ``edge_props``, ``metadata``."""

    node_ids: np.ndarray
    nodes: dict[str, np.ndarray]
    edges: np.ndarray
    edge_props: dict[str, np.ndarray]
    metadata: Any

    def lineage(self) -> Lineage:
        """The lineage this package stored in the metadata (empty when another tool wrote the file)."""
        extra = (self.metadata.extra or {}).get("napari_sam2", {})
        return Lineage.from_dict(extra["lineage"]) if "lineage" in extra else Lineage()


def read_geff(path: str | Path, *, validate_data: bool = False) -> GeffTracks:
    """Read a GEFF (ours or another tool's) into numpy arrays; its structure is validated by the geff
    package, and with ``validate_data`` also the graph, tracklet and lineage ids."""
    geff, _ = _geff()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; give the folder of a GEFF graph.")
    config = None
    if validate_data:
        from geff.validate.data import ValidationConfig

        config = ValidationConfig(graph=True, lineage=True, tracklet=True)
    try:
        mem = geff.core_io.read_to_memory(str(path), data_validation=config)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise InputError(f"{path} is not a readable GEFF graph ({err}).") from None
    return GeffTracks(
        node_ids=np.asarray(mem["node_ids"]),
        nodes={k: np.asarray(v["values"]) for k, v in mem["node_props"].items()},
        edges=np.asarray(mem["edge_ids"]).reshape(-1, 2),
        edge_props={k: np.asarray(v["values"]) for k, v in mem["edge_props"].items()},
        metadata=mem["metadata"],
    )
