"""What a long library call tells its caller while it works: lines, phases, rows written.

The library never prints. The ``seed`` command passes callbacks that show a line on stderr,
a spinner or a progress bar (on a terminal only); a test or another program passes its own,
or none, and nothing is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

#: Called with a line to show the user (e.g. that a run or a reset waits for a lock).
Notify = Callable[[str], None]

#: Called with how many more rows were written.
Progress = Callable[[int], None]


class Status(Protocol):
    """Shows what a long call is doing while it does it (the CLI: a spinner, a progress bar)."""

    def phase(self, message: str) -> AbstractContextManager[object]:
        """Return the context a phase of the work runs in; ``message`` says what it does."""
        ...

    def rows(self, total: int) -> AbstractContextManager[Progress]:
        """Return the context ``total`` rows are written in, and what each batch is told to."""
        ...


def in_phase(status: Status | None, message: str) -> AbstractContextManager[object]:
    """Return ``status.phase(message)``, or a context that shows nothing without a status."""
    return nullcontext() if status is None else status.phase(message)


@contextmanager
def writing_rows(
    status: Status | None, total: int, progress: Progress | None
) -> Iterator[Progress]:
    """Yield a Progress that tells both ``progress`` and the status's rows of every batch."""
    with nullcontext(None) if status is None else status.rows(total) as shown:
        told = [report for report in (progress, shown) if report is not None]

        def advance(count: int) -> None:
            for report in told:
                report(count)

        yield advance
