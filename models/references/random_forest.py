"""Random forest on histogram trees (XGBoost's `hist` method in random-forest mode).

Each tree is fitted on a 63.2 % subsample of the rows (a bootstrap's share of distinct rows),
with `max_features` of the inputs drawn at every split, grown to `max_depth` or until a leaf
would hold less than `min_samples_leaf` rows' weight. The trees fit the squared error of the
0/1 label from 0 with no regularisation, so a split maximises the decrease of the label's
variance, which for a 0/1 label is half its Gini impurity (scikit-learn's criterion), and a
leaf's value is the (weighted) fraud fraction of its rows; the forest's score is the mean over
its trees, the probability a random forest reports. Split points are searched among
`references.forest_bins` quantile bins per input instead of every distinct value. With 8,192
(the default) the final 300-tree fit with the settings scikit-learn's search chose took 80 s
instead of 17 min 53 s on a ULB-sized CSV (199,364 rows, 29 inputs; test AP 0.6555 against
0.6501) and 15 s on the default data (0.6950 against 0.6976); with 256 bins 7 s on the
ULB-sized CSV (0.6465) and 0.6604 on the default data, whose simulated frauds include a sharp
amount threshold (docs/models.md).

The search tunes depth, leaf size, features per split and class weighting on a forest of at
most 100 trees, grown 25 trees at a time so that a trial behind the others can be pruned on its
validation AP (`references.pruning`); the final fit grows references.forest_trees."""

from __future__ import annotations

import numpy as np

from . import Reference, register

SEARCH_TREES = 100
# Trees grown per booster: each group is a forest of its own (its seed the fit's plus the group's
# index), the forest's score the mean over all its trees; after each group a progress line and,
# in a search, the pruning decision.
TREES_PER_STEP = 25
# A bootstrap sample of n rows holds 1 - 1/e of them, distinct.
ROW_SHARE = 0.632


class HistogramForest:
    """The fitted groups of trees (XGBoost boosters of one round of parallel trees each)."""

    def __init__(self):
        self.groups: list = []  # (booster, trees)

    @property
    def trees(self) -> int:
        return sum(trees for _, trees in self.groups)

    def score(self, x) -> np.ndarray:
        import xgboost

        rows = xgboost.DMatrix(np.asarray(x, np.float32))
        # A booster scores the mean of its trees' leaves; the forest, the mean of every tree.
        total = sum(trees * booster.predict(rows).astype(np.float64) for booster, trees in self.groups)
        return total / self.trees


def suggest(trial, settings: dict, fraud_ratio: float) -> dict:
    return {"max_depth": trial.suggest_int("max_depth", 6, 32),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 40, log=True),
            "max_features": trial.suggest_float("max_features", 0.15, 1.0),
            "class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"]),
            "n_estimators": min(SEARCH_TREES, settings["forest_trees"])}


def class_weights(y, weight, class_weight: str):
    """Row weights: the given ones (a search's sample), times, for `balanced`, n / (2 n_class)
    per class (each class weighs half of the rows' total, as scikit-learn's `balanced`)."""
    if class_weight not in ("none", "balanced"):
        raise ValueError(f"random forest: class_weight {class_weight!r} is not none or balanced")
    weight = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
    if class_weight == "none":
        return weight
    y = np.asarray(y)
    total = weight.sum()
    for label in (0, 1):
        weight = np.where(y == label, weight * total / (2 * weight[y == label].sum()), weight)
    return weight


def fit(params: dict, x, y, seed: int, settings: dict, validation=None, weight=None,
        progress=None, prune=None):
    """`prune(trees, validation AP)`, with a validation window, is called after every
    TREES_PER_STEP trees but the last and may stop the trial (it raises)."""
    import xgboost
    from sklearn.metrics import average_precision_score

    total = params["n_estimators"]
    bins = settings["forest_bins"]
    rows = xgboost.QuantileDMatrix(np.asarray(x, np.float32), label=np.asarray(y, np.float32),
                                   weight=class_weights(y, weight, params["class_weight"]),
                                   max_bin=bins)  # binned once for every group
    forest = HistogramForest()
    for group, trees in enumerate(sorted({*range(TREES_PER_STEP, total, TREES_PER_STEP), total})):
        grown = trees - forest.trees
        booster = xgboost.train({
            "tree_method": "hist", "objective": "reg:squarederror", "base_score": 0.0,
            "learning_rate": 1.0, "reg_lambda": 0.0, "num_parallel_tree": grown,
            "subsample": ROW_SHARE, "colsample_bynode": params["max_features"],
            "max_depth": params["max_depth"], "min_child_weight": params["min_samples_leaf"],
            "max_bin": bins, "seed": seed + group, "nthread": 0},
            rows, num_boost_round=1)
        forest.groups.append((booster, grown))
        if progress:
            progress.update(trees, total, "trees")
        if prune and validation is not None and trees < total:
            prune(trees, average_precision_score(validation[1], score(forest, validation[0])))
    return forest, dict(params)


def score(model: HistogramForest, x):
    return model.score(x)


def final(params: dict, settings: dict) -> dict:
    return dict(params, n_estimators=settings["forest_trees"])


register(Reference("random_forest", "random forest", suggest, fit, score, final,
                   prune_unit="trees"))
