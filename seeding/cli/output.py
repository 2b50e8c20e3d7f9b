"""What the ``seed`` commands print: counts, targets, reset plans, where the database is.

Also the library's :class:`~seeding.callbacks.Status` on a terminal (:class:`Terminal`: a
spinner per phase, a progress bar for rows), its ``notify`` lines (:func:`notify`), and the
check that an ``--output`` file can be written (:func:`check_output`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import typer

from seeding import callbacks, reset
from seeding.cli.edge import fail
from seeding.db import database
from seeding.errors import Blocking
from seeding.scenario import targets


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return a count with its noun, singular or plural: "1 row", "2 rows", "1,204 rows"."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def where(target: database.Target) -> str:
    """Say where the database is: its URL and where that came from, or the embedded server."""
    if target.embedded_server is not None:
        return (
            f"embedded PostgreSQL, data in {target.embedded_server.data_dir} "
            "(stop it with `seed db stop`)"
        )
    return f"{target.display_url} (from {target.source})"


def notify(line: str) -> None:
    """Print one of the library's lines to stderr."""
    typer.echo(line, err=True)


class Terminal:
    """The library's Status shown on stderr: spinners and a progress bar, on a terminal only."""

    def phase(self, message: str) -> AbstractContextManager[object]:
        """Show a spinner while the phase runs."""
        return status(message)

    def rows(self, total: int) -> AbstractContextManager[callbacks.Progress]:
        """Show a progress bar while the rows are written."""
        return _progress(total)


@contextmanager
def status(message: str) -> Iterator[None]:
    """Show a spinner on stderr while something takes a moment (only on a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


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


def print_counts(
    counts: Mapping[str, int], after_total: str = "", *, total: int | None = None
) -> None:
    """Print rows per table and their total, in columns as wide as the longest name needs."""
    total = sum(counts.values()) if total is None else total
    names = max((len(table) for table in counts), default=0)
    width, digits = max(18, names), max(9, len(f"{total:,}"))
    for table, count in counts.items():
        typer.echo(f"  {table:<{width}} {count:>{digits},}")
    typer.echo(f"  {'total':<{width}} {total:>{digits},}{after_total}")


def print_targets(
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


def print_reset_plan(plan: reset.ResetPlan, verb: str) -> None:
    """Print the runs a reset selects and its rows per table, after ``verb``."""
    runs = counted(len(plan.runs), "run")
    if plan.all_tables:
        typer.echo(f"{verb} every row of the app's tables, and the ledger ({runs}):")
    else:
        typer.echo(f"{verb} the rows of {runs}:")
    for run in plan.runs:
        typer.echo(f"  run {run.describe()}")
    print_counts(plan.counts, total=plan.total)
    for table in plan.absent_tables:
        typer.echo(f"  ({table}: no such table)")


def print_blockers(blockers: Sequence[Blocking], *, err: bool, limit: int = 20) -> None:
    """Print the rows in a reset's way, the first ``limit`` of them."""
    for blocker in blockers[:limit]:
        typer.echo(f"  {blocker.describe()}", err=err)
    if len(blockers) > limit:
        typer.echo(f"  and {len(blockers) - limit} more", err=err)


def check_output(output: str) -> None:
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
