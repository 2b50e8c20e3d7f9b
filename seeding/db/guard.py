"""Where a connection goes, read once, and the write guard that decides on that reading.

A database URL and libpq's environment are read once, by libpq's own rules
(:func:`psycopg.conninfo.conninfo_to_dict`), into an :class:`Endpoint`: the exact parameters
every connection of the tool is then made with. Where libpq would have filled a parameter
from the environment (``PGHOST``, ``PGHOSTADDR``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``),
the endpoint holds the value it read, and an endpoint that gives no ``hostaddr`` passes it
empty, so that no variable can send the connection elsewhere after the guard has looked.

A command that writes calls :func:`ensure_writable` before connecting. It accepts an endpoint
that connects to exactly one host, and only when that host is local or listed in
``SEED_ALLOW_HOSTS``. Local means:

- no host, or an empty one (libpq's default unix socket);
- a unix socket folder (``host=/path``, as the embedded server's URLs have) or a Linux
  abstract socket (``host=@name``);
- ``localhost``, an address in ``127.0.0.0/8``, or ``::1``.

Where a ``hostaddr`` is given, it is what libpq connects to, and what is checked. Refused,
whatever the host: several hosts (``host=a,b``, which libpq tries in turn), and a connection
service (``service=`` or ``PGSERVICE``), whose file the guard cannot see. Once connected,
:func:`ensure_connection_writable` asks libpq where the connection really went (``PQhost``,
``PQhostaddr``), so an engine made elsewhere is checked too.

Nothing here connects, and no message carries a password: an endpoint prints as a URL rebuilt
from its parameters, and :func:`redact` removes every password the process has read.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from seeding.errors import ConfigurationError

#: The variable listing the non-local hosts a command may write to, comma-separated.
ALLOW_VARIABLE = "SEED_ALLOW_HOSTS"

#: The URL schemes accepted.
SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})

#: libpq's variables for the parameters that say where a connection goes, and as whom.
ENVIRONMENT = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
}

_FORMAT = "write it as postgresql://user:password@host:5432/database"
_ENCODE = (
    "percent-encode these characters in a user name or password: "
    "@ as %40, / as %2F, ? as %3F, # as %23, : as %3A"
)

#: Every password this process has read (URLs, PGPASSWORD, service files): never printed.
_SECRETS: set[str] = set()


@dataclass(frozen=True)
class Endpoint:
    """One reading of where connections go: a URL and libpq's environment, decided once."""

    #: The libpq parameters every connection is made with, exactly.
    params: Mapping[str, str]
    #: Where the URL came from, for messages ('--db', 'SEED_DATABASE_URL', 'embedded', ...).
    source: str = ""
    #: The parameters taken from the environment, and the variable each came from.
    environment: Mapping[str, str] = field(default_factory=dict)
    #: The connection service named (by the URL or ``PGSERVICE``), which decides the host.
    service: str | None = None

    @property
    def conninfo(self) -> str:
        """Return the libpq connection string of :attr:`params`."""
        return make_conninfo("", **self.params)

    def destinations(self) -> list[str]:
        """Return what libpq connects to, one entry per host; ``"/"`` is the default socket."""
        hosts = _split(self.params.get("host"))
        addresses = _split(self.params.get("hostaddr"))
        pairs = zip_longest(hosts, addresses, fillvalue="")
        return [address or host or "/" for host, address in pairs] or ["/"]

    def is_local(self) -> bool:
        """Return whether every destination is on this machine (a service never is)."""
        return self.service is None and all(map(is_local_host, self.destinations()))

    def display(self) -> str:
        """Return a URL fit to print: rebuilt from the parameters, the password never in it."""
        if self.service is not None:
            return f"the connection service {self.service!r}"
        params = self.params
        user = quote(params.get("user", ""), safe="")
        if "password" in params and user:
            user += ":***"
        userinfo = f"{user}@" if user else ""
        database = quote(params.get("dbname", ""), safe="")
        hosts = [host for host in _split(params.get("host")) if host]
        port = params.get("port", "")
        query = []
        netloc = ",".join(_bracket(host) for host in hosts)
        if any(host.startswith(("/", "@")) for host in hosts) or "," in port:
            query.append(f"host={quote(','.join(hosts), safe='/@,')}")
            netloc = ""
            if port:
                query.append(f"port={quote(port, safe=',')}")
        elif port:
            netloc = f"{netloc}:{port}"
        if params.get("hostaddr"):
            query.append(f"hostaddr={quote(params['hostaddr'], safe=',:')}")
        tail = f"?{'&'.join(query)}" if query else ""
        return f"postgresql://{userinfo}{netloc}/{database}{tail}"

    def describe(self) -> str:
        """Return 'database D on H as U' for a message, without the password."""
        if self.service is not None:
            return f"the connection service {self.service!r}"
        hosts = ",".join(_split(self.params.get("host"))) or "(default socket)"
        address = self.params.get("hostaddr")
        on = f"{hosts} (address {address})" if address else hosts
        port = self.params.get("port")
        on = f"{on}:{port}" if port and "," not in port else on
        user = self.params.get("user")
        return (f"database {self.params.get('dbname', '(default)')!r} on {on}"
                + (f" as {user}" if user else ""))

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """Open a psycopg connection with exactly these parameters."""
        return psycopg.connect(self.conninfo, **kwargs)

    def named(self) -> str:
        """Return 'the database URL (from SOURCE)' for a message."""
        return _url_named(self.source)

    def with_database(self, dbname: str) -> Endpoint:
        """Return the same endpoint on another database of the server."""
        return Endpoint({**self.params, "dbname": dbname}, self.source, self.environment,
                        self.service)


