"""``seed db``: create the app's tables, print the URL, open psql, diagnose, stop the server."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated

import typer

from seeding import doctor
from seeding.cli.edge import DbOption, clean_errors, db_app, settle
from seeding.cli.output import counted, where
from seeding.db import database, embedded, guard


@db_app.command("create")
@clean_errors
def db_create(db: DbOption = None) -> None:
    """Create the app's tables that are missing; safe to run again."""
    target = database.resolve(db)
    created = database.create_tables(target)
    settle(0)
    typer.echo(f"database: {where(target)}")
    if created:
        typer.echo(f"created {counted(len(created), 'table')}: {', '.join(created)}")
    else:
        typer.echo("all tables present; nothing changed")


@db_app.command("url")
@clean_errors
def db_url(db: DbOption = None) -> None:
    """Print the database's URL (password masked), starting the embedded server if needed."""
    target = database.resolve(db)
    settle(0)
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
    typer.echo(f"psql on {where(target)}", err=True)
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
            typer.echo(f"database: {where(target)}")
        applying.append(statement)
        typer.echo(f"applying: {statement}")

    diagnosis = doctor.check_database(target, apply=apply, before=before)
    problems, notes = diagnosis.problems, diagnosis.notes
    settle(1 if problems else 0)
    if not applying:
        typer.echo(f"database: {where(target)}")
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
    settle(0)
    if stopped:
        typer.echo(f"stopped the embedded PostgreSQL in {data_dir}")
    else:
        typer.echo(f"no embedded PostgreSQL is running in {data_dir}")
