"""The ``seed`` command: parses flags, calls the library, turns its errors into one clean line."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import wraps
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from seeding import callbacks, database, doctor, embedded, guard, measure, report, reset, targets
from seeding.errors import Blocking, ResetBlockedError, SeedingError

#: The exit code a command has earned once its work is done (a run committed, a report
#: measured): what it exits with when its output is cut after that. None while work is under way.
_OUTCOME: ContextVar[int | None] = ContextVar("seed_outcome", default=None)


class _Edge(TyperGroup):
    """The ``seed`` group, where click's own handling of the process's end is replaced.

    A bad option value or a missing argument is one line on stderr and exit 2, not click's
    usage block and box; a stdout closed by its reader (``seed scenario diverse | head -3``)
    ends the command with the exit code its work earned, not click's silent exit 1.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:  # a caller that handles click's exceptions itself
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as error:  # click's: a bad value, an unknown option, ...
            code = _usage_error(error)
        except typer.Abort:  # Ctrl-D at a prompt
            _say("aborted")
            code = 1
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        token = _OUTCOME.set(None)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _output_cut()
        finally:
            _OUTCOME.reset(token)


app = typer.Typer(
    name="seed",
    cls=_Edge,
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


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return a count with its noun, singular or plural: "1 row", "2 rows", "1,204 rows"."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _say(line: str) -> None:
    """Print one line to stderr, unless stderr is closed too."""
    try:
        typer.echo(line, err=True)
    except OSError:
        pass


def _usage_error(error: typer.TyperException) -> int:
    """Print click's error about the command line as one line; return its exit code (2)."""
    message = error.format_message()
    # Typer's own test, without importing the class: with no arguments, the help was shown.
    if type(error).__name__ == "NoArgsIsHelpError":
        if message.strip():
            typer.echo(message)
        return error.exit_code
    message = " ".join(message.split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(error, "ctx", None)
    hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
    _say(f"error: {guard.redact(message)}{hint}")
    return error.exit_code


def _settle(code: int = 0) -> int:
    """Record the exit code the command's work has earned; return it.

    Called once the work is done (committed, measured): from then on, a stdout closed by its
    reader cuts only the output, and the command still exits with this code.
    """
    _OUTCOME.set(code)
    return code


def _output_cut() -> NoReturn:
    """End a command whose stdout its reader closed: with the code its work earned, else 1."""
    try:  # what is still buffered, and every later write, goes nowhere, silently
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    outcome = _OUTCOME.get()
    if outcome is None:
        _say(
            "error: the output was closed before the command was done; it stopped there, and "
            "nothing it had under way was committed"
        )
        raise typer.Exit(1)
    raise typer.Exit(outcome)


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
        try:
            typer.echo(f"seed {version('seeding')}")
        except BrokenPipeError:  # parsed before any command runs, so not caught by _Edge
            _settle(0)
            _output_cut()
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
    _settle(0)
    typer.echo(f"database: {_where(target)}")
    if created:
        typer.echo(f"created {counted(len(created), 'table')}: {', '.join(created)}")
    else:
        typer.echo("all tables present; nothing changed")


@db_app.command("url")
@clean_errors
def db_url(db: DbOption = None) -> None:
    """Print the database's URL (password masked), starting the embedded server if needed."""
    target = database.resolve(db)
    _settle(0)
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
    problems, notes = diagnosis.problems, diagnosis.notes
    _settle(1 if problems else 0)
    if not applying:
        typer.echo(f"database: {_where(target)}")
    for heading, found in (("problem", problems), ("note", notes)):
        if found:
            typer.echo(f"{counted(len(found), heading)}:")
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
    stopped = embedded.stop(data_dir)
    _settle(0)
    if stopped:
        typer.echo(f"stopped the embedded PostgreSQL in {data_dir}")
    else:
        typer.echo(f"no embedded PostgreSQL is running in {data_dir}")


@app.command("scenarios")
@clean_errors
def scenarios_list() -> None:
    """List the shipped scenarios with their one-line descriptions."""
    from seeding import scenario_file  # the scenario files' parser, only when needed

    _settle(0)  # it only reads: a reader who stops early cuts nothing that matters
    for name, path in scenario_file.shipped().items():
        spec, _ = scenario_file.read_spec(path)
        typer.echo(f"{name:<12} {spec.description}")


@app.command("kinds")
@clean_errors
def kinds_list() -> None:
    """Print the reference of every kind: relations, traits, fields, aliases (Markdown)."""
    from seeding import reference  # loads the factories, only when needed

    _settle(0)  # it only reads
    typer.echo(reference.kinds_reference(), nl=False)


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
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="List every target checked, not only the missed."),
    ] = False,
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
    # Measured before anything is printed: the exit code is then known, and a reader who
    # closes the output early (`| head`) does not turn the committed run into a failure.
    with _status("checking the targets"):
        checked = measure.measure_targets(target, expect=result.expect, now=result.now)
    code = _settle(0 if all(t.met for t in checked) else 1)
    typer.echo(f"database: {_where(target)}")
    for replaced in result.replaced_runs:
        typer.echo(f"replaced {replaced}")
    part = f", shard {result.shard}" if result.shard else ""
    typer.echo(f"scenario {result.scenario} (seed {result.seed}, scale {result.scale:g}{part}):")
    total = sum(result.counts.values())
    rate = f" ({total / result.seconds:,.0f} rows/s)" if result.tiled else ""
    _print_counts(result.counts, f"  in {result.seconds:.2f} s{rate}")
    if result.app_made:
        made = ", ".join(f"{table} {count:,}" for table, count in result.app_made.items())
        typer.echo(f"made by the app's triggers, recorded with the run: {made}")
    if result.absent:
        typer.echo(f"not written, the database lacks them: {', '.join(result.absent)}")
    if checked:
        _print_targets(checked, verbose=verbose)
    if code:
        raise typer.Exit(code)


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


