"""docs/kinds.md is the reference `seed kinds` prints, and it covers the whole registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from seeding.cli import app
from seeding.scenario import steps
from seeding.scenario.kinds import KINDS
from seeding.scenario.reference import HEADER, fields, kinds_reference, trait_notes

PAGE = Path(__file__).resolve().parents[1] / "docs" / "kinds.md"
TEXT = kinds_reference()


def section(name: str) -> str:
    """Return the page's section of one kind (its heading up to the next)."""
    start = TEXT.index(f"\n## {name}\n")
    end = TEXT.find("\n## ", start + 1)
    return TEXT[start:] if end < 0 else TEXT[start:end]


def test_the_page_is_the_generated_reference() -> None:
    assert PAGE.read_text(encoding="utf-8") == TEXT, (
        "docs/kinds.md is out of date with the registry of kinds; "
        "run `seed kinds > docs/kinds.md`"
    )


def test_the_reference_says_it_is_generated_and_is_stable() -> None:
    assert TEXT.startswith(HEADER + "\n")
    assert "seed kinds" in HEADER
    assert TEXT.endswith("\n") and not TEXT.endswith("\n\n")
    assert kinds_reference() == TEXT


def test_seed_kinds_prints_the_reference() -> None:
    result = CliRunner().invoke(app, ["kinds"])
    assert result.exit_code == 0, result.output
    assert result.stdout == TEXT


def test_every_kind_appears_in_registry_order() -> None:
    positions = [TEXT.index(f"\n## {name}\n") for name in KINDS]
    assert positions == sorted(positions)
    for name, kind in KINDS.items():
        assert f"Table `{kind.table}`" in section(name)


@pytest.mark.parametrize("name", list(KINDS))
def test_every_relation_trait_and_field_appears(name: str) -> None:
    kind, text = KINDS[name], section(name)
    for relation in kind.relations:
        assert f"- `{relation.name}` → {relation.kind}\n" in text
    traits, _ = steps.factory_names(name)
    for trait in traits:
        assert f"- `{trait}`" in text
    for field in fields(kind):
        assert f"| `{field}`" in text
    for values in kind.vocabularies.values():
        assert ", ".join(f"`{value}`" for value in values) in text
    for low, high in kind.ranges.values():
        assert f"| {low} to {high} |" in text
    for alias, target in kind.aliases.items():
        assert f"- `{alias}` is `{target}`" in text
    for key in kind.derived_filters:
        assert f"`{key}`" in text.split("**Picks**", 1)[1]


@pytest.mark.parametrize("name", list(KINDS))
def test_fields_leave_out_what_a_scenario_cannot_set(name: str) -> None:
    kind = KINDS[name]
    traits, accepted = steps.factory_names(name)
    listed = set(fields(kind))
    assert listed <= accepted
    assert not listed & (traits | set(kind.relation_names) | steps.INTERNAL_PARAMS[kind.name])
    assert set(steps.model_columns(name)) <= listed


def test_trait_notes_read_the_docstrings_traits_section() -> None:
    class Example:
        """An example.

        Traits:
            one, two: the first ``two``
                continued.
            three: the third.

        Other:
            four: not a trait.
        """

    assert trait_notes(Example) == (
        "", {"one": "the first `two` continued.", "two": "the first `two` continued.",
             "three": "the third."},
    )

    class Summary:
        """Traits: one per status (``a``,
        ``b``).
        """

    assert trait_notes(Summary) == ("one per status (`a`, `b`).", {})
    assert trait_notes(int) == ("", {})
