"""Runs that compose: which runs a run replaces, unique values held by others, targets measured
on the run's own rows and scaled with it, one run's report, and a scenario moved in time."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import database
from seeding.report.measure import measure, measure_scoped
from seeding.runner import prepare, run_scenario
from seeding.scenario import targets
from seeding.scenario.timeshift import parse_now

runner = CliRunner()
DOCS = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"


def q(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = database.engine_for(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    tables = ("organizations", "profiles", "mechanics", "vehicles", "session_requests",
              "sessions", "session_assignments")
    return {t: q(url, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def seed(url: str, *args: str) -> Any:
    result = runner.invoke(app, ["scenario", *args, "--db", url])
    return result


def docs_example(tmp_path: Path) -> Path:
    """The worked example of docs/scenarios.md, as a file (its first YAML block)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## A worked example"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    path = tmp_path / "bc.yaml"
    path.write_text(block.group(1), encoding="utf-8")
    return path


def test_shipped_scenarios_and_the_docs_example_run_in_any_order(
    new_database: str, tmp_path: Path
) -> None:
    example = str(docs_example(tmp_path))
    order = [
        ["diverse"], ["baseline"], ["diverse", "--seed", "7"], [example],
        ["load", "--scale", "0.01"], ["baseline"], [example], ["diverse"], ["load", "--scale",
                                                                           "0.01"],
    ]
    for args in order:
        result = seed(new_database, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "MISS" not in result.output
    # The last load replaced the earlier load; diverse replaced the example and baseline.
    scenarios = q(new_database, "SELECT scenario FROM seeding.runs ORDER BY scenario")
    assert scenarios == [("diverse",), ("load",)]


def test_a_run_names_each_run_it_replaces(new_database: str, tmp_path: Path) -> None:
    first = seed(new_database, "diverse")
    assert first.exit_code == 0, first.output
    diverse_id = q(new_database, "SELECT id FROM seeding.runs")[0][0]
    result = seed(new_database, "baseline", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert f"replaced run {diverse_id} of diverse (seed 20251112), 343 rows" in result.output
    # A run of another family replaces nothing.
    other = seed(new_database, "load", "--scale", "0.01")
    assert other.exit_code == 0, other.output
    assert "replaced" not in other.output
    assert q(new_database, "SELECT family FROM seeding.runs ORDER BY scenario") == [
        (["baseline"],), (["load"],)]


def test_a_unique_value_held_by_a_run_not_replaced_stops_the_run(
    new_database: str, tmp_path: Path
) -> None:
    assert seed(new_database, "baseline").exit_code == 0
    run_id = q(new_database, "SELECT id FROM seeding.runs")[0][0]
    before = counts(new_database)
    rival = tmp_path / "rival.yaml"
    rival.write_text(
        "description: A shop that takes baseline's slug, outside its family.\n"
        "steps:\n"
        "  - create: customer\n    count: 3\n"
        "  - create: workshop\n    fields: {name: Elite Again, slug: elite-auto-care-workshop}\n",
        encoding="utf-8",
    )
    result = seed(new_database, str(rival))
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0] == (
        "error: organizations.email = 'elite-auto-care-workshop@example.com' is held by run "
        f"{run_id} of baseline (seed 20251112), which this run does not replace; free it with "
        f"`seed reset --run {run_id}`, or change the value in the scenario (nothing was written)"
    )
    assert counts(new_database) == before
    assert q(new_database, "SELECT count(*) FROM seeding.runs") == [(1,)]
    # The command it names frees the value.
    assert runner.invoke(app, ["reset", "--run", str(run_id), "--yes", "--db", new_database]
                         ).exit_code == 0
    freed = seed(new_database, str(rival))
    assert freed.exit_code == 0, freed.output


def test_a_unique_value_held_by_a_row_the_tool_did_not_write_stops_the_run(
    new_database: str, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["db", "create", "--db", new_database]).exit_code == 0
    engine = database.engine_for(new_database)
    try:
        with engine.begin() as c:
            holder = c.execute(sa.text(
                "INSERT INTO organizations (id, name, slug, email, organization_type, "
                "created_at) VALUES (gen_random_uuid(), 'Theirs', 'taken-slug', "
                "'theirs@example.com', 'workshop', now()) RETURNING id"
            )).scalar_one()
    finally:
        engine.dispose()
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "description: Wants a slug someone else has.\n"
        "steps:\n  - create: workshop\n    fields: {slug: taken-slug}\n",
        encoding="utf-8",
    )
    result = seed(new_database, str(mine))
    assert result.exit_code != 0
    assert result.output.strip() == (
        "error: organizations.slug = 'taken-slug' is held by a row this tool did not write "
        f"(its id {holder}); change the value in the scenario, or delete that row (nothing was "
        "written)"
    )
    assert q(new_database, "SELECT count(*) FROM organizations") == [(1,)]


