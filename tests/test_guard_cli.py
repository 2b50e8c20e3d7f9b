"""The guard through the `seed` command: nothing reaches a host the user did not allow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import embedded, guard

REMOTE = "10.255.255.1"  # blackholes connections: an attempt would hang until the timeout


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SEED_ALLOW_HOSTS", *guard.ENVIRONMENT.values(), "PGSERVICE",
                     "PGSERVICEFILE", "PGPASSWORD", "SEED_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(
    "arguments",
    [
        ["reset", "--all-tables", "--yes", "--db",
         f"postgresql://u@localhost/db?host={REMOTE}&host=localhost"],
        ["scenario", "baseline", "--db", f"postgresql://localhost:5432/x@{REMOTE}/db"],
        ["db", "create", "--db", f"postgresql://u@localhost/db?hostaddr={REMOTE}"],
        ["db", "doctor", "--apply", "--db", "postgresql://u@localhost/db?service=staging"],
        ["reset", "--yes", "--db", f"postgresql://u@localhost,{REMOTE}/db"],
    ],
)
def test_writing_commands_refuse_in_one_line(arguments: list[str]) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert time.monotonic() - started < 5  # refused, not a connection timing out


@pytest.mark.parametrize("password", ["s3cret/pw", "s3cr?et#pw", "pa@ss:w/rd"])
def test_the_cli_never_prints_the_password(password: str) -> None:
    url = f"postgresql://u:{quote(password, safe='')}@127.0.0.1:1/db"
    for arguments in (["db", "url", "--db", url], ["report", "--db", url],
                      ["db", "url", "--db", f"postgresql://u:{password}@127.0.0.1:1/db"],
                      ["report", "--db", f"u:{password}@127.0.0.1:1/db"]):
        result = CliRunner().invoke(app, arguments)
        assert password not in result.output
        assert quote(password, safe="") not in result.output
    shown = CliRunner().invoke(app, ["db", "url", "--db", url])
    assert shown.output.strip() == "postgresql://u:***@127.0.0.1:1/db"


def test_pgpassword_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "env-s3cret")
    result = CliRunner().invoke(app, ["report", "--db", "postgresql://u@127.0.0.1:1/db"])
    assert result.exit_code == 2
    assert "env-s3cret" not in result.output


@pytest.mark.database  # `seed db create` starts an embedded server
def test_the_embedded_server_ignores_every_variable_that_could_redirect_it(
    tmp_path: Path,
) -> None:
    """PGHOSTADDR, PGHOST and a service that points elsewhere: the embedded server's own
    connections and the command's go to its socket, and nothing waits on the remote."""
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[evil]\nhost={REMOTE}\nhostaddr={REMOTE}\nport=5432\n")
    data_dir = embedded.scratch_data_dir("seed-guard-test-")
    environment = {
        **os.environ, "SEED_DATA_DIR": str(data_dir), "PGHOSTADDR": REMOTE, "PGHOST": REMOTE,
        "PGSERVICE": "evil", "PGSERVICEFILE": str(services), "PGCONNECT_TIMEOUT": "20",
    }
    for variable in ("SEED_DATABASE_URL", "SEED_ALLOW_HOSTS"):
        environment.pop(variable, None)
    try:
        started = time.monotonic()
        create = subprocess.run(
            [sys.executable, "-m", "seeding.cli", "db", "create"], env=environment,
            capture_output=True, text=True, timeout=120,
        )
        assert create.returncode == 0, create.stderr
        assert "database: embedded PostgreSQL" in create.stdout
        assert time.monotonic() - started < 20  # no attempt at the blackholed address
        url = subprocess.run(
            [sys.executable, "-m", "seeding.cli", "db", "url"], env=environment,
            capture_output=True, text=True, timeout=60,
        )
        assert url.returncode == 0, url.stderr
        assert url.stdout.startswith(f"postgresql://postgres@/seeding?host={data_dir.parent}")
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(data_dir.parent, ignore_errors=True)
