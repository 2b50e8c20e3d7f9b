"""The write guard: which databases a command that writes may touch, checked before connecting.

A command that inserts, deletes or alters calls :func:`ensure_writable` first. A database is
writable when every host the URL can connect to is local, or is listed in
``SEED_ALLOW_HOSTS``. Local means what libpq would connect to on this machine:

- no host at all, or an empty one (libpq's default unix socket);
- a unix socket folder (``host=/path``, as the embedded server's URLs have) or a Linux
  abstract socket (``host=@name``);
- ``localhost``, an address in ``127.0.0.0/8``, or ``::1``.

libpq reads ``PGHOST`` and ``PGHOSTADDR`` when the URL names no host, so the guard does too;
where a ``hostaddr`` is given it is the address libpq connects to, and the one checked. A
``service`` without a host names a ``pg_service.conf`` entry whose host the guard cannot see,
so it is refused. Nothing here connects, and no message carries the password.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from itertools import zip_longest

import psycopg
from psycopg.conninfo import conninfo_to_dict

from seeding.errors import ConfigurationError

#: The variable listing the non-local hosts a command may write to, comma-separated.
ALLOW_VARIABLE = "SEED_ALLOW_HOSTS"

#: The URL schemes accepted, as :func:`seeding.database.normalize_url` accepts them.
_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})


def ensure_writable(url: str) -> None:
    """Refuse a database that is not local, unless its hosts are listed in ``SEED_ALLOW_HOSTS``.

    Call it before connecting: it only parses the URL (and reads the environment).

    Args:
        url: A ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://`` URL, or a libpq
            ``key=value`` string.

    Raises:
        ConfigurationError: When a host is neither local nor allowed, or the URL cannot be
            parsed. The message names the host and how to allow it, never the password.

    """
    params = _parse(url)
    allowed = allowed_hosts()
    refused = [host for host in _destinations(params) if not _is_local_host(host)]
    refused = [host for host in refused if host.lower() not in allowed]
    if not refused:
        return
    where = _describe(params)
    if "" in refused:
        service = params.get("service") or os.environ.get("PGSERVICE", "")
        raise ConfigurationError(
            f"refusing to write to {where}: it names the connection service {service!r}, "
            "whose host cannot be checked; put the host in the URL (host=...) so that the "
            f"guard can see it, and list it in {ALLOW_VARIABLE} if it is not local"
        )
    names = ", ".join(dict.fromkeys(refused))
    listing = ",".join(dict.fromkeys(host.lower() for host in refused))
    raise ConfigurationError(
        f"refusing to write to {where}: host {names} is not local "
        "(localhost, 127.0.0.0/8, ::1 or a unix socket); if it really is a database you may "
        f"overwrite, allow it with {ALLOW_VARIABLE}={listing}"
    )


def is_local(url: str) -> bool:
    """Return whether every host the URL can connect to is on this machine.

    ``SEED_ALLOW_HOSTS`` does not count here: an allowed host is still remote.

    Args:
        url: A PostgreSQL URL or libpq ``key=value`` string.

    Raises:
        ConfigurationError: When the URL cannot be parsed.

    """
    return all(_is_local_host(host) for host in _destinations(_parse(url)))


def ensure_local(url: str, *, action: str, instead: str) -> None:
    """Refuse a database that is not on this machine, whatever ``SEED_ALLOW_HOSTS`` lists.

    For what only a local database may undergo (``seed reset --all-tables``). Call it before
    connecting: it only parses the URL (and reads the environment).

    Args:
        url: A PostgreSQL URL or libpq ``key=value`` string.
        action: What is refused, for the message (e.g. ``--all-tables``).
        instead: What to do instead, for the message.

    Raises:
        ConfigurationError: When a host is not local, or the URL cannot be parsed. The message
            names the host, never the password.

    """
    params = _parse(url)
    remote = [host or "(a connection service)" for host in _destinations(params)
              if not _is_local_host(host)]
    if not remote:
        return
    raise ConfigurationError(
        f"refusing {action} on {_describe(params)}: host {', '.join(dict.fromkeys(remote))} is "
        f"not local; {action} is for local databases only (localhost, 127.0.0.0/8, ::1, a unix "
        f"socket), whatever {ALLOW_VARIABLE} lists; {instead}"
    )


def allowed_hosts() -> frozenset[str]:
    """Return the hosts listed in ``SEED_ALLOW_HOSTS``, lower-cased, blanks dropped."""
    listed = os.environ.get(ALLOW_VARIABLE, "")
    return frozenset(host.strip().lower() for host in listed.split(",") if host.strip())


def _parse(url: str) -> dict[str, str]:
    """Return a URL's libpq parameters; errors never repeat the URL (it may hold a password)."""
    raw = url.strip()
    scheme, sep, rest = raw.partition("://")
    if sep:
        if scheme.lower() not in _SCHEMES:
            raise ConfigurationError(
                f"database URL scheme {scheme!r} is not PostgreSQL; "
                "write it as postgresql://user:password@host:5432/database"
            )
        raw = f"postgresql://{rest}"
    try:
        params = conninfo_to_dict(raw)
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"cannot read the database URL ({error}); "
            "write it as postgresql://user:password@host:5432/database"
        ) from None
    return {key: str(value) for key, value in params.items() if value is not None}


def _split(value: str | None) -> list[str]:
    """Return a libpq comma-separated list (``host=a,b``) as stripped entries."""
    return [entry.strip() for entry in value.split(",")] if value is not None else []


def _destinations(params: Mapping[str, str]) -> list[str]:
    """Return what libpq would connect to, one entry per host; ``""`` marks an unknown host.

    ``"/"`` stands for libpq's default unix socket (no host given).
    """
    hosts = _split(params["host"] if "host" in params else os.environ.get("PGHOST"))
    addresses = _split(params["hostaddr"] if "hostaddr" in params else os.environ.get("PGHOSTADDR"))
    service = params.get("service") or os.environ.get("PGSERVICE")
    if not hosts and not addresses and service:
        return [""]
    destinations = [
        address or host or "/" for host, address in zip_longest(hosts, addresses, fillvalue="")
    ]
    return destinations or ["/"]


def _is_local_host(host: str) -> bool:
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


def _describe(params: Mapping[str, str]) -> str:
    """Return 'database D on H:P as U' for a message, without the password."""
    hosts = ",".join(_split(params.get("host"))) or os.environ.get("PGHOST") or "(default)"
    port = params.get("port")
    on = f"{hosts}:{port}" if port and "," not in hosts else hosts
    database = params.get("dbname", "(default)")
    user = params.get("user")
    return f"database {database!r} on {on}" + (f" as {user}" if user else "")
