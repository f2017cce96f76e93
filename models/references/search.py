"""Tune a reference on the validation window (Optuna, TPE), then refit it.

On large data a search trial fits on a sample of the training rows (`references.search_rows`):
every fraud and a random share of the genuine rows, each kept genuine row weighted by the
inverse of that share, so the class balance a tree sees is the full period's. The validation
window is never sampled. The final fit uses every row of the whole training period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score

from fraudfpga.progress import Stopwatch, duration

from . import Reference


@dataclass(frozen=True)
class SearchRows:
    """The rows a search trial fits on; `weight` is None when every row is kept."""
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    genuine_share: float

    def describe(self, total: int) -> str:
        if self.weight is None:
            return f"{total:,} rows"
        return (f"{len(self.y):,} of {total:,} rows (every fraud, {self.genuine_share:.1%} of the "
                "genuine rows, weighted by the inverse share)")


def genuine_share(y: np.ndarray, max_rows: int) -> float:
    """The share of the genuine rows a search trial keeps so that every fraud and at most
    `max_rows` rows remain (0: every row; 1.0 then)."""
    frauds = int((y == 1).sum())
    if max_rows == 0 or len(y) <= max_rows:
        return 1.0
    if max_rows - frauds < 1:
        raise ValueError(f"references.search_rows={max_rows:,} is below the {frauds:,} "
                         "frauds of the training rows; raise it (or 0: every row)")
    return (max_rows - frauds) / (len(y) - frauds)


def sample_rows(x: np.ndarray, y: np.ndarray, share: float, seed: int) -> SearchRows:
    """Every fraud and a seeded `share` of the genuine rows, each weighted by the inverse share;
    the rows keep their time order."""
    if share >= 1.0:
        return SearchRows(x, y, None, 1.0)
    fraud = y == 1
    genuine = np.flatnonzero(~fraud)
    kept = max(1, round(share * len(genuine)))
    keep = np.sort(np.concatenate([np.flatnonzero(fraud), np.random.default_rng(seed).choice(
        genuine, kept, replace=False)]))
    weight = np.where(y[keep] == 1, 1.0, len(genuine) / kept)
    return SearchRows(x[keep], y[keep], weight, kept / len(genuine))


def search_rows(x: np.ndarray, y: np.ndarray, max_rows: int, seed: int) -> SearchRows:
    """The rows of a search trial: every fraud and a seeded share of the genuine rows, so that
    at most `max_rows` rows remain (0: every row)."""
    return sample_rows(x, y, genuine_share(y, max_rows), seed)


# Search pruning (`references.pruning`): the first trials run whole, later ones stop at a
# step where their validation AP is below the median of the earlier trials at that step.
PRUNER_STARTUP_TRIALS = 3


def tune(ref: Reference, fit_x, fit_y, valid_x, valid_y, settings: dict, seed: int,
         progress=print) -> dict:
    """Search `settings['trials']` parameter sets on `search_rows` of the fit rows. Returns the
    best parameters (as fitted, with the early-stopped round count), its validation AP, the
    model fitted without the validation window (`selection_model`) and every trial (a pruned
    one with the step it stopped at and its validation AP there)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = search_rows(fit_x, fit_y, settings["search_rows"], seed)
    pruning = settings["pruning"] and bool(ref.prune_unit)
    progress(f"[train] {ref.name}: each trial fits on {rows.describe(len(fit_y))}"
             + ("; a trial behind the median of the earlier ones is pruned" if pruning else ""))
    fraud_ratio = float((fit_y == 0).sum()) / max(int((fit_y == 1).sum()), 1)
    best: dict = {"valid_ap": -1.0}
    trials: list[dict] = []
    started = time.perf_counter()

    def line(trial, trial_started: float, what: str) -> None:
        done, spent = trial.number + 1, time.perf_counter() - started
        left = spent / done * (settings["trials"] - done)
        progress(f"[train] {ref.name} trial {done}/{settings['trials']}: {what} "
                 f"(best {best['valid_ap']:.4f}), {duration(time.perf_counter() - trial_started)}"
                 + (f"; about {duration(left)} left" if done < settings["trials"] else ""))

    def objective(trial) -> float:
        trial_started = time.perf_counter()
        params = ref.suggest(trial, settings, fraud_ratio)

        def prune(step: int, ap: float) -> None:
            trial.report(ap, step)
            if trial.should_prune():
                trials.append({"trial": trial.number, "params": params, "valid_ap": float(ap),
                               "pruned_at": f"{step} {ref.prune_unit}",
                               "seconds": round(time.perf_counter() - trial_started, 2)})
                line(trial, trial_started, f"pruned at {step} {ref.prune_unit} (valid AP "
                                           f"{ap:.4f}, below the earlier trials' median)")
                raise optuna.TrialPruned()

        model, fitted = ref.fit(params, rows.x, rows.y, seed, settings, (valid_x, valid_y),
                                weight=rows.weight, **({"prune": prune} if pruning else {}))
        ap = float(average_precision_score(valid_y, ref.score(model, valid_x)))
        trials.append({"trial": trial.number, "params": fitted, "valid_ap": ap,
                       "seconds": round(time.perf_counter() - trial_started, 2)})
        if ap > best["valid_ap"]:
            best.update(valid_ap=ap, params=fitted, selection_model=model)
        line(trial, trial_started, f"valid AP {ap:.4f}")
        return ap

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
        if pruning else optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=settings["trials"])
    return {"params": best["params"], "valid_ap": best["valid_ap"],
            "selection_model": best["selection_model"], "trials": trials,
            "search_rows": {"rows": int(len(rows.y)), "of": int(len(fit_y)),
                            "genuine_share": rows.genuine_share}}


def fit_final(ref: Reference, params: dict, x, y, seed: int, settings: dict, progress=print):
    """The found settings fitted on every given row (no validation window left to stop on)."""
    model, _ = ref.fit(ref.final(params, settings), x, y, seed, settings,
                       progress=Stopwatch(f"[train] {ref.name} final fit on {len(y):,} rows",
                                          progress))
    return model
