"""The ``seed`` command: parses flags, calls the library, turns its errors into one clean line."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from importlib.metadata import version
from typing import Annotated, Any, TypeVar

import typer

from seeding import database, doctor, embedded, guard, report, reset, targets
from seeding.errors import ResetBlockedError, SeedingError

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
    engine = database.engine_for(guard.ensure_writable(target.endpoint))
    try:
        created = database.create_schema(engine)
    finally:
        engine.dispose()
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
        typer.Option("--apply", help="Add the missing foreign keys (where writing is allowed)."),
    ] = False,
) -> None:
    """Compare a live schema with what the tool writes and reads; exit 1 when they differ."""
    target = database.resolve(db)
    if apply:
        guard.ensure_writable(target.endpoint)
    engine = database.engine_for(target.endpoint)
    try:
        with database.transaction(engine) as connection:
            problems = doctor.diagnose(connection)
            applied = doctor.apply_fixes(connection, problems) if apply else []
            if applied:
                problems = doctor.diagnose(connection)
    finally:
        engine.dispose()
    typer.echo(f"database: {_where(target)}")
    for statement in applied:
        typer.echo(f"applied: {statement}")
    if not problems:
        typer.echo(
            "compatible: every table, column, vocabulary and foreign key the tool needs is there"
        )
        return
    typer.echo(f"{len(problems)} problems:")
    for problem in problems:
        typer.echo(f"- {problem.message}")
        if problem.fix_sql:
            typer.echo(f"    {problem.fix_sql}")
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
) -> None:
    """Seed the database with a scenario, in one transaction; a rerun replaces its rows."""
    # The factories and the bulk path load only for the commands that write scenarios.
    from seeding import runner, tiles

    started = time.perf_counter()
    parsed = tiles.Shard.parse(shard) if shard is not None else None
    tiled_scenario = runner.is_tiled(name, parsed)
    with _status("checking and building the scenario"):
        if tiled_scenario:
            tiled = runner.prepare_tiled(name, seed=seed, scale=scale, shard=parsed or tiles.WHOLE)
            plan = tiled.plan
        else:
            plan, built = runner.prepare(name, seed=seed, scale=scale)
    target = database.resolve(db)
    engine = database.engine_for(guard.ensure_writable(target.endpoint))
    notify = lambda line: typer.echo(line, err=True)  # noqa: E731
    try:
        if tiled_scenario:
            with _progress(tiled.rows) as advance:
                result = runner.write_tiled(
                    engine, tiled, wait=not no_wait, notify=notify, progress=advance
                )
        else:
            with _status(f"writing {len(built.rows):,} rows"):
                result = runner.write_built(engine, plan, built, wait=not no_wait, notify=notify)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    typer.echo(f"database: {_where(target)}")
    if result.replaced:
        typer.echo(f"replaced the earlier run's {sum(result.replaced.values()):,} rows")
    part = f", shard {parsed}" if parsed else ""
    typer.echo(f"scenario {plan.scenario} (seed {plan.seed}, scale {plan.scale:g}{part}):")
    for table, count in result.counts.items():
        typer.echo(f"  {table:<18} {count:>9,}")
    total = sum(result.counts.values())
    rate = f" ({total / seconds:,.0f} rows/s)" if tiled_scenario else ""
    typer.echo(f"  {'total':<18} {total:>9,}  in {seconds:.2f} s{rate}")
    if plan.expect:
        expect = targets.parse_targets(plan.expect)
        measured = _measure(target.endpoint, now=plan.now, expect=expect)
        _print_targets(measured.targets)
        if not all(t.met for t in measured.targets):
            raise typer.Exit(1)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
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


def _measure(
    endpoint: guard.Endpoint, *, now: Any = None, expect: list[targets.Target]
) -> report.Report:
    engine = database.engine_for(endpoint).execution_options(isolation_level="REPEATABLE READ")
    try:
        with database.transaction(engine) as connection:
            return report.build_report(connection, now=now, targets=expect)
    finally:
        engine.dispose()


def _print_targets(results: tuple[targets.TargetResult, ...] | list[targets.TargetResult]) -> None:
    missed = [r for r in results if not r.met]
    typer.echo(f"targets: {len(results) - len(missed)} of {len(results)} met")
    width = max((len(r.metric) for r in results), default=10)
    for r in results:
        mark = "ok  " if r.met else "MISS"
        typer.echo(
            f"  {mark} {r.metric:<{width}}  {targets.format_number(r.current):>8}"
            f"  needed {r.needed}"
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
    expect: list[targets.Target] = []
    if scenario:
        from seeding import scenario_file  # pydantic and YAML: only to read the targets

        expect = targets.parse_targets(scenario_file.load(scenario)[0].expect)
    target = database.resolve(db)
    measured = _measure(target.endpoint, expect=expect)
    text = report.render(measured, fmt)  # type: ignore[arg-type]
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
        typer.echo(f"report written to {output}", err=True)
    else:
        typer.echo(text)
    if expect and not all(t.met for t in measured.targets):
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
            wait=not no_wait, notify=lambda line: typer.echo(line, err=True),
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


def _print_blockers(blockers: tuple[reset.Blocker, ...], *, err: bool, limit: int = 20) -> None:
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
