"""The tree references at scale: the search's row sample, fits in steps with progress lines."""

import pickle

import numpy as np
import pytest
import xgboost
from sklearn.metrics import average_precision_score

from fraudfpga.models.references import reference
from fraudfpga.models.references.search import fit_final, search_rows, tune
from fraudfpga.progress import Stopwatch

SETTINGS = {"trials": 2, "forest_trees": 60, "forest_bins": 256, "boosting_rounds": 40, "early_stopping_rounds": 10,
            "search_rows": 0, "pruning": False}


def imbalanced(rows=6000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.02).astype(int)
    x = rng.normal(size=(rows, 5)) + y[:, None] * np.array([1.5, -1.0, 0, 0, 0.5])
    return x, y


def test_the_search_sample_keeps_every_fraud_and_the_class_balance():
    x, y = imbalanced()
    rows = search_rows(x, y, 1000, seed=3)
    assert len(rows.y) == 1000 and rows.y.sum() == y.sum()
    # Every kept row is a row of the data, in time order.
    kept = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in rows.x]
    assert kept == sorted(kept)
    # The weighted genuine rows stand for all of them: the fraud share is the full data's.
    weighted_genuine = rows.weight[rows.y == 0].sum()
    assert weighted_genuine == pytest.approx((y == 0).sum())
    assert (rows.weight[rows.y == 1] == 1).all()
    assert search_rows(x, y, 1000, seed=3).x.tobytes() == rows.x.tobytes()  # seeded
    everything = search_rows(x, y, 0, seed=3)
    assert everything.weight is None and len(everything.y) == len(y)
    with pytest.raises(ValueError, match="references.search_rows=50 is below the"):
        search_rows(x, y, 50, seed=3)


def test_a_forest_on_the_search_sample_counts_its_leaf_size_in_rows_of_the_full_data():
    """On the weighted sample a leaf must hold `min_samples_leaf` rows' weight, so its trees are
    about as coarse as on every row; counted in sampled rows they would be far coarser."""
    x, y = imbalanced()
    rows = search_rows(x, y, 1500, seed=3)
    ref = reference("random_forest")
    params = {"max_depth": 14, "min_samples_leaf": 20, "max_features": 0.6,
              "class_weight": "none", "n_estimators": 10}
    sampled, _ = ref.fit(params, rows.x, rows.y, 0, SETTINGS, weight=rows.weight)
    every, _ = ref.fit(params, x, y, 0, SETTINGS)

    def leaves(forest):
        trees = forest.groups[0][0].trees_to_dataframe()
        return trees[trees["Feature"] == "Leaf"]

    for forest in (sampled, every):  # a leaf's cover: the weight of its rows in its subsample
        assert (leaves(forest)["Cover"] >= 20 - 1e-6).all()
    # In sampled rows a leaf holds fewer: a genuine row of the sample weighs about 4 rows.
    leaf_of_row = sampled.groups[0][0].predict(xgboost.DMatrix(rows.x.astype(np.float32)),
                                               pred_leaf=True)[:, 0].astype(int)
    sampled_rows_per_leaf = np.bincount(leaf_of_row)
    assert sampled_rows_per_leaf[sampled_rows_per_leaf > 0].min() < 20
    sizes = [len(leaves(forest)) for forest in (sampled, every)]
    assert 0.5 < sizes[0] / sizes[1] < 2


def test_a_search_on_a_sample_fits_its_trials_on_the_sample():
    x, y = imbalanced()
    ref = reference("random_forest")
    seen = []
    real_fit = ref.fit

    def spy(params, fx, fy, *args, weight=None, **kwargs):
        seen.append((len(fy), None if weight is None else weight.max()))
        return real_fit(params, fx, fy, *args, weight=weight, **kwargs)

    object.__setattr__(ref, "fit", spy)  # a frozen dataclass: patched and restored by hand
    try:
        lines = []
        result = tune(ref, x[:4000], y[:4000], x[4000:], y[4000:],
                      dict(SETTINGS, search_rows=1500), seed=0, progress=lines.append)
    finally:
        object.__setattr__(ref, "fit", real_fit)
    assert [rows for rows, _ in seen] == [1500, 1500]
    assert all(top > 1 for _, top in seen)  # genuine rows weighted up
    assert result["search_rows"]["rows"] == 1500 and result["search_rows"]["of"] == 4000
    assert any("each trial fits on 1,500 of 4,000 rows" in line for line in lines)


