"""Lineage: divisions between object ids, their rules and their JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam2.engine.lineage import Division, Lineage
from napari_sam2.errors import InputError


def _tree() -> Lineage:
    lin = Lineage()
    lin.add_division(1, [2, 3], 10)
    lin.add_division(3, (4, 5), 20)
    return lin


def test_queries():
    lin = _tree()
    assert lin.parent_of(4) == 3 and lin.parent_of(2) == 1 and lin.parent_of(1) is None and lin.parent_of(99) is None
    assert lin.daughters_of(1) == (2, 3) and lin.daughters_of(2) == ()
    assert lin.division_frame(3) == 20 and lin.division_frame(2) is None
    assert lin.birth_frame(5) == 20 and lin.birth_frame(1) is None
    assert lin.ancestors(5) == [3, 1] and lin.root_of(5) == 1 and lin.root_of(7) == 7
    assert lin.objects() == {1, 2, 3, 4, 5} and len(lin) == 2 and bool(lin) and not Lineage()
    assert [d.parent for d in lin] == [1, 3]
    assert lin.napari_graph() == {2: [1], 3: [1], 4: [3], 5: [3]}
    assert lin.napari_graph([1, 2, 3, 4]) == {2: [1], 3: [1], 4: [3]}


def test_numpy_ids_are_accepted():
    lin = Lineage()
    div = lin.add_division(np.int64(7), np.array([8, 9], np.uint16), np.int32(3))
    assert div == Division(7, (8, 9), 3) and all(type(i) is int for i in (div.parent, *div.daughters, div.frame))


def test_json_round_trip():
    lin = _tree()
    text = json.dumps(lin.to_dict())
    back = Lineage.from_dict(json.loads(text))
    assert back == lin and back.to_dict() == lin.to_dict()
    assert lin.to_dict() == {"version": 1, "divisions": [{"parent": 1, "daughters": [2, 3], "frame": 10},
                                                         {"parent": 3, "daughters": [4, 5], "frame": 20}]}
    # order of the entries does not matter
    shuffled = {"version": 1, "divisions": list(reversed(lin.to_dict()["divisions"]))}
    assert Lineage.from_dict(shuffled) == lin


@pytest.mark.parametrize("parent, daughters, frame, match", [
    (4, [1, 6], 30, "ancestor"),  # a cycle: 1 is an ancestor of 4
    (6, [2, 7], 30, "already has parent"),  # 2 has parent 1
    (1, [6, 7], 30, "already divided"),
    (6, [6, 7], 30, "own daughter"),
    (6, [7], 30, "two or more"),
    (6, [7, 7], 30, "two or more"),
    (4, [6, 7], 20, "born on frame 20"),  # 4 is born on 20: it divides later
    (0, [6, 7], 30, ">= 1"),
    (6, [7, -1], 30, ">= 1"),
    (6, [7, 8], -1, "frame"),
    (6, [7, 8], 1.5, "frame"),
    (True, [7, 8], 3, "whole number"),
])
def test_bad_divisions_are_refused_and_change_nothing(parent, daughters, frame, match):
    lin = _tree()
    before = lin.to_dict()
    with pytest.raises(InputError, match=match):
        lin.add_division(parent, daughters, frame)
    assert lin.to_dict() == before


def test_a_daughter_that_divides_before_its_birth_is_refused():
    lin = Lineage()
    lin.add_division(2, [3, 4], 5)
    with pytest.raises(InputError, match="born before"):
        lin.add_division(1, [2, 9], 8)


@pytest.mark.parametrize("data, match", [
    ([], "mapping"),
    ({"divisions": "x"}, "mapping"),
    ({"version": 2, "divisions": []}, "version"),
    ({"divisions": [{"parent": 1, "frame": 3}]}, "needs"),
    ({"divisions": [{"parent": 1, "daughters": 2, "frame": 3}]}, "list"),
    ({"divisions": [{"parent": 1, "daughters": [2, 3], "frame": "x"}, {"parent": 2, "daughters": [4, 5],
                                                                     "frame": 4}]}, "frame"),
    ({"divisions": [{"parent": 1, "daughters": [2, 3], "frame": 3},
                    {"parent": 2, "daughters": [1, 4], "frame": 5}]}, "ancestor"),
])
def test_bad_dicts(data, match):
    with pytest.raises(InputError, match=match):
        Lineage.from_dict(data)
