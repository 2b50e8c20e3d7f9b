"""Reset: delete exactly the rows the ledger records, or, on a local database, every app row.

A reset is planned before anything goes. :func:`plan_reset` reads which runs are selected, how
many rows of each table would be deleted, and the *blockers*: rows the reset would keep (rows
the tool did not write, or rows of runs not being reset) whose references point at rows it
would delete. :func:`execute` deletes a plan without blockers, children before parents, in the
caller's transaction. :func:`reset_database` is the whole of ``seed reset``: guard, lock, plan
and delete in one transaction, so that what was checked is what is deleted.

The modules, each importing only those above it:

- :mod:`seeding.reset.tables`: the schemas, the names the ledger gives tables, the live
  columns;
- :mod:`seeding.reset.blockers`: the references into the app's tables (:class:`Reference`)
  and the SQL that finds the rows in the way (:class:`Blocker`);
- :mod:`seeding.reset.plan`: what a reset selects and counts (:class:`ResetPlan`,
  :class:`RunInfo`, :func:`plan_reset`);
- :mod:`seeding.reset.execution`: the locks, the transaction and the delete
  (:func:`execute`, :func:`reset_database`).
"""

from seeding.reset.blockers import UNDECLARED_REFERENCES, Blocker, Reference, references
from seeding.reset.execution import Outcome, ResetResult, execute, reset_database
from seeding.reset.plan import ResetPlan, RunInfo, check_selection, plan_reset, scenario_name
from seeding.reset.tables import APP_SCHEMA, AUTH_SCHEMA

__all__ = [
    "APP_SCHEMA",
    "AUTH_SCHEMA",
    "UNDECLARED_REFERENCES",
    "Blocker",
    "Outcome",
    "Reference",
    "ResetPlan",
    "ResetResult",
    "RunInfo",
    "check_selection",
    "execute",
    "plan_reset",
    "references",
    "reset_database",
    "scenario_name",
]
