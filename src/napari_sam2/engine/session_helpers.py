"""Checks and selections of ``VideoSession`` kept out of its file (which stays under 400 lines)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import PromptError
from .prompt_checks import show
from .results import FrameResult

MAX_OBJ_ID = 2**32 - 1  # label values: napari's and TIFF's uint32 labels hold every id


def checked_obj_id(obj_id: Any) -> int:
    """An object id as an int from 1 to ``MAX_OBJ_ID`` (a label value); PromptError otherwise."""
    try:
        ok = not isinstance(obj_id, (bool, np.bool_)) and int(obj_id) == obj_id and 1 <= int(obj_id) <= MAX_OBJ_ID
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise PromptError(f"Object ids are integers from 1 to {MAX_OBJ_ID} (label values); got {show(obj_id)}.")
    return int(obj_id)


def checked_mask(mask: Any, frame_shape: tuple[int, int]) -> np.ndarray:
    """A (Y, X) mask prompt (bool, or 0/1 numbers) as a boolean array; PromptError otherwise."""
    m = np.asarray(mask)
    if m.shape != frame_shape:
        raise PromptError(f"The mask has shape {m.shape}; frames are {frame_shape}.")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number):
            raise PromptError(f"A mask is boolean (or 0/1); got dtype {m.dtype}.")
        values = np.unique(m)
        if not np.isin(values, (0, 1)).all():
            raise PromptError(
                f"A mask holds only 0 and 1 (or True/False); this one has values {show(values[:5])}. "
                "For a label image, pass (labels == obj_id)."
            )
    return m.astype(bool)


def select_objects(res: FrameResult, obj_ids: Sequence[int]) -> FrameResult:
    """The rows of ``res`` that belong to ``obj_ids`` (in ``res``'s order)."""
    wanted = {int(x) for x in obj_ids}
    rows = [i for i, o in enumerate(res.obj_ids) if o in wanted]

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[rows]

    return FrameResult(
        frame=res.frame, obj_ids=tuple(res.obj_ids[i] for i in rows), masks=res.masks[rows],
        scores=res.scores[rows], present=res.present[rows], iou=res.iou[rows],
        object_score_logits=res.object_score_logits[rows], logits=pick(res.logits),
        low_res_logits=pick(res.low_res_logits), index=res.index, key=res.key,
    )


def locked_steps(lock: Any, steps: Iterator[FrameResult]) -> Iterator[FrameResult]:
    """Run each step of a propagation holding ``lock``, and only then: prompts, results and
    prefetches of other threads get in between frames."""
    try:
        while True:
            with lock:
                try:
                    result = next(steps)
                except StopIteration:
                    return
            yield result
    finally:
        steps.close()
