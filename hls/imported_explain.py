"""Reason codes for your imported model's alerts, from the firmware itself.

The explained function is the firmware's own score on input codes: its integer reference
(`FixedForest.forward` or `FixedNetwork.forward`, proved equal to the golden model bit for bit by
the import step), read as a score affine in its output (a forest's probability or margin, a
network's logit). Every test transaction the firmware flags at its operating point is explained
with shap's permutation explainer against a background sample of the training period, in codes;
the attributions add up to the score minus the expected value (checked). For the highest alerts
the same explainer is run on your library's own predictions (raw values in, the same background
rows and permutations): the correlation of the two says whether the firmware's reasons are your
model's reasons.
"""

from __future__ import annotations

import json
import time
from importlib import metadata

import numpy as np

from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.progress import Stopwatch
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import (IMPORTED_CONTRACT, IMPORTED_EXPLAIN, IMPORTED_FIXED, IMPORTED_GOLDEN,
                        IMPORTED_METRICS, IMPORTED_REASONS)
from .explain import reason_codes, shap_values, write_reason_codes
from .forest import SCORE_SENSES
from .input_contract import InputContract

CHECKED_ALERTS = 8  # alerts explained twice: the firmware's function and the library's


def _forest_score(forest, output_codes):
    return forest.sense.fraud_linear(forest.output_type.to_float(output_codes[:, 0]))


def _network_score(network, output_codes):
    return network.output_type.to_float(output_codes[:, 0])


def _as_logit(sense: str, value: np.ndarray) -> np.ndarray:
    return value if sense == "fraud margin" else SCORE_SENSES["fraud margin"].output(
        SCORE_SENSES[sense].probability(value))


# by generator: (the explained score of output codes, its name, the library's output in its
# score sense -> the same score)
SCORES = {"forest": (_forest_score, "the firmware's fraud score (probability or margin, as its "
                                    "sense)",
                     lambda sense, value: SCORE_SENSES[sense].fraud_linear(value)),
          "network": (_network_score, "the firmware's logit", _as_logit)}


def explain_imported(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData

    from .imported_flow import load_fixed
    from .imported_models import read_model

    settings = cfg["explain"]
    data = PreparedData(run.root)
    kind, fixed = load_fixed(run.path(IMPORTED_FIXED))
    score_of, explained, library_score = SCORES[kind]
    contract = InputContract.from_dict(json.loads(run.path(IMPORTED_CONTRACT).read_text()))
    metrics = json.loads(run.path(IMPORTED_METRICS).read_text())
    threshold = metrics["operating"]["imported_firmware"]["threshold"]
    golden = np.load(run.path(IMPORTED_GOLDEN))
    test_codes = golden["test_input_codes"]
    scores = fixed.fraud_scores(golden["test_output_codes"])
    alerted = np.flatnonzero(scores > threshold)
    if alerted.size == 0:
        raise RuntimeError("your model's firmware flags no test transaction at its operating "
                           "point: nothing to explain")

    def firmware(codes: np.ndarray) -> np.ndarray:
        return score_of(fixed, fixed.forward(np.rint(codes).astype(np.int64)))

    raw_train = np.concatenate([data.parts[p][contract.features].to_numpy(np.float64)
                                for p in ("train", "valid")])
    rng = np.random.default_rng(cfg["seed"])
    chosen = rng.choice(len(raw_train), size=min(settings["background"], len(raw_train)),
                        replace=False)
    background_raw = raw_train[chosen]
    background = contract.codes(background_raw)
    progress(f"[explain] imported: {len(alerted):,} alerts at its threshold {threshold:.4f}; "
             f"permutation SHAP of {explained} against {len(chosen)} training transactions")
    watch = Stopwatch("[explain] imported", progress)
    values, expected, outputs = shap_values(firmware, test_codes[alerted], background,
                                            settings["permutations"], cfg["seed"], watch)
    additivity = float(np.max(np.abs(values.sum(axis=1) - (outputs - expected))))

    model = read_model(cfg["imported"]["model"])
    sense = model.score_sense

    def library(raw: np.ndarray) -> np.ndarray:
        return library_score(sense, model.library_output(raw))

    raw_test = data.parts["test"][contract.features].to_numpy(np.float64)
    checked = alerted[np.argsort(-scores[alerted], kind="stable")[:CHECKED_ALERTS]]
    library_values, _, _ = shap_values(library, raw_test[checked], background_raw,
                                       settings["permutations"], cfg["seed"])
    mine = values[np.searchsorted(alerted, checked)]
    correlation = float(np.corrcoef(mine.ravel(), library_values.ravel())[0, 1])
    progress(f"[explain] imported: additivity {additivity:.1e}; on the {len(checked)} highest "
             f"alerts against {model.library}'s own values: correlation {correlation:.4f}, "
             f"largest difference {np.abs(mine - library_values).max():.3f}")
    if additivity > settings["tolerance"]:
        raise RuntimeError(f"the imported firmware's attributions do not add up: {additivity:.3g}"
                           f" > explain.tolerance = {settings['tolerance']:g}")
    write_reason_codes(run.path(IMPORTED_REASONS), data, alerted, {"score": scores[alerted]},
                       threshold, reason_codes(values, contract.features, settings["top"]))
    write_json(run.path(IMPORTED_EXPLAIN), {
        "model_function": f"{explained}, from its integer reference (equal to the golden model)",
        "explainer": f"shap {metadata.version('shap')} PermutationExplainer, "
                     f"{settings['permutations']} antithetic permutations, inputs in codes",
        "alerts": int(len(alerted)), "threshold": threshold,
        "background": {"rows": int(len(chosen)), "from": "training period (train + valid)",
                       "seed": cfg["seed"]},
        "expected_value": expected,
        "additivity": {"max_abs_error": additivity, "tolerance": settings["tolerance"],
                       "ok": additivity <= settings["tolerance"]},
        "check_against_library": {
            "alerts": int(len(checked)), "library": model.library,
            "library_function": "your library's own predictions on raw values, the same "
                                "explainer, background rows and permutations",
            "correlation": correlation,
            "max_abs_difference": float(np.abs(mine - library_values).max()),
            "mean_abs_difference": float(np.abs(mine - library_values).mean())},
        "importance": {"features": contract.features,
                       "firmware": np.abs(values).mean(axis=0).tolist()},
        "seconds": round(time.perf_counter() - watch.started, 1),
        "kind": "measured on this machine",
    })


def _model_file(cfg) -> list[str]:
    return [cfg["imported"]["model"]] if cfg["imported"]["model"] else []


register(Step(
    name="imported_explain", command="explain",
    help="reason codes of your imported model's alerts: permutation SHAP of its firmware's "
         "integer reference, checked against your library's own values on the highest alerts",
    reads=("seed", "explain", "imported.model"),
    inputs=(IMPORTED_FIXED, IMPORTED_GOLDEN, IMPORTED_CONTRACT, IMPORTED_METRICS,
            *SPLIT_FILES.values(), SCALER, DATA_SUMMARY),
    outputs=(IMPORTED_REASONS, IMPORTED_EXPLAIN), body=explain_imported,
    external_inputs=_model_file,
    code=("fraudfpga.hls.imported_explain", "fraudfpga.hls.explain", "fraudfpga.hls.forest",
          "fraudfpga.hls.network", "fraudfpga.hls.imported_flow", "fraudfpga.hls.imported_models",
          "fraudfpga.hls.imported_networks", "fraudfpga.hls.input_contract",
          "fraudfpga.hls.fixed"),
    family="imported", background=True, niceness=10))
