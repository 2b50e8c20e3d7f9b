"""Which values a CHECK admits in a column, read from its definition's text.

The live catalog (:mod:`seeding.db.catalog`) gives each CHECK as ``pg_get_constraintdef``
writes it; :func:`allowed_values` reads off it the closed list of a column's values when the
CHECK is one (``col IN (...)`` and what PostgreSQL makes of it), so that a run, doctor and the
report know the vocabulary the live database allows. Anything else (a comparison, a function,
a negation) is not a list, and says so (None): never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# One token of pg_get_constraintdef's text; anything else (<, ~, +, ...) makes it unparseable.
_TOKEN: Final = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<number>-?\d+(?:\.\d+)?(?![\w$]))
      | (?P<punct>::|[()\[\],=.])
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    )""",
    re.VERBOSE,
)
_SUFFIX: Final = re.compile(r"\s+(?:NOT\s+VALID|NO\s+INHERIT|NOT\s+ENFORCED)\s*$", re.IGNORECASE)
# Words that are never a column name when unquoted (PostgreSQL quotes such a name).
_KEYWORDS: Final = frozenset(
    {"and", "any", "array", "check", "in", "is", "not", "null", "or", "all", "some"}
)
# Words that continue a type name after its first (character varying, double precision...).
_TYPE_WORDS: Final = frozenset({"varying", "precision", "with", "without", "time", "zone"})


class _Unparseable(Exception):
    """The CHECK is not a list of a column's values."""


@dataclass
class _Parser:
    """A small recursive-descent reader of ``col = ANY (ARRAY[...])`` and its kin."""

    tokens: list[tuple[str, str]]
    position: int = 0

    def peek(self) -> tuple[str, str]:
        if self.position < len(self.tokens):
            return self.tokens[self.position]
        return ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise _Unparseable
        self.position += 1
        return token

    def at(self, text: str) -> bool:
        kind, value = self.peek()
        if kind == "word":
            return value.lower() == text
        return kind == "punct" and value == text

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise _Unparseable
        self.position += 1

    def disjunction(self) -> list[tuple[str, tuple[str, ...] | None]]:
        """Read ``a OR b OR ...``; each term is (column, values), values None for IS NULL."""
        terms = self.disjunct()
        while self.at("or"):
            self.position += 1
            terms += self.disjunct()
        return terms

    def disjunct(self) -> list[tuple[str, tuple[str, ...] | None]]:
        if self.at("("):
            start = self.position
            try:
                self.position += 1
                terms = self.disjunction()
                self.expect(")")
                return terms
            except _Unparseable:
                self.position = start
        return [self.term()]

    def term(self) -> tuple[str, tuple[str, ...] | None]:
        column = self.column()
        if self.at("is"):
            self.position += 1
            self.expect("null")
            return (column, None)
        if self.at("in"):
            self.position += 1
            self.expect("(")
            values = self.literals(")")
            return (column, values)
        self.expect("=")
        if self.at("any"):
            self.position += 1
            self.expect("(")
            values = self.array()
            self.expect(")")
            return (column, values)
        return (column, (self.literal(),))

    def column(self) -> str:
        if self.at("("):
            self.position += 1
            name = self.column()
            self.expect(")")
        else:
            kind, value = self.take()
            if kind == "quoted":
                name = value[1:-1].replace('""', '"')
            elif kind == "word" and value.lower() not in _KEYWORDS:
                name = value
            else:
                raise _Unparseable
        self.casts()
        return name

    def array(self) -> tuple[str, ...]:
        if self.at("("):
            self.position += 1
            values = self.array()
            self.expect(")")
        else:
            self.expect("array")
            self.expect("[")
            values = self.literals("]")
        self.casts()
        return values

    def literals(self, closing: str) -> tuple[str, ...]:
        values = [self.literal()]
        while self.at(","):
            self.position += 1
            values.append(self.literal())
        self.expect(closing)
        return tuple(values)

    def literal(self) -> str:
        if self.at("("):
            self.position += 1
            value = self.literal()
            self.expect(")")
        else:
            kind, text = self.take()
            if kind == "string":
                value = text[1:-1].replace("''", "'")
            elif kind == "number":
                value = text
            else:
                raise _Unparseable
        self.casts()
        return value

    def casts(self) -> None:
        while self.at("::"):
            self.position += 1
            self.type_name()

    def type_name(self) -> None:
        kind, _ = self.take()
        if kind not in ("word", "quoted"):
            raise _Unparseable
        if self.at("."):
            self.position += 1
            kind, _ = self.take()
            if kind not in ("word", "quoted"):
                raise _Unparseable
        while self.peek()[0] == "word" and self.peek()[1].lower() in _TYPE_WORDS:
            self.position += 1
        if self.at("("):
            self.position += 1
            while not self.at(")"):
                if self.take()[0] not in ("number", "punct"):
                    raise _Unparseable
            self.position += 1
        while self.at("["):
            self.position += 1
            self.expect("]")


def _tokens(text: str) -> list[tuple[str, str]]:
    """Split SQL text into tokens; raise _Unparseable on anything else."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return tokens
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise _Unparseable
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()


def allowed_values(definition: str, column: str) -> tuple[str, ...] | None:
    """Return the values a CHECK admits in ``column`` when it is a list of literals, else None.

    Reads what ``pg_get_constraintdef`` makes of a list: ``CHECK ((col = ANY
    (ARRAY['a'::text, 'b'::text])))`` (from ``IN (...)``), ``((col)::text = ANY ((ARRAY[...
    ])::text[]))`` (a ``character varying`` column), ``(col = 'a'::text)``, a disjunction of
    these, an ``IS NULL`` alternative, and ``col IN (...)``. Every term must be about
    ``column``; a CHECK that negates, compares, calls a function or joins with ``AND`` is
    not a list. The values come in order, each once (numbers as written).

    Args:
        definition: The CHECK as ``pg_get_constraintdef`` returns it (``NOT VALID`` and the
            like allowed at its end), or only its expression.
        column: The column's exact name.

    """
    text = definition
    while (suffix := _SUFFIX.search(text)) is not None:
        text = text[: suffix.start()]
    try:
        parser = _Parser(_tokens(text))
        if parser.at("check"):
            parser.position += 1
        terms = parser.disjunction()
        if parser.peek()[0] != "end":
            return None
    except _Unparseable:
        return None
    values: dict[str, None] = {}
    for name, listed in terms:
        if name != column:
            return None
        for value in listed or ():
            values[value] = None
    return tuple(values)
