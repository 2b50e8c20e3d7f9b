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

from seeding import database, doctor, embedded, guard, report, runner, scenario_file, targets
from seeding.errors import SeedingError

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
    typer.echo(f"error: {message}", err=True)
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
    guard.ensure_writable(target.url)
    engine = database.engine_for(target.url)
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
    typer.echo(database.mask_password(database.libpq_url(target.url)))


@db_app.command("shell")
@clean_errors
def db_shell(db: DbOption = None) -> None:
    """Open psql on the database."""
    target = database.resolve(db)
    psql = shutil.which("psql") or str(embedded.psql_path())
    url = database.libpq_url(target.url)
    typer.echo(f"psql on {_where(target)}", err=True)
    sys.stdout.flush()
    os.execv(psql, [psql, url])


@db_app.command("doctor")
@clean_errors
def db_doctor(
    db: DbOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Add the missing foreign keys (where writing is allowed).")
    ] = False,
) -> None:
    """Compare a live schema with what the tool writes and reads; exit 1 when they differ."""
    target = database.resolve(db)
    if apply:
        guard.ensure_writable(target.url)
    engine = database.engine_for(target.url)
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
        typer.echo("compatible: every table, column, vocabulary and foreign key the tool needs is there")
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
    for name, path in scenario_file.shipped().items():
        spec, _ = scenario_file.read_spec(path)
        typer.echo(f"{name:<12} {spec.description}")


@app.command("scenario")
@clean_errors
def scenario_run(
    name: Annotated[str, typer.Argument(help="A shipped scenario's name, or a path to a .yaml file.")],
    db: DbOption = None,
    seed: Annotated[int | None, typer.Option(help="The run's seed (default: the scenario's).")] = None,
    scale: Annotated[float, typer.Option(help="Multiply the counts; quotas are kept.")] = 1.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if another run is writing.")
    ] = False,
) -> None:
    """Seed the database with a scenario, in one transaction; a rerun replaces its rows."""
    started = time.perf_counter()
    with _status("checking and building the scenario"):
        plan, built = runner.prepare(name, seed=seed, scale=scale)
    target = database.resolve(db)
    guard.ensure_writable(target.url)
    engine = database.engine_for(target.url)
    try:
        with _status(f"writing {len(built.rows):,} rows"):
            result = runner.write_built(
                engine, plan, built, wait=not no_wait, notify=lambda line: typer.echo(line, err=True)
            )
    finally:
        engine.dispose()
    typer.echo(f"database: {_where(target)}")
    if result.replaced:
        typer.echo(f"replaced the earlier run's {sum(result.replaced.values()):,} rows")
    typer.echo(f"scenario {plan.scenario} (seed {plan.seed}, scale {plan.scale:g}):")
    for table, count in result.counts.items():
        typer.echo(f"  {table:<18} {count:>9,}")
    typer.echo(f"  {'total':<18} {sum(result.counts.values()):>9,}  in {time.perf_counter() - started:.2f} s")
    if plan.expect:
        measured = _measure(target.url, now=plan.now, expect=targets.parse_targets(plan.expect))
        _print_targets(measured.targets)
        if not all(t.met for t in measured.targets):
            raise typer.Exit(1)


def _measure(url: str, *, now: Any = None, expect: list[targets.Target]) -> report.Report:
    engine = database.engine_for(url).execution_options(isolation_level="REPEATABLE READ")
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
        typer.echo(f"  {mark} {r.metric:<{width}}  {targets.format_number(r.current):>8}  needed {r.needed}")


@app.command("report")
@clean_errors
def report_command(
    db: DbOption = None,
    scenario: Annotated[
        str | None, typer.Option(help="Check this scenario's `expect` targets (exit 1 if one is missed).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown or json.")] = "table",
    output: Annotated[str | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Audit a database with the app's tables (read only): metrics, integrity, targets."""
    if fmt not in ("table", "markdown", "json"):
        raise fail(f"--format {fmt!r} is not one of table, markdown, json")
    expect = targets.parse_targets(scenario_file.load(scenario)[0].expect) if scenario else []
    target = database.resolve(db)
    measured = _measure(target.url, expect=expect)
    text = report.render(measured, fmt)  # type: ignore[arg-type]
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
        typer.echo(f"report written to {output}", err=True)
    else:
        typer.echo(text)
    if expect and not all(t.met for t in measured.targets):
        raise typer.Exit(1)


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
