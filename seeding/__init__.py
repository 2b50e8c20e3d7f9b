"""seeding: coherent test data for the mechanic marketplace's PostgreSQL database."""

from seeding.database import Target, create_schema, engine_for, normalize_url, resolve
from seeding.errors import (
    ConfigurationError,
    DatabaseError,
    FactoryRuleError,
    ScenarioError,
    SchemaError,
    SeedingError,
)

__all__ = [
    "ConfigurationError",
    "DatabaseError",
    "FactoryRuleError",
    "ScenarioError",
    "SchemaError",
    "SeedingError",
    "Target",
    "create_schema",
    "engine_for",
    "normalize_url",
    "resolve",
]
