"""The statements that admit missing values: one builder for doctor and the run's preflight."""

from __future__ import annotations

from seeding.db import admit
from seeding.db.catalog import Check


def test_values_are_quoted_as_literals_and_names_as_identifiers() -> None:
    assert admit.enum_labels_added("public", "Status Kind", ["it's"]) == (
        """ALTER TYPE public."Status Kind" ADD VALUE IF NOT EXISTS 'it''s';""",
    )
    check = Check(name='a"b', definition="CHECK (...)", columns=("mode",), validated=False)
    assert admit.check_widened("public", "mechanics", check, "mode", ["both"], ["o'k"]) == (
        """ALTER TABLE public.mechanics DROP CONSTRAINT "a""b", ADD CONSTRAINT "a""b" """
        """CHECK (mode IN ('both', 'o''k')) NOT VALID;"""
    )
