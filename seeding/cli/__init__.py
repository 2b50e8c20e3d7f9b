"""The ``seed`` command: parses flags, calls the library, turns its errors into one clean line.

The modules, each importing only those above it:

- :mod:`seeding.cli.edge`: the typer apps (``app``, ``db_app``), ``--db``, ``--version`` and
  ``main``; a library error, a bad flag or a stdout closed early turned into one line on stderr
  and an exit code (``fail``, ``clean_errors``, ``settle``);
- :mod:`seeding.cli.output`: what the commands print (counts, targets, reset plans, where the
  database is) and the library's status on a terminal (spinners, a progress bar);
- the commands: :mod:`seeding.cli.scenario` (``seed scenarios``, ``kinds``, ``scenario``),
  :mod:`seeding.cli.report`, :mod:`seeding.cli.reset`, :mod:`seeding.cli.export` and
  :mod:`seeding.cli.db` (``seed db create``, ``url``, ``shell``, ``doctor``, ``stop``).

Each command module registers its commands on ``app`` as it is imported, so the imports below
come in the order ``seed --help`` lists the commands (``db`` comes last there anyway).
"""

from seeding.cli import scenario, report, reset, export, db  # noqa: F401  # isort: skip
from seeding.cli.edge import app, main

__all__ = ["app", "main"]
