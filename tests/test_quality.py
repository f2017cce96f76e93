"""Model quality: tuned references, the refit, several seeds, the bootstrap, reason codes."""

import json

import numpy as np
import pytest
from conftest import cli
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudfpga.models.metrics import card_precision_at_k, evaluate
from fraudfpga.models.statistics import TestPeriod, bootstrap, interval


def synthetic_test_period(seed=0, rows=3000):
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < 0.05).astype(int)
    # Quantized scores, as the firmware's logits: many ties.
    score = np.round(label * 1.5 + rng.normal(size=rows), 1)
    day = rng.integers(0, 5, rows)
    card = rng.integers(0, 400, rows)
    return label, score, day, card


def test_unit_weights_reproduce_the_plain_metrics():
    label, score, day, card = synthetic_test_period()
    period = TestPeriod(label, day, card, top_k=20)
    measured = period.metrics(period.prepare(score, 0.8), np.ones(period.n_cards))
    plain = evaluate(label, score, 0.8, day, card, 20)
    assert measured["average_precision"] == pytest.approx(average_precision_score(label, score))
    assert measured["auc_roc"] == pytest.approx(roc_auc_score(label, score))
    assert measured["card_precision"] == pytest.approx(card_precision_at_k(day, card, label,
                                                                           score, 20))
    for key in ("precision", "recall", "false_positive_rate"):
        assert measured[key] == pytest.approx(plain[key])


def test_card_weights_count_a_card_as_often_as_drawn():
    label, score, day, card = synthetic_test_period(1, 500)
    period = TestPeriod(label, day, card, top_k=10)
    weights = np.random.default_rng(2).integers(0, 3, period.n_cards).astype(float)
    measured = period.metrics(period.prepare(score, 0.5), weights)
    # The same resample made explicit: every transaction of a card repeated as often as drawn.
    repeats = weights[period.card_index].astype(int)
    rows = np.repeat(np.arange(len(label)), repeats)
    assert measured["average_precision"] == pytest.approx(
        average_precision_score(label[rows], score[rows]))
    assert measured["auc_roc"] == pytest.approx(roc_auc_score(label[rows], score[rows]))


def test_bootstrap_interval_is_of_the_seed_mean():
    label, score, day, card = synthetic_test_period(3, 2000)
    period = TestPeriod(label, day, card, top_k=20)
    noise = np.random.default_rng(4).normal(scale=0.5, size=score.size)
    seeds = [period.prepare(score, 0.8), period.prepare(score + noise, 0.8)]
    samples = bootstrap(period, {"model": seeds}, 200, seed=0, progress=lambda _: None)
    ap = samples["model"]["average_precision"]
    assert ap.shape == (200,) and ap.std() > 0
    point = np.mean([period.metrics(s, np.ones(period.n_cards))["average_precision"]
                     for s in seeds])
    low, high = interval(ap, 0.95)
    assert low < point < high and high - low < 0.3


def test_tuned_references_beat_crippled_ones(tiny_run):
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.references import reference
    from fraudfpga.models.references.search import tune

    data = PreparedData(tiny_run)
    fit = data.inputs("train"), data.labels("train")
    valid = data.inputs("valid"), data.labels("valid")
    settings = {"trials": 3, "forest_trees": 30, "forest_bins": 256, "boosting_rounds": 300,
                "early_stopping_rounds": 30, "search_rows": 0, "pruning": True}
    crippled = {"random_forest": {"max_depth": 1, "min_samples_leaf": 40, "max_features": 0.15,
                                  "class_weight": "none", "n_estimators": 1},
                "xgboost": {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}}
    for name, params in crippled.items():
        ref = reference(name)
        tuned = tune(ref, *fit, *valid, settings, seed=0, progress=lambda _: None)
        weak, _ = ref.fit(params, *fit, 0, settings)
        weak_ap = average_precision_score(valid[1], ref.score(weak, valid[0]))
        assert tuned["valid_ap"] > weak_ap + 0.05, name
        assert len(tuned["trials"]) == 3


def test_refit_uses_every_training_row(tiny_run):
    summary = json.loads((tiny_run / "data/summary.json").read_text())["split"]
    rows = summary["train"]["rows"] + summary["valid"]["rows"]
    training = json.loads((tiny_run / "models/summary.json").read_text())["training"]
    for name in ("qkeras", "float"):
        assert training[name]["rows"] == summary["train"]["rows"]
        assert training[name]["refit"] == {**training[name]["refit"], "rows": rows,
                                           "epochs": training[name]["best_epoch"]}
    search = json.loads((tiny_run / "models/references.json").read_text())
    assert {search[name]["final_rows"] for name in ("random_forest", "xgboost")} == {rows}
    operating = json.loads((tiny_run / "models/metrics.json").read_text())["operating"]
    assert operating["qkeras"]["calibration_rows"] == summary["delay"]["rows"]


