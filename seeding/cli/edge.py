"""The edge of the ``seed`` command: the typer apps, the process's end, the errors and exit codes.

Every command module registers its commands on :data:`app` (``seed db``'s on :data:`db_app`),
wraps them in :func:`clean_errors` (a library error is one line on stderr and its exit code),
refuses a bad flag with :func:`fail`, and calls :func:`settle` once its work is done, so that a
reader closing stdout early (``| head``) cuts the output, not the exit code.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from functools import wraps
from importlib.metadata import version
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from seeding.db import database, guard
from seeding.errors import SeedingError

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
            say("aborted")
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
        help="PostgreSQL URL (postgres:// or postgresql://), or `supabase` for the Supabase "
        "CLI's local database (127.0.0.1:54322). Default: $SEED_DATABASE_URL, else the "
        "embedded server.",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {guard.redact(message)}", err=True)
    return typer.Exit(code)


def say(line: str) -> None:
    """Print one line to stderr, unless stderr is closed too."""
    try:
        typer.echo(line, err=True)
    except OSError:
        pass


def chosen(db: str | None) -> database.Target | None:
    """Return the target --db names (read now, nothing started); None leaves it to the library.

    Without --db the library chooses (SEED_DATABASE_URL, else the embedded server) once it
    needs the database, so that a wrong scenario starts no server.
    """
    return database.resolve(db) if db else None


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
    say(f"error: {guard.redact(message)}{hint}")
    return error.exit_code


def settle(code: int = 0) -> int:
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
        say(
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
            settle(0)
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


def main() -> None:
    """Run the ``seed`` command."""
    app()
