"""The exceptions seeding raises; every one carries a message that says where, what, and the fix.

The hierarchy::

    SeedingError
    ├── ConfigurationError   a setting or argument is wrong (URL, data folder, option)
    ├── DatabaseError        the database could not be reached, or a statement failed
    │   └── SchemaError      a table or column the tool needs is missing or different
    │       └── SchemaMismatchError  a run's rows do not fit the live schema (before writing)
    ├── ScenarioError        a scenario file is malformed or names something unknown
    ├── FactoryRuleError     a factory was asked for a row that breaks the app's rules
    └── ResetBlockedError    rows the tool did not write point at rows a reset would delete
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Blocking(Protocol):
    """A row in a reset's way (:class:`seeding.reset.Blocker`), as an error lists it.

    A protocol, not an import: every module imports this one, which imports none of them.
    """

    def describe(self) -> str:
        """Return the row and what it points at, in one line."""
        ...


class SeedingError(Exception):
    """The root of every error this package raises on purpose."""

    #: The process exit code the CLI uses for this error.
    exit_code = 2


class ConfigurationError(SeedingError):
    """A setting or argument is wrong: a URL, a data folder, an option."""


class DatabaseError(SeedingError):
    """The database could not be reached, or a statement on it failed."""


class SchemaError(DatabaseError):
    """A table or column the tool needs is missing or of another type."""


class SchemaMismatchError(SchemaError):
    """A run's rows do not fit the live schema; found before anything was written."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        #: Each problem with its fix, one line each.
        self.problems: tuple[str, ...] = tuple(problems)


class ScenarioError(SeedingError):
    """A scenario file is malformed or names something that does not exist."""


class FactoryRuleError(SeedingError):
    """A factory was asked for a row that would break one of the app's rules."""


class ResetBlockedError(SeedingError):
    """Rows the tool did not write point at rows a reset would delete; nothing was deleted."""

    #: Like a missed target: the tool worked, the database is not in a state it may change.
    exit_code = 1

    def __init__(self, message: str, blockers: Sequence[Blocking] = ()) -> None:
        super().__init__(message)
        #: Every row that stands in the way, in table and id order.
        self.blockers: tuple[Blocking, ...] = tuple(blockers)


def first_line(error: BaseException) -> str:
    """Return the first line of an error's message (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
