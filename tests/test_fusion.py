"""The fusion study: the combiner's coefficients keep their ratio in fixed point, an informative
second score is found out of fold and a useless one is not, and on the tiny run the study's
test figures are the two firmwares' verified codes combined exactly."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from fraudfpga.fusion import coefficient_type, out_of_fold_scores, quantized_coefficients


def test_coefficients_are_scaled_to_the_type_and_keep_their_ratio():
    t = coefficient_type(8)
    qa, qb = quantized_coefficients(0.3, -1.2, 8)
    assert qb == -t.to_float(np.array([t.max_code]))[0]  # the larger one at full scale
    assert abs(qa / qb - 0.3 / -1.2) < t.lsb / abs(qb)
    assert all(value == t.to_float(t.codes_from_float(np.array([value])))[0] for value in (qa, qb))


def _scores(seed: int, rows: int = 20000):
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.02).astype(int)
    first = labels * 1.2 + rng.normal(size=rows)
    informative = labels * 1.2 + rng.normal(size=rows)  # independent evidence of the same label
    useless = rng.normal(size=rows)
    return labels, first, informative, useless


def test_an_informative_second_score_raises_the_out_of_fold_ap_and_noise_does_not():
    labels, first, informative, useless = _scores(0)
    alone = average_precision_score(labels, first)
    both = out_of_fold_scores(np.column_stack([first, informative]), labels, 5, 8, seed=0)
    assert average_precision_score(labels, both) > alone + 0.05
    noise = out_of_fold_scores(np.column_stack([first, useless]), labels, 5, 8, seed=0)
    assert average_precision_score(labels, noise) < alone + 0.005


def test_folds_that_leave_one_class_are_refused_naming_the_rows():
    labels = np.zeros(1000, dtype=int)
    labels[10:14] = 1  # every fraud in the first block
    features = np.random.default_rng(0).normal(size=(1000, 2))
    with pytest.raises(ValueError, match=r"fusion.folds=5: without rows 0-199 the validation "
                                         r"window holds one class \(4 frauds in 1,000 rows\)"):
        out_of_fold_scores(features, labels, 5, 8, seed=0)


def test_the_study_combines_the_verified_codes_of_both_firmwares(tiny_run):
    from fraudfpga.hls.forest import FixedForest
    from fraudfpga.hls.network import FixedNetwork

    study = json.loads((tiny_run / "fusion/fusion.json").read_text())
    labels = pd.read_parquet(tiny_run / "data/test.parquet")["label"].to_numpy()
    logit_type = FixedNetwork.load(tiny_run / "hls/network.json").output_type
    logit = logit_type.to_float(np.load(tiny_run / "hls/golden.npz")["test_output_codes"][:, 0])
    forest = FixedForest.load(tiny_run / "forest/forest.json")
    p = forest.fraud_scores(np.load(tiny_run / "forest/golden.npz")["test_output_codes"])
    a, b = study["combiner"]["a"], study["combiner"]["b"]
    assert study["test"]["fused"]["average_precision"] == average_precision_score(labels, a * logit + b * p)
    assert study["test"]["forest_firmware"]["average_precision"] == average_precision_score(labels, p)
    valid = study["valid"]
    better = max(valid["network"], valid["forest"])
    assert study["decision"]["build"] == (valid["fused_out_of_fold"] > better)
    assert not study["decision"]["built"]
    page = (tiny_run / "report/report.md").read_text()
    assert "Network and forest combined" in page and f"{valid['fused_out_of_fold']:.4f}" in page