def test_targets_are_measured_on_the_runs_own_rows(new_database: str) -> None:
    assert seed(new_database, "load", "--scale", "0.01").exit_code == 0
    result = seed(new_database, "baseline")
    assert result.exit_code == 0, result.output
    assert "targets: 10 of 10 met" in result.output
    # The whole database does not meet baseline's exact figures; the run does.
    whole = measure(new_database, expect={"session_requests.total": "== 43"})
    assert not whole.targets[0].met
    report, scope = measure_scoped(new_database, scenario="baseline")
    assert scope.run is not None and scope.run.scenario == "baseline"
    assert report.session_requests.total == 43
    assert all(t.met for t in report.targets)


def test_seed_report_measures_one_run_or_the_whole_database(new_database: str) -> None:
    assert seed(new_database, "load", "--scale", "0.01").exit_code == 0
    assert seed(new_database, "baseline").exit_code == 0
    run_id = q(new_database, "SELECT id FROM seeding.runs WHERE scenario = 'baseline'")[0][0]
    by_run = runner.invoke(app, ["report", "--run", str(run_id), "--format", "json",
                                 "--db", new_database])
    assert by_run.exit_code == 0, by_run.output
    assert '"total": 43' in by_run.stdout
    assert f"rows: run {run_id} of baseline" in by_run.stderr or by_run.stderr == ""
    table = runner.invoke(app, ["report", "--run", str(run_id), "--db", new_database])
    assert f"rows: run {run_id} of baseline (seed 20251112, scale 1); clock: " \
           "2025-11-06T19:10:00+00:00 (the run's clock)" in table.stderr
    whole = runner.invoke(app, ["report", "--format", "json", "--db", new_database])
    assert whole.exit_code == 0
    assert '"total": 1043' in whole.stdout
    unknown = runner.invoke(app, ["report", "--run", str(uuid.UUID(int=7)), "--db",
                                  new_database])
    assert unknown.exit_code != 0
    assert "no run 00000000-0000-0000-0000-000000000007 in this database's ledger" in \
        unknown.output


@pytest.mark.parametrize("scale", ["0.5", "2"])
def test_a_scaled_diverse_meets_its_scaled_targets_empty_or_full(
    new_database: str, scale: str
) -> None:
    empty = seed(new_database, "diverse", "--scale", scale)
    assert empty.exit_code == 0, empty.output
    assert "MISS" not in empty.output
    assert seed(new_database, "load", "--scale", "0.01").exit_code == 0
    full = seed(new_database, "diverse", "--scale", scale, "--seed", "3")
    assert full.exit_code == 0, full.output
    assert "MISS" not in full.output


def test_baseline_at_scale_two_meets_its_scaled_targets(new_database: str) -> None:
    result = seed(new_database, "baseline", "--scale", "2", "-v")
    assert result.exit_code == 0, result.output
    # An exact count becomes the range the scaled run can take.
    assert "session_requests.total" in result.output and "43 to 86" in result.output


def test_count_targets_scale_as_quotas_and_other_targets_do_not() -> None:
    parsed = targets.parse_targets({
        "session_requests.total": ">= 120",
        "mechanics.incomplete_count": "<= 1",
        "session_requests.share_by_session_type.chat": "<= 0.60",
        "customers.province_count": ">= 3",
        "customers.total": "== 3",
    })
    half = {t.metric: t.needed for t in targets.scaled(parsed, 0.5)}
    assert half == {
        "session_requests.total": ">= 60",
        "mechanics.incomplete_count": "<= 1",
        "session_requests.share_by_session_type.chat": "<= 0.6",
        "customers.province_count": ">= 3",
        "customers.total": "2 to 3",
    }
    double = {t.metric: t.needed for t in targets.scaled(parsed, 2)}
    assert double["session_requests.total"] == ">= 120"
    assert double["mechanics.incomplete_count"] == "<= 2"
    assert double["customers.total"] == "3 to 6"
    assert targets.scaled(parsed, 1.0) == parsed


def _times(rows: Sequence[object]) -> list[tuple[str, str, datetime]]:
    found = []
    for row in rows:
        table = row.__table__  # type: ignore[attr-defined]
        for column in table.columns:
            value = getattr(row, column.key, None)
            if isinstance(value, datetime):
                found.append((table.name, column.key, value))
    return found


def _plan_times(plan: Any) -> list[datetime]:
    found: list[datetime] = [plan.now]
    for step in plan.steps:
        for row in getattr(step, "rows", ()):
            found += [v for v in row.kwargs.values() if isinstance(v, datetime)]
            for v in row.kwargs.values():
                if isinstance(v, list | tuple):
                    found += [x for x in v if isinstance(x, datetime)]
    return found


