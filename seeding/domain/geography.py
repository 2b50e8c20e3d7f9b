"""Canadian geography: the postal-prefix map, the cities the factories place rows in, and the rules.

The first letter of a postal code fixes the province (Canada Post); a city belongs to one
province; coordinates are GeoNames' city centres. Faker's ``en_CA`` city and postcode are not
consistent with the province, so factories draw places from here instead. A province also
fixes the local time zone its people live by (:data:`TIME_ZONES`): the factories draw a
customer's request times in it, and the report reads them back in it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

#: First letter of a postal code → the provinces it can belong to (X is shared by NU and NT).
POSTAL_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "A": ("NL",),
    "B": ("NS",),
    "C": ("PE",),
    "E": ("NB",),
    "G": ("QC",),
    "H": ("QC",),
    "J": ("QC",),
    "K": ("ON",),
    "L": ("ON",),
    "M": ("ON",),
    "N": ("ON",),
    "P": ("ON",),
    "R": ("MB",),
    "S": ("SK",),
    "T": ("AB",),
    "V": ("BC",),
    "X": ("NU", "NT"),
    "Y": ("YT",),
}

#: Each province's main time zone (IANA), as the app stores it in ``profiles.timezone``.
#: Québec is America/Toronto (America/Montreal is a link to it); New Brunswick is
#: America/Moncton (Atlantic time, as America/Halifax); Saskatchewan keeps no daylight time.
TIME_ZONES: Final[Mapping[str, str]] = MappingProxyType({
    "NL": "America/St_Johns",
    "NS": "America/Halifax",
    "PE": "America/Halifax",
    "NB": "America/Moncton",
    "QC": "America/Toronto",
    "ON": "America/Toronto",
    "MB": "America/Winnipeg",
    "SK": "America/Regina",
    "AB": "America/Edmonton",
    "BC": "America/Vancouver",
    "YT": "America/Whitehorse",
    "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
})

#: The zone of a place whose province is unknown (none, or not a code of
#: :data:`TIME_ZONES`): the marketplace's home, where the audited staging data was made.
DEFAULT_TIME_ZONE: Final = "America/Toronto"

#: Letters that never appear in a Canadian postal code.
EXCLUDED_LETTERS: Final = frozenset("DFIOQU")
#: Letters allowed in the 3rd and 5th positions.
INNER_LETTERS: Final = tuple(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in EXCLUDED_LETTERS)

POSTAL_CODE_PATTERN: Final = re.compile(
    r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$"
)

#: How far (km) from its city's centre a seeded row may lie.
CITY_RADIUS_KM: Final = 15.0


@dataclass(frozen=True)
class City:
    """A city the factories place people and workshops in."""

    name: str
    province: str
    latitude: float
    longitude: float
    #: Postal-code first letters used inside this city (Toronto is M, Montréal H, ...).
    postal_letters: tuple[str, ...]
    #: A rough weight (population, in thousands) for drawing cities.
    weight: int
    #: The city's main telephone area code.
    area_code: int


CITIES: Final = (
    City("Toronto", "ON", 43.706, -79.399, ("M",), 2790, 416),
    City("Montréal", "QC", 45.509, -73.588, ("H",), 1760, 514),
    City("Calgary", "AB", 51.050, -114.085, ("T",), 1310, 403),
    City("Ottawa", "ON", 45.411, -75.698, ("K",), 1020, 613),
    City("Edmonton", "AB", 53.550, -113.469, ("T",), 1010, 780),
    City("Mississauga", "ON", 43.579, -79.658, ("L",), 720, 905),
    City("Winnipeg", "MB", 49.884, -97.147, ("R",), 750, 204),
    City("Vancouver", "BC", 49.250, -123.119, ("V",), 660, 604),
    City("Hamilton", "ON", 43.250, -79.850, ("L",), 570, 905),
    City("Québec", "QC", 46.812, -71.215, ("G",), 550, 418),
    City("Halifax", "NS", 44.643, -63.577, ("B",), 440, 902),
    City("Victoria", "BC", 48.436, -123.352, ("V",), 400, 250),
    City("Saskatoon", "SK", 52.132, -106.669, ("S",), 270, 306),
    City("Regina", "SK", 50.450, -104.618, ("S",), 230, 306),
    City("St. John's", "NL", 47.565, -52.709, ("A",), 110, 709),
    City("Charlottetown", "PE", 46.238, -63.131, ("C",), 40, 902),
    City("Moncton", "NB", 46.116, -64.801, ("E",), 80, 506),
    City("Fredericton", "NB", 45.945, -66.665, ("E",), 60, 506),
    City("Yellowknife", "NT", 62.454, -114.371, ("X",), 20, 867),
    City("Iqaluit", "NU", 63.749, -68.522, ("X",), 8, 867),
    City("Whitehorse", "YT", 60.721, -135.057, ("Y",), 28, 867),
)

CITIES_BY_NAME: Final = {city.name: city for city in CITIES}


def cities_in(province: str) -> tuple[City, ...]:
    """Return the cities of one province.

    Args:
        province: A two-letter code from :data:`seeding.domain.vocabularies.PROVINCES`.

    Raises:
        ValueError: When no city of that province is known.

    """
    found = tuple(city for city in CITIES if city.province == province)
    if not found:
        known = ", ".join(sorted({city.province for city in CITIES}))
        raise ValueError(f"no city known in province {province!r}; expected one of {known}")
    return found


def city_named(name: str) -> City:
    """Return the city of this name.

    Raises:
        ValueError: When the city is not one the factories know.

    """
    try:
        return CITIES_BY_NAME[name]
    except KeyError:
        known = ", ".join(CITIES_BY_NAME)
        raise ValueError(f"unknown city {name!r}; expected one of {known}") from None


def pick_city(rng: random.Random, province: str | None = None) -> City:
    """Draw a city, weighted by population, optionally inside one province."""
    pool = cities_in(province) if province else CITIES
    return rng.choices(pool, weights=[city.weight for city in pool], k=1)[0]


def postal_code(rng: random.Random, city: City) -> str:
    """Draw a postal code of the form ``A1A 1A1`` whose first letter belongs to the city.

    The digit of the first part is 1-9: a 0 there marks a rural area, and these are city
    addresses.
    """
    letter = rng.choice(city.postal_letters)
    return (
        f"{letter}{rng.randint(1, 9)}{rng.choice(INNER_LETTERS)} "
        f"{rng.randint(0, 9)}{rng.choice(INNER_LETTERS)}{rng.randint(0, 9)}"
    )


def near(rng: random.Random, city: City, radius_km: float = CITY_RADIUS_KM) -> tuple[float, float]:
    """Draw coordinates within ``radius_km`` of the city's centre, rounded to 6 places."""
    distance = radius_km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(bearing) / 111.0
    dlon = distance * math.sin(bearing) / (111.0 * math.cos(math.radians(city.latitude)))
    return round(city.latitude + dlat, 6), round(city.longitude + dlon, 6)


