"""The app's facts and rules, with no database and no factories.

Its tables (:mod:`~seeding.domain.schema`), closed vocabularies, plan codes, the mechanic-type
rule, the session lifecycle, Canadian geography and time zones, contact addresses, quota
arithmetic, the marketplace's daily rhythm, and the same rules as SQL
(:mod:`~seeding.domain.integrity`). Everything else imports these; they import nothing of
the rest but :mod:`seeding.errors`.
"""
