"""The databases the tests get, on a PostgreSQL server: made, seeded once, copied, dropped.

Free of pytest (the plugin's fixtures and the bench use it alike). A :class:`SeedServer`
builds each scenario once into a template database (``seed_tpl_<scenario>_<hex>``), on the
tool's own tables or on a schema of the caller's (SQL files run first: the app's Supabase
schema), and copies it for every caller (``CREATE DATABASE ... TEMPLATE``) as a
:class:`ScenarioDatabase` (``seed_test_<hex>``); it drops the copies it made when closed.

Templates are kept between sessions (``keep_templates=True``, as the plugin does): each is
marked with a key over everything that decides its rows
(:func:`seeding.testing.templates.template_key`: the package,
the scenario's files, the schema, the seed, the scale, the users' password), found again by
the next session whose key matches and rebuilt when the key changes; the stale one is dropped.
Sessions (and pytest-xdist's workers) build a template one at a time under an advisory lock
on the server, and a session holds a shared lock on each template it uses, so none is dropped
under it.

A session that is killed cannot drop its copies: each carries a comment naming its owner
(:data:`OWNER_COMMENT`), and the next :class:`SeedServer` on the server drops those whose owner
is gone (:meth:`SeedServer.sweep`), and kept templates no session has used for
:data:`KEPT_UNUSED_DAYS` days.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from seeding.db.database import libpq_url, mask_password, normalize_url
from seeding.errors import ConfigurationError, DatabaseError, SeedingError, first_line
from seeding.testing.databases import ScenarioDatabase
from seeding.testing.templates import TemplateKey, apply_schema, schema_files, template_key

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa

    from seeding.runner import RunResult

# Where the pytest plugin reads the server's URL; named here because the errors below name them.
#: The command-line flag that names the server.
OPTION: Final = "--seed-database-url"
#: The ini key that names the server (the flag wins over it).
INI_KEY: Final = "seed_database_url"
#: The environment variable that names the server (the flag and the ini key win over it).
URL_VARIABLE: Final = "SEED_TEST_DATABASE_URL"

#: The name prefix of a test's database (a scenario's copy, the ``seed_session`` database).
TEST_DATABASE_PREFIX: Final = "seed_test_"
#: The name prefix of a scenario's template database.
TEMPLATE_PREFIX: Final = "seed_tpl_"
#: The comment on every database a :class:`SeedServer` makes, naming it by its
#: ``application_name``; while a connection of that name is open, its databases are in use.
OWNER_COMMENT: Final = "made by a seeding test session; owner: "
#: The start of a :class:`SeedServer`'s ``application_name`` (then a random hex).
OWNER_PREFIX: Final = "seeding-tests-"
#: The start of a kept template's comment; a JSON object follows (its key, scenario, refs).
KEPT_COMMENT: Final = "seeding kept template: "
#: A kept template that no session has used for this many days is dropped by the next one.
KEPT_UNUSED_DAYS: Final = 7
#: The flag that names the schema the scenarios' templates start from.
SCHEMA_OPTION: Final = "--seed-schema"
#: The ini key that names it (the flag wins).
SCHEMA_INI_KEY: Final = "seed_schema"
#: The ini key that turns keeping templates between sessions off (``false``).
KEEP_INI_KEY: Final = "seed_keep_templates"

# Advisory locks (two int4 keys: a class, then a hash of the name), in the database of the
# server's URL: one session builds a template's slot at a time; a session using a template
# holds it shared, so no other drops it.
_BUILD_LOCK: Final = 0x5EED0001
_USE_LOCK: Final = 0x5EED0002
# How long a kept template's "used" stamp may age before a session that uses it renews it.
_TOUCH_AFTER: Final = timedelta(hours=1)


def _fix_hint(source: str) -> str:
    return (
        f"the URL came from {source}; to fix this, either start that server, or correct the "
        f"URL, or remove it: the plugin reads {OPTION}, else the ini key {INI_KEY}, else "
        f"${URL_VARIABLE}, and with none of them starts an embedded PostgreSQL"
    )


def check_server(url: str, *, source: str) -> str:
    """Return the server's URL in libpq form (``postgresql://``) once it answers.

    Raises:
        ConfigurationError: When the URL is not a PostgreSQL URL.
        DatabaseError: When the server cannot be reached or refuses the connection.

    """
    import psycopg

    try:
        server_url = libpq_url(url)
    except ConfigurationError as error:
        raise ConfigurationError(f"{error} (from {source})") from None
    try:
        psycopg.connect(server_url, connect_timeout=10).close()
    except psycopg.Error as error:
        raise DatabaseError(
            f"cannot connect to {mask_password(server_url)}: {first_line(error)}; "
            f"{_fix_hint(source)}"
        ) from None
    return server_url


def database_url(server_url: str, name: str) -> str:
    """Return a libpq URL of the database ``name`` on the server of ``server_url``.

    Everything but the database is kept as written (host, socket folder, port, options).
    """
    parts = urlsplit(libpq_url(server_url))
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "dbname" for key, _ in pairs):
        query = urlencode([(k, v) for k, v in pairs if k != "dbname"], quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", query, parts.fragment))


def factory_random_state() -> object:
    """Return the state of the generators the factories draw from (factory_boy's and Faker's)."""
    import factory.random

    return factory.random.get_random_state()  # type: ignore[no-untyped-call]


def restore_factory_random_state(state: object) -> None:
    """Set the factories' generators back to a state :func:`factory_random_state` returned."""
    import factory.random

    factory.random.set_random_state(state)  # type: ignore[no-untyped-call]


