"""Parent -> daughters links between object ids: who divided into whom, and on which frame.

A :class:`Lineage` is a small forest: each division names one parent object, its daughters
(two or more objects that are new from then on) and ``frame``, the first frame (index along
the propagation axis) on which the daughters exist; the parent's track ends before it.
Rules, checked on every change (:class:`~napari_sam2.errors.InputError` otherwise): ids are
whole numbers >= 1, an object divides at most once, a daughter has one parent, no object is
its own ancestor, and a daughter divides later than it was born.

It knows nothing of the engine: the division detector, the widget's "split here" and
session files fill it; the exports (:mod:`napari_sam2.io.ctc`, :mod:`napari_sam2.io.geff`,
:mod:`napari_sam2.io.tracks`) read it. ``to_dict`` / ``from_dict`` give a JSON-able form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from ..errors import InputError

LINEAGE_VERSION = 1


@dataclass(frozen=True)
class Division:
    """``parent`` ends; ``daughters`` start on ``frame``."""

    parent: int
    daughters: tuple[int, ...]
    frame: int


def _object_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"{what} must be a whole number >= 1, not {value!r}.")
    value = int(value.__index__())
    if value < 1:
        raise InputError(f"{what} must be a whole number >= 1, not {value}.")
    return value


class Lineage:
    """Divisions between object ids (see the module docstring for the rules)."""

    def __init__(self, divisions: Iterable[Division] = ()) -> None:
        self._divisions: dict[int, Division] = {}  # parent -> its division
        self._parent: dict[int, int] = {}  # daughter -> parent
        for div in divisions:
            self.add_division(div.parent, div.daughters, div.frame)

    # ------------------------------------------------------------------ building
    def add_division(self, parent: int, daughters: Iterable[int], frame: int) -> Division:
        """Record that ``parent`` divided into ``daughters``, which start on ``frame``."""
        parent = _object_id(parent, "the parent id")
        kids = tuple(_object_id(d, "a daughter id") for d in daughters)
        if isinstance(frame, bool) or not hasattr(frame, "__index__") or int(frame.__index__()) < 0:
            raise InputError(f"the division frame must be a whole number >= 0, not {frame!r}.")
        frame = int(frame.__index__())
        if len(kids) < 2 or len(set(kids)) != len(kids):
            raise InputError(f"object {parent} needs two or more different daughters, not {list(kids)}; "
                             "an object that just continues keeps its id.")
        if parent in self._divisions:
            raise InputError(f"object {parent} already divided on frame {self._divisions[parent].frame}; "
                             "an object divides once (give its daughters their own divisions).")
        for kid in kids:
            if kid == parent:
                raise InputError(f"object {parent} cannot be its own daughter.")
            if kid in self._parent:
                raise InputError(f"object {kid} already has parent {self._parent[kid]}; a daughter has one parent.")
            if kid in self.ancestors(parent):
                raise InputError(f"object {kid} is an ancestor of {parent}; a lineage has no cycles.")
        born = self.birth_frame(parent)
        if born is not None and frame <= born:
            raise InputError(f"object {parent} was born on frame {born}; it can only divide after that, "
                             f"not on frame {frame}.")
        for kid in kids:
            own = self._divisions.get(kid)
            if own is not None and own.frame <= frame:
                raise InputError(f"object {kid} divides on frame {own.frame}, so it must be born before that, "
                                 f"not on frame {frame}.")
        div = Division(parent, kids, frame)
        self._divisions[parent] = div
        for kid in kids:
            self._parent[kid] = parent
        return div

    # ------------------------------------------------------------------ queries
    def parent_of(self, obj_id: int) -> int | None:
        """The object ``obj_id`` was born from, None for a root (or an unknown id)."""
        return self._parent.get(int(obj_id))

    def daughters_of(self, obj_id: int) -> tuple[int, ...]:
        """The daughters of ``obj_id`` (empty if it never divided)."""
        div = self._divisions.get(int(obj_id))
        return () if div is None else div.daughters

    def division_frame(self, obj_id: int) -> int | None:
        """The first frame of ``obj_id``'s daughters, None if it never divided."""
        div = self._divisions.get(int(obj_id))
        return None if div is None else div.frame

    def birth_frame(self, obj_id: int) -> int | None:
        """The frame ``obj_id`` was born on by a division, None for a root."""
        parent = self._parent.get(int(obj_id))
        return None if parent is None else self._divisions[parent].frame

    def ancestors(self, obj_id: int) -> list[int]:
        """Parent, grandparent, ... of ``obj_id`` (nearest first)."""
        out: list[int] = []
        cur = self._parent.get(int(obj_id))
        while cur is not None:
            out.append(cur)
            cur = self._parent.get(cur)
        return out

    def root_of(self, obj_id: int) -> int:
        """The oldest ancestor of ``obj_id`` (itself for a root): one id per lineage tree."""
        chain = self.ancestors(obj_id)
        return chain[-1] if chain else int(obj_id)

    @property
    def divisions(self) -> list[Division]:
        """Every division, by frame then parent id."""
        return sorted(self._divisions.values(), key=lambda d: (d.frame, d.parent))

    def objects(self) -> set[int]:
        """Every id named by a division (parents and daughters)."""
        return set(self._divisions) | set(self._parent)

    def __len__(self) -> int:
        return len(self._divisions)

    def __bool__(self) -> bool:
        return bool(self._divisions)

    def __iter__(self) -> Iterator[Division]:
        return iter(self.divisions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lineage) and self.divisions == other.divisions

    def __repr__(self) -> str:
        inner = ", ".join(f"{d.parent}->{list(d.daughters)}@{d.frame}" for d in self.divisions)
        return f"Lineage({inner})"

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"version": 1, "divisions": [{"parent", "daughters", "frame"}, ...]}``."""
        return {
            "version": LINEAGE_VERSION,
            "divisions": [{"parent": d.parent, "daughters": list(d.daughters), "frame": d.frame}
                          for d in self.divisions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        """Rebuild (and check) a lineage written by :meth:`to_dict`."""
        if not isinstance(data, Mapping) or not isinstance(data.get("divisions", None), list):
            raise InputError("a lineage must be a mapping with a 'divisions' list (as written by Lineage.to_dict).")
        version = data.get("version", LINEAGE_VERSION)
        if version != LINEAGE_VERSION:
            raise InputError(f"lineage version {version!r} is not supported (this napari-sam2 reads version "
                             f"{LINEAGE_VERSION}); update napari-sam2.")
        lineage = cls()
        # parents born earlier first, so that birth-frame checks see their own birth
        entries = list(data["divisions"])
        def when(entry: Any) -> int:
            frame = entry.get("frame") if isinstance(entry, Mapping) else None
            return frame if isinstance(frame, int) else 0

        for entry in sorted(entries, key=when):
            if not isinstance(entry, Mapping) or not {"parent", "daughters", "frame"} <= set(entry):
                raise InputError(f"lineage entry {entry!r} needs 'parent', 'daughters' and 'frame'.")
            if not isinstance(entry["daughters"], (list, tuple)):
                raise InputError(f"lineage entry {dict(entry)!r}: 'daughters' must be a list of ids.")
            lineage.add_division(entry["parent"], entry["daughters"], entry["frame"])
        return lineage

    def napari_graph(self, track_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
        """napari Tracks ``graph``: ``{daughter: [parent]}``, limited to ``track_ids`` when given
        (napari refuses links to tracks it has no points of)."""
        keep = None if track_ids is None else {int(i) for i in track_ids}
        return {kid: [parent] for kid, parent in sorted(self._parent.items())
                if keep is None or (kid in keep and parent in keep)}