def test_now_moves_the_scenario_and_its_written_times_by_the_same_amount() -> None:
    plan, built = prepare("diverse")
    moved_to = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    shifted_plan, shifted = prepare("diverse", now="2026-12-01T10:00:00-05:00")
    delta = moved_to - plan.now
    assert shifted_plan.now == moved_to
    # Every time the scenario writes (its clock, baseline's created_at lists) moves by delta.
    written = _plan_times(plan)
    assert len(written) >= 10
    assert _plan_times(shifted_plan) == [t + delta for t in written]
    stated = set(written)
    pairs = [
        (old, new)
        for row, moved in zip(built.rows, shifted.rows, strict=True)
        for column in row.__table__.columns
        if isinstance(old := getattr(row, column.key, None), datetime) and old in stated
        and isinstance(new := getattr(moved, column.key, None), datetime)
    ]
    assert len(pairs) >= 10
    assert all(new - old == delta for old, new in pairs)
    # The same rows by table; the times the factories draw are drawn around the new clock
    # (so the daily and weekly rhythm stays on real evenings and weekdays): before it, within
    # the history.
    tables = [r.__table__.name for r in built.rows]  # type: ignore[attr-defined]
    assert tables == [r.__table__.name for r in shifted.rows]  # type: ignore[attr-defined]
    drawn = [t for _, column, t in _times(shifted.rows) if column == "created_at"]
    assert max(drawn) <= moved_to
    assert min(drawn) >= moved_to - timedelta(days=2 * 365)  # accounts: up to a year before
    # The same --now gives the same rows.
    _, again = prepare("diverse", now="2026-12-01T15:00:00Z")
    assert _times(again.rows) == _times(shifted.rows)


def test_seed_scenario_now_puts_requests_minutes_before_now(new_database: str) -> None:
    result = seed(new_database, "diverse", "--now", "now")
    assert result.exit_code == 0, result.output
    assert "MISS" not in result.output
    newest = q(new_database, "SELECT max(created_at) FROM session_requests")[0][0]
    lag = datetime.now(UTC) - newest
    assert timedelta(0) <= lag < timedelta(hours=2), lag
    live = q(new_database, "SELECT count(*) FROM sessions WHERE status = 'live' "
                           "AND started_at <= now() AND ended_at IS NULL")[0][0]
    assert live >= 1
    # The report of that run takes its clock, and its rules hold.
    report = runner.invoke(app, ["report", "--scenario", "diverse", "--db", new_database])
    assert report.exit_code == 0, report.output
    assert "(the run's clock)" in report.stderr


def test_now_is_checked_before_anything_connects() -> None:
    with pytest.raises(Exception, match="has no offset"):
        parse_now("2026-12-01T10:00:00")
    result = runner.invoke(app, ["scenario", "diverse", "--now", "yesterday", "--db",
                                 "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --now 'yesterday' is not a time")
    with pytest.raises(Exception, match="has no offset"):
        run_scenario("load", database_url="postgresql://nobody@127.0.0.1:1/none",
                     now="2026-12-01 10:00")


def test_now_moves_every_variant_of_a_tiled_scenario(new_database: str) -> None:
    moved_to = datetime(2030, 6, 1, 15, 0, tzinfo=UTC)  # years after load's own clock
    result = seed(new_database, "load", "--scale", "0.04", "--now", "2030-06-01T15:00:00Z")
    assert result.exit_code == 0, result.output
    # Four copies, built from four variants (three of them in the child process).
    (oldest, newest, copies), = q(
        new_database,
        "SELECT min(created_at), max(created_at), count(DISTINCT left(id::text, 4)) "
        "FROM session_requests",
    )
    assert copies == 4
    assert newest <= moved_to and moved_to - newest < timedelta(days=2)
    assert oldest >= moved_to - timedelta(days=2 * 365)
    assert q(new_database, "SELECT clock FROM seeding.runs") == [(moved_to,)]


def test_reset_on_the_apps_database_says_to_restore_a_missing_table_from_its_migrations(
    app_db_live: str,
) -> None:
    seeded = seed(app_db_live, "baseline")
    assert seeded.exit_code == 0, seeded.output
    engine = database.engine_for(app_db_live)
    try:
        with engine.begin() as c:
            c.execute(sa.text("DROP TABLE vehicles CASCADE"))
    finally:
        engine.dispose()
    result = runner.invoke(app, ["reset", "--yes", "--db", app_db_live])
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: the ledger lists rows of table vehicles, which the database lacks; nothing was "
        "deleted; fix: restore them from the app's migrations (`supabase db reset` on a local "
        "stack) (their rows went with them), then reset again"
    ), result.output
    assert "seed db create" not in result.output


def test_the_docs_worked_example_prints_what_the_docs_show(
    new_database: str, tmp_path: Path
) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## A worked example"):text.index("## Top level")]
    shown = re.search(r"```console\n\$ seed scenario bc.yaml\n(.*?)```", section, re.S)
    assert shown is not None
    result = seed(new_database, str(docs_example(tmp_path)))
    assert result.exit_code == 0, result.output

    def masked(lines: list[str]) -> list[str]:
        return [re.sub(r" in \d+\.\d+ s$", " in <s>", line) for line in lines
                if not line.startswith("database: ")]

    assert masked(result.output.splitlines()) == masked(shown.group(1).splitlines())
