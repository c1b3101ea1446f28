"""Export label frames in the Cell Tracking Challenge (CTC) format, streaming.

Writes ``mask000.tif`` ... (uint16, one file per frame; four digits when there are
more than 1000 frames) and a track file with one ``L B E P`` line per track (label,
first frame, last frame, parent label or 0).

Gap rule: CTC needs every track label on consecutive frames. When an object vanishes
and reappears, the reappearance starts a new track label whose parent is the
object's previous track label. A track keeps its object id as label when that id is
free and fits uint16; otherwise (and for every re-appearance) it gets the lowest
free label. The returned :class:`CtcTrack` list maps labels back to object ids.

Divisions: with a :class:`~napari_sam2.engine.lineage.Lineage`, the first track of a
daughter gets as parent the latest track label its parent object had before the daughter's
first frame (0 if the parent never appeared). CTC wants the parent to end before its
daughters begin, which holds for divisions found by the tracker or made with "split here"
(the parent's track ends there).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import tifffile

from ..engine.lineage import Lineage
from ..engine.results import FrameResult
from ..errors import InputError, OutputError

_UINT16_MAX = 65535
_LUT_LIMIT = 2**24
_MASK_NAME = re.compile(r"^mask\d{3,}\.tif$")


@dataclass
class CtcTrack:
    """One CTC track: ``label`` on frames ``begin``..``end`` (inclusive)."""

    label: int
    begin: int
    end: int
    parent: int
    obj_id: int


class _Labeller:
    """Streaming assignment of CTC track labels to object ids, frame by frame."""

    def __init__(self, lineage: Lineage | None = None) -> None:
        self.lineage = lineage
        self.tracks: dict[int, CtcTrack] = {}
        self._open: dict[int, int] = {}  # obj_id -> label, objects present on the last frame
        self._last: dict[int, int] = {}  # obj_id -> its latest label (parent of a re-appearance)
        self._next_free = 1

    def _allocate(self, obj_id: int) -> int:
        if obj_id not in self._last and obj_id <= _UINT16_MAX and obj_id not in self.tracks:
            return obj_id
        while self._next_free in self.tracks:
            self._next_free += 1
        if self._next_free > _UINT16_MAX:
            raise OutputError("more than 65535 CTC tracks; uint16 masks cannot hold them.")
        return self._next_free

    def frame(self, t: int, obj_ids: np.ndarray) -> dict[int, int]:
        """Labels of the objects present on frame ``t`` (extending or starting tracks)."""
        current: dict[int, int] = {}
        before = dict(self._last) if self.lineage else self._last  # parents' labels before this frame
        for obj in (int(i) for i in obj_ids):
            label = self._open.get(obj)
            if label is not None:
                self.tracks[label].end = t
            else:
                parent = self._last.get(obj, 0)  # a re-appearance continues the object's own track
                if not parent and self.lineage:
                    mother = self.lineage.parent_of(obj)
                    parent = before.get(mother, 0) if mother is not None else 0
                label = self._allocate(obj)
                self.tracks[label] = CtcTrack(label, t, t, parent, obj)
                self._last[obj] = label
            current[obj] = label
        self._open = current
        return current


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    if not mapping:
        return np.zeros(labels.shape, np.uint16)
    ids = np.fromiter(mapping.keys(), np.int64)
    new = np.fromiter(mapping.values(), np.int64).astype(np.uint16)
    if ids.max() < _LUT_LIMIT:
        lut = np.zeros(int(ids.max()) + 1, np.uint16)
        lut[ids] = new
        return lut[labels]
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], labels)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[order][pos] == labels
    return np.where(found, new[order][pos], 0).astype(np.uint16)


def _prepare(out_dir: Path, track_file: str, overwrite: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    old = [p for p in out_dir.iterdir() if _MASK_NAME.match(p.name) or p.name == track_file]
    if old and not overwrite:
        raise OutputError(
            f"{out_dir} already holds CTC files ({old[0].name}, ...); choose an empty folder "
            "or pass overwrite=True."
        )
    for p in old:
        p.unlink()


def write_ctc(
    out_dir: str | Path,
    frames: Iterable[np.ndarray | FrameResult],
    *,
    n_frames: int | None = None,
    track_file: str = "man_track.txt",
    compress: bool = False,
    overwrite: bool = False,
    lineage: Lineage | None = None,
) -> list[CtcTrack]:
    """Write each label frame (2D/3D integer array, or FrameResult) as it comes.

    ``lineage`` gives daughters their parent's track label as ``P`` (see the module docstring).

    ``n_frames`` (if known) fixes the file-name digits up front; otherwise files are
    renamed to four digits at the end when more than 1000 frames came. Masks are
    uncompressed by default, which every CTC tool reads.
    """
    out_dir = Path(out_dir)
    _prepare(out_dir, track_file, overwrite)
    digits = 4 if (n_frames or 0) > 1000 else 3
    labeller = _Labeller(lineage)
    count = 0
    for t, item in enumerate(frames):
        labels = item.to_labels(np.uint32) if isinstance(item, FrameResult) else np.asarray(item)
        if labels.dtype.kind not in "biu" or labels.ndim not in (2, 3):
            raise InputError(f"frame {t}: expected a 2D or 3D integer label image, got {labels.dtype} {labels.shape}.")
        ids = np.unique(labels)
        if ids.size and ids[0] < 0:
            raise InputError(f"frame {t}: negative label {ids[0]}.")
        mapping = labeller.frame(t, ids[ids > 0])
        tifffile.imwrite(
            out_dir / f"mask{t:0{digits}d}.tif",
            _relabel(labels, mapping),
            compression="zlib" if compress else None,
            metadata=None,
        )
        count = t + 1
    if digits == 3 and count > 1000:
        for t in range(1000):
            (out_dir / f"mask{t:03d}.tif").rename(out_dir / f"mask{t:04d}.tif")
    tracks = sorted(labeller.tracks.values(), key=lambda tr: tr.label)
    with open(out_dir / track_file, "w", encoding="ascii") as fh:
        fh.writelines(f"{tr.label} {tr.begin} {tr.end} {tr.parent}\n" for tr in tracks)
    return tracks


def publish_ctc(temp_dir: str | Path, out_dir: str | Path, track_file: str = "man_track.txt") -> None:
    """Move a finished CTC export from ``temp_dir`` into ``out_dir``, replacing older CTC files there.

    Used by the CLI, which writes the export into a hidden folder first so that an interrupted
    run leaves no partial CTC folder behind.
    """
    temp_dir, out_dir = Path(temp_dir), Path(out_dir)
    _prepare(out_dir, track_file, overwrite=True)
    for p in sorted(temp_dir.iterdir()):
        os.replace(p, out_dir / p.name)
    temp_dir.rmdir()
