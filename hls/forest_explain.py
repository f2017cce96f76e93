"""Reason codes for the forest firmware's alerts: TreeSHAP's exact values, checked against the
permutation values of the firmware itself.

The explained function is the forest's fraud score: its probability for a random forest, its
margin (log-odds, TreeSHAP's own output for XGBoost) for boosted trees. TreeSHAP (shap's
TreeExplainer, interventional, on the random forest or boosted trees the firmware was converted
from) gives exact Shapley values against a background sample of the training period, fast
enough for every alert. The firmware computes the same trees with leaf values truncated to its
score type (at most one LSB per tree), so its own Shapley values differ from TreeSHAP's by about
that; shap's permutation explainer run on the firmware function (the integer reference,
bit-identical to conifer's
emulation) for the highest-scored alerts must agree with TreeSHAP (correlation of the values)
and both must add up to the score minus the expected value.
"""

from __future__ import annotations

import time
import warnings
from importlib import metadata

import numpy as np

from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.progress import Stopwatch
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import FOREST_EXPLAIN, FOREST_FIXED, FOREST_METRICS, FOREST_MODEL, FOREST_REASONS
from .explain import ROWS_PER_CALL, reason_codes, shap_values, write_reason_codes
from .forest import FixedForest
from .forest_models import check_model

CHECKED_ALERTS = 8       # alerts explained twice (TreeSHAP and permutations of the firmware)
MIN_CORRELATION = 0.99   # of the two explanations' values on those alerts
EXPLAINED = {"probability": "probability", "raw": "margin (log-odds)"}  # by TreeSHAP's output


