"""Random forest (scikit-learn). No early stopping exists for it: the search tunes depth, leaf
size, features per split and class weighting on a forest of at most 100 trees (a forest's AP
settles well before that); the final fit uses references.forest_trees."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier

from . import Reference, register

SEARCH_TREES = 100


def suggest(trial, settings: dict, fraud_ratio: float) -> dict:
    return {"max_depth": trial.suggest_int("max_depth", 6, 32),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 40, log=True),
            "max_features": trial.suggest_float("max_features", 0.15, 1.0),
            "class_weight": trial.suggest_categorical("class_weight",
                                                      ["none", "balanced_subsample"]),
            "n_estimators": min(SEARCH_TREES, settings["forest_trees"])}


def fit(params: dict, x, y, seed: int, settings: dict, validation=None):
    arguments = dict(params, class_weight=None if params["class_weight"] == "none"
                     else params["class_weight"])
    model = RandomForestClassifier(random_state=seed, n_jobs=-1, **arguments)
    return model.fit(x, y), dict(params)


def score(model, x):
    return model.predict_proba(x)[:, 1]


def final(params: dict, settings: dict) -> dict:
    return dict(params, n_estimators=settings["forest_trees"])


register(Reference("random_forest", "random forest", suggest, fit, score, final))
