"""Reading side of session files: schema checks, the image identity check, and the replay.

:func:`read_session` refuses another format or version and a missing mask file (InputError);
:func:`check_identity` refuses frames of another shape or dtype and names frames whose pixels
differ; :func:`replay` makes the recorded calls again, in order, on a ``VideoSession``.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, PromptError, Sam2Error
from .layout import FrameKey
from .prompts import BoxPrompt, PointPrompt, PromptSet

FORMAT = "napari-sam2 session"
VERSION = 1
SUFFIX = ".sam2.json"
OPS = ("add_points", "add_box", "add_mask", "choose_candidate", "clear_prompts", "remove_object", "reset",
       "end_object", "propagate")
#: the ``VideoSession`` arguments a session file restores (``settings`` keys)
SESSION_KEYS = ("axis", "channel", "rgb", "intensity_range", "fill_hole_area", "corrections_as_conditioning",
                "max_cond_frames_in_attn")


def masks_path(path: Path) -> Path:
    """``movie.sam2.json`` -> ``movie.masks.npz`` (the mask prompts beside it)."""
    name = path.name
    for suffix in (SUFFIX, ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".masks.npz")


def hashed_keys(leading_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The frame keys whose pixels identify an image: first, middle and last (flat order)."""
    n = int(np.prod(leading_shape))
    return [tuple(int(i) for i in np.unravel_index(f, leading_shape)) for f in sorted({0, n // 2, n - 1})]


class SessionDoc:
    """A checked session file; also a prompt source for the CLI (``frames``, ``obj_ids``, ``apply``)."""

    def __init__(self, path: Path, doc: dict) -> None:
        self.path, self.doc = path, doc
        self.operations: list[dict] = doc["operations"]
        self.settings: dict = doc.get("settings") or {}
        self.image: dict = doc["image"]
        self.objects: dict = doc.get("objects") or {}
        self._final: dict | None = None

    @property
    def masks_file(self) -> Path | None:
        name = self.doc.get("masks_file")
        return None if not name else self.path.with_name(name)

    def session_kwargs(self) -> dict:
        """``VideoSession`` keyword arguments (``axis`` included) the session was made with."""
        out = {k: self.settings[k] for k in SESSION_KEYS if self.settings.get(k) is not None}
        if "intensity_range" in out:
            out["intensity_range"] = tuple(float(v) for v in out["intensity_range"])
        return out

    @property
    def direction(self) -> str | None:
        return (self.settings.get("propagation") or {}).get("direction")

    # ---- what is prompted at the end (the CLI's progress, the widget's prompt layers) ----------
    def final_state(self) -> dict[tuple[FrameKey, int], dict]:
        """(frame key, obj id) -> {"points", "labels", "box", "mask"} left after every operation."""
        if self._final is None:
            state: dict[tuple[FrameKey, int], dict] = {}
            for op in self.operations:
                kind, key = op["op"], (tuple(op.get("frame") or ()), op.get("obj_id"))
                if kind == "add_points":
                    old = state.get(key) if not op.get("clear", True) else None
                    new = old if old is not None and not old["mask"] else {"points": [], "labels": [], "box": None}
                    new = dict(new, points=new["points"] + op["points"], labels=new["labels"] + op["labels"],
                               mask=False)
                    state[key] = new
                elif kind == "add_box":
                    state[key] = {"points": op.get("points", []), "labels": op.get("labels", []),
                                  "box": op["box"], "mask": False}
                elif kind == "add_mask":
                    state[key] = {"points": [], "labels": [], "box": None, "mask": True}
                elif kind == "clear_prompts":
                    state = {k: v for k, v in state.items()
                             if k[0] != key[0] or (key[1] is not None and k[1] != key[1])}
                elif kind == "remove_object":
                    state = {k: v for k, v in state.items() if k[1] != key[1]}
                elif kind == "reset":
                    state = {}
            self._final = state
        return self._final

    @property
    def frames(self) -> list[FrameKey]:
        return sorted({k[0] for k in self.final_state()})

    @property
    def obj_ids(self) -> list[int]:
        return sorted({int(k[1]) for k in self.final_state()})

    def __bool__(self) -> bool:
        return bool(self.final_state())

    def prompts(self) -> tuple[PromptSet, set[int]]:
        """The clicks and boxes left at the end (as prompt layers hold them), and the ids with mask prompts."""
        ps, masked = PromptSet(), set()
        for (frame, obj_id), st in sorted(self.final_state().items()):
            if st["mask"]:
                masked.add(int(obj_id))
                continue
            if st["box"] is not None:
                ps.boxes.append(BoxPrompt(frame, int(obj_id), np.asarray(st["box"], float)))
            if st["points"]:
                ps.points.append(PointPrompt(frame, int(obj_id), np.asarray(st["points"], float).reshape(-1, 2),
                                             np.asarray(st["labels"], int)))
        return ps, masked

    def apply(self, session: Any) -> None:
        """The CLI's prompt step: replay up to the last prompt call (the CLI then propagates itself)."""
        replay(session, self, trailing_propagations=False)


def read_session(path: str | os.PathLike) -> SessionDoc:
    """Read and check a session file: format, version, operations, the mask file."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputError(f"There is no session file {path}; check the path.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{name} is not a napari-sam2 session file ({exc.__class__.__name__}); "
                         "choose a .sam2.json file saved by napari-sam2.") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != FORMAT:
        raise InputError(f"{name} is not a napari-sam2 session file (format {fmt!r}, expected {FORMAT!r}); "
                         "choose a .sam2.json file saved by napari-sam2.")
    version = doc.get("version")
    if version != VERSION:
        if isinstance(version, int) and version > VERSION:
            raise InputError(f"{name} is a session file of version {version}, written by a newer napari-sam2; "
                             f"update napari-sam2 to replay it (this one reads version {VERSION}).")
        raise InputError(f"{name} has session version {version!r}; this napari-sam2 reads version {VERSION}.")
    ops, image = doc.get("operations"), doc.get("image")
    if not isinstance(ops, list) or not isinstance(image, dict) or "shape" not in image or "dtype" not in image:
        raise InputError(f"{name} is incomplete (no operations or image); save the session again.")
    for i, op in enumerate(ops):
        kind = op.get("op") if isinstance(op, dict) else None
        if kind not in OPS:
            raise InputError(f"{name}: operation {i + 1} has the unknown kind {kind!r}; save the session again.")
    session = SessionDoc(path, doc)
    if any(op["op"] == "add_mask" for op in ops):
        mf = session.masks_file
        if mf is None or not mf.is_file():
            want = mf.name if mf is not None else masks_path(path).name
            raise InputError(f"{name}: its mask file {want} is missing; keep it in the same folder as the "
                             "session file.")
    return session


def check_identity(image: dict, data: Any, name: str = "the session") -> list[str]:
    """InputError for frames of another shape or dtype; a message per frame whose pixels differ."""
    from .session_file import frame_sha256

    shape, dtype = tuple(int(s) for s in data.shape), str(np.dtype(data.dtype))
    want_shape, want_dtype = tuple(int(s) for s in image["shape"]), str(image["dtype"])
    if (shape, dtype) != (want_shape, want_dtype):
        raise InputError(f"{name} was made on an image of shape {want_shape} ({want_dtype}), not {shape} ({dtype}); "
                         "open it on the same image.")
    changed = [tuple(k) for k, h in zip(image.get("frames") or [], image.get("sha256") or [])
               if frame_sha256(data, tuple(k)) != h]
    if not changed:
        return []
    which = ", ".join(str(list(k)) for k in changed)
    msg = (f"{name}: the pixels of frame(s) {which} differ from the image the session was made on; "
           "the masks may differ from the saved ones.")
    return [msg]


def _call(session: Any, doc: SessionDoc, op: dict, masks: Any) -> None:
    kind, frame, obj = op["op"], op.get("frame"), op.get("obj_id")
    frame = None if frame is None else tuple(int(i) for i in frame)
    if kind == "add_points":
        session.add_points(frame, obj, np.asarray(op["points"], float).reshape(-1, 2), op["labels"],
                           clear=bool(op.get("clear", True)))
    elif kind == "add_box":
        pts = op.get("points")
        session.add_box(frame, obj, op["box"], points=None if pts is None else np.asarray(pts, float).reshape(-1, 2),
                        labels=op.get("labels"))
    elif kind == "add_mask":
        if op["mask"] not in masks.files:
            raise InputError(f"{doc.path.name}: mask {op['mask']!r} is not in {doc.masks_file.name}; "
                             "save the session again.")
        session.add_mask(frame, obj, masks[op["mask"]])
    elif kind == "choose_candidate":
        session.choose_candidate(frame, obj, int(op["candidate"]))
    elif kind == "clear_prompts":
        session.clear_prompts(frame, obj)
    elif kind == "remove_object":
        session.remove_object(obj)
    elif kind == "reset":
        session.reset()
    elif kind == "end_object":
        session.end_object(frame, obj)
    elif kind == "propagate" and int(op.get("frames", 0)) > 0:
        stop = op.get("stop")
        start = op.get("start")
        it = session.propagate(op["direction"], None if start is None else tuple(start),
                               tuple(stop) if isinstance(stop, list) else stop)
        try:
            for n, _ in enumerate(it, 1):
                if n >= int(op["frames"]):
                    break
        finally:
            it.close()


def replay(session: Any, doc: SessionDoc, *, trailing_propagations: bool = True) -> None:
    """Make the recorded calls on ``session`` in order; ``trailing_propagations=False`` stops at the
    last prompt call (the caller propagates itself)."""
    ops = doc.operations
    if not trailing_propagations:
        last = max((i for i, op in enumerate(ops) if op["op"] != "propagate"), default=-1)
        ops = ops[: last + 1]
    with ExitStack() as stack:
        masks = stack.enter_context(np.load(doc.masks_file)) if doc.masks_file is not None else None
        for i, op in enumerate(ops):
            try:
                _call(session, doc, op, masks)
            except InputError:
                raise
            except Sam2Error as err:
                raise PromptError(f"{doc.path.name}: operation {i + 1} ({op['op']}) cannot be replayed: {err}") from None
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{doc.path.name}: operation {i + 1} ({op['op']}) is malformed ({exc!r}); "
                                 "save the session again.") from None


def load_session(cls: Any, path: str | os.PathLike, model: Any, frames: Any, **overrides: Any) -> Any:
    """``VideoSession.load``: check the file and the frames, open a session with the file's settings
    (``overrides`` win) and replay every call. Mismatches are warned and kept in ``replay_mismatch``."""
    from .frames import as_array_like

    doc = read_session(path)
    data = as_array_like(frames)
    mismatch = check_identity(doc.image, data, doc.path.name)
    kwargs = {**doc.session_kwargs(), **overrides}
    session = cls(model, data, kwargs.pop("axis", 0), **kwargs)
    try:
        size = (doc.settings.get("model") or {}).get("image_size")
        if size is not None and int(size) != int(model.image_size):
            mismatch.append(f"{doc.path.name} was made with the model at image size {size}, this one runs at "
                            f"{model.image_size}; the masks will differ from the saved ones.")
        for msg in mismatch:
            warnings.warn(msg, UserWarning, stacklevel=3)
        replay(session, doc)
        if doc.doc.get("lineage"):  # divisions are kept as found, not found again
            from .lineage import Lineage

            session.lineage = Lineage.from_dict(doc.doc["lineage"])
    except BaseException:
        session.close()
        raise
    session.replay_mismatch = mismatch
    return session
