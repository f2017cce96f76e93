"""Tune a reference on the validation window (Optuna, TPE), then refit it."""

from __future__ import annotations

import time

from sklearn.metrics import average_precision_score

from . import Reference


def tune(ref: Reference, fit_x, fit_y, valid_x, valid_y, settings: dict, seed: int,
         progress=print) -> dict:
    """Search `settings['trials']` parameter sets. Returns the best parameters (as fitted, with
    the early-stopped round count), its validation AP, the model fitted without the validation
    window (`selection_model`) and every trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fraud_ratio = float((fit_y == 0).sum()) / max(int((fit_y == 1).sum()), 1)
    best: dict = {"valid_ap": -1.0}
    trials: list[dict] = []

    def objective(trial) -> float:
        started = time.perf_counter()
        params = ref.suggest(trial, settings, fraud_ratio)
        model, fitted = ref.fit(params, fit_x, fit_y, seed, settings, (valid_x, valid_y))
        ap = float(average_precision_score(valid_y, ref.score(model, valid_x)))
        trials.append({"trial": trial.number, "params": fitted, "valid_ap": ap,
                       "seconds": round(time.perf_counter() - started, 2)})
        if ap > best["valid_ap"]:
            best.update(valid_ap=ap, params=fitted, selection_model=model)
        progress(f"[train] {ref.name} trial {trial.number + 1}/{settings['trials']}: valid AP "
                 f"{ap:.4f} (best {best['valid_ap']:.4f})")
        return ap

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=settings["trials"])
    return {"params": best["params"], "valid_ap": best["valid_ap"],
            "selection_model": best["selection_model"], "trials": trials}


def fit_final(ref: Reference, params: dict, x, y, seed: int, settings: dict):
    """The found settings fitted on every given row (no validation window left to stop on)."""
    model, _ = ref.fit(ref.final(params, settings), x, y, seed, settings)
    return model
