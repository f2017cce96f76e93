"""Tree references: each family is one module registering a `Reference`.

A reference declares its Optuna search space and how to fit and score it. `tune` searches on the
validation window (fitted on the training days before it, scored by validation Average
Precision; XGBoost also stops early on it), never on a random split. The settings found are then
refitted on the whole training period by `fit_final`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

REFERENCES: dict[str, "Reference"] = {}


@dataclass(frozen=True)
class Reference:
    name: str
    label: str  # how the report names it
    # (trial, settings, fraud_ratio) -> parameters to try
    suggest: Callable[[Any, dict, float], dict]
    # (parameters, x, y, seed, settings, validation (x, y) or None) -> (model, parameters as
    # fitted; with a validation window they include the early-stopped round count)
    fit: Callable[..., tuple[Any, dict]]
    score: Callable[[Any, np.ndarray], np.ndarray]
    # parameters the search may leave out of the final fit (the search's own speed-ups)
    final: Callable[[dict, dict], dict] = lambda params, settings: params
    # the unit of the steps at which fit calls `prune(step, validation AP)` as the model grows
    # (search pruning, e.g. "trees"); empty: fit takes no `prune`
    prune_unit: str = ""


def register(reference: Reference) -> Reference:
    REFERENCES[reference.name] = reference
    return reference


def reference(name: str) -> Reference:
    from . import random_forest, xgboost  # noqa: F401  (the families register themselves)

    if name not in REFERENCES:
        raise KeyError(f"unknown tree reference {name!r}; known: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[name]


def known_references() -> list[str]:
    from . import random_forest, xgboost  # noqa: F401

    return sorted(REFERENCES)