def _slug(name_or_path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", Path(name_or_path).stem.lower()).strip("_")[:24] or "scenario"


def _lock_key(name: str) -> int:
    """Return a signed int4 for an advisory lock on ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


@dataclass(frozen=True)
class Template:
    """A scenario's template database, as a session found or built it.

    Attributes:
        name: The template database's name (``seed_tpl_<scenario>_<hex>``).
        scenario: The scenario's name.
        seed: The seed it was built with.
        refs: The scenario's named rows.
        built: Whether this session built it (False: a kept one from an earlier session).
        kept: Whether it stays for the next session (False: dropped when this one closes).
        seconds: How long building it took (0 for a kept one found).
        key: Its key (:func:`template_key`), when kept.

    """

    name: str
    scenario: str
    seed: int
    refs: Mapping[str, uuid.UUID | list[uuid.UUID]] = field(repr=False)
    built: bool
    kept: bool
    seconds: float = 0.0
    key: str | None = field(default=None, repr=False)
    #: Per-database settings to give each copy: (role or None, name, value).
    settings: tuple[tuple[str | None, str, str], ...] = field(default=(), repr=False)


def _refs_json(refs: Mapping[str, uuid.UUID | list[uuid.UUID]]) -> dict[str, Any]:
    return {k: [str(i) for i in v] if isinstance(v, list) else str(v) for k, v in refs.items()}


def _refs_from_json(refs: Mapping[str, Any]) -> dict[str, uuid.UUID | list[uuid.UUID]]:
    return {
        k: [uuid.UUID(i) for i in v] if isinstance(v, list) else uuid.UUID(v)
        for k, v in refs.items()
    }


@dataclass(frozen=True)
class _Kept:
    """A kept template on the server, as its comment describes it."""

    name: str
    comment: Mapping[str, Any]

    @property
    def key(self) -> str:
        return str(self.comment.get("key", ""))

    @property
    def slot(self) -> str:
        return str(self.comment.get("slot", ""))

    @property
    def used(self) -> datetime:
        try:
            return datetime.fromisoformat(str(self.comment["used"]))
        except (KeyError, ValueError):
            return datetime.min.replace(tzinfo=UTC)


class SeedServer:
    """A PostgreSQL server and every database the plugin made on it.

    It builds each scenario once into a template database, copies the template for every
    test that asks, and drops the copies it made when closed; the templates too, unless they
    are kept for the next session. Usable without pytest (the bench does).

    Args:
        url: A URL of any database on the server that the user may connect to; the user
            needs the right to create databases. The advisory locks that order the sessions'
            builds live in this database: sessions that share templates name the same one.
        source: Where the URL came from, named in error messages.
        keep_templates: Keep each template for the next session (found again by its key,
            rebuilt when the key changes); False: drop them when closed.
        schema: SQL files (or folders of them) run into each template before its scenario is
            seeded: the app's Supabase schema. Empty: the tool's own tables.
        schema_source: Where ``schema`` came from, named in error messages.

    """

    def __init__(
        self,
        url: str,
        *,
        source: str = "the caller",
        keep_templates: bool = False,
        schema: Sequence[str | Path] = (),
        schema_source: str = "the caller",
    ) -> None:
        self.url = libpq_url(url)
        self.source = source
        self.keep_templates = keep_templates
        self.schema = tuple(Path(path) for path in schema)
        self.schema_source = schema_source
        #: The ``application_name`` of this object's connection, named on its databases.
        self.owner = f"{OWNER_PREFIX}{uuid.uuid4().hex[:12]}"
        self._admin: psycopg.Connection[Any] | None = None
        self._swept = False
        self._made: list[str] = []
        self._templates: dict[tuple[str, int | None, float], Template] = {}
        self._held: set[str] = set()
        self._schema_files: tuple[Path, ...] | None = None
        self._schema_engine: sa.Engine | None = None
        #: Every template this object used, in the order it first used them.
        self.history: list[Template] = []

    @property
    def database_names(self) -> tuple[str, ...]:
        """The databases this server object made and will drop when closed, oldest first."""
        return tuple(self._made)

    @property
    def templates(self) -> tuple[Template, ...]:
        """The templates this object has used so far (built, or kept ones found)."""
        return tuple(self.history)

    def _admin_connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._admin is None or self._admin.closed or self._admin.broken:
            try:
                self._admin = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10, application_name=self.owner
                )
            except psycopg.Error as error:
                raise DatabaseError(
                    f"cannot connect to {mask_password(self.url)}: {first_line(error)}; "
                    f"{_fix_hint(self.source)}"
                ) from None
            for name in self._held:  # a new connection: the templates in use are held again
                self._admin.execute(
                    "SELECT pg_advisory_lock_shared(%s, %s)", (_USE_LOCK, _lock_key(name))
                )
            if not self._swept:
                self._swept = True
                self.sweep()
        return self._admin

    def sweep(self) -> list[str]:
        """Drop the databases that test sessions now gone left behind; return their names.

        Those are the databases whose comment (:data:`OWNER_COMMENT`) names an owner with no
        connection open on the server: its session was killed before it could drop them; and
        the kept templates no session has used for :data:`KEPT_UNUSED_DAYS` days and none
        holds now. A database someone is connected to stays, and so does one that cannot be
        dropped (made by another user, say). Runs once, when this object first connects.
        """
        import psycopg
        from psycopg import sql

        admin = self._admin_connection()
        try:
            found = admin.execute(
                """
                SELECT d.datname FROM pg_database d
                CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS comment) c
                WHERE starts_with(c.comment, %(marker)s)
                  AND NOT EXISTS (
                      SELECT FROM pg_stat_activity a
                      WHERE a.application_name = substr(c.comment, length(%(marker)s) + 1)
                         OR a.datname = d.datname)
                ORDER BY d.datname
                """,
                {"marker": OWNER_COMMENT},
            ).fetchall()
            kept = self._kept()
        except psycopg.Error as error:
            warnings.warn(
                f"seeding: could not look for databases left by killed test sessions on "
                f"{mask_password(self.url)}: {first_line(error)}",
                stacklevel=2,
            )
            return []
        dropped = []
        for (name,) in found:
            try:  # not WITH (FORCE): one that someone has just connected to is in use
                admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except psycopg.Error:  # in use, not ours to drop, already gone: it stays
                continue
            dropped.append(name)
        unused_since = datetime.now(UTC) - timedelta(days=KEPT_UNUSED_DAYS)
        dropped.extend(
            template.name for template in kept
            if template.used < unused_since and self._drop_unheld(template.name)
        )
        return dropped

    def _kept(self, slot: str | None = None) -> list[_Kept]:
        """Return the kept templates on the server (of one slot), oldest name first."""
        rows = self._admin_connection().execute(
            "SELECT d.datname, c.comment FROM pg_database d"
            " CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS comment) c"
            " WHERE starts_with(c.comment, %s) ORDER BY d.datname",
            (KEPT_COMMENT,),
        ).fetchall()
        kept = []
        for name, comment in rows:
            try:
                described = json.loads(comment[len(KEPT_COMMENT):])
            except ValueError:
                continue
            if isinstance(described, dict) and (slot is None or described.get("slot") == slot):
                kept.append(_Kept(name=name, comment=described))
        return kept

    def _hold(self, name: str) -> None:
        """Hold a shared lock on a template while this object may copy it."""
        if name not in self._held:
            self._admin_connection().execute(
                "SELECT pg_advisory_lock_shared(%s, %s)", (_USE_LOCK, _lock_key(name))
            )
            self._held.add(name)

    def _release(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            if self._admin is not None and not self._admin.closed:
                self._admin.execute(
                    "SELECT pg_advisory_unlock_shared(%s, %s)", (_USE_LOCK, _lock_key(name))
                )

    def _drop_unheld(self, name: str) -> bool:
        """Drop a kept template unless a session holds it (or it is in use); return if dropped."""
        import psycopg
        from psycopg import sql

        if name in self._held:
            return False
        admin = self._admin_connection()
        key = (_USE_LOCK, _lock_key(name))
        row = admin.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
        if not (row and row[0]):
            return False
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error:  # in use, not ours to drop: it stays
            return False
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        return True

    def _execute(self, statement: Any) -> None:
        import psycopg

        try:
            self._admin_connection().execute(statement)
        except psycopg.Error as error:
            raise DatabaseError(f"on {mask_password(self.url)}: {first_line(error)}") from None

    def create_database(
        self, prefix: str = TEST_DATABASE_PREFIX, *, template: str | None = None
    ) -> str:
        """Create a database named ``<prefix><random hex>``, empty or a copy of ``template``.

        Returns:
            The new database's name; it is dropped by :meth:`drop_database` or :meth:`close`.

        """
        from psycopg import sql

        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._execute(statement)
        self._made.append(name)
        self._comment(name, OWNER_COMMENT + self.owner)
        return name

    def _comment(self, name: str, comment: str) -> None:
        from psycopg import sql

        statement = sql.SQL("COMMENT ON DATABASE {} IS {}")
        self._execute(statement.format(sql.Identifier(name), sql.Literal(comment)))

    def drop_database(self, name: str) -> None:
        """Drop a database this object made, closing any connection still open on it."""
        from psycopg import sql

        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._execute(drop.format(sql.Identifier(name)))
        if name in self._made:
            self._made.remove(name)

    def database_url(self, name: str) -> str:
        """Return a libpq URL of the database ``name`` on this server."""
        return database_url(self.url, name)

    def _schema(self) -> tuple[Path, ...]:
        if self._schema_files is None:
            self._schema_files = schema_files(self.schema, source=self.schema_source)
        return self._schema_files

    def _template(
        self, name_or_path: str, *, seed: int | None = None, scale: float = 1.0
    ) -> Template:
        """Return the template database holding a scenario: found kept, or built now.

        Raises:
            ScenarioError: When the scenario is unknown or malformed.
            ConfigurationError: When the schema setting or a schema file is wrong.
            DatabaseError: When the server refuses the database or the rows.

        """
        cached = (name_or_path, seed, scale)
        if cached not in self._templates:
            schema = self._schema()
            if self.keep_templates:
                template = self._kept_template(name_or_path, seed=seed, scale=scale, schema=schema)
            else:
                name, result, seconds = self._build(name_or_path, seed, scale, schema)
                template = Template(
                    name=name, scenario=result.scenario, seed=result.seed, refs=result.refs,
                    built=True, kept=False, seconds=seconds,
                )
            template = self._with_settings(template)
            self._templates[cached] = template
            self.history.append(template)
        return self._templates[cached]

    def _kept_template(
        self, name_or_path: str, *, seed: int | None, scale: float, schema: Sequence[Path]
    ) -> Template:
        """Return the kept template whose key matches, building it (under the slot's lock)."""
        import psycopg

        admin = self._admin_connection()
        try:
            identity = template_key(
                name_or_path, seed=seed, scale=scale, schema=schema, user=str(admin.info.user),
                schema_setting=[path.expanduser().resolve() for path in self.schema],
            )
        except SeedingError:
            raise
        except Exception:  # unforeseen: building reports it as the run does, or builds anyway
            name, result, seconds = self._build(name_or_path, seed, scale, schema)
            return Template(
                name=name, scenario=result.scenario, seed=result.seed, refs=result.refs,
                built=True, kept=False, seconds=seconds,
            )
        lock = (_BUILD_LOCK, _lock_key(identity.slot))
        try:
            admin.execute("SELECT pg_advisory_lock(%s, %s)", lock)  # waits for another's build
            try:
                found = self._matching(identity)
                if found is None:
                    found = self._build_kept(name_or_path, seed, scale, schema, identity)
                for stale in self._kept(identity.slot):
                    if stale.key != identity.key:
                        self._drop_unheld(stale.name)
                return found
            finally:
                if not (admin.closed or admin.broken):
                    admin.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
        except psycopg.Error as error:
            raise DatabaseError(f"on {mask_password(self.url)}: {first_line(error)}") from None

    def _matching(self, identity: TemplateKey) -> Template | None:
        """Return the kept template of this key, held for this session, if there is one."""
        for kept in self._kept(identity.slot):
            if kept.key != identity.key:
                continue
            self._hold(kept.name)
            if not any(k.name == kept.name for k in self._kept(identity.slot)):
                self._release(kept.name)  # dropped just before we held it
                continue
            described = kept.comment
            if datetime.now(UTC) - kept.used > _TOUCH_AFTER:
                touched = {**described, "used": datetime.now(UTC).isoformat()}
                self._comment(kept.name, KEPT_COMMENT + json.dumps(touched))
            return Template(
                name=kept.name, scenario=str(described["scenario"]),
                seed=int(described["seed"]), refs=_refs_from_json(described["refs"]),
                built=False, kept=True, key=kept.key,
            )
        return None

    def _build_kept(
        self,
        name_or_path: str,
        seed: int | None,
        scale: float,
        schema: Sequence[Path],
        identity: TemplateKey,
    ) -> Template:
        """Build a template and mark it kept (its key, scenario and refs in its comment)."""
        name, result, seconds = self._build(name_or_path, seed, scale, schema)
        self._hold(name)
        now = datetime.now(UTC).isoformat()
        described = {
            "key": identity.key, "slot": identity.slot, "scenario": result.scenario,
            "seed": result.seed, "scale": scale, "files": [str(p) for p in identity.files],
            "schema": [str(p) for p in schema], "refs": _refs_json(result.refs),
            "built": now, "used": now, "seconds": round(seconds, 3),
        }
        try:
            self._comment(name, KEPT_COMMENT + json.dumps(described))
        except BaseException:
            self._release(name)
            self.drop_database(name)
            raise
        self._made.remove(name)  # kept: not this session's to drop
        return Template(
            name=name, scenario=result.scenario, seed=result.seed, refs=result.refs,
            built=True, kept=True, seconds=seconds, key=identity.key,
        )

    def _build(
        self, name_or_path: str, seed: int | None, scale: float, schema: Sequence[Path]
    ) -> tuple[str, RunResult, float]:
        """Build a scenario into a new database that refuses connections; return it and time.

        Raises:
            ScenarioError: When the scenario is unknown or malformed.
            ConfigurationError: When a schema file fails.
            DatabaseError: When the server refuses the database or the rows.

        """
        from seeding.runner import run_scenario

        started = time.perf_counter()
        name = self.create_database(f"{TEMPLATE_PREFIX}{_slug(name_or_path)}_")
        # Building reseeds the factories' generators; a test's own sequence must not change
        # because it happened to be the first to ask for this scenario.
        random_state = factory_random_state()
        try:
            apply_schema(self.database_url(name), schema, source=self.schema_source)
            # The server writes only databases it created itself: it opts out of the guard.
            result = run_scenario(
                name_or_path, database_url=self.database_url(name), seed=seed, scale=scale,
                allow_remote=True,
            )
        except BaseException:
            self.drop_database(name)
            raise
        finally:
            restore_factory_random_state(random_state)
        import psycopg
        from psycopg import sql

        # Analysed now, the template gives autovacuum no reason to connect to it (a copy
        # waits for any connection to its template to end), and its copies start analysed.
        try:
            with psycopg.connect(self.database_url(name), autocommit=True) as connection:
                connection.execute("ANALYZE")
        except psycopg.Error as error:
            self.drop_database(name)
            raise DatabaseError(f"on {mask_password(self.url)}: {first_line(error)}") from None
        self._wait_for_disconnect(name)
        # No connection may be open on a template while it is copied: refuse them all.
        refuse = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false")
        self._execute(refuse.format(sql.Identifier(name)))
        return name, result, time.perf_counter() - started

    def _with_settings(self, template: Template) -> Template:
        """Return the template with its per-database settings, which a copy does not inherit.

        ``ALTER DATABASE ... SET`` (a schema's ``search_path``, say) is not copied by
        ``CREATE DATABASE ... TEMPLATE``: :meth:`copy` gives them to each copy.
        """
        import psycopg

        try:
            rows = self._admin_connection().execute(
                "SELECT r.rolname, c.setting FROM pg_db_role_setting s"
                " JOIN pg_database d ON d.oid = s.setdatabase"
                " LEFT JOIN pg_roles r ON r.oid = s.setrole"
                " CROSS JOIN LATERAL unnest(s.setconfig) c(setting)"
                " WHERE d.datname = %s ORDER BY r.rolname NULLS FIRST",
                (template.name,),
            ).fetchall()
        except psycopg.Error as error:
            raise DatabaseError(f"on {mask_password(self.url)}: {first_line(error)}") from None
        settings = []
        for role, setting in rows:
            name, _, value = str(setting).partition("=")
            settings.append((role, name, value))
        return replace(template, settings=tuple(settings))

    def _copy_settings(self, template: Template, name: str) -> None:
        """Give the copy ``name`` the template's per-database settings (``FROM CURRENT``)."""
        import psycopg
        from psycopg import sql

        admin = self._admin_connection()
        try:
            with admin.transaction():
                for role, setting, value in template.settings:
                    # The value as stored is what set_config takes; FROM CURRENT stores it back.
                    admin.execute("SELECT set_config(%s, %s, true)", (setting, value))
                    target = sql.SQL("DATABASE {}").format(sql.Identifier(name))
                    if role is not None:
                        target = sql.SQL("ROLE {} IN {}").format(sql.Identifier(role), target)
                    admin.execute(sql.SQL("ALTER {} SET {} FROM CURRENT").format(
                        target, sql.Identifier(*setting.split("."))))
        except psycopg.Error as error:
            raise DatabaseError(
                f"on {mask_password(self.url)}: giving {name} the settings of its template "
                f"{template.name}: {first_line(error)}"
            ) from None

    def copy(
        self, name_or_path: str, *, seed: int | None = None, scale: float = 1.0
    ) -> ScenarioDatabase:
        """Return a new database holding a scenario: a copy of its template (built once).

        Args:
            name_or_path: A shipped scenario's name, or a path to a scenario file.
            seed: The run's seed (default: the scenario's).
            scale: Multiplies the scenario's step counts.

        Raises:
            ScenarioError: When the scenario is unknown or malformed.
            ConfigurationError: When the schema setting or a schema file is wrong.
            DatabaseError: When the server refuses the database or the rows.

        """
        template = self._template(name_or_path, seed=seed, scale=scale)
        name = self.create_database(template=template.name)
        if template.settings:
            self._copy_settings(template, name)
        return ScenarioDatabase(
            scenario=template.scenario,
            seed=template.seed,
            name=name,
            url=self.database_url(name),
            refs=MappingProxyType(
                {k: list(v) if isinstance(v, list) else v for k, v in template.refs.items()}
            ),
        )

    def release(self, database: ScenarioDatabase) -> None:
        """Close a copy's connections and drop it."""
        database.close()
        self._wait_for_disconnect(database.name)
        self.drop_database(database.name)

    def _wait_for_disconnect(self, name: str, *, timeout: float = 1.0) -> None:
        # A closed connection's server process exits a moment later; DROP DATABASE finding it
        # still there sleeps 100 ms before it looks again. Polling for a few ms is cheaper.
        import psycopg

        deadline = time.monotonic() + timeout
        admin = self._admin_connection()
        try:
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'",
                    (name,),
                ).fetchone()
                if not row or row[0] == 0:
                    return
                time.sleep(0.002)
        except psycopg.Error:
            return  # DROP DATABASE ... WITH (FORCE) below copes, only slower

    def schema_engine(self) -> sa.Engine:
        """Return an engine on this server's database of the app's tables, made on first use."""
        if self._schema_engine is None:
            import sqlalchemy as sa

            from seeding.db.database import create_schema

            name = self.create_database()
            engine = sa.create_engine(normalize_url(self.database_url(name)))
            create_schema(engine, allow_remote=True)  # a database it created itself
            self._schema_engine = engine
        return self._schema_engine

    def drop_kept_templates(self, names: Iterable[str] | None = None) -> list[str]:
        """Drop kept templates (all on the server, or those named) that no session holds now.

        Returns:
            The names dropped.

        """
        wanted = None if names is None else set(names)
        for name in list(self._held):
            if wanted is None or name in wanted:
                self._release(name)
                self._templates = {k: v for k, v in self._templates.items() if v.name != name}
        return [
            kept.name for kept in self._kept()
            if (wanted is None or kept.name in wanted) and self._drop_unheld(kept.name)
        ]

    def close(self) -> None:
        """Drop every database this object made (kept templates stay); close its connections."""
        if self._schema_engine is not None:
            self._schema_engine.dispose()
            self._schema_engine = None
        self._templates.clear()
        try:
            for name in reversed(self._made):
                self.drop_database(name)
        finally:
            self._held.clear()
            if self._admin is not None:
                self._admin.close()  # its advisory locks go with it
                self._admin = None


__all__ = [
    "INI_KEY",
    "KEEP_INI_KEY",
    "KEPT_COMMENT",
    "KEPT_UNUSED_DAYS",
    "OPTION",
    "OWNER_COMMENT",
    "OWNER_PREFIX",
    "SCHEMA_INI_KEY",
    "SCHEMA_OPTION",
    "TEMPLATE_PREFIX",
    "TEST_DATABASE_PREFIX",
    "URL_VARIABLE",
    "ScenarioDatabase",
    "SeedServer",
    "Template",
    "TemplateKey",
    "apply_schema",
    "check_server",
    "database_url",
    "factory_random_state",
    "restore_factory_random_state",
    "schema_files",
    "template_key",
]
