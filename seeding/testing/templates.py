"""What a kept template is: the key over everything that decides its rows, and its schema.

A :class:`~seeding.testing.server.SeedServer` keeps each scenario's template database between
sessions under a key (:func:`template_key`) over the package's code, the scenario's files,
the schema files (:func:`schema_files`, run into a new template by :func:`apply_schema`), the
seed, the scale and the seeded users' password: a session whose key matches uses the kept
template; any change builds a new one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from seeding.errors import ConfigurationError, first_line

# Bumped when what a kept template holds, or how its key is made, changes.
_KEY_FORMAT: Final = b"1"


@functools.cache
def _code_digest() -> bytes:
    """Return a digest of the package's code: the installed version, and every module's bytes.

    The version alone would miss a change in a checkout (an editable install keeps its number).
    """
    from importlib import metadata

    import factories
    import seeding

    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("seeding").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"(not installed)")
    for package in (seeding, factories):
        root = Path(str(package.__file__)).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.digest()


def schema_files(paths: Iterable[str | Path], *, source: str = "the caller") -> tuple[Path, ...]:
    """Return the SQL files a schema setting names, in the order they run.

    Each path is a ``.sql`` file, or a folder whose ``*.sql`` files run in name order (a
    folder of migrations, such as ``supabase/migrations``).

    Raises:
        ConfigurationError: When a path is missing, or a folder holds no ``.sql`` file.

    """
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.glob("*.sql") if p.is_file())
            if not found:
                raise ConfigurationError(
                    f"the schema folder {path} (from {source}) holds no .sql file; give a "
                    "schema file, or the folder of your migrations"
                )
            files.extend(p.resolve() for p in found)
        elif path.is_file():
            files.append(path.resolve())
        else:
            raise ConfigurationError(
                f"no such schema file or folder: {path} (from {source}); give a .sql file "
                "(a schema dump) or a folder of .sql files (your migrations), or remove it"
            )
    return tuple(files)


@dataclass(frozen=True)
class TemplateKey:
    """What names a kept template: its slot, and the key over everything that decides its rows.

    Attributes:
        slot: The scenario file, seed, scale, schema files and database user asked for: one
            kept template per slot; another key in the same slot is stale.
        key: A SHA-256 over the package (version and code), the bytes of the scenario file and
            of every file it extends, the schema files' bytes (or the tool's own schema), the
            seed, the scale and the seeded users' password.
        files: The scenario's files, itself last.

    """

    slot: str
    key: str
    files: tuple[Path, ...]


def template_key(
    name_or_path: str,
    *,
    seed: int | None,
    scale: float,
    schema: Sequence[Path],
    user: str,
    schema_setting: Sequence[Path] | None = None,
) -> TemplateKey:
    """Return the slot and key of a scenario's template (reads the files, builds nothing).

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        seed: The run's seed (None: the scenario's).
        scale: Multiplies the scenario's step counts.
        schema: The schema's SQL files, in the order they run (empty: the tool's tables).
        user: The database user (a template is copied by its owner).
        schema_setting: The files and folders the setting names (default: ``schema``): the
            slot's, so that a migration added to a folder replaces the folder's template.

    Raises:
        ScenarioError: When the scenario cannot be found or read.
        ConfigurationError: When the seeded users' password is refused.

    """
    from seeding.db import auth
    from seeding.scenario.files import load

    scenario, _ = load(name_or_path)
    files = tuple(path for _, path, _ in scenario.chain)
    setting = schema if schema_setting is None else schema_setting
    slot = json.dumps(
        [str(scenario.path), seed, scale, [str(path) for path in setting], user]
    )
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    part("format", _KEY_FORMAT)
    part("code", _code_digest())
    part("slot", slot.encode())
    for path in files:
        part("scenario", path.read_bytes())
    for path in schema:
        part("schema", str(path).encode() + b"\0" + path.read_bytes())
    if not schema:
        part("schema", b"the tool's own tables")
    part("seed", repr(seed).encode())
    part("scale", repr(float(scale)).encode())
    part("password", auth.user_password().encode())
    return TemplateKey(
        slot=hashlib.sha256(slot.encode()).hexdigest(), key=digest.hexdigest(), files=files
    )


_PSQL_RESTRICT: Final = re.compile(r"^\\(?:un)?restrict\b.*$", re.MULTILINE)
_CREATES_PUBLIC: Final = re.compile(r'^CREATE SCHEMA "?public"?;', re.MULTILINE | re.IGNORECASE)


def apply_schema(url: str, files: Sequence[Path], *, source: str = "the caller") -> None:
    """Run each SQL file into the database at ``url``: each file all or nothing, in order.

    Raises:
        ConfigurationError: When a statement fails; the message names the file and its line.

    """
    import psycopg

    for path in files:
        # pg_dump (15.14, 16.10, 17.6 and later) brackets a dump in psql's \restrict and
        # \unrestrict, which are not SQL; blanked, the lines keep their numbers.
        text = _PSQL_RESTRICT.sub("", path.read_text(encoding="utf-8"))
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
                if _CREATES_PUBLIC.search(text):
                    # A dump of schema public (pg_dump --schema=public) creates the schema a
                    # new database has: it goes first while empty (else the file's CREATE fails).
                    with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
                        connection.execute("DROP SCHEMA IF EXISTS public")
                # One simple query: the server runs the file as one implicit transaction (a
                # file's own BEGIN/COMMIT still works); without parameters, no % is a placeholder.
                connection.execute(text.encode())
        except psycopg.Error as error:
            position = getattr(error.diag, "statement_position", None)
            line = text[: int(position) - 1].count("\n") + 1 if position else None
            at = f"{path}:{line}" if line else str(path)
            failing = text.splitlines()[line - 1].lstrip() if line else ""
            hint = (
                "; psql's meta-commands (lines starting with a backslash) are not SQL: remove them"
                if failing.startswith("\\") else ""
            )
            raise ConfigurationError(
                f"{at}: {first_line(error)}{hint}; fix the schema file, or the schema setting "
                f"({source}); each file runs all or nothing, in order"
            ) from None


