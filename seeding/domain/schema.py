"""The app's tables, as SQLAlchemy 2 typed models: the columns this tool writes and reads.

The live tables have more columns (all nullable or defaulted); these are the ones the domain
facts list. The app's quirks are kept on purpose: ``session_requests.customer_id`` and
``vehicles.customer_id`` hold auth user ids and have no foreign key into ``public`` (the reason
the audit's embedded join failed with PGRST200). ``matching_score`` is ``jsonb``: the app's
generated types say json, while the audit's hand-written listing guessed numeric from the
values it saw; the factories write a JSON number, which satisfies both readings.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from seeding.domain.plans import PLAN_CODES
from seeding.domain.vocabularies import (
    ASSIGNMENT_PRIORITIES,
    ASSIGNMENT_STATUSES,
    CUSTOMER_ACCOUNT_TYPES,
    MECHANIC_ACCOUNT_TYPES,
    ORGANIZATION_STATUSES,
    ORGANIZATION_TYPES,
    PARTICIPATION_MODES,
    PROVINCES,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    ROUTING_TYPES,
    SERVICE_TIERS,
    SESSION_STATUSES,
    SESSION_TYPES,
    SPECIALIST_TIERS,
    VERIFICATION_STATUSES,
    sql_in,
)

#: PostgreSQL's own default names, so that constraints here match the app's migrations.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ix": "%(table_name)s_%(column_0_name)s_idx",
}

#: The ``session_type`` enum of the app, shared by requests and sessions.
session_type_enum = Enum(*SESSION_TYPES, name="session_type", create_type=True)


def check_in(table: str, column: str, values: tuple[str, ...]) -> CheckConstraint:
    """Return the CHECK that limits ``column`` to a vocabulary, named as PostgreSQL would."""
    return CheckConstraint(sql_in(column, values), name=f"{table}_{column}_check")


def uuid_pk() -> Mapped[uuid.UUID]:
    """Return a uuid primary key that the database can fill too."""
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()
    )


def created_at() -> Mapped[datetime]:
    """Return the ``created_at timestamptz default now()`` column."""
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def flag() -> Mapped[bool]:
    """Return a ``boolean not null default false`` column."""
    return mapped_column(Boolean, nullable=False, server_default=text("false"))


class Base(DeclarativeBase):
    """The declarative base of the app's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
        date: Date,
        str: Text,
        float: Double,
        int: Integer,
        Decimal: Numeric,
        list[str]: ARRAY(Text),
        dict[str, Any]: JSONB,
    }


