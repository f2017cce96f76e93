"""Errors a user can land on. Each is reported as one message and exit status 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path


class FlowError(Exception):
    """An error the user can act on; the message says what and where."""


class ToolMissing(FlowError):
    """A required external tool is not installed; the message says how to install it."""


class ToolFailed(FlowError):
    """An external tool failed; the message holds the cause line from its log."""


class PrerequisiteError(FlowError):
    """A step's input is missing or stale; the message names the step to run first."""


_CAUSE = re.compile(r"(%Error|error|fatal|ERROR|cannot|failed)", re.IGNORECASE)


def cause_line(log: str | Path) -> str:
    """The first line of a tool's log that says what went wrong (else its last line)."""
    text = Path(log).read_text(errors="replace") if isinstance(log, Path) else str(log)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if _CAUSE.search(line)), lines[-1] if lines else "(empty log)")
