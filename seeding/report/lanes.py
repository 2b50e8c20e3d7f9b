"""Running the report's queries side by side: lanes, each a connection on one snapshot.

On a small server (two cores, as on Supabase's smaller plans) two connections that each run
plain queries keep both cores busy at less cost than one connection whose queries
PostgreSQL spreads over its parallel workers: measured on a million requests, 4.1 s against
5.2 s with the parallel workers on, in the same minutes. So while there is more than one
lane, the lanes' queries run without parallel workers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

#: A piece of the report: runs its queries on the connection it is given, returns a value.
Job = Callable[[Connection], Any]

#: How many connections the report uses when it may use more than one.
LANES = 2


@contextmanager
def opened(
    connection: Connection, settings: Mapping[str, str], lanes: int = LANES
) -> Iterator[list[Connection]]:
    """Yield ``connection`` and up to ``lanes - 1`` more that read its snapshot.

    Only a REPEATABLE READ (or SERIALIZABLE) transaction has one snapshot to share, only one
    that has written nothing (other connections would not see its own writes), and not on a
    server in recovery (a read replica cannot export a snapshot). With any other
    transaction, or when another connection cannot be had (the server or the engine's pool
    is full) or cannot take the snapshot, the list holds fewer connections, down to
    ``connection`` alone, and the jobs run one after the other on it.

    Args:
        connection: The caller's connection, in the transaction whose snapshot is read.
        settings: ``SET LOCAL`` settings for every lane's transaction (``work_mem``, say);
            the caller's transaction keeps them until it ends.
        lanes: The most connections to use, the caller's included.

    """
    connections = [connection]
    level, has_written, replica = connection.execute(
        sa.text(
            "SELECT current_setting('transaction_isolation'), "
            "txid_current_if_assigned() IS NOT NULL, pg_is_in_recovery()"
        )
    ).one()
    shareable = level in ("repeatable read", "serializable") and not has_written and not replica
    try:
        if lanes > 1 and shareable:
            snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            for _ in range(lanes - 1):
                if (other := _reading(connection.engine, snapshot)) is None:
                    break
                connections.append(other)
        one_by_one = {} if len(connections) == 1 else {"max_parallel_workers_per_gather": "0"}
        for lane in connections:
            if lane.in_transaction():
                for name, value in {**settings, **one_by_one}.items():
                    # SET LOCAL, with the name and the value as bound parameters.
                    lane.execute(
                        sa.text("SELECT set_config(:name, :value, true)"),
                        {"name": name, "value": value},
                    )
        yield connections
    finally:
        for other in connections[1:]:
            other.rollback()
            other.close()


def _reading(engine: sa.Engine, snapshot: str) -> Connection | None:
    """Return a new connection in a transaction on ``snapshot``, or None if none can be had."""
    try:
        other = engine.connect()
    except sa_exc.SQLAlchemyError:  # the server refuses, or the pool is full
        return None
    try:
        other = other.execution_options(isolation_level="REPEATABLE READ")
        # SET takes no bound parameter: SQLAlchemy writes the snapshot's id as a quoted literal.
        other.execute(
            sa.text("SET TRANSACTION SNAPSHOT :snapshot").bindparams(
                sa.bindparam("snapshot", snapshot, literal_execute=True)
            )
        )
    except sa_exc.SQLAlchemyError:
        other.close()
        return None
    return other


def run(jobs: Mapping[str, Job], connections: Sequence[Connection]) -> dict[str, Any]:
    """Run the jobs on the connections, each lane taking the next job when it is free.

    List the longest jobs first: the lanes then end at about the same time. The caller's
    thread works the first connection; a thread works each other one.

    Returns:
        Each job's value, by the job's name.

    Raises:
        Exception: The first error a job raised, once every lane has stopped (the lanes
            take no new job after it).

    """
    waiting: queue.SimpleQueue[tuple[str, Job]] = queue.SimpleQueue()
    for item in jobs.items():
        waiting.put(item)
    done: dict[str, Any] = {}
    failed: list[BaseException] = []

    def lane(connection: Connection) -> None:
        while not failed:
            try:
                name, job = waiting.get_nowait()
            except queue.Empty:
                return
            try:
                done[name] = job(connection)
            except BaseException as error:  # handed to the caller's thread below
                failed.append(error)
                return

    helpers = [threading.Thread(target=lane, args=(c,), daemon=True) for c in connections[1:]]
    for helper in helpers:
        helper.start()
    lane(connections[0])
    for helper in helpers:
        helper.join()
    if failed:
        raise failed[0]
    return done
