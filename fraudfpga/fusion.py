"""The fusion study (`make fusion`, part of `all`): would the network and the forest side by side
in one top, their scores combined by a fixed-point combiner, catch more fraud than the better of
the two alone?

The combiner is linear: z = a * logit + b * p, with the network firmware's logit and the forest
firmware's output as a fraud score affine in its codes (`ScoreSense.fraud_linear`): for a random
forest p = 1 - its mean genuine probability, for boosted trees p = its margin (in the fused top:
two constant multiplications and one addition; constants drop out of the ranking). It is
fitted by logistic regression on the validation window, on the scores of the selection fits
(the models fitted without that window), quantized to the two firmwares' output types; the
coefficients are then scaled so that the larger is just under 1 (a positive scale changes no
ranking) and rounded to `fusion.coefficient_bits` signed bits.

The decision is taken on the validation window only: the combiner's AP there is measured out of
fold (time-ordered blocks of the window: each block is scored by a combiner fitted on the
others), so the rows that fit the two coefficients do not also grade them. The fused top is
worth building only if that AP is above the better single firmware's validation AP. The fused
design's test-set metrics are computed either way, exactly, from the two firmwares' verified
output codes (the golden vectors every RTL was checked against), and reported beside the single
firmwares'; they do not decide.
"""

from __future__ import annotations

import json

import numpy as np

from fraudfpga.hls.artifacts import FOREST_FIXED, FOREST_GOLDEN, FOREST_VALID_SCORES, GOLDEN, NETWORK
from fraudfpga.models.artifacts import DATA_SUMMARY, SPLIT_FILES, VALID_SCORES
from fraudfpga.optional import shown

from .registry import Step, register
from .runfolder import RunFolder, write_json

FUSION = "fusion/fusion.json"


def coefficient_type(bits: int):
    from fraudfpga.hls.fixed import FixedType

    return FixedType(bits, 1, rounding="RND", overflow="SAT")


def quantized_coefficients(a: float, b: float, bits: int) -> tuple[float, float]:
    """(a, b) scaled so the larger magnitude is the coefficient type's largest value, rounded
    to that type (the ranking of a*x + b*y does not change with a positive scale)."""
    t = coefficient_type(bits)
    scale = t.to_float(np.array([t.max_code]))[0] / max(abs(a), abs(b))
    codes = t.codes_from_float(np.array([a * scale, b * scale]))
    qa, qb = t.to_float(codes)
    return float(qa), float(qb)