def test_quality_over_seeds_and_the_report_section(tiny_copy, capsys):
    projects = str(tiny_copy.parent)
    assert cli("quality", "--run", "tiny", "--projects-dir", projects, "--reconfigure",
               settings=["quality.seeds=2", "quality.bootstrap=100"]) == 0
    quality = json.loads((tiny_copy / "quality/summary.json").read_text())
    seeds = json.loads((tiny_copy / "quality/seeds.json").read_text())
    assert quality["seeds"] == [0, 1] and quality["data_seed"] == 0
    per_seed = [m["average_precision"] for m in seeds["models"]["qkeras"]]
    assert per_seed[0] != per_seed[1]  # the training seed changes the model
    ap = quality["models"]["qkeras"]["average_precision"]
    assert ap["mean"] == pytest.approx(np.mean(per_seed))
    assert ap["std"] == pytest.approx(np.std(per_seed, ddof=1))
    strongest = quality["strongest_reference"]
    assert strongest in ("random_forest", "xgboost")
    difference = quality["firmware_minus_strongest"]["average_precision"]
    assert difference["per_seed"] == pytest.approx(
        [f["average_precision"] - r["average_precision"]
         for f, r in zip(seeds["models"]["firmware"], seeds["models"][strongest])])
    assert cli("report", "--run", "tiny", "--projects-dir", projects) == 0
    report = (tiny_copy / "report/report.md").read_text()
    assert "Model quality over training seeds (make quality)" in report
    assert f"Firmware − {quality['labels'][strongest]}" in report


def test_shap_attributions_add_up_to_the_firmware_logit(tmp_path):
    from test_hls import firmware, random_qkeras_model

    from fraudfpga.hls.explain import reason_codes, shap_values

    _, network, csim = firmware(random_qkeras_model(6, [6, 4], seed=3), tmp_path)

    def logit(codes):
        return network.output_type.to_float(csim.run(np.rint(codes).astype(np.int64))[:, 0])

    rng = np.random.default_rng(0)
    t = network.input_type
    rows = rng.integers(t.min_code, t.max_code + 1, (12, network.n_inputs))
    background = rng.integers(t.min_code, t.max_code + 1, (20, network.n_inputs))
    values, expected, outputs = shap_values(logit, rows, background, permutations=2, seed=0)
    assert expected == pytest.approx(logit(background).mean())
    np.testing.assert_allclose(values.sum(axis=1), outputs - expected, atol=1e-9)
    codes = reason_codes(values, [f"f{i}" for i in range(network.n_inputs)], 3)
    assert [c[0][1] for c in codes] == pytest.approx(values.max(axis=1).tolist())


def test_report_names_the_strongest_reference_and_shows_reason_codes(tiny_run):
    report = (tiny_run / "report/report.md").read_text()
    assert "The strongest reference (highest test AP) is the" in report
    assert "Reason codes of the firmware's alerts" in report
    explain = json.loads((tiny_run / "hls/explain.json").read_text())
    assert explain["additivity"]["ok"] and explain["alerts"] > 0
    assert (tiny_run / "report/shap_importance.png").stat().st_size > 5000


def test_alerts_explained_in_calls_equal_one_call_and_report_progress(monkeypatch):
    """The explainer is called on chunks of alerts for progress lines; every row's
    permutations come from one seeded sequence, so the values are those of a single call."""
    from fraudfpga.hls import explain
    from fraudfpga.progress import Stopwatch

    weights = np.array([0.5, -1.0, 2.0, 0.25])

    def logit(x):
        return np.tanh(x @ weights) + 0.1 * x[:, 0] * x[:, 2]

    rng = np.random.default_rng(1)
    rows, background = rng.normal(size=(23, 4)), rng.normal(size=(15, 4))
    whole = explain.shap_values(logit, rows, background, permutations=3, seed=4)
    monkeypatch.setattr(explain, "ROWS_PER_CALL", 5)
    lines = []
    chunked = explain.shap_values(logit, rows, background, permutations=3, seed=4,
                                  progress=Stopwatch("[explain] test", lines.append, quiet_s=0,
                                                     every_s=0))
    np.testing.assert_array_equal(chunked[0], whole[0])
    assert chunked[1] == whole[1]
    assert [line.split(",")[0] for line in lines] == [
        f"[explain] test: {n}/23 alerts" for n in (5, 10, 15, 20, 23)]