@pytest.mark.parametrize("name", ["random_forest", "xgboost"])
def test_the_final_fit_uses_every_row_when_the_search_sampled(name):
    """A search on a sample of the rows; the settings it found refitted on every row of the whole
    training period, unweighted."""
    from types import SimpleNamespace

    from fraudfpga.models.train import train_reference

    x, y = imbalanced()
    split = SimpleNamespace(x={"train": x[:4000], "valid": x[4000:4500]},
                            y={"train": y[:4000], "valid": y[4000:4500]},
                            final_x=x[:4500], final_y=y[:4500],
                            score_parts=lambda score: {"test": score(x[4500:])})
    ref = reference(name)
    seen = []
    real_fit = ref.fit

    def spy(params, fx, fy, seed, settings, validation=None, weight=None, **kwargs):
        seen.append((len(fy), weight is not None, "progress" in kwargs))
        return real_fit(params, fx, fy, seed, settings, validation, weight=weight, **kwargs)

    object.__setattr__(ref, "fit", spy)
    try:
        trained = train_reference(name, split, dict(SETTINGS, search_rows=1500), 0,
                                  progress=lambda line: None)
    finally:
        object.__setattr__(ref, "fit", real_fit)
    # Two search trials and the selection model on the weighted sample, then the final fit.
    assert seen[:-1] == [(1500, True, False)] * (len(seen) - 1) and len(seen) >= 3
    assert seen[-1] == (4500, False, True)
    assert trained.record["final_rows"] == 4500
    assert average_precision_score(y[4500:], trained.scores["test"]) > 5 * y.mean()


def test_a_pruned_search_stops_the_trials_behind_and_keeps_the_best():
    x, y = imbalanced(rows=4000, seed=1)
    ref = reference("random_forest")
    settings = dict(SETTINGS, trials=8, forest_trees=100)
    lines = []
    pruned = tune(ref, x[:2800], y[:2800], x[2800:], y[2800:], dict(settings, pruning=True),
                  seed=0, progress=lines.append)
    whole = tune(ref, x[:2800], y[:2800], x[2800:], y[2800:], settings, seed=0,
                 progress=lambda line: None)
    stopped = [t for t in pruned["trials"] if "pruned_at" in t]
    assert stopped and all(t["trial"] >= 3 for t in stopped)  # the first three run whole
    assert {t["pruned_at"] for t in stopped} <= {"25 trees", "50 trees", "75 trees"}
    assert sum("pruned at" in line for line in lines) == len(stopped)
    finished = [t for t in pruned["trials"] if "pruned_at" not in t]
    assert pruned["valid_ap"] == max(t["valid_ap"] for t in finished)
    assert pruned["params"] == next(t["params"] for t in finished
                                    if t["valid_ap"] == pruned["valid_ap"])
    # Until the first pruned trial both searches tried the same settings and found the same APs
    # (to the last bits: the forests grown in steps sum their trees' votes in another order).
    first = stopped[0]["trial"]
    assert [t["params"] for t in pruned["trials"][:first]] == [
        t["params"] for t in whole["trials"][:first]]
    assert [t["valid_ap"] for t in pruned["trials"][:first]] == pytest.approx(
        [t["valid_ap"] for t in whole["trials"][:first]], rel=1e-12)
    assert not any("pruned_at" in t for t in whole["trials"])


@pytest.mark.parametrize("name", ["random_forest", "xgboost"])
def test_a_final_fit_with_progress_equals_one_fit_and_reports_its_steps(name):
    x, y = imbalanced()
    ref = reference(name)
    params = ({"max_depth": 8, "min_samples_leaf": 2, "max_features": 0.6,
               "class_weight": "balanced", "n_estimators": 60} if name == "random_forest"
              else {"max_depth": 3, "learning_rate": 0.2, "n_estimators": 40})
    lines = []
    stepped = fit_final(ref, params, x, y, 0, SETTINGS, progress=lines.append)
    stepped = pickle.loads(pickle.dumps(stepped))  # the train step saves it with joblib
    whole, _ = ref.fit(ref.final(params, SETTINGS), x, y, 0, SETTINGS)
    if name == "random_forest":  # the same trees, grown in the same groups
        assert stepped.trees == whole.trees == 60 and len(stepped.groups) == 3
        assert [b.get_dump() for b, _ in stepped.groups] == [b.get_dump() for b, _ in whole.groups]
    np.testing.assert_allclose(ref.score(stepped, x), ref.score(whole, x), rtol=1e-12, atol=1e-15)
    assert average_precision_score(y, ref.score(whole, x)) > 0.5
    # A fit this short prints nothing; a stopwatch that is never quiet prints the last step.
    assert lines == []
    loud = []
    ref.fit(ref.final(params, SETTINGS), x, y, 0, SETTINGS,
            progress=Stopwatch("[train] fit", loud.append, quiet_s=0))
    unit = "trees" if name == "random_forest" else "rounds"
    total = 60 if name == "random_forest" else 40
    assert loud and loud[-1].startswith(f"[train] fit: {total:,}/{total:,} {unit}")
    assert "left" not in loud[-1]


def test_balanced_class_weights_give_each_class_half_the_weight():
    from fraudfpga.models.references.random_forest import class_weights

    y = np.array([0, 0, 0, 1])
    weight = class_weights(y, np.array([1.0, 1.0, 2.0, 1.0]), "balanced")
    assert weight[y == 0].sum() == pytest.approx(2.5) and weight[y == 1].sum() == pytest.approx(2.5)
    assert weight[2] == pytest.approx(2 * weight[0])  # a sample's weights kept within a class
    np.testing.assert_array_equal(class_weights(y, None, "none"), np.ones(4))
    with pytest.raises(ValueError, match="'balanced_subsample' is not none or balanced"):
        class_weights(y, None, "balanced_subsample")
