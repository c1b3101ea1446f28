"""Clean-up of output label planes, object by object: holes, islands, opening, closing, flickers.

SAM 2's own post-processing (``fill_hole_area`` of the session, 8 px by default) already ran on
each mask; everything here is off by default and works on the label planes that are written
(numpy and scikit-image only, no torch). Per frame, for each object, in this order:

1. ``open_radius``: morphological opening with a disk (removes thin spurs and specks);
2. ``close_radius``: morphological closing with a disk (bridges thin gaps, smooths dents);
   outside the image counts as background for closing and as the object for opening, so
   objects neither grow towards nor get shaved at the image border;
3. ``fill_holes``: holes (4-connected background enclosed by the object) of at most this area
   are filled;
4. ``min_island``: 8-connected pieces of the object smaller than this area are removed; then
   ``keep_largest`` keeps only its largest piece (the first in raster order on a tie).

Conflict rule: every object is processed on its own mask of the *incoming* plane. Pixels it
loses become 0. Pixels it gains (closing, hole filling) are taken only where the incoming plane
is 0, and only when no other object gains the same pixel (contested pixels stay 0): another
object's pixels are never overwritten, 0 stays 0 unless exactly one neighbour fills it, and
the result does not depend on the order of the ids.

``drop_flicker`` (objects present on one frame only) needs neighbouring frames and runs as a
stream (:mod:`napari_sam2.engine.flicker`): :meth:`Cleanup.wrap_writer` for label writers,
:meth:`Cleanup.clean_stack` for a labels array in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

_FOUR = ndi.generate_binary_structure(2, 1)
_EIGHT = ndi.generate_binary_structure(2, 2)


@dataclass(frozen=True)
class Cleanup:
    """Which clean-up steps run on the output labels (all off by default); see the module docstring."""

    fill_holes: int = 0  # px: fill holes of at most this area (0: off)
    min_island: int = 0  # px: remove pieces of an object smaller than this (0: off)
    keep_largest: bool = False  # keep only the largest piece of each object
    open_radius: int = 0  # px: opening with a disk of this radius (0: off)
    close_radius: int = 0  # px: closing with a disk of this radius (0: off)
    drop_flicker: bool = False  # remove an object on a frame where it is absent on both neighbours

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in (bool, "bool"):
                if not isinstance(value, (bool, np.bool_)):
                    raise InputError(f"Cleanup {f.name} must be True or False, not {value!r}.")
                continue
            if isinstance(value, bool) or not hasattr(value, "__index__") or int(value.__index__()) < 0:
                raise InputError(f"Cleanup {f.name} must be a whole number of pixels >= 0, not {value!r}.")
            object.__setattr__(self, f.name, int(value.__index__()))

    # -------------------------------------------------------------------------- state
    @property
    def per_frame(self) -> bool:
        """Whether :meth:`apply` changes anything."""
        return bool(self.fill_holes or self.min_island or self.keep_largest or self.open_radius
                    or self.close_radius)

    @property
    def active(self) -> bool:
        return self.per_frame or self.drop_flicker

    def describe(self) -> str:
        """A short summary for messages, e.g. ``fill holes <= 50 px, keep largest``."""
        parts = []
        if self.open_radius:
            parts.append(f"open r={self.open_radius}")
        if self.close_radius:
            parts.append(f"close r={self.close_radius}")
        if self.fill_holes:
            parts.append(f"fill holes <= {self.fill_holes} px")
        if self.min_island:
            parts.append(f"remove islands < {self.min_island} px")
        if self.keep_largest:
            parts.append("keep largest")
        if self.drop_flicker:
            parts.append("drop one-frame flickers")
        return ", ".join(parts) or "none"

    # -------------------------------------------------------------------------- per frame
    def apply(self, plane: np.ndarray) -> np.ndarray:
        """The cleaned (Y, X) label plane (same dtype); ``plane`` itself is not changed."""
        plane = np.asarray(plane)
        if plane.ndim != 2 or plane.dtype.kind not in "biu":
            raise InputError(f"clean-up works on 2D integer label planes, not {plane.dtype} {plane.shape}.")
        if not self.per_frame or not plane.any():
            return plane
        if plane.min() < 0:
            raise InputError(f"label planes must not hold negative labels ({plane.min()}).")
        from skimage.measure import label

        # 8-connected pieces of equal value; an object's pieces that lie close together form one cluster,
        # cleaned in one crop (far-away specks do not blow an object's crop up to the whole plane)
        pieces = label(plane, background=0, connectivity=2)
        boxes = ndi.find_objects(pieces)
        owner = np.zeros(len(boxes) + 1, np.int64)
        owner[pieces.ravel()] = plane.ravel()
        margin = max(self.open_radius, self.close_radius) + 1
        out = plane.copy()
        gains = self.close_radius or self.fill_holes
        claim = np.zeros(plane.shape, np.int64) if gains else None
        claims = np.zeros(plane.shape, np.uint8) if gains else None
        by_object: dict[int, list[int]] = {}
        for k in range(1, len(boxes) + 1):
            by_object.setdefault(int(owner[k]), []).append(k)
        for obj, ks in by_object.items():
            results = []
            for cluster in _clusters([boxes[k - 1] for k in ks], margin):
                labels_in = np.array([ks[i] for i in cluster])
                box = _union([boxes[k - 1] for k in labels_in])
                crop = tuple(slice(max(sl.start - margin, 0), min(sl.stop + margin, n))
                             for sl, n in zip(box, plane.shape))
                own = pieces[crop] == labels_in[0] if labels_in.size == 1 else np.isin(pieces[crop], labels_in)
                results.append((crop, own, self._shape_mask(own)))
            if self.min_island or self.keep_largest:
                results = self._islands_of_object(results)
            for crop, own, new in results:
                lost = own & ~new
                if lost.any():
                    out[crop][lost] = 0
                if claim is not None and claims is not None:
                    won = new & (plane[crop] == 0)
                    if won.any():
                        claim[crop][won] = obj
                        sub = claims[crop]
                        sub[won] = np.minimum(sub[won], 1) + 1  # 1 = one claimant, 2 = contested
        if claims is not None and claim is not None:
            single = claims == 1
            out[single] = claim[single].astype(out.dtype)
        return out

    def _islands_of_object(self, results: list) -> list:
        """Remove small pieces / keep the largest piece over all clusters of one object."""
        labelled = []
        for crop, own, new in results:
            pieces, n = ndi.label(new, structure=_EIGHT)
            labelled.append((pieces, np.bincount(pieces.ravel(), minlength=n + 1)[1:]))
        sizes = np.concatenate([sz for _, sz in labelled]) if labelled else np.zeros(0, np.int64)
        keep = sizes >= max(self.min_island, 1)
        if self.keep_largest and keep.any():
            best = int(np.argmax(np.where(keep, sizes, -1)))
            keep[:] = False
            keep[best] = True
        out, start = [], 0
        for (crop, own, _), (pieces, sz) in zip(results, labelled):
            lut = np.concatenate([[False], keep[start:start + sz.size]])
            out.append((crop, own, lut[pieces]))
            start += sz.size
        return out

    def _shape_mask(self, mask: np.ndarray) -> np.ndarray:
        """Opening, closing and hole filling of one object's mask (a crop around one cluster of it)."""
        from skimage.morphology import disk

        # scipy's binary ops with a scikit-image disk. Opening: outside the image counts as the object
        # (scikit-image's mode="ignore"), so objects cut by the border are not shaved there. Closing:
        # outside counts as background, so objects near the border do not grow into the gap.
        if self.open_radius:
            fp = disk(self.open_radius).astype(bool)
            mask = ndi.binary_dilation(ndi.binary_erosion(mask, fp, border_value=1), fp)
        if self.close_radius:
            fp = disk(self.close_radius).astype(bool)
            pad = self.close_radius + 1
            grown = ndi.binary_dilation(np.pad(mask, pad), fp)
            mask = ndi.binary_erosion(grown, fp, border_value=0)[pad:-pad, pad:-pad]
        if self.fill_holes:
            mask = _fill_small_holes(mask, self.fill_holes)
        return mask

    # -------------------------------------------------------------------------- streams
    def wrap_writer(self, writer: Any, leading_shape: Sequence[int], axis: int = 0) -> Any:
        """``writer`` itself, or (``drop_flicker``) a writer that drops flickers on the way in.

        The wrapper takes pages in increasing page order, like ``LabelsTiffWriter``.
        """
        if not self.drop_flicker:
            return writer
        from .flicker import FlickerWriter

        return FlickerWriter(writer, tuple(leading_shape), axis)

    def clean_stack(self, labels: np.ndarray, axis: int = 0) -> np.ndarray:
        """Clean a (..., Y, X) labels array in place (per frame, then flickers along ``axis``); returns it."""
        labels = np.asarray(labels)
        if labels.ndim < 3:
            raise InputError(f"labels must have a leading (frame) axis; got shape {labels.shape}.")
        if not -(labels.ndim - 2) <= axis < labels.ndim - 2:
            raise InputError(f"axis {axis} is not a leading axis of labels of shape {labels.shape}.")
        if self.per_frame:
            for key in np.ndindex(*labels.shape[:-2]):
                labels[key] = self.apply(labels[key])
        if self.drop_flicker:
            from .flicker import drop_flicker_array

            drop_flicker_array(labels, axis % (labels.ndim - 2))
        return labels


def _fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """``mask`` with its holes (background not touching the crop border) of <= ``max_area`` px filled."""
    background, n = ndi.label(~mask, structure=_FOUR)
    if n == 0:
        return mask
    sizes = np.bincount(background.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]))
    fill = sizes <= max_area
    fill[0] = False
    fill[edge] = False
    return mask | fill[background] if fill.any() else mask


def _clusters(boxes: list[tuple[slice, ...]], margin: int) -> list[list[int]]:
    """Groups of boxes (indices) whose margin-grown boxes overlap, transitively (union-find)."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    grown = [tuple((sl.start - margin, sl.stop + margin) for sl in b) for b in boxes]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if all(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in zip(grown[i], grown[j])):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _union(boxes: list[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes)) for d in range(len(boxes[0])))
