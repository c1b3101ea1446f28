"""Export tracks as a TrackMate XML file (Fiji: *File > Open*, or TrackMate's "Load a TrackMate file").

The graph is the GEFF export's (:mod:`napari_sam2.io._track_graph`). Each (object, frame) with
pixels becomes a spot and each edge a TrackMate edge. Edges join an object's frames, also across
gaps, and a division edge goes from the parent's last spot to each daughter's first spot. A
TrackMate track is a connected lineage: a dividing cell and its daughters are one track that
splits. Spots carry ``POSITION_X/Y/Z/T`` in physical units (the stack's calibration), ``FRAME``,
``RADIUS`` (that of a disc or ball of the same area or volume), ``AREA`` and ``SEG_ID`` (the
label value in the labels image). ``Settings`` describe the image size and calibration and
leave the file name empty: link the image in TrackMate to see it under the tracks.

Only spots, edges and a few track features are written. TrackMate computes its other features
again when asked (*Compute all features*). Nothing beyond the standard library is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..engine.lineage import Lineage
from ..engine.results import FrameResult
from ..errors import InputError, OutputError
from ._track_graph import build_track_graph
from ._units import normalize_unit

TRACKMATE_VERSION = "7.11.1"  # the XML layout written here (TrackMate 7 and later read it)

_SPOT_FEATURES = [  # feature, name, shortname, dimension, isint
    ("QUALITY", "Quality", "Quality", "QUALITY", "false"),
    ("POSITION_X", "X", "X", "POSITION", "false"),
    ("POSITION_Y", "Y", "Y", "POSITION", "false"),
    ("POSITION_Z", "Z", "Z", "POSITION", "false"),
    ("POSITION_T", "T", "T", "TIME", "false"),
    ("FRAME", "Frame", "Frame", "NONE", "true"),
    ("RADIUS", "Radius", "R", "LENGTH", "false"),
    ("VISIBILITY", "Visibility", "Visibility", "NONE", "true"),
    ("AREA", "Area", "Area", "AREA", "false"),
    ("SEG_ID", "Label value", "Label", "NONE", "true"),
]
_EDGE_FEATURES = [
    ("SPOT_SOURCE_ID", "Source spot ID", "Source ID", "NONE", "true"),
    ("SPOT_TARGET_ID", "Target spot ID", "Target ID", "NONE", "true"),
    ("DIVISION", "Division", "Division", "NONE", "true"),
]
_TRACK_FEATURES = [
    ("TRACK_ID", "Track ID", "Track ID", "NONE", "true"),
    ("TRACK_INDEX", "Track index", "Index", "NONE", "true"),
    ("NUMBER_SPOTS", "Number of spots in track", "N spots", "NONE", "true"),
    ("NUMBER_SPLITS", "Number of split events", "N splits", "NONE", "true"),
]


def _features(tag: str, rows: list[tuple[str, ...]]) -> str:
    items = "".join(f'        <Feature feature="{f}" name="{n}" shortname="{s}" dimension="{d}" isint="{i}" />\n'
                    for f, n, s, d, i in rows)
    return f"      <{tag}>\n{items}      </{tag}>\n"


def write_trackmate(
    path: str | Path,
    frames: Iterable[np.ndarray | FrameResult],
    *,
    lineage: Lineage | None = None,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
    frame_interval: float | None = None,
    overwrite: bool = False,
) -> int:
    """Write the tracks of label frames (2D or 3D; frame ``t`` in order) as TrackMate XML; returns the spot count.

    ``scale``: pixel size per spatial axis (Y, X or Z, Y, X) in ``unit``; ``frame_interval``: seconds
    per frame. An existing ``path`` is replaced only with ``overwrite=True``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; choose another name or pass overwrite=True.")
    g = build_track_graph(frames, lineage)
    ndim = len(g.axis_names)
    if scale is not None and len(scale) != ndim:
        raise InputError(f"scale {tuple(scale)} needs one value per spatial axis ({', '.join(g.axis_names)}).")
    size = [float(s) for s in scale] if scale is not None else [1.0] * ndim
    space = (normalize_unit(unit) or "pixel") if scale is not None else "pixel"
    dt = float(frame_interval) if frame_interval else 1.0
    time_unit = "sec" if frame_interval else "frame"
    pos = g.centroid * np.asarray(size)[None, :] if len(g.t) else g.centroid
    if ndim == 2:
        radius = np.sqrt(g.area / math.pi) * math.sqrt(size[0] * size[1])
        area = g.area * size[0] * size[1]
    else:
        voxel = size[0] * size[1] * size[2]
        radius = np.cbrt(3 * g.area * voxel / (4 * math.pi))
        area = g.area * voxel
    shape = g.frame_shape or (1, 1)
    depth = shape[0] if ndim == 3 else 1
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<TrackMate version="{TRACKMATE_VERSION}">\n',
             "  <Log>Written by napari-sam2 (tracks of SAM 2 label frames).</Log>\n",
             f'  <Model spatialunits="{space}" timeunits="{time_unit}">\n    <FeatureDeclarations>\n',
             _features("SpotFeatures", _SPOT_FEATURES), _features("EdgeFeatures", _EDGE_FEATURES),
             _features("TrackFeatures", _TRACK_FEATURES), "    </FeatureDeclarations>\n",
             f'    <AllSpots nspots="{len(g.t)}">\n']
    order = np.argsort(g.t, kind="stable")
    for t in np.unique(g.t):
        lines.append(f'      <SpotsInFrame frame="{int(t)}">\n')
        for n in order[np.searchsorted(g.t[order], t, "left"):np.searchsorted(g.t[order], t, "right")]:
            x, y = pos[n, -1], pos[n, -2]
            z = pos[n, 0] if ndim == 3 else 0.0
            lines.append(f'        <Spot ID="{n}" name="ID{n}" QUALITY="1.0" POSITION_X="{x:.6g}" '
                         f'POSITION_Y="{y:.6g}" POSITION_Z="{z:.6g}" POSITION_T="{t * dt:.6g}" FRAME="{int(t)}" '
                         f'RADIUS="{radius[n]:.6g}" VISIBILITY="1" AREA="{area[n]:.6g}" SEG_ID="{int(g.seg[n])}" />\n')
        lines.append("      </SpotsInFrame>\n")
    lines.append("    </AllSpots>\n    <AllTracks>\n")
    edge_comp = g.component[g.src] if g.src.size else np.zeros(0, np.int64)
    tracks = np.unique(edge_comp)
    for index, comp in enumerate(tracks):
        pick = np.flatnonzero(edge_comp == comp)
        n_spots = int((g.component == comp).sum())
        splits = int((np.bincount(g.src[pick]) > 1).sum())
        lines.append(f'      <Track name="Track_{index}" TRACK_ID="{index}" TRACK_INDEX="{index}" '
                     f'NUMBER_SPOTS="{n_spots}" NUMBER_SPLITS="{splits}">\n')
        lines += [f'        <Edge SPOT_SOURCE_ID="{g.src[e]}" SPOT_TARGET_ID="{g.dst[e]}" '
                  f'DIVISION="{int(g.division[e])}" />\n' for e in pick]
        lines.append("      </Track>\n")
    lines.append("    </AllTracks>\n    <FilteredTracks>\n")
    lines += [f'      <TrackID TRACK_ID="{i}" />\n' for i in range(len(tracks))]
    lines.append("    </FilteredTracks>\n  </Model>\n  <Settings>\n")
    lines.append(f'    <ImageData filename="" folder="" width="{shape[-1]}" height="{shape[-2]}" nslices="{depth}" '
                 f'nframes="{max(g.n_frames, 1)}" pixelwidth="{size[-1]}" pixelheight="{size[-2]}" '
                 f'voxeldepth="{size[0] if ndim == 3 else 1.0}" timeinterval="{dt}" />\n')
    lines.append(f'    <BasicSettings xstart="0" xend="{shape[-1] - 1}" ystart="0" yend="{shape[-2] - 1}" zstart="0" '
                 f'zend="{depth - 1}" tstart="0" tend="{max(g.n_frames, 1) - 1}" />\n')
    lines.append('    <InitialSpotFilter feature="QUALITY" value="0.0" isabove="true" />\n'
                 "    <SpotFilterCollection />\n    <TrackFilterCollection />\n"
                 "    <AnalyzerCollection>\n      <SpotAnalyzers />\n      <EdgeAnalyzers />\n"
                 "      <TrackAnalyzers />\n    </AnalyzerCollection>\n  </Settings>\n"
                 '  <GUIState state="ConfigureViews" />\n</TrackMate>\n')
    try:
        path.write_text("".join(lines), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}; choose another place.") from None
    return int(len(g.t))
