"""The report (`seed report`): what a database with the app's tables holds, measured in SQL.

``build_report`` reads a database (any one with the app's schema, seeded by this tool or not)
and returns an immutable :class:`Report`; ``render`` turns it into markdown, terminal text,
JSON, a self-contained HTML page or JUnit XML, alone or compared with another report
(:mod:`seeding.report.compare`). The JSON keys are a stable, versioned contract, documented
in ``docs/report.md``. On a database whose columns differ from this tool's (the app's real
one), the metrics it cannot measure are named as not available and the rules it cannot check
as skipped (:mod:`seeding.report.shape`).
"""

from seeding.report.build import build_report, check_schema
from seeding.report.model import (
    AssignmentStats,
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
    SkippedRule,
    WorkshopStats,
)
from seeding.report.render import FORMATS, Format, render

__all__ = [
    "AssignmentStats",
    "CustomerActivity",
    "CustomerStats",
    "FORMATS",
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
    "SkippedRule",
    "WorkshopStats",
    "build_report",
    "check_schema",
    "render",
]