def fit_combiner(features: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float, float]:
    """Logistic regression of the label on (logit, p): its coefficients and intercept."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=2000, random_state=seed).fit(features, labels)
    return float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0])


def out_of_fold_scores(features: np.ndarray, labels: np.ndarray, folds: int, bits: int,
                       seed: int) -> np.ndarray:
    """Each time-ordered block of the validation window scored by the quantized combiner fitted
    on the other blocks."""
    scores = np.empty(len(labels))
    for block in np.array_split(np.arange(len(labels)), folds):
        rest = np.setdiff1d(np.arange(len(labels)), block)
        if np.unique(labels[rest]).size < 2:
            raise ValueError(f"fusion.folds={folds}: without rows {block[0]}-{block[-1]} the "
                             f"validation window holds one class ({int(labels.sum())} frauds in "
                             f"{len(labels):,} rows); use fewer folds or a wider window")
        a, b, _ = fit_combiner(features[rest], labels[rest], seed)
        qa, qb = quantized_coefficients(a, b, bits)
        scores[block] = features[block] @ np.array([qa, qb])
    return scores


def ranking_metrics(labels: np.ndarray, score: np.ndarray, day, card, top_k: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from fraudfpga.models.metrics import average_precision, card_precision_at_k, card_precision_missing

    two_classes = np.unique(labels).size == 2
    return {"average_precision": average_precision(labels, score),
            "auc_roc": float(roc_auc_score(labels, score)) if two_classes else None,
            f"card_precision_at_{top_k}": (
                float(card_precision_at_k(day, card, labels, score, top_k))
                if card_precision_missing(day, card) is None and two_classes else None)}


def study_fusion(run: RunFolder, cfg, progress=print) -> None:
    import pandas as pd

    from fraudfpga.hls.forest import FixedForest
    from fraudfpga.hls.network import FixedNetwork
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.metrics import average_precision

    fusion_cfg, top_k, seed = cfg["fusion"], cfg["evaluation"]["top_k"], cfg["seed"]
    bits, folds = fusion_cfg["coefficient_bits"], fusion_cfg["folds"]
    data = PreparedData(run.root)
    network = FixedNetwork.load(run.path(NETWORK))
    forest = FixedForest.load(run.path(FOREST_FIXED))
    net_type, forest_type = network.output_type, forest.output_type
    # Validation: the selection fits' scores as the firmwares would give them.
    valid_labels = data.labels("valid")
    logit = net_type.to_float(net_type.codes_from_float(
        pd.read_parquet(run.path(VALID_SCORES))["qkeras"].to_numpy()))
    output = forest.sense.output(pd.read_parquet(run.path(FOREST_VALID_SCORES))["forest"].to_numpy())
    p_fraud = forest.sense.fraud_linear(forest_type.to_float(forest_type.codes_from_float(output)))
    valid_features = np.column_stack([logit, p_fraud])
    fused_valid = out_of_fold_scores(valid_features, valid_labels, folds, bits, seed)
    valid = {"rows": int(len(valid_labels)), "frauds": int(valid_labels.sum()), "folds": folds,
             "network": average_precision(valid_labels, logit),
             "forest": average_precision(valid_labels, p_fraud),
             "fused_out_of_fold": average_precision(valid_labels, fused_valid)}
    a, b, intercept = fit_combiner(valid_features, valid_labels, seed)
    qa, qb = quantized_coefficients(a, b, bits)
    # Test: the verified output codes of both firmwares, combined exactly.
    net_codes = np.load(run.path(GOLDEN))["test_output_codes"]
    forest_codes = np.load(run.path(FOREST_GOLDEN))["test_output_codes"]
    test_logit = net_type.to_float(net_codes[:, 0])
    test_p = forest.sense.fraud_linear(forest_type.to_float(forest_codes[:, 0]))
    fused_test = qa * test_logit + qb * test_p
    labels, day, card = data.labels("test"), data.column("test", "day"), data.column("test", "card")
    test = {name: ranking_metrics(labels, score, day, card, top_k) for name, score in (
        ("network_firmware", test_logit), ("forest_firmware", test_p), ("fused", fused_test))}
    best_single = max(("network", "forest"), key=lambda name: valid[name] or -1.0)
    gain = (valid["fused_out_of_fold"] - valid[best_single]
            if None not in (valid["fused_out_of_fold"], valid[best_single]) else None)
    build = gain is not None and gain > 0
    decision = {
        "build": build, "better_single": best_single, "valid_ap_gain": gain,
        "why": (f"the combiner's out-of-fold validation AP {shown(valid['fused_out_of_fold'], '.4f')} "
                f"is {'above' if build else 'not above'} the {best_single} firmware's "
                f"{shown(valid[best_single], '.4f')}"),
        "built": False,
        "not_built": ("the fused top is not generated: " + (
            "the combiner does not improve validation AP" if not build else
            "this version of the toolkit builds the network and the forest tops only; the "
            "combiner's coefficients are above"))}
    write_json(run.path(FUSION), {
        "combiner": {"form": f"a * network logit + b * forest fraud score (from its "
                             f"{forest.score_sense})",
                     "a": qa, "b": qb, "type": str(coefficient_type(bits)),
                     "fitted": {"a": a, "b": b, "intercept": intercept},
                     "fitted_on": "validation window, selection fits' scores quantized to the "
                                  "firmwares' output types (logistic regression)"},
        "valid": valid, "test": test, "top_k": top_k, "decision": decision,
        "what": "validation AP out of fold for the combiner (time-ordered blocks); test metrics "
                "from both firmwares' verified output codes, combined exactly"})
    progress(f"[fusion] validation AP: network {shown(valid['network'], '.4f')}, forest "
             f"{shown(valid['forest'], '.4f')}, combined {shown(valid['fused_out_of_fold'], '.4f')} (out of "
             f"fold, {folds} blocks); combiner {qa:+.4f} * logit {qb:+.4f} * p "
             f"({coefficient_type(bits)})")
    progress(f"[fusion] test AP: network firmware {shown(test['network_firmware']['average_precision'], '.4f')}, "
             f"forest firmware {shown(test['forest_firmware']['average_precision'], '.4f')}, combined "
             f"{shown(test['fused']['average_precision'], '.4f')}; {decision['why']}: "
             f"{'worth building' if build else 'not built'}")


register(Step(
    name="fusion", command="fusion",
    help="would the network and the forest combined by a fixed-point linear combiner beat the "
         "better one? fitted and decided on the validation window, test metrics from both "
         "firmwares' verified codes",
    reads=("seed", "fusion", "evaluation.top_k"),
    inputs=(VALID_SCORES, FOREST_VALID_SCORES, GOLDEN, FOREST_GOLDEN, NETWORK, FOREST_FIXED,
            SPLIT_FILES["valid"], SPLIT_FILES["test"], DATA_SUMMARY),
    outputs=(FUSION,), body=study_fusion,
    code=("fraudfpga.fusion", "fraudfpga.hls.fixed", "fraudfpga.hls.forest",
          "fraudfpga.hls.network", "fraudfpga.models.metrics", "fraudfpga.optional"),
    family="forest"))
