"""Random forest (scikit-learn). No early stopping exists for it: the search tunes depth, leaf
size, features per split and class weighting on a forest of at most 100 trees (a forest's AP
settles well before that), grown 25 trees at a time so that a trial behind the others can be
pruned on its validation AP (`references.pruning`); the final fit uses references.forest_trees,
on every row (or, with `references.final_sample`, on the rows drawn as the search's)."""

from __future__ import annotations

import warnings

import numpy as np

from . import Reference, register

SEARCH_TREES = 100
# Trees added per fit call when a progress line or pruning is asked for (warm start: the forest
# equals one fit of every tree, since each tree's seed is drawn from the same sequence).
TREES_PER_STEP = 25


def suggest(trial, settings: dict, fraud_ratio: float) -> dict:
    return {"max_depth": trial.suggest_int("max_depth", 6, 32),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 40, log=True),
            "max_features": trial.suggest_float("max_features", 0.15, 1.0),
            "class_weight": trial.suggest_categorical("class_weight",
                                                      ["none", "balanced_subsample"]),
            "n_estimators": min(SEARCH_TREES, settings["forest_trees"])}


def fit(params: dict, x, y, seed: int, settings: dict, validation=None, weight=None,
        progress=None, prune=None):
    """`prune(trees, validation AP)`, with a validation window, is called after every
    TREES_PER_STEP trees but the last and may stop the trial (it raises)."""
    from sklearn.ensemble import RandomForestClassifier  # imported when fitted: every run's
    from sklearn.metrics import average_precision_score  # configuration check lists the families

    arguments = dict(params, class_weight=None if params["class_weight"] == "none"
                     else params["class_weight"])
    if weight is not None:
        arguments.update(leaf_by_weight(arguments.pop("min_samples_leaf"), weight))
    total = arguments.pop("n_estimators")
    model = RandomForestClassifier(random_state=seed, n_jobs=-1, warm_start=True, **arguments)
    step = TREES_PER_STEP if progress or prune else total
    with warnings.catch_warnings():  # the same rows every call: the class weights are the same
        warnings.filterwarnings("ignore", message="class_weight presets")
        for trees in sorted({*range(step, total, step), total}):
            model.set_params(n_estimators=trees).fit(x, y, sample_weight=weight)
            if progress:
                progress.update(trees, total, "trees")
            if prune and validation is not None and trees < total:
                prune(trees, average_precision_score(validation[1], score(model, validation[0])))
    return model, dict(params)


def leaf_by_weight(min_samples_leaf: int, weight) -> dict:
    """The leaf size `min_samples_leaf` in rows of the full data, on weighted rows (a search's
    sample, where a kept genuine row stands for 1/share of them): a leaf must hold that many
    rows' weight. Counted in sampled rows instead, a leaf of 12 held about 41 rows' worth of
    genuine transactions on a ULB-sized CSV, and the search ranked such settings well below
    where a search on every row put them."""
    return {"min_samples_leaf": 1, "min_weight_fraction_leaf": min_samples_leaf / float(np.sum(weight))}


def score(model, x):
    return model.predict_proba(x)[:, 1]


def final(params: dict, settings: dict) -> dict:
    return dict(params, n_estimators=settings["forest_trees"])


register(Reference("random_forest", "random forest", suggest, fit, score, final,
                   prune_unit="trees", samples_final_fit=True))
