"""The ``seed`` command: parses flags, calls the library, turns its errors into one clean line."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import wraps
from importlib.metadata import version
from typing import Annotated, Any, TypeVar

import typer

from seeding import callbacks, database, doctor, embedded, guard, measure, report, reset, targets
from seeding.errors import Blocking, ResetBlockedError, SeedingError

app = typer.Typer(
    name="seed",
    help="Coherent test data for the mechanic marketplace's PostgreSQL (Supabase) database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create, locate, open and stop the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="PostgreSQL URL (postgres:// or postgresql://). Default: $SEED_DATABASE_URL, "
        "else the embedded server.",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {guard.redact(message)}", err=True)
    return typer.Exit(code)


def clean_errors(command: F) -> F:
    """Turn a SeedingError raised by the library into one line on stderr and its exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SeedingError as error:
            raise fail(str(error), error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seed {version('seeding')}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Seed, report on and reset the marketplace's test data."""


def _where(target: database.Target) -> str:
    if target.embedded_server is not None:
        return (
            f"embedded PostgreSQL, data in {target.embedded_server.data_dir} "
            "(stop it with `seed db stop`)"
        )
    return f"{target.display_url} (from {target.source})"


@db_app.command("create")
@clean_errors
def db_create(db: DbOption = None) -> None:
    """Create the app's tables that are missing; safe to run again."""
    target = database.resolve(db)
    created = database.create_tables(target)
    typer.echo(f"database: {_where(target)}")
    if created:
        typer.echo(f"created {len(created)} tables: {', '.join(created)}")
    else:
        typer.echo("all tables present; nothing changed")


@db_app.command("url")
@clean_errors
def db_url(db: DbOption = None) -> None:
    """Print the database's URL (password masked), starting the embedded server if needed."""
    target = database.resolve(db)
    typer.echo(target.display_url)


@db_app.command("shell")
@clean_errors
def db_shell(db: DbOption = None) -> None:
    """Open psql on the database."""
    target = database.resolve(db)
    psql = shutil.which("psql") or str(embedded.psql_path())
    params = dict(target.endpoint.params)
    environment = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:  # not on psql's command line, where `ps` would show it
        environment["PGPASSWORD"] = password
    conninfo = guard.Endpoint(params, target.source, service=target.endpoint.service).conninfo
    typer.echo(f"psql on {_where(target)}", err=True)
    sys.stdout.flush()
    os.execve(psql, [psql, conninfo], environment)


@db_app.command("doctor")
@clean_errors
def db_doctor(
    db: DbOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Make the additive fixes: enum labels, wider CHECKs, foreign keys on columns "
            "that have none (where writing is allowed).",
        ),
    ] = False,
) -> None:
    """Compare a live schema with what the tool writes; exit 1 on a problem (notes exit 0)."""
    target = database.resolve(db)
    # The database line comes once connected: a refusal stays one line.
    applying: list[str] = []

    def before(statement: str) -> None:
        if not applying:
            typer.echo(f"database: {_where(target)}")
        applying.append(statement)
        typer.echo(f"applying: {statement}")

    diagnosis = doctor.check_database(target, apply=apply, before=before)
    if not applying:
        typer.echo(f"database: {_where(target)}")
    problems, notes = diagnosis.problems, diagnosis.notes
    for heading, found in (("problem", problems), ("note", notes)):
        if found:
            typer.echo(f"{len(found)} {heading}{'' if len(found) == 1 else 's'}:")
        for problem in found:
            typer.echo(f"- {problem.message}")
            for line in (problem.fix_sql or "").splitlines():
                typer.echo(f"    {line}")
    if not problems:
        typer.echo(
            "compatible: every table, column, vocabulary and foreign key the tool needs is there"
            + (" (notes above: deliberate or harmless differences)" if notes else "")
        )
        return
    raise typer.Exit(1)


@db_app.command("stop")
@clean_errors
def db_stop() -> None:
    """Stop the embedded server (its data stays in its folder)."""
    data_dir = embedded.default_data_dir()
    if embedded.stop(data_dir):
        typer.echo(f"stopped the embedded PostgreSQL in {data_dir}")
    else:
        typer.echo(f"no embedded PostgreSQL is running in {data_dir}")


@app.command("scenarios")
@clean_errors
def scenarios_list() -> None:
    """List the shipped scenarios with their one-line descriptions."""
    from seeding import scenario_file  # the scenario files' parser, only when needed

    for name, path in scenario_file.shipped().items():
        spec, _ = scenario_file.read_spec(path)
        typer.echo(f"{name:<12} {spec.description}")


