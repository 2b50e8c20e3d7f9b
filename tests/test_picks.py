"""Picks: each relation is spread evenly over its candidates, and independently of the others."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from seeding.runner import prepare

#: 15 requests picking from 3 customers and 3 mechanics (once, each in lockstep with the other).
PICKS = """\
description: Fifteen requests over three customers and three mechanics.
seed: 7
clock:
  now: 2025-11-06T14:10:00-05:00
steps:
  - create: customer
    count: 3
  - create: mechanic
    count: MECHANICS
    traits: [independent]
  - create: session_request
    count: REQUESTS
    traits: [completed]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
"""


def requests(tmp_path: Path, *, mechanics: int = 3, count: int = 15) -> list[Any]:
    path = tmp_path / "picks.yaml"
    path.write_text(PICKS.replace("MECHANICS", str(mechanics)).replace("REQUESTS", str(count)))
    return prepare(str(path))[1].by_kind["session_request"]


def test_two_relations_of_three_rows_are_picked_independently_and_evenly(
    tmp_path: Path,
) -> None:
    made = requests(tmp_path)
    assert sorted(Counter(r.customer_id for r in made).values()) == [5, 5, 5]
    assert sorted(Counter(r.mechanic_id for r in made).values()) == [5, 5, 5]
    met: dict[object, set[object]] = defaultdict(set)
    for request in made:
        met[request.customer_id].add(request.mechanic_id)
    assert len(met) == 3
    assert all(len(mechanics) > 1 for mechanics in met.values()), met


def test_picks_are_even_whatever_the_counts(tmp_path: Path) -> None:
    made = requests(tmp_path, mechanics=15, count=50)
    assert sorted(set(Counter(r.mechanic_id for r in made).values())) == [3, 4]
    assert len({r.mechanic_id for r in made}) == 15


def test_the_same_seed_picks_the_same_pairs(tmp_path: Path) -> None:
    def pairs() -> list[tuple[object, object]]:
        return [(r.customer_id, r.mechanic_id) for r in requests(tmp_path)]

    assert pairs() == pairs()
