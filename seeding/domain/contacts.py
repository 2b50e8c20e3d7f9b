"""Contact details that never reach a real person: reserved email domains, fictional phones.

RFC 2606 and RFC 6761 reserve example.com/.net/.org and the .test, .example, .invalid and
.localhost top-level domains; the North American numbering plan keeps 555-0100 to 555-0199
for fiction. A staging app that mails or texts a seeded user reaches nobody.
"""

from __future__ import annotations

import random
import re
from typing import Final

#: The domain generated emails use.
EMAIL_DOMAIN: Final = "example.com"
#: Second-level domains reserved for documentation (and all their subdomains).
RESERVED_DOMAINS: Final = ("example.com", "example.net", "example.org")
#: Top-level domains reserved for testing.
RESERVED_TLDS: Final = ("test", "example", "invalid", "localhost")


def is_reserved_email(email: str) -> bool:
    """Return whether the email's domain is reserved, so no mail can reach a person."""
    domain = email.rpartition("@")[2].lower().rstrip(".")
    if not domain:
        return False
    if domain.rsplit(".", 1)[-1] in RESERVED_TLDS:
        return True
    return any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def sql_email_domain(column: str) -> str:
    """Return SQL for an email's domain as :func:`is_reserved_email` reads it.

    What follows the last ``@`` (the whole text when there is none), lower case, without
    trailing dots.
    """
    return f"lower(rtrim(reverse(split_part(reverse({column}), '@', 1)), '.'))"


def sql_reserved_domain(domain: str) -> str:
    """Return a SQL condition: the domain (see :func:`sql_email_domain`) is reserved.

    The same rule as :func:`is_reserved_email`, with ``LIKE`` rather than a regular
    expression (a tenth of the cost on a hundred thousand rows).
    """
    suffixes = " OR ".join(
        f"{domain} = '{name}' OR {domain} LIKE '%.{name}'"
        for name in RESERVED_TLDS + RESERVED_DOMAINS
    )
    return f"({domain} <> '' AND ({suffixes}))"


def email_address(*words: str, unique: str) -> str:
    """Return ``word.word.unique@example.com`` with the words reduced to ASCII letters.

    Args:
        words: Name parts, e.g. first and last name.
        unique: A suffix that makes the address unique (e.g. part of the row's uuid).

    """
    local = ".".join(filter(None, (slug(word, ".") for word in words)))
    return f"{local}.{unique}@{EMAIL_DOMAIN}" if local else f"{unique}@{EMAIL_DOMAIN}"


def fictional_phone(rng: random.Random, area_code: int) -> str:
    """Return a number in the 555-01XX range kept for fiction, e.g. ``+1-416-555-0142``."""
    return f"+1-{area_code}-555-01{rng.randint(0, 99):02d}"


_ACCENTS: Final = str.maketrans(
    "àâäéèêëîïôöùûüçÀÂÄÉÈÊËÎÏÔÖÙÛÜÇ'", "aaaeeeeiioouuucAAAEEEEIIOOUUUC "
)


def slug(text: str, separator: str = "-") -> str:
    """Return ``text`` lower-cased, accents dropped, non-alphanumerics joined by ``separator``."""
    ascii_text = text.translate(_ACCENTS).lower()
    return separator.join(re.findall(r"[a-z0-9]+", ascii_text))
