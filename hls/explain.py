"""Reason codes for the firmware's alerts: SHAP values of the firmware's own logit.

The model function is the firmware's integer reference (input codes in, logit out), which the
hls step proved equal to the hls4ml C simulation bit for bit and which this step checks against
the C simulation again on every explained alert, so the reasons explain the bits that decide,
not the float network. (The reference computes a layer as one integer matrix product: several
times cheaper than the C simulation for the millions of rows a permutation explainer asks for.) Every test transaction the firmware flags
at its operating point is explained with shap's permutation explainer against a background
sample of the training period; the attributions then add up exactly to the logit minus the
expected value (the mean logit over the background), which is checked. The float twin is
explained on the same transactions and background (scaled features in) to show that both
rank the features alike.
"""

from __future__ import annotations

import time
import warnings
from importlib import metadata

import numpy as np
import pandas as pd

from fraudfpga.models.artifacts import FLOAT_MODEL
from fraudfpga.progress import Stopwatch
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (EXPLAIN_PLOT, EXPLAIN_SUMMARY, FIRMWARE_METRICS, NETWORK, PROJECT,
                        REASON_CODES)


ROWS_PER_CALL = 50  # alerts explained per explainer call, between two progress lines


def _shap():
    """shap, with the masking kernels of its tabular masker cached on disk.

    shap compiles its numba kernels without `cache=True`: about 9 s of CPU in every process
    that explains (several per `make all`, more per `make test`). `enable_caching` is what
    `cache=True` calls; the cache sits beside shap's sources, keyed by their content and the
    argument types. The masked model's kernels take the link function as an argument, whose
    type differs in every process, so they cannot be cached and still compile (about 5 s)."""
    with warnings.catch_warnings():  # shap 0.51's colour maps use deprecated matplotlib calls
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    from numba.core.registry import CPUDispatcher
    from shap.maskers import _tabular

    for kernel in vars(_tabular).values():
        if isinstance(kernel, CPUDispatcher):
            kernel.enable_caching()
    return shap


def shap_values(model_function, rows: np.ndarray, background: np.ndarray, permutations: int,
                seed: int, progress=None):
    """(attributions, expected value, model outputs) of `rows` by shap's permutation explainer.

    The rows go through one explainer in calls of ROWS_PER_CALL, so `progress` (a Stopwatch)
    can report them; the explainer draws every row's permutations from NumPy's global
    generator, seeded once when it is made, so the values equal those of a single call."""
    shap = _shap()
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.PermutationExplainer(model_function, masker, seed=seed)
    values, base_values = [], []
    for start in range(0, len(rows), ROWS_PER_CALL):
        explained = explainer(rows[start:start + ROWS_PER_CALL],
                              max_evals=permutations * (2 * rows.shape[1] + 1), silent=True)
        values.append(np.asarray(explained.values, dtype=np.float64))
        base_values.append(np.asarray(explained.base_values, dtype=np.float64).ravel())
        if progress:
            progress.update(min(start + ROWS_PER_CALL, len(rows)), len(rows), "alerts")
    return (np.concatenate(values), float(np.mean(np.concatenate(base_values))),
            model_function(rows))