@app.command("scenario")
@clean_errors
def scenario_run(
    name: Annotated[
        str, typer.Argument(help="A shipped scenario's name, or a path to a .yaml file.")
    ],
    db: DbOption = None,
    seed: Annotated[
        int | None, typer.Option(help="The run's seed (default: the scenario's).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Multiply the counts; quotas are kept.")] = 1.0,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: write only the K-th of N disjoint slices of a tiled scenario.",
                     show_default=False),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if another run is writing.")
    ] = False,
    user_password: Annotated[
        str | None,
        typer.Option("--user-password", help="The password of the seeded Supabase users "
                     "(default: $SEED_USER_PASSWORD, else seeding-password-1).",
                     show_default=False),
    ] = None,
) -> None:
    """Seed the database with a scenario, in one transaction; a rerun replaces its rows."""
    # The factories and the bulk path load only for the commands that write scenarios.
    from seeding import runner

    result = runner.run_scenario(
        name, database_url=_chosen(db), seed=seed, scale=scale, shard=shard, wait=not no_wait,
        notify=_notify, status=_Terminal(), user_password=user_password,
    )
    target = result.target
    assert target is not None  # run_scenario says where it wrote
    typer.echo(f"database: {_where(target)}")
    if result.replaced:
        typer.echo(f"replaced the earlier run's {sum(result.replaced.values()):,} rows")
    part = f", shard {result.shard}" if result.shard else ""
    typer.echo(f"scenario {result.scenario} (seed {result.seed}, scale {result.scale:g}{part}):")
    for table, count in result.counts.items():
        typer.echo(f"  {table:<18} {count:>9,}")
    total = sum(result.counts.values())
    rate = f" ({total / result.seconds:,.0f} rows/s)" if result.tiled else ""
    typer.echo(f"  {'total':<18} {total:>9,}  in {result.seconds:.2f} s{rate}")
    if result.app_made:
        made = ", ".join(f"{table} {count:,}" for table, count in result.app_made.items())
        typer.echo(f"made by the app's triggers, recorded with the run: {made}")
    if result.absent:
        typer.echo(f"not written, the database lacks them: {', '.join(result.absent)}")
    checked = measure.measure_targets(target, expect=result.expect, now=result.now)
    if checked:
        _print_targets(checked)
        if not all(t.met for t in checked):
            raise typer.Exit(1)


def _chosen(db: str | None) -> database.Target | None:
    """Return the target --db names (read now, nothing started); None leaves it to the library.

    Without --db the library chooses (SEED_DATABASE_URL, else the embedded server) once it
    needs the database, so that a wrong scenario starts no server.
    """
    return database.resolve(db) if db else None


def _notify(line: str) -> None:
    typer.echo(line, err=True)


class _Terminal:
    """The library's Status shown on stderr: spinners and a progress bar, on a terminal only."""

    def phase(self, message: str) -> AbstractContextManager[object]:
        return _status(message)

    def rows(self, total: int) -> AbstractContextManager[callbacks.Progress]:
        return _progress(total)


