"""Session files (``*.sam2.json``): every prompt call of a ``VideoSession``, saved and replayed in order.

A :class:`SessionRecorder` on each session gets one entry per public prompt call (the
:func:`recorded` hooks); :func:`write_session` writes them with the image's identity and the
settings; :func:`load_session` opens a new session with those settings and replays the calls in
the same order, so it holds the same prompts, memories and masks. Mask prompts go to a compressed
``<name>.masks.npz`` beside the JSON. The schema is in docs/sessions.md; the reading side (schema
checks, identity, replay) is :mod:`.session_replay`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from .prompts import LabelMask
from .session_replay import (
    FORMAT,
    SESSION_KEYS,
    VERSION,
    SessionDoc,
    check_identity,
    hashed_keys,
    load_session,
    masks_path,
    read_session,
    replay,
)

__all__ = ["FORMAT", "VERSION", "SessionDoc", "SessionRecorder", "check_identity", "image_identity",
           "load_session", "read_session", "recorded", "recorded_propagation", "replay", "write_session"]


def _stop(stop: Any) -> int | list[int] | None:
    if stop is None:
        return None
    return int(stop) if np.ndim(stop) == 0 else [int(s) for s in np.reshape(stop, -1)]


class SessionRecorder:
    """The prompt calls of one session, in order, as JSON-ready dicts. Mask prompts are kept
    bit-packed and zlib-compressed (a label stack's :class:`~.prompts.LabelMask` by reference), so
    recording costs little next to the session's own state."""

    def __init__(self) -> None:
        self.ops: list[dict] = []
        self._masks: dict[str, Any] = {}

    def note(self, op: str, layout: Any, args: dict) -> dict:
        """Record a call that succeeded: ``args`` as ``inspect`` binds them."""
        entry: dict[str, Any] = {"op": op}
        if "frame" in args and args["frame"] is not None:
            entry["frame"] = [int(i) for i in layout.key(args["frame"])]
        if op not in ("reset", "propagate") and args.get("obj_id") is not None:
            entry["obj_id"] = int(args["obj_id"])
        elif op == "clear_prompts":
            entry["obj_id"] = None
        if op == "add_points":
            entry["points"] = np.asarray(args["points"], dtype=np.float64).reshape(-1, 2).tolist()
            entry["labels"] = [int(v) for v in np.asarray(args["labels"]).reshape(-1)]
            entry["clear"] = bool(args["clear"])
        elif op == "add_box":
            entry["box"] = np.asarray(args["box"], dtype=np.float64).reshape(-1).tolist()
            if args.get("points") is not None and np.size(args["points"]):
                entry["points"] = np.asarray(args["points"], dtype=np.float64).reshape(-1, 2).tolist()
                entry["labels"] = [int(v) for v in np.asarray(args["labels"]).reshape(-1)]
        elif op == "add_mask":
            name = f"m{len(self._masks)}"
            mask = args["mask"]
            if isinstance(mask, LabelMask):  # already compressed, shared by the objects of its frame
                self._masks[name] = mask
            else:
                m = np.asarray(mask).astype(bool)
                self._masks[name] = (zlib.compress(np.packbits(m.ravel()).tobytes(), 1), m.shape)
            entry["mask"] = name
        elif op == "choose_candidate":
            entry["candidate"] = int(args["k"])
        self.ops.append(entry)
        return entry

    def mask(self, name: str) -> np.ndarray:
        kept = self._masks[name]
        if isinstance(kept, LabelMask):
            return np.asarray(kept)
        packed, shape = kept
        bits = np.frombuffer(zlib.decompress(packed), np.uint8)
        return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)

    @property
    def mask_names(self) -> list[str]:
        return list(self._masks)