def tree_shap(model, rows: np.ndarray, background: np.ndarray, model_output: str,
              progress=None) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values of the fraud score (`model_output`: TreeSHAP's
    "probability" or "raw" margin), and the expected value.

    The rows go through the explainer ROWS_PER_CALL at a time, so `progress` (a Stopwatch) can
    report them; a single long call also makes shap's C++ code draw its own progress bar on the
    terminal (a large forest: about a minute for 900 alerts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

        explainer = shap.TreeExplainer(model, data=background,
                                       feature_perturbation="interventional",
                                       model_output=model_output)
        parts = []
        for start in range(0, len(rows), ROWS_PER_CALL):
            parts.append(np.asarray(explainer.shap_values(rows[start:start + ROWS_PER_CALL])))
            if progress:
                progress.update(min(start + ROWS_PER_CALL, len(rows)), len(rows), "alerts")
    values = np.concatenate(parts)
    expected = np.atleast_1d(explainer.expected_value)
    if values.ndim == 3:  # one set per class (scikit-learn): the fraud class's
        return values[..., 1], float(expected[1])
    return values, float(expected[-1])  # the model's one output (XGBoost)


def explain_forest(run: RunFolder, cfg, progress=print) -> None:
    import json

    import joblib

    from fraudfpga.models.dataset import PreparedData

    settings = cfg["explain"]
    data = PreparedData(run.root)
    forest = FixedForest.load(run.path(FOREST_FIXED))
    model = joblib.load(run.path(FOREST_MODEL))
    threshold = json.loads(run.path(FOREST_METRICS).read_text())["operating"]["forest_firmware"][
        "threshold"]
    t = forest.input_type
    features = data.scaler.features

    entry = check_model(model)

    def firmware(codes: np.ndarray) -> np.ndarray:
        """The explained fraud score of the firmware (its probability for a random forest, its
        margin for boosted trees), from the integer reference."""
        return forest.sense.fraud_linear(forest.output_type.to_float(
            forest.forward(np.rint(codes).astype(np.int64))[:, 0]))

    training = np.concatenate([data.inputs("train"), data.inputs("valid")])
    rng = np.random.default_rng(cfg["seed"])
    chosen = rng.choice(len(training), size=min(settings["background"], len(training)),
                        replace=False)
    background_codes = t.codes_from_float(training[chosen])
    test_codes = t.codes_from_float(data.inputs("test"))
    scores = forest.fraud_scores(forest.forward(test_codes))
    alerted = np.flatnonzero(scores > threshold)
    progress(f"[explain] forest: {len(alerted):,} alerts at its threshold {threshold:.4f}; "
             f"TreeSHAP against {len(chosen)} training transactions")
    if alerted.size == 0:
        raise RuntimeError("the forest firmware flags no test transaction at its operating "
                           "point: nothing to explain")
    started = time.perf_counter()
    values, expected = tree_shap(model, t.to_float(test_codes[alerted]),
                                 t.to_float(background_codes), entry.shap_output,
                                 Stopwatch("[explain] forest (TreeSHAP)", progress))
    tree_seconds = time.perf_counter() - started
    float_scores = entry.explained_scores(model, t.to_float(test_codes[alerted]))
    additivity = float(np.max(np.abs(values.sum(axis=1) - (float_scores - expected))))

    checked = alerted[np.argsort(-scores[alerted], kind="stable")[:CHECKED_ALERTS]]
    started = time.perf_counter()
    permuted, fw_expected, fw_scores = shap_values(firmware, test_codes[checked], background_codes,
                                                   settings["permutations"], cfg["seed"])
    permutation_seconds = time.perf_counter() - started
    exact = values[np.searchsorted(alerted, checked)]
    correlation = float(np.corrcoef(exact.ravel(), permuted.ravel())[0, 1])
    fw_additivity = float(np.max(np.abs(permuted.sum(axis=1) - (fw_scores - fw_expected))))
    progress(f"[explain] forest: TreeSHAP {tree_seconds:.2f} s, additivity {additivity:.1e}; on "
             f"the {len(checked)} highest alerts against the firmware's permutation values: "
             f"correlation {correlation:.4f}, largest difference "
             f"{np.abs(exact - permuted).max():.3f}")
    # TreeSHAP sums the leaves exactly; a library that sums in float32 (XGBoost) rounds its own
    # score by up to `float_rounding`
    tree_tolerance = settings["tolerance"] + entry.float_rounding(forest)
    if additivity > tree_tolerance or fw_additivity > settings["tolerance"]:
        raise RuntimeError(f"forest attributions do not add up (TreeSHAP {additivity:.3g} > "
                           f"{tree_tolerance:.3g} or firmware {fw_additivity:.3g} > "
                           f"explain.tolerance = {settings['tolerance']:g})")
    if correlation < MIN_CORRELATION:
        raise RuntimeError(f"TreeSHAP and the firmware's permutation values disagree: correlation "
                           f"{correlation:.4f} < {MIN_CORRELATION}")

    top = settings["top"]
    write_reason_codes(run.path(FOREST_REASONS), data, alerted, {"score": scores[alerted]},
                       threshold, reason_codes(values, features, top))
    write_json(run.path(FOREST_EXPLAIN), {
        "model_function": f"the forest's fraud {EXPLAINED[entry.shap_output]} (TreeSHAP on the "
                          "tree ensemble the firmware was converted from)",
        "explainer": f"shap {metadata.version('shap')} TreeExplainer, interventional",
        "alerts": int(len(alerted)), "threshold": threshold,
        "background": {"rows": int(len(chosen)), "from": "training period (train + valid)",
                       "seed": cfg["seed"]},
        "expected_value": expected,
        "additivity": {"max_abs_error": additivity, "tolerance": tree_tolerance,
                       "ok": additivity <= tree_tolerance,
                       "why": "explain.tolerance plus the library's own float rounding"},
        "check_against_firmware": {
            "alerts": int(len(checked)),
            "firmware_function": "integer reference of the forest firmware (equal to conifer's "
                                 "emulation), shap PermutationExplainer with "
                                 f"{settings['permutations']} antithetic permutations",
            "correlation": correlation, "min_correlation": MIN_CORRELATION,
            "max_abs_difference": float(np.abs(exact - permuted).max()),
            "mean_abs_difference": float(np.abs(exact - permuted).mean()),
            "firmware_additivity": fw_additivity},
        "importance": {"features": features, "forest": np.abs(values).mean(axis=0).tolist()},
        "seconds": {"tree_shap": round(tree_seconds, 2),
                    "permutation_check": round(permutation_seconds, 1)},
        "kind": "measured on this machine",
    })


register(Step(
    name="forest_explain", command="explain",
    help="reason codes of the forest firmware's alerts: TreeSHAP, checked against the "
         "firmware's own permutation values",
    reads=("seed", "explain"),
    inputs=(FOREST_MODEL, FOREST_FIXED, FOREST_METRICS, *SPLIT_FILES.values(), SCALER,
            DATA_SUMMARY),
    outputs=(FOREST_REASONS, FOREST_EXPLAIN), body=explain_forest,
    code=("fraudfpga.hls.forest_explain", "fraudfpga.hls.explain", "fraudfpga.hls.forest",
          "fraudfpga.hls.forest_models", "fraudfpga.hls.fixed"),
    family="forest", background=True, niceness=10))
