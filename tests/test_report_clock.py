"""One clock: the report takes the run's clock with --scenario or --run, --now when given."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from seeding.cli import app


def _rules(output: str) -> dict[str, int]:
    return {r["rule"]: r["violations"] for r in json.loads(output)["integrity"]}


def test_a_fresh_run_is_measured_on_its_own_clock(pg_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["scenario", "diverse", "--db", pg_url]).exit_code == 0
    own = runner.invoke(app, ["report", "--scenario", "diverse", "--db", pg_url,
                              "--format", "json"])
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["now"].startswith("2025-11-12T17:00:00")
    # Its pending requests are pending at its clock, not expired at the database's.
    assert _rules(own.stdout)["expires_at fits pending and expired"] == 0
    later = runner.invoke(app, ["report", "--db", pg_url, "--format", "json", "--now",
                                "2030-01-01T00:00:00+00:00"])
    assert later.exit_code == 0, later.output
    assert _rules(later.stdout)["expires_at fits pending and expired"] > 0
    # A table or markdown report says on stderr which rows and clock it took (the JSON, in
    # `now`): the scenario's latest run, on the clock the ledger recorded for it.
    for arguments, said in (
        (["--scenario", "diverse"], "clock: 2025-11-12T17:00:00+00:00 (the run's clock)"),
        (["--now", "2030-01-01T00:00:00+00:00"], "clock: 2030-01-01T00:00:00+00:00 (--now)"),
        ([], "clock: the database's now()"),
    ):
        shown = runner.invoke(app, ["report", "--db", pg_url, *arguments])
        assert said in shown.stderr, shown.output


def test_a_bad_now_is_one_line() -> None:
    result = CliRunner().invoke(app, ["report", "--now", "2025-13-01", "--db",
                                      "postgresql://u@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --now '2025-13-01' is not an ISO time with its offset; write it like "
        "2026-11-20T12:00:00-05:00, or 'now' for the database's"
    ]
