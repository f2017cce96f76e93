"""What every report section uses: reading the run's files and drawing figures."""

from __future__ import annotations

import json

from fraudfpga.runfolder import RunFolder


def load(run: RunFolder, name: str) -> dict:
    return json.loads(run.path(name).read_text())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def fmt(value, digits=4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def load_text(value) -> str:
    """An offered load for tables: transactions per second, or none."""
    return "none" if value is None else f"{value:,.0f} tx/s"
