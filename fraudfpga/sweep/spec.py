"""A sweep file (SWEEP.yaml): the search space over configuration keys, the strategy and the
objectives. Everything is checked before any trial starts; a problem names the key.

    name: default                 # the sweep's folder: fpga_projects/sweep-<name>/
    base_run: default             # optional: the run whose configuration every trial starts from
    settings: {train.epochs: 60}  # configuration keys set for every trial
    space:                        # configuration key -> the values to try
      family: [network, forest]   # optional: the firmware families searched (default: network)
      model.hidden: [[32, 16], [16], [8]]
      model.weight_bits: [4, 6, 8]
      train.prune_sparsity: [0.0, 0.5]
      forest.max_depth: [8, 12]
    strategy: optuna              # grid | random | optuna (multi-objective TPE)
    trials: 24                    # random and optuna (grid: every combination)
    seeds: 1                      # training seeds whose validation AP is averaged per trial
    front_seeds: 3                # training seeds of the front designs' test-set AP
    seed: 0                       # the sampler's seed
    place_and_route: true         # the front's designs placed and routed (false: cocotb only)

A family's trials keep only the searched keys its steps read (`model.*` for the network,
`forest.*` for the forest; `fpga.*` for both), so one front holds both families' designs.
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
FAMILY = "family"  # the space's firmware family: not a configuration key, it picks the steps
DEFAULT_FAMILY = "network"
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

    @property
    def families(self) -> list[str]:
        return list(self.space.get(FAMILY, [DEFAULT_FAMILY]))

    def design(self, settings: dict) -> dict:
        """A trial's design: its family and the searched keys that family reads."""
        from .families import FAMILIES

        family = FAMILIES[settings.get(FAMILY, DEFAULT_FAMILY)]
        return {key: value for key, value in settings.items()
                if key == FAMILY or family.reads_key(key)}

    def base_design(self, base: dict, family: str) -> dict:
        """The base configuration's design of one family (the sweep's reference for it)."""
        values = {key: lookup(base, key) for key in self.keys if key != FAMILY}
        return self.design(values | ({FAMILY: family} if FAMILY in self.space else {}))

    def grid(self) -> list[dict]:
        return [dict(zip(self.keys, values)) for values in itertools.product(*self.space.values())]

    def designs(self) -> list[dict]:
        """The grid's distinct designs, in grid order (a grid strategy runs each once)."""
        distinct: dict[str, dict] = {}
        for combo in self.grid():
            design = self.design(combo)
            distinct.setdefault(trial_id(design), design)
        return list(distinct.values())

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


def family_of(settings: dict) -> str:
    return settings.get(FAMILY, DEFAULT_FAMILY)


def trial_config(base: dict, settings: dict, name: str) -> dict:
    """A trial's configuration: the base with the trial's configuration keys (the family picks
    the steps, it is not one)."""
    keys = {key: value for key, value in settings.items() if key != FAMILY}
    config = apply(base, [("the trial's settings", nested(keys))])
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
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: space: {key}: expected a non-empty list of values")
        if key != FAMILY:
            _check_key(key, f"{path}: space", known, searched=True)
    _check_families(space, f"{path}: space")
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
        for value in values if key != FAMILY else ():
            _check_combination(base, {key: value}, f"{path}: space: {key}")
    if spec.strategy == "grid" and spec.size() > MAX_GRID:
        raise ConfigError(f"{path}: strategy grid: {spec.size():,} combinations (at most "
                          f"{MAX_GRID:,}); use random or optuna with `trials`")
    combos = spec.grid() if spec.size() <= MAX_GRID else []
    for combo in combos:  # keys that depend on each other (input_integer <= input_bits - 1)
        _check_combination(base, combo, f"{path}: space")
    return spec, base


def _check_families(space: dict, where: str) -> None:
    """The family values are known families, and every searched key is read by one of them."""
    from .families import FAMILIES

    families = space.get(FAMILY, [DEFAULT_FAMILY])
    for name in families:
        if name not in FAMILIES:
            raise ConfigError(f"{where}: {FAMILY}: {name!r} is not a firmware family; available: "
                              f"{', '.join(FAMILIES)}")
    for key in space:
        if key != FAMILY and not any(FAMILIES[name].reads_key(key) for name in families):
            raise ConfigError(f"{where}: {key!r} is read by no searched family's steps "
                              f"({', '.join(families)}): searching it would change nothing")