def recorded(op: str) -> Callable:
    """Decorate a ``VideoSession`` prompt method: each call that succeeds appends one entry."""

    def wrap(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = fn(self, *args, **kwargs)
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            self.recorder.note(op, self.layout, {k: v for k, v in bound.arguments.items() if k != "self"})
            return out

        return method

    return wrap


def recorded_propagation(fn: Callable) -> Callable:
    """Decorate ``VideoSession.propagate``: one entry at its first frame, counting the frames
    yielded (a cancelled or abandoned propagation is replayed as far as it went)."""

    @functools.wraps(fn)
    def propagate(self: Any, direction: str = "forward", start: Any = None, stop: Any = None, **kw: Any):
        if kw.get("discover_every") or kw.get("divisions") or kw.get("end_after_absent"):
            yield from fn(self, direction, start, stop, **kw)  # its segments and prompts record themselves
            return
        entry = None
        for result in fn(self, direction, start, stop, **kw):
            if entry is None:  # the call was accepted: record it where it started
                key = None if start is None else [int(i) for i in self.layout.key(start)]
                entry = {"op": "propagate", "direction": direction, "start": key, "stop": _stop(stop), "frames": 0}
                self.recorder.ops.append(entry)
            entry["frames"] += 1
            yield result

    return propagate


def image_identity(data: Any, layout: Any, path: str | os.PathLike | None = None) -> dict:
    """Shape, dtype and sha256 of the first, middle and last frames (cheap: three frames read)."""
    keys = hashed_keys(layout.leading_shape)
    return {
        "path": None if path is None else str(path),
        "shape": [int(s) for s in data.shape],
        "dtype": str(np.dtype(data.dtype)),
        "frames": [list(k) for k in keys],
        "sha256": [frame_sha256(data, k) for k in keys],
    }


def frame_sha256(data: Any, key: tuple[int, ...]) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(data[tuple(key)])).tobytes()).hexdigest()


def _dumps(doc: dict) -> str:
    """Indented JSON with one operation per line (readable, diffable)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "operations"}, indent=1)
    ops = ",\n".join("  " + json.dumps(op) for op in doc["operations"])
    return head[:-2] + ',\n "operations": [\n' + ops + "\n ]\n}\n"


def write_session(session: Any, path: str | os.PathLike, *, model: str | None = None,
                  checkpoint_sha256: str | None = None, image_path: str | os.PathLike | None = None,
                  direction: str | None = None, range: Any = None, objects: dict | None = None) -> Path:
    """Write ``session``'s recorded calls to ``path`` (``.sam2.json`` added when missing), with the
    image identity and settings; mask prompts to ``<name>.masks.npz`` beside it. Returns the path."""
    from .. import __version__

    path = Path(path)
    if not path.name.lower().endswith(".json"):
        path = path.with_name(path.name + ".sam2.json")
    rec: SessionRecorder = session.recorder
    lo_hi = session.intensity_range
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "written_by": f"napari-sam2 {__version__}",
        "image": image_identity(session.data, session.layout, image_path),
        "settings": {
            "model": {"name": model, "image_size": int(session.model.image_size),
                      "checkpoint_sha256": checkpoint_sha256},
            "axis": int(session.layout.axis),
            "channel": session.channel,
            "rgb": bool(session.layout.rgb),
            "intensity_range": None if lo_hi is None else [float(lo_hi[0]), float(lo_hi[1])],
            "fill_hole_area": session.fill_hole_area,
            "corrections_as_conditioning": session.corrections_as_conditioning,
            "max_cond_frames_in_attn": session.max_cond_frames_in_attn,
            "propagation": {"direction": direction, "range": _stop(range)},
        },
        "objects": {str(int(k)): {"name": v.get("name"), "parent": v.get("parent")}
                    for k, v in (objects or {}).items()},
        "lineage": session.lineage.to_dict() if getattr(session, "lineage", None) else None,
        "masks_file": masks_path(path).name if rec.mask_names else None,
        "operations": rec.ops,
    }
    assert set(doc["settings"]) >= set(SESSION_KEYS)
    try:
        if rec.mask_names:
            with open(masks_path(path), "wb") as fh:
                np.savez_compressed(fh, **{n: rec.mask(n) for n in rec.mask_names})
        path.write_text(_dumps(doc), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"Cannot write the session file {path}: {exc.strerror or exc}; choose another folder.") from None
    return path
