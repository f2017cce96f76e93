"""A sweep file (SWEEP.yaml): the search space over configuration keys, the strategy and the
objectives. Everything is checked before any trial starts; a problem names the key.

    name: default                 # the sweep's folder: fpga_projects/sweep-<name>/
    base_run: default             # optional: the run whose configuration every trial starts from
    settings: {train.epochs: 60}  # configuration keys set for every trial
    space:                        # configuration key -> the values to try
      model.hidden: [[32, 16], [16], [8]]
      model.weight_bits: [4, 6, 8]
      train.prune_sparsity: [0.0, 0.5]
    strategy: optuna              # grid | random | optuna (multi-objective TPE)
    trials: 24                    # random and optuna (grid: every combination)
    seeds: 1                      # training seeds whose validation AP is averaged per trial
    front_seeds: 3                # training seeds of the front designs' test-set AP
    seed: 0                       # the sampler's seed
    place_and_route: true         # the front's designs placed and routed (false: cocotb only)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fraudfpga.config import apply, default_config, merge, read_yaml
from fraudfpga.schema import RUN_NAME, ConfigError, leaf_keys, lookup, validate

STRATEGIES = ("grid", "random", "optuna")
SPEC_KEYS = {"name", "base_run", "settings", "space", "strategy", "trials", "seeds", "front_seeds",
             "seed", "place_and_route"}
# The sweep sets these itself (every trial builds the `valid` top, trains no tree references).
FIXED_PREFIXES = ("run", "references.", "rtl.interface")
# Every trial shares one data step (and one training seed), so these are not searched.
UNSEARCHABLE_PREFIXES = ("data.", "split.", "seed")
# Every trial builds the `valid` top (the core whose cost is searched) and no tree references.
TRIAL_SETTINGS = {"references": {"models": []}, "rtl": {"interface": "valid"}}
MAX_GRID = 10_000


@dataclass
class SweepSpec:
    name: str
    space: dict[str, list]
    strategy: str = "optuna"
    trials: int = 24
    seeds: int = 1
    front_seeds: int = 3
    seed: int = 0
    base_run: str | None = None
    settings: dict = field(default_factory=dict)
    place_and_route: bool = True
    source: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict() | {"source": ""}, sort_keys=True,
                                         default=str).encode()).hexdigest()[:12]

    @property
    def keys(self) -> list[str]:
        return list(self.space)

    def grid(self) -> list[dict]:
        return [dict(zip(self.keys, values)) for values in itertools.product(*self.space.values())]

    def size(self) -> int:
        return math.prod(len(v) for v in self.space.values())


def nested(dotted: dict) -> dict:
    """{'model.hidden': [8]} -> {'model': {'hidden': [8]}}"""
    out: dict = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def starting_config(spec: SweepSpec, projects_dir: Path) -> dict:
    """The defaults, or the base run's configuration."""
    config = default_config()
    if spec.base_run:
        saved = projects_dir / spec.base_run / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"{spec.source}: base_run: {spec.base_run!r} has no configuration "
                              f"({saved}); run `make all RUN={spec.base_run}` first or drop "
                              "base_run")
        merge(config, read_yaml(saved, "run configuration") or {}, str(saved))
    return config


def base_config(spec: SweepSpec, projects_dir: Path) -> dict:
    """The configuration every trial starts from: the starting configuration with the sweep's
    settings and the trial settings (valid top, no tree references)."""
    return apply(starting_config(spec, projects_dir),
                 [(f"{spec.source}: settings", nested(spec.settings)),
                  ("the sweep's trial settings", TRIAL_SETTINGS)])


def trial_config(base: dict, settings: dict, name: str) -> dict:
    config = apply(base, [("the trial's settings", nested(settings))])
    config["run"] = name
    return config


def trial_id(settings: dict) -> str:
    """A trial's folder name: the same settings always map to the same trial."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return "t" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _check_key(key: str, where: str, known: set[str], searched: bool) -> None:
    if key not in known:
        raise ConfigError(f"{where}: unknown configuration key {key!r}")
    if any(key.startswith(p) for p in FIXED_PREFIXES):
        raise ConfigError(f"{where}: {key!r} is set by the sweep itself: every trial builds the "
                          "`valid` top and trains no tree references")
    if searched and any(key.startswith(p) for p in UNSEARCHABLE_PREFIXES):
        raise ConfigError(f"{where}: {key!r} cannot be searched: every trial shares one data "
                          "step and training seed (set it under `settings`)")


def _check_combination(base: dict, settings: dict, where: str) -> None:
    try:
        validate(trial_config(base, settings, "trial"))
    except ConfigError as error:
        raise ConfigError(f"{where}: {settings}: {error}") from None


def load_spec(path: Path, projects_dir: Path) -> tuple[SweepSpec, dict]:
    """The sweep file, checked; and the base configuration of its trials."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep file not found")
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (name, space, strategy, ...)")
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key {unknown[0]!r}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    for key in ("name", "space"):
        if key not in raw:
            raise ConfigError(f"{path}: {key}: missing")
    name = str(raw["name"])
    if not RUN_NAME.fullmatch(name):
        raise ConfigError(f"{path}: name: {name!r} must be letters, digits, '.', '_' or '-'")
    strategy = raw.get("strategy", "optuna")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{path}: strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    for key, low in (("trials", 1), ("seeds", 1), ("front_seeds", 1), ("seed", 0)):
        value = raw.get(key, 0 if key == "seed" else 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{path}: {key}: {value!r} must be an integer >= {low}")
    space, settings = raw["space"], raw.get("settings") or {}
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: space: expected a mapping of configuration keys to lists of values")
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: settings: expected a mapping of configuration keys to values")
    known = set(leaf_keys())
    for key in settings:
        _check_key(key, f"{path}: settings", known, searched=False)
    for key, values in space.items():
        _check_key(key, f"{path}: space", known, searched=True)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: space: {key}: expected a non-empty list of values")
    place_and_route = raw.get("place_and_route", True)
    if not isinstance(place_and_route, bool):
        raise ConfigError(f"{path}: place_and_route: {place_and_route!r} must be true or false")
    spec = SweepSpec(name=name, space=space, strategy=strategy, trials=raw.get("trials", 24),
                     place_and_route=place_and_route,
                     seeds=raw.get("seeds", 1), front_seeds=raw.get("front_seeds", 3),
                     seed=raw.get("seed", 0), base_run=raw.get("base_run"),
                     settings=settings, source=str(path))
    base = base_config(spec, projects_dir)
    validate(base)
    for key, values in space.items():  # each value alone: its type and range
        for value in values:
            _check_combination(base, {key: value}, f"{path}: space: {key}")
    if spec.strategy == "grid" and spec.size() > MAX_GRID:
        raise ConfigError(f"{path}: strategy grid: {spec.size():,} combinations (at most "
                          f"{MAX_GRID:,}); use random or optuna with `trials`")
    combos = spec.grid() if spec.size() <= MAX_GRID else []
    for combo in combos:  # keys that depend on each other (input_integer <= input_bits - 1)
        _check_combination(base, combo, f"{path}: space")
    return spec, base


def lookup_all(config: dict, keys: list[str]) -> dict:
    return {key: lookup(config, key) for key in keys}