def _print_targets(
    results: Sequence[targets.TargetResult], *, verbose: bool = False
) -> None:
    """Print how many targets were met, then the missed ones (every one when verbose)."""
    missed = [r for r in results if not r.met]
    typer.echo(f"targets: {len(results) - len(missed)} of {len(results)} met")
    shown = results if verbose else missed
    width = max((len(r.metric) for r in shown), default=10)
    for r in shown:
        mark = "ok  " if r.met else ("n/a " if not r.measurable else "MISS")
        reason = "" if r.measurable else f"  {r.status}"
        typer.echo(
            f"  {mark} {r.metric:<{width}}  {targets.format_number(r.current):>8}"
            f"  needed {r.needed}{reason}"
        )


def _report_clock(now: str | None, scenario: str | None) -> tuple[datetime | None, str]:
    """Return the instant the report takes as now (None: the database's), and how it was chosen."""
    if now is not None and now.strip().lower() != "now":
        try:
            instant = datetime.fromisoformat(now.strip())
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise fail(
                f"--now {now!r} is not an ISO time with its offset; write it like "
                "2026-11-20T12:00:00-05:00, or 'now' for the database's"
            )
        return instant, f"{instant.isoformat()} (--now)"
    if now is None and scenario:
        instant = measure.scenario_clock(scenario)[0]
        return instant, f"{instant.isoformat()} (scenario {scenario}'s clock)"
    return None, "the database's now()"


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
    now: Annotated[
        str | None,
        typer.Option("--now", help="The instant the time rules take as now: an ISO time with "
                     "its offset, or 'now' for the database's (default: the scenario's clock "
                     "with --scenario, else the database's).", show_default=False),
    ] = None,
) -> None:
    """Audit a database with the app's tables (read only): metrics, integrity, targets."""
    if fmt not in ("table", "markdown", "json"):
        raise fail(f"--format {fmt!r} is not one of table, markdown, json")
    if output:
        _check_output(output)  # before any query: a report that cannot be written is not run
    instant, clock = _report_clock(now, scenario)
    measured = measure.measure(_chosen(db), scenario=scenario, now=instant)
    if fmt != "json":  # the JSON says it in its own `now`
        typer.echo(f"clock: {clock}", err=True)
    text = report.render(measured, fmt)  # type: ignore[arg-type]
    code = _settle(0 if all(t.met for t in measured.targets) else 1)
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


def _check_output(output: str) -> None:
    """Refuse an ``--output`` the report could not be written to, naming why and the fix.

    The file is really opened (created, then removed, when it does not exist yet), so what
    the system would refuse (a read-only disk, a folder's permissions) is found, not guessed.

    Raises:
        typer.Exit: With code 2, after one line on stderr.

    """
    path = Path(output)
    folder = path.parent
    if path.is_dir():
        raise fail(f"--output {output}: that is a folder; give a file in it, such as "
                   f"{path / 'report.md'}")
    if not folder.exists():
        raise fail(f"--output {output}: there is no folder {folder}; create it first "
                   f"(mkdir -p {folder}) or write elsewhere")
    if not folder.is_dir():
        raise fail(f"--output {output}: {folder} is a file, not a folder; write elsewhere")
    existed = path.exists()
    try:
        with open(path, "a", encoding="utf-8"):  # appends nothing: the report replaces it
            pass
    except OSError as error:
        raise fail(f"--output {output}: cannot write there ({error.strerror}); choose a path you "
                   "can write to") from None
    if not existed:
        path.unlink(missing_ok=True)


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
    if not (yes or dry_run or _stdin_is_terminal()):
        raise fail(
            "seed reset deletes rows and asks first, but stdin is not a terminal to ask on; "
            "add --yes to delete without asking, or --dry-run to see what it would delete"
        )
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
            confirm=None if yes or dry_run else ask,
        )
    except ResetBlockedError as blocked:
        typer.echo(f"error: {blocked}", err=True)
        typer.echo("the rows in the way:", err=True)
        _print_blockers(blocked.blockers, err=True)
        raise typer.Exit(blocked.exit_code) from None
    plan = result.plan
    _settle(1 if result.outcome == "aborted" or (result.outcome == "dry_run" and plan.blockers)
            else 0)
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


def _print_counts(
    counts: Mapping[str, int], after_total: str = "", *, total: int | None = None
) -> None:
    """Print rows per table and their total, in columns as wide as the longest name needs."""
    total = sum(counts.values()) if total is None else total
    names = max((len(table) for table in counts), default=0)
    width, digits = max(18, names), max(9, len(f"{total:,}"))
    for table, count in counts.items():
        typer.echo(f"  {table:<{width}} {count:>{digits},}")
    typer.echo(f"  {'total':<{width}} {total:>{digits},}{after_total}")


def _print_reset_plan(plan: reset.ResetPlan, verb: str) -> None:
    runs = counted(len(plan.runs), "run")
    if plan.all_tables:
        typer.echo(f"{verb} every row of the app's tables, and the ledger ({runs}):")
    else:
        typer.echo(f"{verb} the rows of {runs}:")
    for run in plan.runs:
        typer.echo(f"  run {run.describe()}")
    _print_counts(plan.counts, total=plan.total)
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
