"""Image features of recently used frames, kept under a byte budget (LRU)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from ..model.image_encoder import ImageFeatures


class FeatureCache:
    """Least-recently-used cache of ``ImageFeatures``; always keeps the newest entry."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self._items: OrderedDict[int, ImageFeatures] = OrderedDict()

    def get(self, frame: int, compute: Callable[[int], ImageFeatures]) -> ImageFeatures:
        feats = self._items.get(frame)
        if feats is not None:
            self._items.move_to_end(frame)
            return feats
        feats = compute(frame)
        self._items[frame] = feats
        while len(self._items) > 1 and self.nbytes > self.budget:
            self._items.popitem(last=False)
        return feats

    def __contains__(self, frame: int) -> bool:
        return frame in self._items

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._items.values())

    def clear(self) -> None:
        self._items.clear()