def reason_codes(values: np.ndarray, features: list[str], top: int) -> list[list[tuple[str, float]]]:
    """The `top` features pushing each logit up most (largest positive contributions first;
    a feature that lowers the logit is a reason only when nothing raises it more)."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    return [[(features[j], float(values[i, j])) for j in row] for i, row in enumerate(order)]


def write_reason_codes(path, data, alerted: np.ndarray, score: dict, threshold: float,
                       codes: list[list[tuple[str, float]]]) -> None:
    """One row per alert: its row (and transaction id), `score` ({column name: values}), the
    threshold, the label, and each reason with its raw value and contribution."""
    table = pd.DataFrame({"row": alerted, **score, "threshold": threshold,
                          "label": data.labels("test")[alerted]})
    transaction_ids = data.column("test", "TRANSACTION_ID")
    if transaction_ids is not None:
        table.insert(0, "TRANSACTION_ID", transaction_ids[alerted])
    for rank in range(len(codes[0]) if codes else 0):
        table[f"reason_{rank + 1}"] = [c[rank][0] for c in codes]
        table[f"contribution_{rank + 1}"] = [c[rank][1] for c in codes]
        table[f"value_{rank + 1}"] = [
            float(data.parts["test"][c[rank][0]].iloc[i]) for i, c in zip(alerted, codes)]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def plot_importance(features: list[str], firmware: np.ndarray, float_twin: np.ndarray,
                    out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(firmware)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    y = np.arange(len(features))
    ax.barh(y + 0.2, firmware[order], height=0.4, label="firmware (integer reference = C simulation)")
    ax.barh(y - 0.2, float_twin[order], height=0.4, label="float twin")
    ax.set_yticks(y, [features[i] for i in order], fontsize=7)
    ax.set(xlabel="mean |SHAP value| over the alerts (logit)",
           title="What drives the firmware's alerts")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def explain_alerts(run: RunFolder, cfg, progress=print) -> None:
    import json

    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    from .codec import FirmwareCodec
    from .csim import CSimulation
    from .network import FixedNetwork

    settings = cfg["explain"]
    data = PreparedData(run.root)
    network = FixedNetwork.load(run.path(NETWORK))
    csim = CSimulation(run.path(PROJECT), network)
    codec = FirmwareCodec(data.scaler, network.input_type, network.output_type)
    features = codec.features
    threshold = json.loads(run.path(FIRMWARE_METRICS).read_text())["operating"]["threshold"]

    def firmware(codes: np.ndarray) -> np.ndarray:
        return codec.logits(network.forward(np.rint(codes).astype(np.int64)))

    float_model = load_model(run.path(FLOAT_MODEL))

    def float_twin(scaled: np.ndarray) -> np.ndarray:
        return float_model(np.asarray(scaled, np.float32), training=False).numpy()[:, 0].astype(np.float64)

    training = np.concatenate([data.inputs("train"), data.inputs("valid")])
    rng = np.random.default_rng(cfg["seed"])
    chosen = rng.choice(len(training), size=min(settings["background"], len(training)),
                        replace=False)
    background = {"scaled": training[chosen]}
    background["codes"] = codec.codes_from_scaled(background["scaled"])
    test_scaled = data.inputs("test")
    test_codes = codec.codes_from_scaled(test_scaled)
    alerted = np.flatnonzero(codec.logits(csim.run(test_codes)) > threshold)
    checked = np.concatenate([test_codes[alerted], background["codes"]])
    differ = int(np.sum(np.any(network.forward(checked) != csim.run(checked), axis=1)))
    if differ:
        raise RuntimeError(f"the firmware's integer reference differs from the C simulation on "
                           f"{differ} of {len(checked)} alerts and background rows: rerun the hls "
                           "step (make hls)")
    progress(f"[explain] {len(alerted):,} alerts at the firmware's threshold {threshold:.4f}; "
             f"background {len(chosen)} training transactions, {settings['permutations']} "
             "permutations per alert")
    if alerted.size == 0:
        raise RuntimeError("the firmware flags no test transaction at its operating point: "
                           "nothing to explain")

    started = time.perf_counter()
    fw_values, fw_expected, fw_logits = shap_values(
        firmware, test_codes[alerted], background["codes"], settings["permutations"],
        cfg["seed"], Stopwatch("[explain] firmware (integer reference)", progress))
    fw_seconds = time.perf_counter() - started
    additivity = float(np.max(np.abs(fw_values.sum(axis=1) - (fw_logits - fw_expected))))
    progress(f"[explain] firmware: {fw_seconds:.1f} s; largest |sum of attributions - (logit - "
             f"expected value)| = {additivity:.2e}")
    if additivity > settings["tolerance"]:
        raise RuntimeError(f"SHAP attributions of the firmware do not add up: {additivity:.3g} > "
                           f"explain.tolerance = {settings['tolerance']:g}")
    float_values, float_expected, _ = shap_values(
        float_twin, test_scaled[alerted], background["scaled"], settings["permutations"],
        cfg["seed"], Stopwatch("[explain] float twin", progress))
    importance = {"firmware": np.abs(fw_values).mean(axis=0),
                  "float": np.abs(float_values).mean(axis=0)}
    rank_correlation = spearman(importance["firmware"], importance["float"])
    top = settings["top"]
    same_top = float(np.mean([set(n for n, _ in a) == set(n for n, _ in b) for a, b in zip(
        reason_codes(fw_values, features, top), reason_codes(float_values, features, top))]))
    progress(f"[explain] firmware vs float twin: Spearman correlation of the global importance "
             f"{rank_correlation:.3f}; same top {top} reasons for {same_top:.1%} of the alerts")

    write_reason_codes(run.path(REASON_CODES), data, alerted, {"logit": fw_logits}, threshold,
                       reason_codes(fw_values, features, top))
    plot_importance(features, importance["firmware"], importance["float"],
                    run.path(EXPLAIN_PLOT))
    write_json(run.path(EXPLAIN_SUMMARY), {
        "model_function": "the firmware's integer reference (hls/network.json): input codes "
                          "in, logit out",
        "reference_vs_c_simulation": {"rows": int(len(checked)), "differ": differ,
                                      "rows_are": "the explained alerts and the background"},
        "explainer": f"shap {metadata.version('shap')} PermutationExplainer, "
                     f"{settings['permutations']} antithetic permutations per alert",
        "alerts": int(len(alerted)), "threshold": threshold,
        "background": {"rows": int(len(chosen)), "from": "training period (train + valid)",
                       "seed": cfg["seed"]},
        "expected_value": {"firmware": fw_expected, "float": float_expected},
        "additivity": {"max_abs_error": additivity, "tolerance": settings["tolerance"],
                       "ok": additivity <= settings["tolerance"]},
        "importance": {"features": features,
                       "firmware": importance["firmware"].tolist(),
                       "float": importance["float"].tolist()},
        "float_vs_firmware": {"spearman": rank_correlation,
                              "min_spearman": settings["min_rank_correlation"],
                              "alike": rank_correlation >= settings["min_rank_correlation"],
                              f"same_top_{top}_share": same_top},
        "seconds": {"firmware": round(fw_seconds, 1),
                    "total": round(time.perf_counter() - started, 1)},
        "kind": "measured on this machine",
    })
