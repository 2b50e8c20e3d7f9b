"""``seed scenarios``, ``seed kinds`` and ``seed scenario``: list, describe and seed scenarios."""

from __future__ import annotations

from typing import Annotated

import typer

from seeding.cli.edge import DbOption, app, chosen, clean_errors, settle
from seeding.cli.output import Terminal, notify, print_counts, print_targets, status, where
from seeding.report import measure


@app.command("scenarios")
@clean_errors
def scenarios_list() -> None:
    """List the shipped scenarios with their one-line descriptions."""
    from seeding.scenario import files  # the scenario files' parser, only when needed

    settle(0)  # it only reads: a reader who stops early cuts nothing that matters
    for name, path in files.shipped().items():
        spec, _ = files.read_spec(path)
        typer.echo(f"{name:<12} {spec.description}")


@app.command("kinds")
@clean_errors
def kinds_list() -> None:
    """Print the reference of every kind: relations, traits, fields, aliases (Markdown)."""
    from seeding.scenario import reference  # only when needed

    settle(0)  # it only reads
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
    now: Annotated[
        str | None,
        typer.Option("--now", help="Move the scenario in time: `now`, or an ISO time with its "
                     "offset, becomes its clock; every time in it moves by the same amount.",
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
        name, database_url=chosen(db), seed=seed, scale=scale, shard=shard, wait=not no_wait,
        notify=notify, status=Terminal(), user_password=user_password, now=now,
    )
    target = result.target
    assert target is not None  # run_scenario says where it wrote
    # Measured before anything is printed: the exit code is then known, and a reader who
    # closes the output early (`| head`) does not turn the committed run into a failure.
    with status("checking the targets"):
        checked = measure.measure_targets(
            target, expect=result.expect, now=result.now, run=result.run_id
        )
    code = settle(0 if all(t.met for t in checked) else 1)
    typer.echo(f"database: {where(target)}")
    for replaced in result.replaced_runs:
        typer.echo(f"replaced {replaced}")
    part = f", shard {result.shard}" if result.shard else ""
    moved = f", clock {result.now.isoformat()}" if now is not None else ""
    typer.echo(f"scenario {result.scenario} (seed {result.seed}, scale {result.scale:g}{part}"
               f"{moved}):")
    total = sum(result.counts.values())
    rate = f" ({total / result.seconds:,.0f} rows/s)" if result.tiled else ""
    print_counts(result.counts, f"  in {result.seconds:.2f} s{rate}")
    if result.app_made:
        made = ", ".join(f"{table} {count:,}" for table, count in result.app_made.items())
        typer.echo(f"made by the app's triggers, recorded with the run: {made}")
    if result.absent:
        typer.echo(f"not written, the database lacks them: {', '.join(result.absent)}")
    if checked:
        print_targets(checked, verbose=verbose)
    if code:
        raise typer.Exit(code)
