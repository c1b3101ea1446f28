"""The object panel's Export, without Qt: the output labels as a TIFF and a per-object CSV, as the CLI writes.

The labels go through :class:`~napari_sam2.io.labels_writer.LabelsTiffWriter` (ImageJ TIFF for ids
<= 65535, else OME-TIFF; page by page) and the table through :class:`~napari_sam2.io.table.ObjectTable`
(the CLI's ``--table`` columns: frame, obj_id, present, score, iou, area, centroid, box). The masks are
read from the Labels layer (what the user sees, with their edits); present / score / iou come from the
session where it has the object on that frame (NaN / False otherwise). Files are written next to each
other: ``<stem>.tif`` and ``<stem>_objects.csv``; an existing file is only replaced when ``overwrite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..engine.results import FrameResult
from ..errors import OutputError
from ..io.labels_writer import LabelsTiffWriter
from ..io.table import ObjectTable
from .objects import frame_keys, ids_on_frame

AXES = {3: "TYX", 4: "TZYX", 5: "TCZYX"}
#: objects measured per ObjectTable.add call (bounds the bool masks held at once)
BATCH = 64


def export_paths(path: str | Path) -> tuple[Path, Path]:
    """(labels TIFF, objects CSV) for a chosen file name."""
    path = Path(path)
    stem = path.name[: -len(".tiff")] if path.name.lower().endswith(".tiff") else \
        path.name[:-4] if path.name.lower().endswith(".tif") else path.name
    return path.with_name(stem + ".tif"), path.with_name(stem + "_objects.csv")


def _scores(session: Any, key: tuple[int, ...], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(ids)
    present, score, iou = np.zeros(n, bool), np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    if session is None:
        return present, score, iou
    known = [int(i) for i in ids if int(i) in set(session.obj_ids)]
    if not known:
        return present, score, iou
    try:
        res = session.result(key, known)
    except Exception:  # noqa: BLE001 - a frame outside the session: measurements only
        return present, score, iou
    where = {int(o): k for k, o in enumerate(res.obj_ids)}
    for j, i in enumerate(ids):
        k = where.get(int(i))
        if k is not None:
            present[j], score[j], iou[j] = bool(res.present[k]), float(res.scores[k]), float(res.iou[k])
    return present, score, iou


def object_table(data: Any, session: Any = None, frame_axis: int = 0) -> ObjectTable:
    """An ObjectTable of every labelled object on every frame of ``data`` (..., Y, X)."""
    lead = len(data.shape) - 2
    others = [f"index_{i}" for i in range(lead) if i != frame_axis]
    table = ObjectTable(index_names=others or None)
    for key in frame_keys(tuple(data.shape)):
        frame = np.asarray(data[key])
        ids = ids_on_frame(frame)
        if not ids.size:
            continue
        present, score, iou = _scores(session, key, ids)
        index = tuple(k for i, k in enumerate(key) if i != frame_axis)
        for s in range(0, len(ids), BATCH):
            part = ids[s: s + BATCH]
            masks = frame[None] == part[:, None, None]
            table.add(FrameResult(
                frame=int(key[frame_axis]), obj_ids=tuple(int(i) for i in part), masks=masks,
                scores=score[s: s + BATCH], present=present[s: s + BATCH] | masks.any((1, 2)) & (session is None),
                iou=iou[s: s + BATCH], object_score_logits=np.zeros(len(part), np.float32), index=index, key=key))
    return table


def export_objects(data: Any, path: str | Path, session: Any = None, frame_axis: int = 0,
                   overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``data`` (the output labels) as ``<stem>.tif`` and its ``<stem>_objects.csv``; their paths."""
    tif, csv = export_paths(path)
    if data.ndim not in AXES:
        raise OutputError(f"Export writes (T, Y, X) to (T, C, Z, Y, X) labels, not {data.ndim} dimensions.")
    for p in (tif, csv):
        if p.exists() and not overwrite:
            raise OutputError(f"{p} already exists; choose another name (nothing was written).")
    if not tif.parent.is_dir():
        raise OutputError(f"The folder {tif.parent} does not exist; choose an existing folder.")
    top = int(np.max(data)) if data.size else 0
    with LabelsTiffWriter(tif, data.shape, max_label=max(top, 1), axes=AXES[data.ndim]) as writer:
        for key in frame_keys(tuple(data.shape)):
            writer.write(key, np.asarray(data[key]))
    object_table(data, session, frame_axis).write_csv(csv)
    return tif, csv
