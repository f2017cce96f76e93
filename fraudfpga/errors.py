"""Errors shared by the steps."""


class ToolMissing(RuntimeError):
    """A required external tool is not installed; the message says how to install it."""
