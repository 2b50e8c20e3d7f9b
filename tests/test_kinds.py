"""The registry of kinds: every declared relation reaches the row, every view derives from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seeding import doctor, reset, runner
from seeding.scenario import files, steps
from seeding.scenario.kinds import KINDS, NAMES

#: Traits a row needs for a relation to apply to it (an unassigned request has no mechanic,
#: a broadcast one no workshop).
NEEDS = {("session_request", "mechanic"): ["accepted"], ("session_request", "workshop"): ["hybrid"]}

CASES = [(kind.name, relation.name, relation.kind)
         for kind in KINDS.values() for relation in kind.relations]


@pytest.mark.parametrize(("kind", "relation", "target"), CASES)
def test_every_declared_relation_is_resolved(
    kind: str, relation: str, target: str, tmp_path: Path
) -> None:
    steps: list[dict[str, object]] = [
        {"create": "mechanic", "count": 3, "traits": ["workshop"]},
        {"create": "customer", "count": 3},
        {"create": "vehicle", "count": 3},
        {"create": "session", "count": 3, "fields": {"status": "completed"}},
        {"create": target, "ref": "parent", **({"fields": {"status": "completed"}}
                                               if target == "session" else {})},
        {"create": kind, "ref": "child", "traits": NEEDS.get((kind, relation), []),
         "with": {relation: "parent"}},
    ]
    path = tmp_path / "relation.yaml"
    path.write_text(yaml.safe_dump({
        "description": "one relation", "seed": 1,
        "clock": {"now": "2026-11-20T12:00:00-05:00"}, "steps": steps,
    }))
    _, built = runner.prepare(str(path))
    parent, child = built.refs["parent"][0], built.refs["child"][0]
    values = [getattr(child, column.key) for column in child.__mapper__.column_attrs]
    assert parent.id in values, f"{kind}.{relation} did not reach the row"  # type: ignore[attr-defined]


def test_the_engine_s_views_derive_from_the_registry() -> None:
    assert files.FACTORY_NAMES == NAMES
    assert set(steps.FACTORIES) == set(KINDS)
    for name, kind in KINDS.items():
        assert steps.RELATIONS[name] == {r.name: r.kind for r in kind.relations}
        assert steps.FACTORIES[name]._meta.model is kind.model
    declared = {(k.table, r.column) for k in KINDS.values() for r in k.undeclared_references}
    assert {(r.table, r.column) for r in reset.UNDECLARED_REFERENCES} == declared
    assert {(n.table, n.column) for n in doctor.UNDECLARED_FOREIGN_KEYS} <= declared
