"""How the Supabase CLI's seed runner reads and runs a seed file, for tests.

``supabase db reset`` replays the migrations, then runs each file of ``[db.seed] sql_paths``
(globs sorted by name). For each file the CLI (github.com/supabase/cli, ``pkg/parser`` and
``pkg/migration/file.go``, ``SeedFile.ExecBatchWithCache``):

- splits the text into statements with a small state machine (:func:`split`, ported here
  state by state): a ``;`` ends a statement unless it is inside a quote (``'...'`` or
  ``"..."``, a doubled quote staying inside), a dollar quote, a ``--`` or ``/* */`` comment,
  parentheses, or ``BEGIN ATOMIC ... END``; a backslash outside them skips the next character.
  Each statement is trimmed of its ``;`` and of white space; an empty one is dropped;
- queues every statement in one pgx batch, each sent on its own through the extended query
  protocol (so one statement may hold only one command, and ``COPY ... FROM stdin`` has no
  data to read: it fails), and runs the batch in one implicit transaction.

:func:`load` does the same with psycopg: each statement prepared on its own
(``prepare=True``: the extended protocol, one command), all in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import psycopg

_ATOMIC = "ATOMIC"
_END = "END"


class _State(ABC):
    @abstractmethod
    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        """Return the state after ``char`` (``text[start:end]`` so far); None ends a statement."""


class _Ready(_State):
    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        if char == "$":
            return _Tag(end - 1)
        if char in ("'", '"'):
            return _Quote(char)
        if char == "-":
            return _Comment()
        if char == "/":
            return _Block()
        if char == "\\":
            return _Escape()
        if char == ";":
            return None
        if char == "(":
            return _Atomic(self, ")")
        if char in ("c", "C"):
            offset = end - len(_ATOMIC)
            if (offset > start and text[offset:end].upper() == _ATOMIC
                    and text[offset - 1].isspace()):
                return _Atomic(self, _END)
        return self


class _Comment(_State):
    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        if char == "-":
            return _Dollar("\n")
        return _Ready().next(char, text, start, end)


@dataclass
class _Block(_State):
    depth: int = 0

    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        window = text[max(start, end - 2):end]
        if window == "/*":
            self.depth += 1
            return self
        if self.depth == 0:
            return _Ready().next(char, text, start, end)
        if window == "*/":
            self.depth -= 1
            if self.depth == 0:
                return _Ready()
        return self


@dataclass
class _Quote(_State):
    delimiter: str
    escape: bool = False

    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        if self.escape:
            if char == self.delimiter:
                self.escape = False
                return self
            return _Ready().next(char, text, start, end)
        if char == self.delimiter:
            self.escape = True
        return self


@dataclass
class _Dollar(_State):
    delimiter: str

    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        if text[max(start, end - len(self.delimiter)):end] == self.delimiter:
            return _Ready()
        return self


@dataclass
class _Tag(_State):
    offset: int

    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        if char == "$":
            return _Dollar(text[self.offset:end])
        if char.isalpha() or char.isdigit() or char == "_":
            return self
        return _Ready().next(char, text, start, end)


class _Escape(_State):
    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        return _Ready()


@dataclass
class _Atomic(_State):
    prev: _State
    delimiter: str = field(default=")")

    def next(self, char: str, text: str, start: int, end: int) -> _State | None:
        current = self.prev.next(char, text, start, end)
        if current is not None:
            self.prev = current
        if isinstance(self.prev, _Ready):
            window = text[max(start, end - len(self.delimiter)):end]
            if window.upper() == self.delimiter.upper():
                return _Ready()
        return self


def split(text: str) -> list[str]:
    """Return the statements the Supabase CLI reads in a seed file (``SplitAndTrim``)."""
    tokens: list[str] = []
    state: _State = _Ready()
    start = 0
    for index, char in enumerate(text):
        following = state.next(char, text, start, index + 1)
        if following is None:
            tokens.append(text[start:index + 1])
            start = index + 1
            following = _Ready()
        state = following
    if start < len(text):
        tokens.append(text[start:])
    statements = []
    for token in tokens:
        trimmed = token.rstrip(";").strip()
        if trimmed:
            statements.append(trimmed)
    return statements


def load(url: str, text: str) -> int:
    """Run a seed file as the Supabase CLI does: one batch of statements, one transaction.

    Returns how many statements ran. A failed statement rolls every one back and raises.
    """
    statements = split(text)
    with psycopg.connect(url) as connection:  # commits on leaving, rolls back on error
        for statement in statements:
            connection.execute(statement.encode(), prepare=True)
    return len(statements)
