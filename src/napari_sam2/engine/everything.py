"""Segment everything on one frame of a session: automatic masks become tracked objects.

The masks come from a generator (``MaskGenerator`` by default, SAM 2's automatic mask
generator); ``MaskFilter`` keeps the ones a microscopist wants (size range, not cut by the
image border, no masks that merely group smaller ones), and each kept mask is added to the
session as a mask prompt under a new object id. The same filter and coverage rule pick up
objects that appear later (``engine.discovery``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from ..errors import InputError

#: a generated mask that has less than this fraction of its pixels under existing tracks is a
#: new object (touching neighbours overlap a little; a drifting track still covers most of its cell)
NEW_OBJECT_OVERLAP = 0.3
#: a mask "contains" another when at least this fraction of the smaller one lies inside it
NESTED_FRACTION = 0.9


class MaskSource(Protocol):
    """What produces candidate masks: ``generate(image) -> [{"segmentation", "predicted_iou", ...}]``."""

    def generate(self, image: np.ndarray) -> list[dict]: ...


class EverythingNotice(UserWarning):
    """A segment-everything run that found nothing, or found more than ``max_objects``."""


@dataclass(frozen=True)
class MaskFilter:
    """Which generated masks become objects.

    ``min_area`` / ``max_area``: pixel counts (``max_area=None``: no upper bound).
    ``drop_border``: drop masks touching the image border (cells cut by the field of view).
    ``drop_nested``: drop masks that contain other kept masks (a clump drawn around several cells,
    a cell around its nucleus): the smaller parts are kept.
    ``max_objects``: keep at most this many (the highest predicted IoU first), with a notice.
    """

    min_area: int = 0
    max_area: int | None = None
    drop_border: bool = False
    drop_nested: bool = False
    max_objects: int = 1000

    def __post_init__(self) -> None:
        if self.min_area < 0 or (self.max_area is not None and self.max_area < max(self.min_area, 1)):
            raise InputError(f"Need 0 <= min_area <= max_area; got min_area={self.min_area}, max_area={self.max_area}.")
        if int(self.max_objects) != self.max_objects or self.max_objects < 1:
            raise InputError(f"max_objects must be a whole number >= 1; got {self.max_objects!r}.")

    def select(self, objects: Iterable[dict]) -> list[np.ndarray]:
        """The kept masks (bool (Y, X)), best predicted IoU first."""
        ranked = sorted(objects, key=lambda o: -float(o.get("predicted_iou", 0.0)))
        kept = []
        for o in ranked:
            m = np.asarray(o["segmentation"], bool)
            area = int(m.sum())
            if area == 0 or area < self.min_area or (self.max_area is not None and area > self.max_area):
                continue
            if self.drop_border and (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()):
                continue
            kept.append(m)
        if self.drop_nested:
            kept = _without_containers(kept)
        if len(kept) > self.max_objects:
            warnings.warn(EverythingNotice(
                f"Found {len(kept)} objects; kept the {self.max_objects} with the highest predicted IoU. "
                f"Raise max_objects (now {self.max_objects}) to keep more."), stacklevel=3)
            kept = kept[: self.max_objects]
        return kept


def _without_containers(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Drop every mask that holds most of a smaller mask of the list."""
    areas = [int(m.sum()) for m in masks]
    boxes = [_bbox(m) for m in masks]
    drop = set()
    for i, big in enumerate(masks):
        for j, small in enumerate(masks):
            if i == j or areas[j] >= areas[i] or not _boxes_touch(boxes[i], boxes[j]):
                continue
            if np.logical_and(big, small).sum() >= NESTED_FRACTION * areas[j]:
                drop.add(i)
                break
    return [m for k, m in enumerate(masks) if k not in drop]


def _bbox(m: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def _boxes_touch(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def uncovered(masks: Sequence[np.ndarray], covered: np.ndarray,
              overlap: float = NEW_OBJECT_OVERLAP) -> list[np.ndarray]:
    """The masks with less than ``overlap`` of their pixels in ``covered`` (bool (Y, X)),
    claiming their pixels as they are taken, so two generated masks of one new object give one."""
    taken = covered.copy()
    out = []
    for m in masks:
        if np.logical_and(m, taken).sum() < overlap * m.sum():
            out.append(m)
            taken |= m
    return out


def frame_rgb8(session: Any, frame: Any) -> np.ndarray:
    """A frame as the uint8 RGB the session's model sees (its intensity range, before resizing),
    so generated masks and tracking see the same contrast."""
    clip, f = session._locate(frame)
    return clip.source.rgb8(f)


def mask_source(model: Any, generator: MaskSource | None, mask_filter: MaskFilter | None,
                settings: dict[str, Any]) -> tuple[MaskSource, MaskFilter]:
    """The generator and filter of a call: ``settings`` holds ``MaskFilter`` fields (``min_area``, ...)
    and ``MaskGenerator`` settings (``points_per_side``, ...), each given to its own."""
    names = {f.name for f in fields(MaskFilter)}
    picked = {k: v for k, v in settings.items() if k in names}
    rest = {k: v for k, v in settings.items() if k not in names}
    if picked and mask_filter is not None:
        raise InputError("Give the filter settings either as mask_filter=MaskFilter(...) or as keywords "
                         f"({', '.join(picked)}), not both.")
    if rest and generator is not None:
        raise InputError(f"Give the generator settings ({', '.join(rest)}) to your generator, not here.")
    if generator is None:
        from .mask_generator import MaskGenerator

        generator = MaskGenerator(model, **rest)
    return generator, mask_filter or MaskFilter(**picked)


def next_ids(session: Any, n: int) -> list[int]:
    """``n`` object ids above every id the session has."""
    top = max(session.obj_ids, default=0)
    return list(range(top + 1, top + 1 + n))


def segment_everything(session: Any, frame: Any, *, generator: MaskSource | None = None,
                       mask_filter: MaskFilter | None = None, **settings: Any) -> list[int]:
    """Add every kept generated mask on ``frame`` as a new object (mask prompt); their ids.

    ``settings``: ``MaskFilter`` fields (``min_area``, ``max_area``, ``drop_border``, ``drop_nested``,
    ``max_objects``) and ``MaskGenerator`` settings (``points_per_side``, ``pred_iou_thresh``, ...).
    Masks largely covered by objects the session already has on that frame are skipped, so a
    second call adds only what is new. A frame with nothing to segment gives ``[]`` and an
    ``EverythingNotice`` warning, not an error.
    """
    gen, mask_filter = mask_source(session.model, generator, mask_filter, settings)
    masks = mask_filter.select(gen.generate(frame_rgb8(session, frame)))
    if session.obj_ids:
        res = session.result(frame)
        covered = res.masks[res.present].any(0) if res.present.any() else np.zeros(session.frame_shape, bool)
        masks = uncovered(masks, covered)
    else:
        masks = uncovered(masks, np.zeros(session.frame_shape, bool))
    if not masks:
        warnings.warn(EverythingNotice(
            f"No new objects found on frame {frame}: the frame may be blank, or every mask was filtered "
            "out (lower min_area / pred_iou_thresh / stability_score_thresh to find more)."), stacklevel=2)
        return []
    ids = next_ids(session, len(masks))
    for obj_id, m in zip(ids, masks):
        session.add_mask(frame, obj_id, m)
    return ids