@contextmanager
def _progress(total: int) -> Iterator[callbacks.Progress]:
    """Show a progress bar with rows per second on stderr (only on a terminal)."""
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    class _Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")

    columns = (
        TextColumn("writing"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} of {task.total:,.0f} rows"), _Rate(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda rows: bar.advance(task, rows)


def _print_targets(results: tuple[targets.TargetResult, ...] | list[targets.TargetResult]) -> None:
    missed = [r for r in results if not r.met]
    typer.echo(f"targets: {len(results) - len(missed)} of {len(results)} met")
    width = max((len(r.metric) for r in results), default=10)
    for r in results:
        mark = "ok  " if r.met else ("n/a " if not r.measurable else "MISS")
        reason = "" if r.measurable else f"  {r.status}"
        typer.echo(
            f"  {mark} {r.metric:<{width}}  {targets.format_number(r.current):>8}"
            f"  needed {r.needed}{reason}"
        )


@app.command("report")
@clean_errors
def report_command(
    db: DbOption = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Check this scenario's `expect` targets (exit 1 if one is missed)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown or json.")] = "table",
    output: Annotated[
        str | None, typer.Option(help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Audit a database with the app's tables (read only): metrics, integrity, targets."""
    if fmt not in ("table", "markdown", "json"):
        raise fail(f"--format {fmt!r} is not one of table, markdown, json")
    measured = measure.measure(_chosen(db), scenario=scenario)
    text = report.render(measured, fmt)  # type: ignore[arg-type]
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
        typer.echo(f"report written to {output}", err=True)
    else:
        typer.echo(text)
    if not all(t.met for t in measured.targets):
        raise typer.Exit(1)


@app.command("reset")
@clean_errors
def reset_command(
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Reset only this run (its id; --dry-run lists the runs).",
                     show_default=False),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Reset only the runs of this scenario (name or file).",
                     show_default=False),
    ] = None,
    all_tables: Annotated[
        bool,
        typer.Option("--all-tables", help="Empty every app table and the ledger, whoever wrote "
                     "the rows (local databases only)."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would be deleted, per table; delete nothing."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting.")] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if a run or the app is writing.")
    ] = False,
) -> None:
    """Delete the rows this tool wrote (every run, or one run or scenario), in one transaction."""
    reset.check_selection(run_id=run_id, scenario=scenario, all_tables=all_tables)
    target = database.resolve(db)
    shown: list[reset.ResetPlan] = []

    def ask(plan: reset.ResetPlan) -> bool:
        typer.echo(f"database: {_where(target)}")
        _print_reset_plan(plan, "this will delete")
        shown.append(plan)
        return typer.confirm("delete these rows?", default=False)

    try:
        result = reset.reset_database(
            target.endpoint, run_id=run_id, scenario=scenario, all_tables=all_tables,
            dry_run=dry_run,
            wait=not no_wait, notify=_notify,
            confirm=None if yes or dry_run or not _stdin_is_terminal() else ask,
        )
    except ResetBlockedError as blocked:
        typer.echo(f"error: {blocked}", err=True)
        typer.echo("the rows in the way:", err=True)
        _print_blockers(blocked.blockers, err=True)
        raise typer.Exit(blocked.exit_code) from None
    plan = result.plan
    if result.outcome == "aborted":
        typer.echo("aborted; nothing deleted", err=True)
        raise typer.Exit(1)
    if not shown:
        typer.echo(f"database: {_where(target)}")
    if result.outcome == "nothing":
        if not plan.has_ledger and not plan.all_tables:
            typer.echo("nothing to reset: this database has no seeding ledger")
        elif plan.all_tables:
            typer.echo("nothing to reset: the app's tables are empty, the ledger records no runs")
        else:
            typer.echo("nothing to reset: the ledger records no runs")
        return
    if result.outcome == "dry_run":
        _print_reset_plan(plan, "dry run: a reset would delete")
        if plan.blockers:
            typer.echo("so the reset would be refused: these rows it would keep point at rows it "
                       "would delete:")
            _print_blockers(plan.blockers, err=False)
            typer.echo(
                "fix: delete those rows or point them elsewhere, or reset the runs they belong "
                "to as well; nothing was deleted"
            )
            raise typer.Exit(1)
        typer.echo("nothing deleted (dry run)")
        return
    deleted = reset.ResetPlan(
        plan.has_ledger, plan.all_tables, plan.runs, result.deleted,
        absent_tables=plan.absent_tables,
    )
    _print_reset_plan(deleted, "deleted")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _print_reset_plan(plan: reset.ResetPlan, verb: str) -> None:
    runs = f"{len(plan.runs)} run" + ("" if len(plan.runs) == 1 else "s")
    if plan.all_tables:
        typer.echo(f"{verb} every row of the app's tables, and the ledger ({runs}):")
    else:
        typer.echo(f"{verb} the rows of {runs}:")
    for run in plan.runs:
        typer.echo(f"  run {run.describe()}")
    for table, count in plan.counts.items():
        typer.echo(f"  {table:<18} {count:>9,}")
    typer.echo(f"  {'total':<18} {plan.total:>9,}")
    for table in plan.absent_tables:
        typer.echo(f"  ({table}: no such table)")


def _print_blockers(blockers: Sequence[Blocking], *, err: bool, limit: int = 20) -> None:
    for blocker in blockers[:limit]:
        typer.echo(f"  {blocker.describe()}", err=err)
    if len(blockers) > limit:
        typer.echo(f"  and {len(blockers) - limit} more", err=err)


@contextmanager
def _status(message: str) -> Iterator[None]:
    """Show a spinner on stderr while something takes a moment (only on a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def main() -> None:
    """Run the ``seed`` command."""
    app()


if __name__ == "__main__":
    main()
