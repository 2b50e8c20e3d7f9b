"""The exceptions seeding raises; every one carries a message that says where, what, and the fix.

    SeedingError
    ├── ConfigurationError   a setting or argument is wrong (URL, data folder, option)
    ├── DatabaseError        the database could not be reached, or a statement failed
    │   └── SchemaError      a table or column the tool needs is missing or different
    ├── ScenarioError        a scenario file is malformed or names something unknown
    └── FactoryRuleError     a factory was asked for a row that breaks the app's rules
"""

from __future__ import annotations


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


class ScenarioError(SeedingError):
    """A scenario file is malformed or names something that does not exist."""


class FactoryRuleError(SeedingError):
    """A factory was asked for a row that would break one of the app's rules."""