def socket_endpoint(socket_dir: str | Path, port: int, dbname: str, *, user: str = "postgres",
                    source: str = "embedded") -> Endpoint:
    """Return the endpoint of a server's unix socket; no environment variable can redirect it."""
    return Endpoint(
        {"host": str(socket_dir), "hostaddr": "", "port": str(port), "user": user,
         "dbname": dbname},
        source,
    )


def read(url: str, *, source: str = "", environ: Mapping[str, str] | None = None,
         public_password: bool = False) -> Endpoint:
    """Read a URL, and the environment libpq would read with it, into one :class:`Endpoint`.

    Args:
        url: A ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://`` URL, or a libpq
            ``key=value`` string.
        source: Where the URL came from, for messages.
        environ: The environment (default: the process's).
        public_password: The URL's password is public, not a secret (the Supabase CLI's
            local ``postgres``): it is not removed from messages, where it would mangle
            every ``postgresql://``. Shown URLs still mask it.

    Raises:
        ConfigurationError: When the URL cannot be read, or could be read two ways (a
            repeated parameter, an unencoded ``@`` or ``/`` in a user name or password). The
            message never repeats the URL.

    """
    env = os.environ if environ is None else environ
    text = url.strip()
    if not text:
        raise ConfigurationError(f"{_url_named(source)} is empty; {_FORMAT}")
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() not in SCHEMES:
            raise ConfigurationError(
                f"{_url_named(source)} has the scheme {scheme[:20]!r}, "
                f"not PostgreSQL; {_FORMAT}"
            )
        _check_uri(rest, source)
        text = f"postgresql://{rest}"
    elif "=" not in text:
        raise ConfigurationError(
            f"{_url_named(source)} has no scheme; {_FORMAT} "
            "(or as libpq key=value pairs)"
        )
    try:
        parsed = conninfo_to_dict(text)
    except psycopg.ProgrammingError as error:
        message = re.sub(r'"[^"]*"', '"…"', str(error).strip().splitlines()[0])
        raise ConfigurationError(
            f"cannot read {_url_named(source)} ({message}); {_FORMAT}; {_ENCODE}"
        ) from None
    params = {key: str(value) for key, value in parsed.items() if value is not None}
    if not public_password:
        _remember(params.get("password"))
    _remember(env.get("PGPASSWORD"))
    _check_ports(params.get("port"), params.get("host"), source)
    service = params.get("service") or env.get("PGSERVICE") or None
    if service is not None:
        # The service file fills what the URL leaves out, before the environment does; only
        # libpq can follow it, so the parameters stay as given (and writes are refused).
        _remember(_service_password(service, env))
        return Endpoint(params, source, {}, service)
    taken = {}
    for key, variable in ENVIRONMENT.items():
        if key not in params and variable in env:
            params[key] = env[variable]
            taken[key] = variable
    _check_ports(params.get("port"), params.get("host"), source)
    params.setdefault("host", "")
    params.setdefault("hostaddr", "")
    return Endpoint(params, source, taken)


