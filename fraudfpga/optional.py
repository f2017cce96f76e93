"""Optional figures: a figure the data or the flow cannot give (Card Precision@k without card
ids, a metric undefined on one class, a place-and-route result that does not exist) is None
with a reason, and every place that prints it says "n/a (reason)" instead of a number.

A figure set (the metrics of one model, a quality summary) keeps its reasons under
`NOT_AVAILABLE`: {key: reason}.
"""

from __future__ import annotations

import math

NOT_AVAILABLE = "not_available"


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def na(reason: str | None = None) -> str:
    return f"n/a ({reason})" if reason else "n/a"


def shown(value, spec: str = "", reason: str | None = None) -> str:
    """`value` formatted with `spec`, or "n/a (reason)" when it is absent."""
    return na(reason) if missing(value) else format(value, spec)


def reason(figures: dict, key: str) -> str | None:
    """Why `figures[key]` is absent, as the producer recorded it."""
    return (figures.get(NOT_AVAILABLE) or {}).get(key)


def figure(figures: dict, key: str, spec: str = "") -> str:
    """One figure of a figure set, formatted, or "n/a" with the set's reason for it."""
    return shown(figures.get(key), spec, reason(figures, key) or "not available")
