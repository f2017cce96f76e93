"""Configuration: the schema's defaults, a user YAML merged over them, `--set` overrides, and
the configuration a run folder keeps (`config.yaml`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .schema import ConfigError, defaults, lookup, validate

__all__ = ["ConfigError", "default_config", "load_config", "read_yaml", "requested_settings",
           "merge", "changed_keys", "lookup"]


def default_config() -> dict[str, Any]:
    return defaults()


def read_yaml(path: Path, what: str = "configuration file") -> Any:
    """Parse a YAML file safely; any problem is one line naming the file (and line)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a {what}")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the {what}: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        raise ConfigError(f"{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(error).split())}") from None


def merge(base: dict, update: dict, origin: str, prefix: str = "") -> None:
    """Merge `update` into `base` in place; keys must exist in `base` (the schema)."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{origin}: unknown configuration key '{dotted}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{dotted}' must be a mapping, got {value!r}")
            merge(base[key], value, origin, dotted + ".")
        else:
            base[key] = copy.deepcopy(value)


def _override(assignment: str) -> dict:
    """`section.key=value` -> {'section': {'key': value}}; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}': expected section.key=value")
    dotted, raw = assignment.split("=", 1)
    try:
        update: Any = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        update = raw  # not YAML: keep the text, the schema check names the key
    for part in reversed(dotted.strip().split(".")):
        update = {part: update}
    return update


def requested_settings(path: str | Path | None = None,
                       overrides: list[str] | None = None) -> list[tuple[str, dict]]:
    """What the user asked for explicitly, in order: (origin, partial configuration)."""
    requested = []
    if path is not None:
        user = read_yaml(Path(path)) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        requested.append((str(path), user))
    for assignment in overrides or []:
        requested.append((f"--set {assignment}", _override(assignment)))
    return requested


def apply(config: dict, requested: list[tuple[str, dict]]) -> dict:
    config = copy.deepcopy(config)
    for origin, update in requested:
        merge(config, update, origin)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Defaults, then the YAML file, then the overrides; validated."""
    return validate(apply(default_config(), requested_settings(path, overrides)))


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configurations of the same schema."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys
