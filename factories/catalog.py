"""Pools the factories draw realistic values from: cars, trades, what customers write."""

from __future__ import annotations

import random
from typing import Final

#: Makes sold in Canada, with a few of their models.
VEHICLE_MODELS: Final[dict[str, tuple[str, ...]]] = {
    "Toyota": ("Corolla", "RAV4", "Camry", "Tacoma", "Highlander"),
    "Honda": ("Civic", "CR-V", "Accord", "Pilot"),
    "Ford": ("F-150", "Escape", "Explorer", "Mustang"),
    "Chevrolet": ("Silverado", "Equinox", "Malibu"),
    "Hyundai": ("Elantra", "Tucson", "Kona", "Santa Fe"),
    "Nissan": ("Rogue", "Sentra", "Altima"),
    "Kia": ("Forte", "Sportage", "Soul"),
    "Mazda": ("Mazda3", "CX-5", "CX-30"),
    "Subaru": ("Outback", "Forester", "Crosstrek"),
    "Volkswagen": ("Jetta", "Tiguan", "Golf"),
    "BMW": ("3 Series", "X3", "X5"),
    "Mercedes-Benz": ("C-Class", "GLC", "Sprinter"),
    "Tesla": ("Model 3", "Model Y"),
    "Ram": ("1500", "ProMaster"),
}
MAKES: Final = tuple(VEHICLE_MODELS)

#: Trades a mechanic lists in ``specializations``.
SPECIALIZATIONS: Final = (
    "brakes",
    "engine_diagnostics",
    "electrical",
    "transmission",
    "suspension",
    "hvac",
    "ev_hybrid",
    "oil_change",
    "tires",
    "pre_purchase_inspection",
)

#: Words the app extracts from a customer's description into ``extracted_keywords``.
CONCERN_KEYWORDS: Final = (
    "check engine light",
    "grinding noise",
    "brakes",
    "battery",
    "won't start",
    "overheating",
    "vibration",
    "oil leak",
    "transmission slipping",
    "ac not cooling",
    "warning light",
    "pre-purchase",
)

WORKSHOP_WORDS: Final = (
    "Auto Care", "Auto Service", "Motors", "Garage", "Auto Repair", "Car Clinic"
)

_VIN_LETTERS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_VALUES: Final = {**{str(d): d for d in range(10)}, **dict(zip(
    "ABCDEFGHJKLMNPRSTUVWXYZ",
    (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
    strict=True,
))}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_YEARS: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 → A, ... (30-year cycle)


def vin(rng: random.Random, year: int) -> str:
    """Return a 17-character VIN with a valid check digit (position 9) and model-year code."""
    chars = [rng.choice(_VIN_LETTERS) for _ in range(17)]
    chars[9] = _VIN_YEARS[(year - 2010) % 30]
    total = sum(_VIN_VALUES[c] * w for c, w in zip(chars, _VIN_WEIGHTS, strict=True))
    chars[8] = "X" if total % 11 == 10 else str(total % 11)
    return "".join(chars)


def vin_is_valid(value: str) -> bool:
    """Return whether a VIN's check digit is right."""
    if len(value) != 17 or any(c not in _VIN_LETTERS for c in value):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(value, _VIN_WEIGHTS, strict=True))
    return value[8] == ("X" if total % 11 == 10 else str(total % 11))
