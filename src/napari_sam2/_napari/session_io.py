"""Save the widget's session to a session file, and open one on the image (no Qt; docs/sessions.md).

:func:`save_session` writes the controller's ``VideoSession`` calls (``*.sam2.json``).
:func:`open_session` replaces the session by the file's replay (in the controller's worker), writes
every frame that has a mask into the output layer (one undo step), refills the prompt layers with
the clicks and boxes left at the end (:func:`fill_prompt_layers`) and tells the prompt tracker they
are sent, so the next edit sends only itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.prompts import PromptSet
from ..engine.session_replay import SessionDoc, check_identity, read_session
from ..errors import BusyError, InputError, PromptError
from . import workers as W

NOTHING_TO_SAVE = "There is nothing to save yet: click an object or draw a box first."
NO_IMAGE = "Choose the image layer the session was made on first."


def save_session(controller: Any, path: str | Path, *, image_path: Any = None, direction: str | None = None,
                 stop: Any = None) -> Path:
    """Write the controller's session calls to ``path``; PromptError when nothing was done yet."""
    session = controller.session
    if session is None or not session.recorder.ops:
        raise PromptError(NOTHING_TO_SAVE)
    if controller.propagating or controller.runner.pending:
        raise BusyError("Wait for the propagation to finish (or cancel it) before saving the session.")
    name = controller.model_source[0] if controller.model_source else None
    return session.save(path, model=name, image_path=image_path, direction=direction, range=stop)


def replay_job(model: Any, data: Any, path: Path) -> Iterator[Any]:
    """Open a session by replaying ``path`` on ``data``; yields every frame with a mask; returns it."""
    yield W.Status(f"Replaying {path.name}...")
    from ..engine.video_session import VideoSession

    with warnings.catch_warnings():  # the controller shows the mismatches (session.replay_mismatch)
        warnings.simplefilter("ignore", UserWarning)
        session = VideoSession.load(path, model, data)
    for key in np.ndindex(*session.layout.leading_shape):
        result = session.result(key)
        if result.masks.any():
            yield result
    return session


def open_session(controller: Any, path: str | Path | SessionDoc,
                 fill_layers: Callable[[PromptSet], None] | None = None) -> SessionDoc:
    """Replay a session file on the controller's image (its stack must match: InputError if not).

    The file is checked here, at once; the replay runs as the controller's "open" job after the
    model is loaded. ``fill_layers(prompts)`` puts the clicks and boxes into the prompt layers.
    """
    doc = path if isinstance(path, SessionDoc) else read_session(path)
    spec = controller.view.stack()
    if spec is None:
        raise InputError(NO_IMAGE)
    data = spec[0]
    notes = check_identity(doc.image, data, doc.path.name)  # another shape or dtype: refused now
    controller.invalidate()
    if controller.model is None:
        controller._submit("load", controller._load_spec, on_return=controller._set_model, coalesce=True,
                           quit_on_cancel=False)

    def spec_job(job: Any) -> Any:
        if controller.model is None:
            return None
        controller.output.get().begin_group()  # the replayed masks are one undo step
        return replay_job, (controller.model, data, doc.path), {}

    def opened(session: Any) -> None:
        controller._set_session(session)
        prompts, masked = doc.prompts()
        if fill_layers is not None:
            fill_layers(prompts)
        tracker = controller.tracker
        for obj_id in masked:
            tracker.note_mask(obj_id)
        tracker.commit(tracker.diff(prompts if fill_layers is None else controller.view.prompts()))
        for msg in notes + [m for m in session.replay_mismatch if m not in notes]:
            controller.view.message("warning", msg)
        controller.view.status(f"Session {doc.path.name} replayed: {len(session.obj_ids)} object(s).")

    def done(job: Any) -> None:
        if controller.output.writer is not None:
            controller.output.writer.end_group()

    controller._submit("open", spec_job, on_return=opened, on_done=done)
    return doc


def fill_prompt_layers(points_layer: Any, boxes_layer: Any, prompts: PromptSet) -> None:
    """Replace the prompt layers' contents by ``prompts`` without sending edits (their data events are
    held back: the session already has them)."""
    rows, ids, positive = [], [], []
    for p in prompts.points:
        for rc, lbl in zip(np.asarray(p.points, float).reshape(-1, 2), np.asarray(p.labels).reshape(-1)):
            rows.append([*p.frame, *rc])
            ids.append(int(p.obj_id))
            positive.append(bool(lbl == 1))
    ndim = points_layer.ndim
    with points_layer.events.data.blocker():
        points_layer.data = np.asarray(rows, float).reshape(-1, ndim)
        points_layer.features = {"obj_id": np.asarray(ids, int), "positive": np.asarray(positive, bool)}
    rects = []
    for b in prompts.boxes:
        r0, c0, r1, c1 = (float(v) for v in b.box)
        f = [float(i) for i in b.frame]
        rects.append(np.array([[*f, r0, c0], [*f, r0, c1], [*f, r1, c1], [*f, r1, c0]]))
    with boxes_layer.events.data.blocker():
        boxes_layer.data = []
        if rects:
            boxes_layer.add_rectangles(rects)
        boxes_layer.features = {"obj_id": np.asarray([int(b.obj_id) for b in prompts.boxes], int)}
    refresh = getattr(points_layer, "refresh_colors", None)
    if refresh is not None:
        refresh()
    points_layer.refresh()
    boxes_layer.refresh()
