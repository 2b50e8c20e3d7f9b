"""Exact quotas from counts or percentages: the largest-remainder method, deterministic."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: The most rows a mix may resolve to: beyond it, float arithmetic is no longer exact.
MAX_TOTAL = 2**53


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into whole quotas proportional to ``weights``, summing exactly to it.

    Each share gets the floor of its exact quota; the units left go to the largest remainders,
    ties to the earlier share. 84% of 43 is exactly 36.

    Args:
        total: The whole to split (>= 0).
        weights: Non-negative weights, not all zero.

    """
    weight_sum = float(sum(weights))
    if total < 0 or weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("quotas need a non-negative total and non-negative weights, not all zero")
    exact = [total * w / weight_sum for w in weights]
    quotas = [math.floor(x + 1e-9) for x in exact]
    left = total - sum(quotas)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[:left]:
        quotas[i] += 1
    return quotas


def parse_share(value: int | str) -> tuple[str, float]:
    """Return ('count', n) for an integer, ('percent', p) for a string like '84%'.

    Raises:
        ValueError: For anything else, a negative number included.

    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count or a percentage")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"count {value} is negative")
        if value > MAX_TOTAL:
            digits = str(value)
            shown = digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits)} digits)"
            raise ValueError(f"count {shown} is more rows than a run can build")
        return "count", float(value)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            number = float(text[:-1])
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage like '84%'") from None
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a percentage like '84%'")
        if number < 0:
            raise ValueError(f"percentage {value!r} is negative")
        return "percent", number
    raise ValueError(f"{value!r} is not a count (an integer) or a percentage like '84%'")


def resolve_mix(
    shares: Mapping[str, int | str], count: int | None, scale: float = 1.0
) -> tuple[int, dict[str, int]]:
    """Resolve a mix to exact quotas.

    Args:
        shares: value → count or percentage; all counts or all percentages.
        count: The step's row count (before scaling); None when the counts give it.
        scale: The run's multiplier; counts are scaled and the quotas kept.

    Returns:
        The (scaled) row count and the quota of each value.

    Raises:
        ValueError: When the shares mix counts and percentages, percentages do not add to 100,
            counts do not add to the step's count, or nothing is left to split.

    """
    parsed = {key: parse_share(value) for key, value in shares.items()}
    kinds = {kind for kind, _ in parsed.values()}
    if len(kinds) > 1:
        raise ValueError("mixes counts and percentages; use one or the other")
    values = [number for _, number in parsed.values()]
    if kinds == {"percent"}:
        if abs(sum(values) - 100) > 1e-6:
            raise ValueError(f"percentages add up to {sum(values):g}%, not 100%")
        if count is None:
            raise ValueError("percentages need the step's `count`")
        base = count
    else:
        base = int(sum(values))
        if count is not None and base != count:
            raise ValueError(f"counts add up to {base}, but the step's count is {count}")
    try:
        scaled = base * scale
    except OverflowError:
        scaled = math.inf
    if not scaled <= MAX_TOTAL:
        raise ValueError("resolves to more rows than a run can build; lower the counts or --scale")
    total = round(scaled)
    if total == 0:
        return 0, {key: 0 for key in shares}
    return total, dict(zip(shares, largest_remainder(total, values), strict=True))
