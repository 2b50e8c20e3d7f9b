"""Databases for tests, without pytest.

The server that keeps seeded templates
(:mod:`~seeding.testing.server`) and signing in as a seeded person
(:mod:`~seeding.testing.personas`). :mod:`seeding.pytest_plugin` turns them into fixtures.
"""
