"""Bounded scenario input: rows, copies, YAML (aliases, depth, size, duplicate keys), targets.

A scenario is refused before anything is built (or written) when it would build too much,
and no scenario, however malformed, ends in a traceback: every refusal is one ScenarioError
naming the file (and its line).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from seeding import runner
from seeding.cli import app
from seeding.errors import ConfigurationError, ScenarioError
from seeding.scenario import files
from seeding.scenario.files import load
from seeding.scenario.plan import make_plan

HEAD = "description: test\nsteps:\n"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a fresh folder (messages name files relative to it), with the default bounds."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEED_MAX_ROWS", raising=False)
    monkeypatch.delenv("SEED_MAX_TILED_ROWS", raising=False)


def write(text: str, name: str = "x.yaml") -> str:
    Path(name).write_text(text)
    return name


def refused(name: str, **kwargs: object) -> str:
    """Return the message of the ScenarioError that preparing ``name`` raises."""
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as caught:
        if runner.is_tiled(name):
            runner.prepare_tiled(name, **kwargs)  # type: ignore[arg-type]
        else:
            runner.prepare(name, **kwargs)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 5, "refused, but not before doing the work"
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(name), message
    return message


# --- rows built in memory ---------------------------------------------------------------------


def test_a_count_over_the_bound_is_refused_before_building() -> None:
    name = write(HEAD + "  - create: customer\n    count: 3\n"
                        "  - create: vehicle\n    count: 1000000000000\n")
    assert refused(name) == (
        "x.yaml:6: steps[1]: count 1000000000000 (after --scale 1) would build "
        "1,000,000,000,000 rows in memory, over the bound of 5,000,000; lower the count, "
        "or raise SEED_MAX_ROWS"
    )


def test_a_count_of_400_digits_or_a_huge_mix_is_refused() -> None:
    assert "count 999999999999... (400 digits) (after --scale 1) would build" in refused(
        write(HEAD + "  - create: customer\n    count: " + "9" * 400 + "\n")
    )
    assert re.search(
        r"^x\.yaml:6: steps\[0\]\.mix\.status: count 100000000000\.\.\. \(31 digits\) is more "
        r"rows than a run can build",
        refused(write(HEAD + "  - create: session_request\n    traits: [pending]\n    mix:\n"
                             "      status: {pending: " + "1" + "0" * 30 + "}\n")),
    )


def test_the_bound_is_set_by_seed_max_rows_or_by_the_keyword(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = write(HEAD + "  - create: customer\n    count: 101\n")
    assert len(runner.prepare(name)[1].rows) == 101
    monkeypatch.setenv("SEED_MAX_ROWS", "100")
    assert "over the bound of 100;" in refused(name)
    assert len(runner.prepare(name, max_rows=101)[1].rows) == 101  # the keyword wins
    monkeypatch.delenv("SEED_MAX_ROWS")
    assert "over the bound of 100;" in refused(name, max_rows=100)
    scenario, nodes = load(name)
    with pytest.raises(ScenarioError, match=r"over the bound of 50;"):
        make_plan(scenario, nodes, max_rows=50)
    assert make_plan(scenario, nodes, max_rows=101).row_count == 101


def test_every_step_and_the_scale_count_toward_the_bound() -> None:
    name = write(HEAD + "  - create: customer\n    count: 60\n"
                        "  - create: customer\n    count: 60\n")
    assert refused(name, max_rows=100).startswith(
        "x.yaml:6: steps[1]: count 60 (after --scale 1) would build 60 rows in memory "
        "(120 with the steps before it), over the bound of 100"
    )
    assert "count 60 (after --scale 1e+06) would build 60,000,000 rows" in refused(
        name, scale=1e6
    )
    mix = write(HEAD + "  - create: session_request\n    traits: [pending]\n    mix:\n"
                       "      session_type: {chat: 30, video: 30}\n")
    assert refused(mix, max_rows=59).startswith(
        "x.yaml:6: steps[0]: mix.session_type (after --scale 1) would build 60 rows"
    )


def test_a_bad_seed_max_rows_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    name = write(HEAD + "  - create: customer\n")
    for value in ("lots", "0", "-5"):
        monkeypatch.setenv("SEED_MAX_ROWS", value)
        with pytest.raises(ConfigurationError, match="SEED_MAX_ROWS=.* is not a positive"):
            runner.prepare(name)
    monkeypatch.setenv("SEED_MAX_ROWS", "10_000_000")
    runner.prepare(name)


# --- tiled scenarios ------------------------------------------------------------------------


TILED = (
    "description: tiled\ntiles: {tiles}\nsteps:\n  - create: workshop\n    ref: shop\n"
    "  - create: mechanic\n    count: 4\n    traits: [workshop]\n"
    "    with: {{organization: shop}}\n"
)


def test_a_tile_over_the_bound_is_refused_before_building() -> None:
    name = write(TILED.format(tiles=10))
    assert runner.prepare_tiled(name).copies == 10
    assert refused(name, max_rows=4) == (
        "x.yaml:7: steps[1]: count 4 would build 4 rows in memory (5 with the steps before it) "
        "for the tile (a tile is built whole; tiles and --scale make copies of it), over the "
        "bound of 4; lower the count, or raise SEED_MAX_ROWS"
    )


def test_absurd_tiles_or_scale_are_refused_at_the_tiles_line() -> None:
    huge = write(TILED.format(tiles=10**30))
    assert refused(huge).startswith(
        "x.yaml:2: tiles: 100000000000... (31 digits) × --scale 1 is about 1e+30 copies of "
        "the tile; a run writes at most 65,536"
    )
    name = write(TILED.format(tiles=10), "y.yaml")
    assert refused(name, scale=1e300).startswith("y.yaml:2: tiles: 10 × --scale 1e+300 is")
    assert refused(name, scale=10_000).startswith(
        "y.yaml:2: tiles: 10 × --scale 10000 is 100,000 copies of the tile"
    )


def test_the_rows_of_all_copies_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    name = write(TILED.format(tiles=100))
    assert runner.prepare_tiled(name, scale=600).copies == 60_000  # 60,000 copies of 5 rows
    message = refused(name, scale=600, max_tiled_rows=299_999)
    assert message.startswith(
        "x.yaml:2: tiles: 60,000 copies (tiles 100 × --scale 600) of a tile of 5 rows would "
        "write 300,000 rows, over the bound of 299,999; lower tiles or --scale, or raise "
        "SEED_MAX_TILED_ROWS"
    ), message
    monkeypatch.setenv("SEED_MAX_TILED_ROWS", "499")  # 100 copies of 5 rows
    assert "over the bound of 499;" in refused(name)
    monkeypatch.setenv("SEED_MAX_TILED_ROWS", "none")
    with pytest.raises(ConfigurationError, match="SEED_MAX_TILED_ROWS"):
        runner.prepare_tiled(name)


def test_a_unique_text_fixed_in_a_tile_is_refused_when_copies_would_repeat_it() -> None:
    text = "description: t\ntiles: {tiles}\nsteps:\n  - create: workshop\n" \
           "    fields: {{email: shop@example.com}}\n"
    assert runner.prepare_tiled(write(text.format(tiles=1))).copies == 1
    assert refused(write(text.format(tiles=3))) == (
        "x.yaml:4: steps[0]: organizations.email 'shop@example.com' would be the same in each "
        "of the 3 copies of the tile, and it must be unique; leave it to the factory (which "
        "writes the row's id into it, and each copy its own id)"
    )


# --- YAML ---------------------------------------------------------------------------------------


def laughs(indent: str) -> str:
    """Return nine levels of anchors, each nine aliases of the one before: 9**9 nodes."""
    text = f"{indent}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, 9):
        text += f"{indent}a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n"
    return text


def test_aliases_that_expand_to_billions_of_nodes_are_refused_at_load() -> None:
    fields = write(HEAD + "  - create: customer\n    fields:\n" + laughs("      "))
    assert refused(fields) == (
        "x.yaml:9: alias *a3 stands for 7,381 nodes, and the file's aliases add 15,670 nodes "
        "in all, over the bound of 10,000; write the values out, or use fewer aliases"
    )
    where = write(HEAD + "  - create: customer\n  - create: vehicle\n    with:\n      customer:\n"
                         "        any: customer\n        where:\n" + laughs("          "), "w.yaml")
    assert refused(where).startswith("w.yaml:13: alias *a3 stands for 7,381 nodes")


def test_anchors_of_small_maps_still_work_and_merge_keys_still_override() -> None:
    name = write(HEAD + "  - create: customer\n    ref: c\n"
                 "  - create: session_request\n    count: 4\n    traits: [pending]\n"
                 "    with: &who {customer: c}\n    mix: &types\n"
                 "      session_type: {chat: 50%, video: 50%}\n"
                 "  - create: session_request\n    count: 2\n    traits: [pending]\n"
                 "    with: *who\n    mix:\n      <<: *types\n"
                 "      session_type: {diagnostic: 100%}\n")
    rows = runner.prepare(name)[1].by_kind["session_request"]
    assert [r.session_type for r in rows[4:]] == ["diagnostic", "diagnostic"]  # type: ignore[attr-defined]
    assert all(r.customer_name == rows[0].customer_name for r in rows)  # type: ignore[attr-defined]
    for shipped in files.shipped():  # baseline and diverse use anchors, diverse merges
        load(shipped)


def test_a_recursive_alias_is_refused() -> None:
    assert refused(write("description: t\nsteps: &s\n  - *s\n")) == (
        "x.yaml:3: alias *s is inside the node it names (a recursive alias); write the value out"
    )


def test_nesting_is_bounded() -> None:
    nested = "[" * 5000 + "]" * 5000
    deep = write(HEAD + "  - create: customer\n    fields: {city: " + nested + "}\n")
    assert refused(deep) == (
        "x.yaml:4: nested more than 100 levels deep; a scenario needs a few levels, "
        "flatten the value"
    )
    # 100 levels are read (and refused for what they say, not for their depth)
    ok = write(HEAD + "  - create: customer\n    fields: {city: " + "[" * 96 + "]" * 96 + "}\n")
    assert "city needs a text" in refused(ok)


def test_a_file_over_ten_megabytes_is_refused_naming_it() -> None:
    name = write("description: " + "x" * 10_000_000 + "\nsteps: []\n")
    assert refused(name) == (
        "x.yaml: the file is 10,000,024 bytes, over the bound of 10,000,000 for a scenario; a "
        "scenario describes data, it does not hold it (use count, mix and tiles)"
    )


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        ("description: a\ndescription: b\nsteps: []\n", 2, "description", 1),
        (HEAD + "  - create: customer\n    count: 1\n    count: 2\n", 5, "count", 4),
        (HEAD + "  - create: customer\n    fields: {city: Toronto, city: Ottawa}\n", 4, "city", 4),
        (HEAD + "  - create: customer\n    fields: {1: a, 0x1: b}\n", 4, "0x1", 4),
        (HEAD + "  - create: vehicle\n    with:\n      customer:\n        any: customer\n"
                "        where: {city: Toronto}\n        where: {city: Ottawa}\n", 8, "where", 7),
    ],
)
def test_a_duplicate_key_anywhere_is_refused(text: str, line: int, key: str, first: int) -> None:
    assert refused(write(text)) == (
        f"x.yaml:{line}: duplicate key {key!r} (first at line {first}); a key may appear once "
        "in a mapping, remove one"
    )


def test_values_yaml_cannot_read_are_refused_with_their_line() -> None:
    assert refused(write("description: t\nclock: {now: 2025-02-30T00:00:00Z}\n")) == (
        "x.yaml:2: cannot read the value '2025-02-30T00:00:00Z': day is out of range for month; "
        "fix the value"
    )
    assert refused(write("description: t\nseed: " + "9" * 5000 + "\n")).startswith(
        "x.yaml:2: cannot read the value"
    )


def test_each_file_is_parsed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    original = files._ScenarioLoader.get_single_node

    def counting(self: files._ScenarioLoader) -> object:
        parsed.append(1)
        return original(self)

    monkeypatch.setattr(files._ScenarioLoader, "get_single_node", counting)
    name = write("description: child\nextends: baseline\nsteps:\n  - create: customer\n",
                 "child.yaml")
    assert not runner.is_tiled(name)  # as `seed scenario` does: is it tiled? then prepare
    runner.prepare(name)
    assert len(parsed) <= 2  # child.yaml and baseline.yaml, once each
    Path(name).write_text("description: changed\nsteps:\n  - create: workshop\n")
    steps = runner.prepare(name)[0].steps
    assert [s.factory for s in steps] == ["workshop"]  # type: ignore[union-attr]  # read again


# --- the last-resort guard ----------------------------------------------------------------------


def test_an_unforeseen_exception_names_the_file_and_asks_for_a_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(built: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("seeding.scenario.builder._after_build", broken)
    name = write(HEAD + "  - create: customer\n")
    assert refused(name) == (
        "x.yaml: checking and building the scenario failed unexpectedly (ZeroDivisionError: "
        "division by zero); this is a bug in seeding, please report it with the scenario file"
    )


# --- targets --------------------------------------------------------------------------------------


def test_a_typo_in_an_expect_metric_stops_the_plan() -> None:
    name = write(HEAD + "  - create: customer\nexpect:\n  customers.total: '>= 1'\n"
                        "  customers.totl: '>= 1'\n")
    scenario, nodes = load(name)
    with pytest.raises(ScenarioError) as caught:
        make_plan(scenario, nodes)
    assert str(caught.value) == (
        "x.yaml:6: expect.customers.totl: unknown metric path; closest valid paths: "
        "customers.total, customers.active, customers.with_requests (see docs/report.md)"
    )


# --- through the CLI, on a database -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + "  - create: customer\n    count: 1000000000000\n",
         "x.yaml:4: steps[0]: count 1000000000000 (after --scale 1) would build "
         "1,000,000,000,000 rows in memory, over the bound of 5,000,000; lower the count, or "
         "raise SEED_MAX_ROWS"),
        (HEAD + "  - create: customer\nexpect:\n  customers.totl: '>= 1'\n",
         "x.yaml:5: expect.customers.totl: unknown metric path; closest valid paths: "
         "customers.total, customers.active, customers.with_requests (see docs/report.md)"),
        (TILED.format(tiles=10**9), "x.yaml:2: tiles: 1000000000 × --scale 1 is 1,000,000,000 "
         "copies of the tile; a run writes at most 65,536 (each copy's ids start with two bytes "
         "of its own); lower tiles or --scale"),
    ],
    ids=["rows", "expect", "copies"],
)
def test_a_refused_scenario_exits_2_in_one_line_and_writes_nothing(
    new_database: str, text: str, message: str
) -> None:
    write(text)
    result = CliRunner().invoke(app, ["scenario", "x.yaml", "--db", new_database])
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    with psycopg.connect(new_database) as connection:
        assert connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'seeding')"
        ).fetchone() == (0,)
