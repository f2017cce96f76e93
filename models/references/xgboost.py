"""Gradient-boosted trees (XGBoost, hist). With a validation window the rounds stop when the
validation Average Precision has not improved for references.early_stopping_rounds rounds and
the best round is kept; the refit on the whole training period uses that many rounds."""

from __future__ import annotations

from . import Reference, register


def suggest(trial, settings: dict, fraud_ratio: float) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30, log=True),
            "scale_pos_weight": trial.suggest_float("scale_pos_weight", 1.0,
                                                    max(fraud_ratio, 1.0), log=True)}


def round_reporter(progress, total: int):
    """An XGBoost callback that hands the rounds done to a `Stopwatch`."""
    import xgboost

    class Rounds(xgboost.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            progress.update(epoch + 1, total, "rounds")
            return False

    return Rounds()


def fit(params: dict, x, y, seed: int, settings: dict, validation=None, weight=None,
        progress=None):
    import xgboost
    from sklearn.metrics import average_precision_score

    common = dict(tree_method="hist", random_state=seed, n_jobs=-1, **params)
    if validation is None:
        rounds = common.pop("n_estimators", settings["boosting_rounds"])
        model = xgboost.XGBClassifier(n_estimators=rounds, **common, callbacks=(
            [round_reporter(progress, rounds)] if progress else None))
        model.fit(x, y, sample_weight=weight)
        # The model is saved with joblib: it keeps no callback (a local class, the progress).
        return model.set_params(callbacks=None), dict(params)
    stopping = xgboost.callback.EarlyStopping(rounds=settings["early_stopping_rounds"],
                                              maximize=True, save_best=True)
    model = xgboost.XGBClassifier(n_estimators=settings["boosting_rounds"],
                                  eval_metric=average_precision_score, callbacks=[stopping],
                                  **common)
    model.fit(x, y, sample_weight=weight, eval_set=[validation], verbose=False)
    return model.set_params(callbacks=None), dict(params, n_estimators=int(model.best_iteration) + 1)


def score(model, x):
    return model.predict_proba(x)[:, 1]


register(Reference("xgboost", "XGBoost", suggest, fit, score))