def ensure_writable(target: str | Endpoint) -> Endpoint:
    """Refuse a database that is not exactly one local host, or one in ``SEED_ALLOW_HOSTS``.

    Call it before connecting: it only reads the URL and the environment.

    Args:
        target: An endpoint, or a URL to :func:`read`.

    Returns:
        The endpoint, to connect with.

    Raises:
        ConfigurationError: When the target is refused, or the URL cannot be read. The
            message names the reason and the fix, never the password.

    """
    endpoint = read(target) if isinstance(target, str) else target
    where = endpoint.describe()
    if endpoint.service is not None:
        origin = "PGSERVICE" if "service" not in endpoint.params else "the URL"
        raise ConfigurationError(
            f"refusing to write to {where} (named by {origin}): a service file decides the "
            "host, which the tool cannot check; give the host in the URL instead "
            "(postgresql://user@host:5432/database)"
            + (" and unset PGSERVICE" if origin == "PGSERVICE" else "")
        )
    destinations = endpoint.destinations()
    if len(destinations) > 1:
        raise ConfigurationError(
            f"refusing to write to {where}: it names {len(destinations)} hosts, which libpq "
            "would try in turn; a command that writes needs exactly one: give one host"
        )
    destination = destinations[0]
    if is_local_host(destination) or destination.lower() in allowed_hosts():
        return endpoint
    raise ConfigurationError(
        f"refusing to write to {where}: {_named(endpoint, destination)} is not local "
        "(localhost, 127.0.0.0/8, ::1 or a unix socket); if it really is a database you may "
        f"overwrite, allow it with {ALLOW_VARIABLE}={destination.lower()}"
        + _unset_hint(endpoint)
    )


def ensure_local(target: str | Endpoint, *, action: str, instead: str) -> Endpoint:
    """Refuse a database that is not on this machine, whatever ``SEED_ALLOW_HOSTS`` lists.

    For what only a local database may undergo (``seed reset --all-tables``). Call it before
    connecting.

    Args:
        target: An endpoint, or a URL to :func:`read`.
        action: What is refused, for the message (e.g. ``--all-tables``).
        instead: What to do instead, for the message.

    Raises:
        ConfigurationError: When the target is not local, or cannot be read.

    """
    endpoint = read(target) if isinstance(target, str) else target
    if endpoint.is_local():
        return endpoint
    remote = [d for d in endpoint.destinations() if not is_local_host(d)]
    what = (f"the connection service {endpoint.service!r}" if endpoint.service is not None
            else ", ".join(_named(endpoint, d) for d in remote))
    raise ConfigurationError(
        f"refusing {action} on {endpoint.describe()}: {what} is not local; {action} is for "
        "local databases only (localhost, 127.0.0.0/8, ::1, a unix socket), whatever "
        f"{ALLOW_VARIABLE} lists; {instead}"
    )


def ensure_connection_writable(connection: Any, *, allow_remote: bool = False) -> None:
    """Refuse an open connection whose server is neither local nor allowed, before a write.

    libpq is asked where the connection really went (``PQhost``, ``PQhostaddr``), so this
    holds for an engine or a connection the caller made, whatever its URL said.

    Args:
        connection: A psycopg connection, or an SQLAlchemy connection on psycopg.
        allow_remote: Write to any host: for the callers that write only databases they
            created themselves (the pytest plugin's server).

    Raises:
        ConfigurationError: When the server is neither local nor allowed.

    """
    if allow_remote:
        return
    info = _libpq_info(connection)
    host = info.host or ""
    try:
        address = info.hostaddr or ""
    except psycopg.NotSupportedError:  # libpq before 12: no PQhostaddr
        address = ""
    if is_local_host(address or host):  # a unix socket has no address
        return
    allowed = allowed_hosts()
    if (address or host).lower() in allowed:
        return
    raise ConfigurationError(
        f"refusing to write to database {info.dbname!r} on {host}"
        + (f" (address {address})" if address and address != host else "")
        + ": the server is not local (localhost, 127.0.0.0/8, ::1 or a unix socket); if it "
        f"really is a database you may overwrite, allow it with "
        f"{ALLOW_VARIABLE}={(address or host).lower()}"
    )


def is_local(url: str) -> bool:
    """Return whether every host a URL connects to is on this machine (not what is allowed).

    Raises:
        ConfigurationError: When the URL cannot be read one way only.

    """
    return read(url).is_local()


def allowed_hosts() -> frozenset[str]:
    """Return the hosts listed in ``SEED_ALLOW_HOSTS``, lower-cased, blanks dropped."""
    listed = os.environ.get(ALLOW_VARIABLE, "")
    return frozenset(host.strip().lower() for host in listed.split(",") if host.strip())


