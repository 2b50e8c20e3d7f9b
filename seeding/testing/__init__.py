"""Databases for tests, without pytest.

:mod:`~seeding.testing.personas` (signing in as a seeded person) →
:mod:`~seeding.testing.databases` (the database a test gets: a scenario's copy, its rows by
name, its users) and :mod:`~seeding.testing.templates` (the key of a kept template, the schema
it starts from) → :mod:`~seeding.testing.server` (the server that builds, keeps, copies and
sweeps them). :mod:`seeding.pytest_plugin` turns them into fixtures.
"""
