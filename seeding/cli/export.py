"""``seed export``: a scenario's rows as a seed file (or a folder of them), or on stdout."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seeding.cli.edge import app, chosen, clean_errors, fail, say, settle
from seeding.cli.output import Terminal, check_output

if TYPE_CHECKING:
    from seeding.export import Export, ExportFile


@app.command("export")
@clean_errors
def export_command(
    name: Annotated[
        str, typer.Argument(help="A shipped scenario's name, or a path to a .yaml file.")
    ],
    db: Annotated[
        str | None,
        typer.Option("--db", help="Shape the rows for this database's schema, read only (with "
                     "auth users where it has Supabase's auth.users). Default: the tool's own "
                     "schema, without auth users; SEED_DATABASE_URL is not read.",
                     show_default=False),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="The run's seed (default: the scenario's).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Multiply the counts; quotas are kept.")] = 1.0,
    fmt: Annotated[
        str, typer.Option("--format", help="sql (the Supabase CLI's seed runner, psql) or copy "
                          "(COPY blocks, for psql -f).")
    ] = "sql",
    output: Annotated[
        str | None,
        typer.Option(help="Write to this file (a folder with --split) instead of stdout.",
                     show_default=False),
    ] = None,
    split: Annotated[
        bool,
        typer.Option("--split", help="One file per table group in the --output folder, auth "
                     "first, named so that a glob loads them in order (01_auth.sql, ...)."),
    ] = False,
    replica: Annotated[
        bool,
        typer.Option("--replica", help="Load with session_replication_role = replica: no "
                     "trigger fires (rows the app's triggers would make are not made)."),
    ] = False,
    user_password: Annotated[
        str | None,
        typer.Option("--user-password", help="The password of the seeded Supabase users "
                     "(default: $SEED_USER_PASSWORD, else seeding-password-1); only its hash "
                     "is written.", show_default=False),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Move the scenario in time: `now`, or an ISO time with its "
                     "offset, becomes its clock (`now` gives another file at every export).",
                     show_default=False),
    ] = None,
) -> None:
    """Write a scenario's rows as a seed file (supabase db reset, psql); writes no database."""
    from seeding import export  # loads the factories, only when needed

    if split and not output:
        raise fail("--split writes one file per table group into a folder; give the folder "
                   "with --output DIR (e.g. --output supabase/seeds)")
    if output:
        _check_export_output(output, split=split)
    made = export.export_scenario(
        name, seed=seed, scale=scale, fmt=fmt, database_url=chosen(db),
        user_password=user_password, split=split, replica=replica, now=now,
        status=Terminal(),
    )
    if split:
        assert output is not None
        written = _write_split(Path(output), made)
    elif output:
        _write_atomically(Path(output), made.files[0])
        written = output
    else:
        for chunk in made.files[0].chunks():
            sys.stdout.write(chunk)
        sys.stdout.flush()
        written = "stdout"
    settle(0)
    moved = f", clock {made.now.isoformat()}" if now is not None else ""
    say(f"scenario {made.scenario} (seed {made.seed}, scale {made.scale:g}{moved}) as "
        f"{made.fmt}, shaped for {made.shape}:")
    width = max(18, *(len(table) for table in made.counts))
    total = sum(made.counts.values())
    for table, count in made.counts.items():
        say(f"  {table:<{width}} {count:>9,}")
    say(f"  {'total':<{width}} {total:>9,}")
    if made.absent:
        say(f"not written, the schema lacks them: {', '.join(made.absent)}")
    say(f"written to {written}")


def _check_export_output(output: str, *, split: bool) -> None:
    """Refuse an export's ``--output`` that cannot take it, before anything is built."""
    path = Path(output)
    if not split:
        if path.is_dir():
            raise fail(f"--output {output}: that is a folder; give a file in it, such as "
                       f"{path / 'seed.sql'}, or add --split to write one file per table group "
                       "there")
        check_output(output)
        return
    if path.exists() and not path.is_dir():
        raise fail(f"--output {output}: that is a file; --split writes a folder of files, give "
                   "a folder (it is made if missing)")
    if not path.exists() and not path.parent.is_dir():
        raise fail(f"--output {output}: there is no folder {path.parent}; create it first "
                   f"(mkdir -p {path.parent}) or write elsewhere")


def _write_atomically(path: Path, file: ExportFile) -> None:
    """Write an export's file beside ``path``, then move it there: never a half file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as handle:
            for chunk in file.chunks():
                handle.write(chunk)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise fail(f"--output {path}: cannot write the file there: {error.strerror}") from None


def _write_split(folder: Path, made: Export) -> str:
    """Write each group's file into ``folder``; refuse a stale group file a glob would load."""
    from seeding import export

    ours = {file.name for file in made.files}
    stale = sorted(
        name for name in (export.file_name(group) for group in export.GROUPS)
        if name not in ours and (folder / name).exists()
    )
    if stale:
        raise fail(f"--output {folder}: it holds {', '.join(stale)} from an earlier export, "
                   "which this one does not write (its schema has no auth.users) and a "
                   "sql_paths glob would still load; delete it or write to another folder")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise fail(f"--output {folder}: cannot make the folder: {error.strerror}") from None
    for file in made.files:
        _write_atomically(folder / file.name, file)
    return f"{folder}: {', '.join(file.name for file in made.files)}"
