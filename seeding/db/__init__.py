"""From built rows to a database: the second half of ``seed scenario``.

Where a connection may go (:mod:`~seeding.db.guard`, :mod:`~seeding.db.database`, the
embedded server :mod:`~seeding.db.embedded`); what the live database is
(:mod:`~seeding.db.catalog`, :mod:`~seeding.db.constraints`) and how the rows fit it
(:mod:`~seeding.db.fit`, :mod:`~seeding.db.admit`, :mod:`~seeding.db.holders`); writing them
(:mod:`~seeding.db.writer`, Supabase users in :mod:`~seeding.db.auth`, tiled copies in
:mod:`~seeding.db.tiles` and :mod:`~seeding.db.variants`); and the record of every run
(:mod:`~seeding.db.ledger`).
"""
