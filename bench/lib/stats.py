"""Percentiles, medians and table cells."""

from __future__ import annotations

import statistics


def pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def rounded_pct(values: list[float], q: float, digits: int = 2) -> float | None:
    value = pct(values, q)
    return None if value is None else round(value, digits)


def median(values):
    """The median of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def kb(v):
    return None if v is None else v / 1000


def fmt(v, spec="{:.1f}"):
    """A table cell: ``v`` formatted, or empty for None."""
    return "" if v is None else spec.format(v)
