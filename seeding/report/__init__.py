"""The report (`seed report`): what a database with the app's tables holds, measured in SQL.

``build_report`` reads a database (any one with the app's schema, seeded by this tool or not)
and returns an immutable :class:`Report`; ``render`` turns it into markdown, terminal text or
JSON. The JSON keys are a stable contract, documented in ``docs/report.md``.
"""

from seeding.report.build import build_report, check_schema
from seeding.report.model import (
    CustomerActivity,
    CustomerStats,
    IncompleteMechanic,
    IntegrityResult,
    MechanicActivity,
    MechanicStats,
    Report,
    RequestStats,
    ResponseMinutes,
    SampleRequest,
    SessionStats,
    WorkshopStats,
)
from seeding.report.render import Format, render

__all__ = [
    "CustomerActivity",
    "CustomerStats",
    "Format",
    "IncompleteMechanic",
    "IntegrityResult",
    "MechanicActivity",
    "MechanicStats",
    "Report",
    "RequestStats",
    "ResponseMinutes",
    "SampleRequest",
    "SessionStats",
    "WorkshopStats",
    "build_report",
    "check_schema",
    "render",
]
