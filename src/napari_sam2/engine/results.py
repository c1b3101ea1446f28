"""What a segmentation step hands back to its consumer (widget, CLI, tables)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameResult:
    """Masks of every object of a session on one frame, already on the host.

    ``key`` is the frame key (the tuple of all leading indices, where the labels of this frame
    go: ``labels[result.key]``); ``frame`` is the index along the propagation axis and ``index``
    the indices of any outer axes (e.g. the time point of a T x Z x Y x X stack propagated along
    Z), empty for a plain (T, Y, X[, C]) stack. Per-object arrays follow the order of ``obj_ids``.
    """

    frame: int
    obj_ids: tuple[int, ...]
    masks: np.ndarray  # bool (N_obj, Y, X) at the stack's resolution
    scores: np.ndarray  # float32 (N_obj,): presence probability, sigmoid(object score logit)
    present: np.ndarray  # bool (N_obj,): SAM 2 thinks the object is visible (logit > 0)
    iou: np.ndarray  # float32 (N_obj,): the decoder's predicted IoU of the chosen mask
    object_score_logits: np.ndarray  # float32 (N_obj,)
    logits: np.ndarray | None = None  # float32 (N_obj, Y, X) when asked for
    low_res_logits: np.ndarray | None = None  # float32 (N_obj, h, w) model-resolution logits, when asked for
    index: tuple[int, ...] = field(default_factory=tuple)
    key: tuple[int, ...] = ()  # set by the session; defaults to (frame,) without outer axes
    latency: float | None = None  # live tracking: seconds from FrameStream.append to this result
    skipped: int = 0  # live tracking with drop="oldest": frames skipped just before this one

    def __post_init__(self) -> None:
        if not self.key and not self.index:
            self.key = (int(self.frame),)

    def to_labels(self, dtype=np.uint32) -> np.ndarray:
        """One label image (Y, X): each object's mask painted with its id.

        Where masks overlap, the object with the larger logit wins when logits are
        available, otherwise the later object in ``obj_ids`` order.
        """
        shape = self.masks.shape[1:]
        labels = np.zeros(shape, dtype=dtype)
        if len(self.obj_ids) == 0:
            return labels
        if self.logits is not None:
            best = np.argmax(self.logits, axis=0)
            any_fg = self.masks.any(axis=0)
            ids = np.asarray(self.obj_ids, dtype=dtype)
            chosen = ids[best]
            # the arg-max object must itself be foreground there
            fg_of_best = np.take_along_axis(self.masks, best[None], axis=0)[0]
            labels[any_fg & fg_of_best] = chosen[any_fg & fg_of_best]
            rest = any_fg & ~fg_of_best
            for obj_id, mask in zip(self.obj_ids, self.masks):
                labels[rest & mask] = obj_id
            return labels
        for obj_id, mask in zip(self.obj_ids, self.masks):
            labels[mask] = obj_id
        return labels