def is_local_host(host: str) -> bool:
    """Return whether one libpq host or address is on this machine."""
    if not host:
        return False
    if host.startswith(("/", "@")):
        return True
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with every password the process has read, and ``secrets``, as ``***``.

    Passwords come from URLs read here, ``PGPASSWORD``, service files, and
    ``SEED_USER_PASSWORD``; each is also removed percent-encoded.
    """
    known = set(_SECRETS) | {s for s in secrets if s}
    for variable in ("PGPASSWORD", "SEED_USER_PASSWORD"):
        if os.environ.get(variable):
            known.add(os.environ[variable])
    # The schemes stay readable whatever a password is ("postgres" is a common one).
    kept = {f"\x00{i}\x00": scheme for i, scheme in enumerate(_SCHEMES)}
    for placeholder, scheme in kept.items():
        text = text.replace(scheme, placeholder)
    # Longest first, so that a password holding another one is removed whole.
    for secret in sorted(known, key=len, reverse=True):
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote(secret))):
            if len(form) >= 4:
                text = text.replace(form, "***")
    for placeholder, scheme in kept.items():
        text = text.replace(placeholder, scheme)
    return text


#: URL schemes that :func:`redact` leaves whole, longest first.
_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def _remember(secret: str | None) -> None:
    if secret:
        _SECRETS.add(secret)


def _libpq_info(connection: Any) -> Any:
    """Return psycopg's ``ConnectionInfo`` of a psycopg or SQLAlchemy connection."""
    raw = connection
    for _ in range(4):
        info = getattr(raw, "info", None)
        if isinstance(info, psycopg.ConnectionInfo):
            return info
        raw = next((getattr(raw, name) for name in ("driver_connection", "dbapi_connection",
                                                     "connection") if hasattr(raw, name)), None)
    raise ConfigurationError(
        "refusing to write: the connection is not a psycopg 3 connection, so where it goes "
        "cannot be checked; connect with postgresql+psycopg://"
    )


def _check_uri(rest: str, source: str) -> None:
    """Refuse a URI that libpq and a reader would split differently.

    libpq ends the user-info at the first ``@`` before the first ``/``; an ``@`` after that,
    in the host or the database name, is a user name or password that holds ``/`` or ``@``
    unencoded. A parameter given twice in the query is read as its last value by libpq and as
    a list by other readers.
    """
    cut = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    after = rest[cut + 1:] if cut >= 0 and rest[cut] == "@" else rest
    address, _, query = after.partition("?")
    if "@" in address:
        raise ConfigurationError(
            f"cannot read {_url_named(source)} one way only: it holds an '@' after "
            f"its user name and password; {_ENCODE}"
        )
    keys = [unquote(pair.partition("=")[0]) for pair in query.split("&") if pair]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigurationError(
            f"{_url_named(source)} gives {', '.join(repeated)} more than once; "
            "give each parameter once"
        )


def _check_ports(port: str | None, host: str | None, source: str) -> None:
    if port is None:
        return
    if all(entry.strip().isdigit() or not entry.strip() for entry in port.split(",")):
        return
    hint = ""
    if not host and port.startswith(":"):
        hint = "write an IPv6 address in brackets: postgresql://user@[::1]:5432/database"
    raise ConfigurationError(
        f"{_url_named(source)} has a port that is not a number; "
        + (hint or _ENCODE)
    )


def _service_password(service: str, env: Mapping[str, str]) -> str | None:
    """Return the password a service file gives the service, to keep it out of messages."""
    files = [env.get("PGSERVICEFILE"), str(Path.home() / ".pg_service.conf")]
    files.append(str(Path(env.get("PGSYSCONFDIR", "/etc/postgresql-common")) / "pg_service.conf"))
    for name in files:
        if not name:
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(name, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_option(service, "password"):
            return parser.get(service, "password")
    return None


def _url_named(source: str) -> str:
    return f"the database URL (from {source})" if source else "the database URL"


def _split(value: str | None) -> list[str]:
    """Return a libpq comma-separated list (``host=a,b``) as stripped entries."""
    return [entry.strip() for entry in value.split(",")] if value else []


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _named(endpoint: Endpoint, destination: str) -> str:
    """Return 'host H' or 'address A (from PGHOSTADDR)' for a message."""
    key = "hostaddr" if destination in _split(endpoint.params.get("hostaddr")) else "host"
    what = "address" if key == "hostaddr" else "host"
    variable = endpoint.environment.get(key)
    return f"{what} {destination}" + (f" (from {variable})" if variable else "")


def _unset_hint(endpoint: Endpoint) -> str:
    variables = [endpoint.environment[k] for k in ("host", "hostaddr") if k in endpoint.environment]
    if not variables:
        return ""
    return f", or unset {' and '.join(variables)} to connect where the URL says"
