"""factory_boy factories of the marketplace's rows, keeping every rule of the app.

``build()`` makes rows without a database (the bulk writer persists them); ``create()``
persists through the session bound with :func:`bind` (or the ``seed_session`` fixture).
"""

from factories.assignments import SessionAssignmentFactory
from factories.base import new_uuid
from factories.context import AUDIT_NOW, Clock, bind, clock, collect, current_clock, reseed
from factories.customers import CustomerFactory, VehicleFactory
from factories.mechanics import MechanicFactory
from factories.requests import SessionRequestFactory
from factories.sessions import SessionFactory
from factories.workshops import WorkshopFactory

__all__ = [
    "AUDIT_NOW",
    "Clock",
    "CustomerFactory",
    "MechanicFactory",
    "SessionAssignmentFactory",
    "SessionFactory",
    "SessionRequestFactory",
    "VehicleFactory",
    "WorkshopFactory",
    "bind",
    "clock",
    "collect",
    "current_clock",
    "new_uuid",
    "reseed",
]
