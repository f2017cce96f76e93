"""The Pareto front of a table of designs."""

from __future__ import annotations

# objective -> direction; a design is kept unless another is no worse on all and better on one.
OBJECTIVES = {"ap": "max", "lut_ff": "min", "cycles": "min"}


def _better_or_equal(a: dict, b: dict, objectives: dict) -> tuple[bool, bool]:
    no_worse, better = True, False
    for key, direction in objectives.items():
        x, y = (a[key], b[key]) if direction == "max" else (-a[key], -b[key])
        no_worse &= x >= y
        better |= x > y
    return no_worse, better


def dominates(a: dict, b: dict, objectives: dict = OBJECTIVES) -> bool:
    no_worse, better = _better_or_equal(a, b, objectives)
    return no_worse and better


def front(rows: list[dict], objectives: dict = OBJECTIVES) -> list[dict]:
    """The rows no other row dominates (identical rows are all kept), in the input order."""
    return [r for r in rows if not any(dominates(o, r, objectives) for o in rows if o is not r)]
