"""The report's model sections: quality on the run's split, several seeds (make quality) and the
reason codes of the firmware's alerts (make explain). Each returns report sections as
(heading, paragraphs, table header, table rows)."""

from __future__ import annotations

import json

import pandas as pd

from fraudfpga.hls.artifacts import EXPLAIN_SUMMARY, REASON_CODES
from fraudfpga.models.metrics import strongest_reference
from fraudfpga.models.statistics import METRICS
from fraudfpga.optional import NOT_AVAILABLE
from fraudfpga.quality import LOWER_IS_BETTER, QUALITY_SUMMARY, seed_cell
from fraudfpga.runfolder import RunFolder

TITLES = {"auc_roc": "AUC ROC", "average_precision": "AP", "precision": "precision",
          "recall": "recall", "false_positive_rate": "false-positive rate"}
SINGLE_RUN_METRICS = ("auc_roc", "average_precision", "card_precision_at_", "precision",
                      "recall", "false_positive_rate")


def metric_title(key: str) -> str:
    """How the report names a metric key of models/metrics.json (CP@k for any k)."""
    if key.startswith("card_precision_at_"):
        return "CP@" + key.removeprefix("card_precision_at_")
    return TITLES.get(key, key)


def _load(run: RunFolder, name: str) -> dict:
    return json.loads(run.path(name).read_text())


def label(metrics: dict, name: str) -> str:
    return {"firmware": "firmware (C simulation)"}.get(name) or metrics["labels"].get(name, name)


def comparison_lines(metrics: dict) -> list[str]:
    """Which of the firmware and the strongest reference is better on each metric, one seed."""
    models = metrics["models"]
    strongest = strongest_reference(metrics)
    if strongest is None or "firmware" not in models:
        return []
    lines = []
    keys = [next((k for k in models["firmware"] if k.startswith(key)), key)
            for key in SINGLE_RUN_METRICS]
    for key, name in ((k, metric_title(k)) for k in keys):
        if models["firmware"].get(key) is None or models[strongest].get(key) is None:
            continue
        firmware, reference = models["firmware"][key], models[strongest][key]
        if firmware == reference:
            verdict = "equal"
        else:
            firmware_higher = firmware > reference
            firmware_better = firmware_higher != (key in LOWER_IS_BETTER)
            verdict = f"{'firmware' if firmware_better else label(metrics, strongest)} better"
        lines.append(f"{name}: firmware {firmware:.4f}, {label(metrics, strongest)} "
                     f"{reference:.4f} ({verdict})")
    return [f"The strongest reference (highest test AP) is the {label(metrics, strongest)}. "
            "One training seed: " + "; ".join(lines) + ". `make quality` says which differences "
            "hold over several seeds."]


