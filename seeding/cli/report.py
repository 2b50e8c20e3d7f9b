"""``seed report``: measure a database (or one run's rows), render it, compare it with another."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from seeding import report
from seeding.cli.edge import DbOption, app, chosen, clean_errors, fail, settle
from seeding.cli.output import check_output
from seeding.db import database, guard
from seeding.errors import ConfigurationError
from seeding.report import compare as before_after
from seeding.report import measure


@app.command("report")
@clean_errors
def report_command(
    db: DbOption = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Measure this scenario's latest run and check its `expect` targets "
                     "(exit 1 if one is missed); the whole database if it has no run.",
                     show_default=False),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Measure only this run's rows (its id; `seed reset "
                     "--dry-run` lists the runs), on its clock, against its targets.",
                     show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="table, markdown, json, html (one self-contained page "
                     "with charts) or junit (targets and rules as test cases)."),
    ] = "table",
    output: Annotated[
        str | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
    compare_with: Annotated[
        str | None,
        typer.Option("--compare", help="Compare with another report: a file `--format json` "
                     "wrote, or a database (postgresql:// URL, read only); every metric before "
                     "and after, with its change.", show_default=False),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="The instant the time rules take as now: an ISO time with "
                     "its offset, or 'now' for the database's (default: the run's clock with "
                     "--run or --scenario, else the database's).", show_default=False),
    ] = None,
) -> None:
    """Audit a database with the app's tables (read only): metrics, integrity, targets."""
    if fmt not in report.FORMATS:
        raise fail(f"--format {fmt!r} is not one of {', '.join(report.FORMATS)}")
    if output:
        check_output(output)  # before any query: a report that cannot be written is not run
    before, other = _compared(compare_with)  # likewise: a wrong --compare runs nothing
    measured, scope = measure.measure_scoped(
        chosen(db), scenario=scenario, run=run_id, now=_report_now(now),
        database_now=now is not None and now.strip().lower() == "now",
    )
    if fmt != "json":  # the JSON says it in its own `now`
        typer.echo(scope.describe(), err=True)
    comparison = None
    if compare_with:
        if other is not None:  # another database, measured at this report's instant
            before = measure.measure(other, now=measured.now).to_dict()
        assert before is not None
        source = other.display_url if other is not None else compare_with
        comparison = before_after.compare(measured, before, source)
    text = report.render(measured, fmt, comparison)
    code = settle(0 if all(t.met for t in measured.targets) else 1)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")
        except OSError as error:
            raise fail(
                f"--output {output}: cannot write the report there: {error.strerror}"
            ) from None
        typer.echo(f"report written to {output}", err=True)
    else:
        typer.echo(text)
    if code:
        raise typer.Exit(code)


def _report_now(now: str | None) -> datetime | None:
    """Return the instant ``seed report --now`` names (None: not given, or 'now')."""
    if now is None or now.strip().lower() == "now":
        return None
    try:
        instant = datetime.fromisoformat(now.strip())
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise fail(
            f"--now {now!r} is not an ISO time with its offset; write it like "
            "2026-11-20T12:00:00-05:00, or 'now' for the database's"
        )
    return instant


def _compared(other: str | None) -> tuple[dict[str, Any] | None, database.Target | None]:
    """Read ``--compare`` before any query: a report file now; a database URL, not yet connected.

    Returns:
        The report the file holds, or the database to measure (one of them; neither without
        ``--compare``).

    """
    if other is None:
        return None, None
    if before_after.is_database_url(other):
        endpoint = guard.read(other, source="--compare")
        return None, database.Target(url=other.strip(), source="--compare", endpoint=endpoint)
    try:
        return before_after.read_report_file(other), None
    except ConfigurationError as error:
        raise fail(f"--compare {error}") from None