class Organization(Base):
    """An organization; workshops are the rows with ``organization_type = 'workshop'``."""

    __tablename__ = "organizations"
    __table_args__ = (
        check_in("organizations", "organization_type", ORGANIZATION_TYPES),
        check_in("organizations", "status", ORGANIZATION_STATUSES),
        check_in("organizations", "verification_status", VERIFICATION_STATUSES),
        check_in("organizations", "province", PROVINCES),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    slug: Mapped[str] = mapped_column(unique=True)
    email: Mapped[str] = mapped_column(unique=True)
    organization_type: Mapped[str]
    phone: Mapped[str | None]
    address: Mapped[str | None]
    city: Mapped[str | None]
    province: Mapped[str | None]
    postal_code: Mapped[str | None]
    country: Mapped[str | None]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    status: Mapped[str | None] = mapped_column(server_default="pending")
    verification_status: Mapped[str | None] = mapped_column(server_default="unverified")
    coverage_postal_codes: Mapped[list[str] | None]
    service_radius_km: Mapped[int | None]
    mechanic_capacity: Mapped[int | None]
    created_at: Mapped[datetime] = created_at()


class Profile(Base):
    """A signed-up user; customers have ``role = 'customer'``. ``id`` is the auth user's id."""

    __tablename__ = "profiles"
    __table_args__ = (
        check_in("profiles", "account_type", CUSTOMER_ACCOUNT_TYPES),
        check_in("profiles", "province", PROVINCES),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    role: Mapped[str | None]
    full_name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    address_line1: Mapped[str | None]
    city: Mapped[str | None]
    province: Mapped[str | None]
    postal_code: Mapped[str | None]
    # The same place as the app's profile screen and sign-up write it: the province's name
    # ('Ontario') and the postal code with its space ('K1P 5G4'). Both pairs are kept.
    state_province: Mapped[str | None]
    postal_zip_code: Mapped[str | None]
    country: Mapped[str | None]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    account_type: Mapped[str | None]
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    timezone: Mapped[str | None]
    is_18_plus: Mapped[bool] = flag()
    terms_accepted: Mapped[bool] = flag()
    waiver_accepted: Mapped[bool] = flag()
    created_at: Mapped[datetime] = created_at()


class Mechanic(Base):
    """A mechanic; the type (virtual, workshop, independent) is derived, see mechanic_types."""

    __tablename__ = "mechanics"
    __table_args__ = (
        check_in("mechanics", "account_type", MECHANIC_ACCOUNT_TYPES),
        check_in("mechanics", "service_tier", SERVICE_TIERS),
        check_in("mechanics", "participation_mode", PARTICIPATION_MODES),
        check_in("mechanics", "specialist_tier", SPECIALIST_TIERS),
        check_in("mechanics", "province", PROVINCES),
        check_in("mechanics", "red_seal_province", PROVINCES),
        CheckConstraint(
            "profile_completion_score BETWEEN 0 AND 100",
            name="mechanics_profile_completion_score_check",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    account_type: Mapped[str | None]
    workshop_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    service_tier: Mapped[str | None]
    participation_mode: Mapped[str | None]
    application_status: Mapped[str | None] = mapped_column(server_default="pending")
    can_accept_sessions: Mapped[bool] = flag()
    is_available: Mapped[bool] = flag()
    is_online: Mapped[bool] = flag()
    city: Mapped[str | None]
    province: Mapped[str | None]
    postal_code: Mapped[str | None]
    country: Mapped[str | None]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    years_of_experience: Mapped[int | None]
    red_seal_certified: Mapped[bool] = flag()
    red_seal_number: Mapped[str | None]
    red_seal_province: Mapped[str | None]
    red_seal_expiry_date: Mapped[date | None]
    specializations: Mapped[list[str] | None]
    brand_specializations: Mapped[list[str] | None]
    specialist_tier: Mapped[str | None] = mapped_column(server_default="general")
    rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    completed_sessions: Mapped[int] = mapped_column(nullable=False, server_default=text("0"))
    profile_completion_score: Mapped[int] = mapped_column(
        nullable=False, server_default=text("0")
    )
    about_me: Mapped[str | None]
    hourly_rate: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = created_at()


class Vehicle(Base):
    """A customer's vehicle; ``customer_id`` is the customer's user id (no foreign key)."""

    __tablename__ = "vehicles"

    id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID]
    make: Mapped[str | None]
    model: Mapped[str | None]
    year: Mapped[int | None]
    vin: Mapped[str | None]
    created_at: Mapped[datetime] = created_at()


class Session(Base):
    """The session an accepted request starts."""

    __tablename__ = "sessions"
    __table_args__ = (
        check_in("sessions", "status", SESSION_STATUSES),
        check_in("sessions", "plan", PLAN_CODES),
        CheckConstraint("rating BETWEEN 1 AND 5", name="sessions_rating_check"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    type: Mapped[str] = mapped_column(session_type_enum)
    status: Mapped[str] = mapped_column(server_default="pending")
    plan: Mapped[str]
    stripe_session_id: Mapped[str]
    customer_user_id: Mapped[uuid.UUID | None]
    mechanic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mechanics.id"))
    workshop_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    scheduled_start: Mapped[datetime | None]
    scheduled_end: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_minutes: Mapped[int | None]
    rating: Mapped[int | None]
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime] = created_at()


class SessionRequest(Base):
    """A customer's request for a session: the 31 columns the audit lists."""

    __tablename__ = "session_requests"
    __table_args__ = (
        check_in("session_requests", "status", REQUEST_STATUSES),
        check_in("session_requests", "routing_type", ROUTING_TYPES),
        check_in("session_requests", "request_type", REQUEST_TYPES),
        check_in("session_requests", "plan_code", PLAN_CODES),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # No foreign key: the app's column referenced auth.users, never profiles.
    customer_id: Mapped[uuid.UUID]
    customer_name: Mapped[str | None]
    customer_email: Mapped[str | None]
    session_type: Mapped[str] = mapped_column(session_type_enum)
    plan_code: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="pending")
    mechanic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mechanics.id"))
    created_at: Mapped[datetime] = created_at()
    accepted_at: Mapped[datetime | None]
    parent_session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    is_follow_up: Mapped[bool] = flag()
    follow_up_type: Mapped[str | None]
    workshop_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    preferred_workshop_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id")
    )
    routing_type: Mapped[str | None] = mapped_column(server_default="broadcast")
    request_type: Mapped[str | None] = mapped_column(server_default="general")
    requested_brand: Mapped[str | None]
    extracted_keywords: Mapped[list[str] | None]
    matching_score: Mapped[Any | None] = mapped_column(JSONB)
    customer_country: Mapped[str | None]
    customer_city: Mapped[str | None]
    prefer_local_mechanic: Mapped[bool] = flag()
    expires_at: Mapped[datetime | None]
    vehicle_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("vehicles.id"))
    is_urgent: Mapped[bool] = flag()
    preferred_mechanic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mechanics.id"))
    priority_window_minutes: Mapped[int | None]
    priority_notified_at: Mapped[datetime | None]
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    customer_postal_code: Mapped[str | None]


class SessionAssignment(Base):
    """A session offered to mechanics: the mechanic queue reads these (app-schema.md §5).

    ``mechanic_id`` NULL is a broadcast to every mechanic; a 'queued' broadcast of a pending or
    waiting session is what the queue lists as unassigned. The app's 14 columns (M = L).
    """

    __tablename__ = "session_assignments"
    __table_args__ = (
        check_in("session_assignments", "status", ASSIGNMENT_STATUSES),
        check_in("session_assignments", "priority", ASSIGNMENT_PRIORITIES),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE")
    )
    mechanic_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mechanics.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(server_default="queued")
    priority: Mapped[str | None] = mapped_column(String(20), server_default="normal")
    offered_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    match_score: Mapped[int | None] = mapped_column(server_default=text("0"))
    match_reasons: Mapped[list[str] | None] = mapped_column(server_default=text("'{}'"))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime | None] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(server_default=func.now())


#: The app's tables in the order rows must be written (parents first).
APP_TABLES = tuple(Base.metadata.sorted_tables)
#: Each model by its table name.
MODELS: dict[str, type[Base]] = {
    mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers
}
