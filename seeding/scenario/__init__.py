"""From a scenario file to built rows, in memory: the first half of ``seed scenario``.

:mod:`~seeding.scenario.kinds` (the registry of kinds) → :mod:`~seeding.scenario.files`
(a YAML file read strictly) → :mod:`~seeding.scenario.plan` (checked and expanded; its
``expect`` by :mod:`~seeding.scenario.targets`; moved in time by
:mod:`~seeding.scenario.timeshift`) → :mod:`~seeding.scenario.builder` (the factories build
the rows). No database is read or written here.
"""
