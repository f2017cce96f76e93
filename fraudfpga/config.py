"""Configuration: the shipped defaults, a user YAML merged over them, `--set` overrides."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


def default_config() -> dict[str, Any]:
    text = resources.files("fraudfpga").joinpath("default_config.yaml").read_text()
    return yaml.safe_load(text)


def _merge(base: dict, update: dict, origin: str, prefix: str = "") -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{origin}: unknown configuration key '{dotted}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{dotted}' must be a mapping, got {value!r}")
            _merge(base[key], value, origin, dotted + ".")
        else:
            base[key] = value


def apply_override(config: dict, assignment: str) -> None:
    """Apply one `section.key=value` override; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}': expected section.key=value")
    dotted, raw = assignment.split("=", 1)
    update: Any = yaml.safe_load(raw) if raw.strip() else None
    for part in reversed(dotted.strip().split(".")):
        update = {part: update}
    _merge(config, update, f"--set {assignment}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    config = default_config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        user = yaml.safe_load(path.read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        _merge(config, user, str(path))
    for assignment in overrides or []:
        apply_override(config, assignment)
    return config


def section(config: dict, *names: str) -> dict:
    """A deep copy of the named top-level sections (what a step's cache key depends on)."""
    return {name: copy.deepcopy(config[name]) for name in names}