def seeds_section(run: RunFolder) -> list[tuple]:
    if QUALITY_SUMMARY not in run.optional_inputs:
        why = run.stale_inputs.get(QUALITY_SUMMARY)
        return [("Model quality over training seeds (make quality)", [
            f"Left out: {why}." if why else
            "Not run for this run: `make quality` trains every model over several training "
            "seeds and gives means, bootstrap intervals and the firmware's paired difference "
            "with the strongest reference."], None, None)]
    q = _load(run, QUALITY_SUMMARY)
    labels = q["labels"]
    k = q["card_precision_k"]
    confidence = f"{100 * q['confidence']:.0f} %"
    absent = q.get(NOT_AVAILABLE, {})
    rows = [[labels.get(name, name)] + [seed_cell(metrics.get(key)) for key in METRICS]
            for name, metrics in q["models"].items()]
    strongest = q["strongest_reference"]
    paired = q["firmware_minus_strongest"]
    ap = paired["average_precision"]
    goals = q["goals"]
    verdicts = "; ".join(f"{metric.replace('_', ' ')}: {d['mean']:+.4f} "
                         f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}], {labels.get(d['better'], d['better'])}"
                         for metric, d in paired.items())
    text = [
        f"{len(q['seeds'])} training seeds {q['seeds']} on the same data (data seed "
        f"{q['data_seed']}); {q['protocol']}. Operating point: {q['operating_point']}. Each cell: "
        f"mean ± standard deviation over the seeds [{confidence} interval of the mean from "
        f"{q['bootstrap_resamples']} bootstrap resamples of the test period's "
        f"{q.get('resampling_unit', 'cards')}]. "
        f"{q['kind'].capitalize()}, {q['seconds']:.0f} s.",
        f"Firmware − {labels.get(strongest, strongest)} (the strongest reference by mean test AP), "
        f"paired by seed: {verdicts}.",
    ]
    for name, comparison in q.get("paired_differences", {}).items():
        if comparison["first"] == "firmware":
            continue
        d = comparison["metrics"]["average_precision"]
        text.append(f"{labels.get(comparison['first'], comparison['first'])} − "
                    f"{labels.get(comparison['second'], comparison['second'])}, AP paired by "
                    f"seed: {d['mean']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}], "
                    f"{labels.get(d['better'], d['better'])}.")
    ap_goal = goals["firmware_ap_at_least_strongest"]
    if not ap_goal["met"]:
        text.append(f"**The firmware does not reach the strongest reference**: its mean AP "
                    f"{ap_goal['firmware']:.4f} is {ap_goal['strongest'] - ap_goal['firmware']:.4f} "
                    f"below the {labels.get(strongest, strongest)}'s {ap_goal['strongest']:.4f} "
                    f"(paired interval [{ap['ci'][0]:+.4f}, {ap['ci'][1]:+.4f}]) at the default "
                    "network size; README 'Model quality' lists the sizes and settings tried.")
    else:
        text.append(f"The firmware's mean AP {ap_goal['firmware']:.4f} is at least the strongest "
                    f"reference's {ap_goal['strongest']:.4f}.")
    for goal, state in goals.items():
        verdict = "met" if state["met"] else "not met"
        if "target" in state:
            value = state.get("firmware", state.get("forest_firmware"))
            text.append(f"Target {goal.replace('_', ' ')}: {value:.4f}, {verdict}.")
        elif "rule" in state:
            text.append(f"Goal {goal.replace('_', ' ')} ({state['rule']}): interval "
                        f"[{state['interval'][0]:+.4f}, {state['interval'][1]:+.4f}], {verdict}.")
    return [("Model quality over training seeds (make quality)", text,
             ["model", "AUC ROC", "AP", f"CP@{k}", "precision", "recall", "FPR"], rows)]


def reason_codes_section(run: RunFolder, examples: int = 8) -> list[tuple]:
    summary = _load(run, EXPLAIN_SUMMARY)
    table = pd.read_csv(run.path(REASON_CODES))
    top = sum(1 for c in table.columns if c.startswith("reason_"))
    shown = table.sort_values("logit", ascending=False).head(examples)
    id_column = "TRANSACTION_ID" if "TRANSACTION_ID" in table.columns else "row"
    rows = [[int(r[id_column]), f"{r['logit']:.3f}", "fraud" if r["label"] == 1 else "genuine"]
            + [f"{r[f'reason_{i}']} = {r[f'value_{i}']:.4g} ({r[f'contribution_{i}']:+.3f})"
               for i in range(1, top + 1)]
            for _, r in shown.iterrows()]
    add = summary["additivity"]
    alike = summary["float_vs_firmware"]
    same_top = next(v for k, v in alike.items() if k.startswith("same_top_"))
    text = [
        f"SHAP values of the firmware's own logit for each of the {summary['alerts']:,} test "
        f"transactions it flags (logit > {summary['threshold']:.4f}). Model function: "
        f"{summary['model_function']}; {summary['explainer']}; background: "
        f"{summary['background']['rows']} transactions of the {summary['background']['from']}; "
        f"expected value {summary['expected_value']['firmware']:.4f}. Every alert's codes are in "
        f"`{REASON_CODES}`.",
        f"Check: the attributions add up to the logit minus the expected value within "
        f"{add['max_abs_error']:.1e} (tolerance {add['tolerance']:g}): "
        f"{'passed' if add['ok'] else 'FAILED'}.",
        f"Float twin explained on the same alerts and background: Spearman correlation of the "
        f"global importance {alike['spearman']:.3f} (warning below {alike['min_spearman']}): "
        f"{'the two rank the features alike' if alike['alike'] else '**they rank the features differently**'}; "
        f"the same top {top} reasons for {same_top:.1%} of the alerts.",
        "![reason codes](shap_importance.png)",
        f"The {len(rows)} highest-scored alerts with their top {top} reasons (feature = raw "
        "value (contribution to the logit)):",
    ]
    return [("Reason codes of the firmware's alerts (make explain)", text,
             ["transaction", "logit", "label", *[f"reason {i}" for i in range(1, top + 1)]],
             rows)]

