"""``seed reset``: ask, delete the rows the tool wrote, print the plan and the rows in the way."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from seeding import reset
from seeding.cli.edge import DbOption, app, clean_errors, fail, settle
from seeding.cli.output import notify, print_blockers, print_reset_plan, where
from seeding.db import database
from seeding.errors import ResetBlockedError


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
        typer.echo(f"database: {where(target)}")
        print_reset_plan(plan, "this will delete")
        shown.append(plan)
        return typer.confirm("delete these rows?", default=False)

    try:
        result = reset.reset_database(
            target.endpoint, run_id=run_id, scenario=scenario, all_tables=all_tables,
            dry_run=dry_run,
            wait=not no_wait, notify=notify,
            confirm=None if yes or dry_run else ask,
        )
    except ResetBlockedError as blocked:
        typer.echo(f"error: {blocked}", err=True)
        typer.echo("the rows in the way:", err=True)
        print_blockers(blocked.blockers, err=True)
        raise typer.Exit(blocked.exit_code) from None
    plan = result.plan
    settle(1 if result.outcome == "aborted" or (result.outcome == "dry_run" and plan.blockers)
           else 0)
    if result.outcome == "aborted":
        typer.echo("aborted; nothing deleted", err=True)
        raise typer.Exit(1)
    if not shown:
        typer.echo(f"database: {where(target)}")
    if result.outcome == "nothing":
        if not plan.has_ledger and not plan.all_tables:
            typer.echo("nothing to reset: this database has no seeding ledger")
        elif plan.all_tables:
            typer.echo("nothing to reset: the app's tables are empty, the ledger records no runs")
        else:
            typer.echo("nothing to reset: the ledger records no runs")
        return
    if result.outcome == "dry_run":
        print_reset_plan(plan, "dry run: a reset would delete")
        if plan.blockers:
            typer.echo("so the reset would be refused: these rows it would keep point at rows it "
                       "would delete:")
            print_blockers(plan.blockers, err=False)
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
    print_reset_plan(deleted, "deleted")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