def province_of_postal_code(code: str) -> tuple[str, ...]:
    """Return the provinces a postal code can belong to (empty for a malformed code)."""
    if not code or not POSTAL_CODE_PATTERN.match(code.upper()):
        return ()
    return POSTAL_PREFIXES.get(code[0].upper(), ())


def time_zone_of(province: str | None) -> str:
    """Return the IANA time zone of a province code; :data:`DEFAULT_TIME_ZONE` if unknown."""
    return TIME_ZONES.get(province or "", DEFAULT_TIME_ZONE)


def sql_time_zone(province_column: str) -> str:
    """Return a SQL expression: the IANA time zone of a province code, as :func:`time_zone_of`."""
    branches = " ".join(
        f"WHEN {_sql_text(code)} THEN {_sql_text(zone)}" for code, zone in TIME_ZONES.items()
    )
    return f"(CASE {province_column} {branches} ELSE {_sql_text(DEFAULT_TIME_ZONE)} END)"


def _sql_text(value: str) -> str:
    """Return a SQL string literal of ``value`` (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance between two points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def sql_postal_prefix_matches(postal_column: str, province_column: str) -> str:
    """Return a SQL condition: the postal code's first letter belongs to the province."""
    # A simple CASE reads the first letter once (18 ORs read it up to 18 times per row).
    branches = " ".join(
        f"WHEN '{letter}' THEN {province_column} IN ({', '.join(repr(p) for p in provinces)})"
        for letter, provinces in POSTAL_PREFIXES.items()
    )
    return f"(CASE upper(left({postal_column}, 1)) {branches} ELSE false END)"


def sql_city_values() -> str:
    """Return a SQL ``VALUES`` list of (name, province, latitude, longitude) for every city."""
    return ", ".join(
        "('{}', '{}', {}, {})".format(
            c.name.replace("'", "''"), c.province, c.latitude, c.longitude
        )
        for c in CITIES
    )
