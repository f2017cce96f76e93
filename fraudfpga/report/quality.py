"""The report's model-quality sections: the run's split (one seed: every model's metrics, the
precision-recall and ROC curves at the false-positive rates a bank runs) and several seeds
(`make quality`). Each returns report sections as (heading, paragraphs, table header, rows)."""

from __future__ import annotations

import numpy as np

from fraudfpga.models.metrics import strongest_reference
from fraudfpga.models.statistics import METRICS
from fraudfpga.optional import NOT_AVAILABLE
from fraudfpga.quality import LOWER_IS_BETTER, QUALITY_SUMMARY, seed_cell
from fraudfpga.runfolder import RunFolder

from .common import load

TITLES = {"auc_roc": "AUC ROC", "average_precision": "AP", "precision": "precision",
          "recall": "recall", "false_positive_rate": "false-positive rate"}
SINGLE_RUN_METRICS = ("auc_roc", "average_precision", "card_precision_at_", "precision",
                      "recall", "false_positive_rate")


def metric_title(key: str) -> str:
    """How the report names a metric key of models/metrics.json (CP@k for any k)."""
    if key.startswith("card_precision_at_"):
        return "CP@" + key.removeprefix("card_precision_at_")
    return TITLES.get(key, key)


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
    q = load(run, QUALITY_SUMMARY)
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


ROC_MAX_FPR = 0.05  # the ROC plot's range: operating points run near 1 %


def plot_curves(scores: dict[str, np.ndarray], labels: np.ndarray, period: str, out) -> None:
    """Precision-recall, and ROC on a logarithmic false-positive axis up to 5 %."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    from .common import pyplot

    plt = pyplot()
    for kind, filename in (("roc", "roc.png"), ("pr", "precision_recall.png")):
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        if np.unique(labels).size < 2:
            ax.text(0.5, 0.5, f"n/a: the {period} holds one class only", ha="center")
            fig.savefig(out / filename, dpi=100)
            plt.close(fig)
            continue
        for name, score in scores.items():
            if kind == "roc":
                x, y, _ = roc_curve(labels, score)
                keep = (x > 0) & (x <= ROC_MAX_FPR)
                at_one = np.interp(0.01, x, y)
                ax.plot(x[keep], y[keep], label=f"{name} (TPR {at_one:.3f} at 1 % FPR)")
            else:
                y, x, _ = precision_recall_curve(labels, score)
                ax.plot(x, y, label=f"{name} (AP {average_precision_score(labels, score):.3f})")
        if kind == "roc":
            ax.axvline(0.01, color="grey", lw=0.8, ls=":")
            ax.set(xscale="log", xlim=(1e-4, ROC_MAX_FPR), xlabel="false-positive rate (log)",
                   ylabel="true-positive rate", title=f"ROC up to 5 % FPR, {period}")
        else:
            ax.axhline(labels.mean(), color="grey", lw=0.8, ls=":", label="constant score")
            ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall, {period}")
        ax.legend(loc="upper left" if kind == "roc" else "upper right", fontsize=7)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(out / filename, dpi=100)
        plt.close(fig)


def model_section(metrics: dict) -> tuple:
    """Every model's metrics on the run's test set, one training seed."""
    from .common import fmt

    models, period = metrics["models"], metrics["test_period"]
    cp = next(k for k in models["qkeras"] if k.startswith("card_precision_at_"))
    absent = {k: why for m in models.values() for k, why in m.get(NOT_AVAILABLE, {}).items()}
    rows = [[label(metrics, name), fmt(m["auc_roc"]), fmt(m["average_precision"]),
             fmt(m.get(cp), 3), fmt(m["threshold"], 3), fmt(m["precision"], 3),
             fmt(m["recall"], 3), fmt(m["f1"], 3), fmt(m["false_positive_rate"], 4),
             f"{m['confusion_matrix']['tp']}/{m['confusion_matrix']['fp']}/"
             f"{m['confusion_matrix']['fn']}/{m['confusion_matrix']['tn']}"]
            for name, m in models.items()]
    text = [
        f"Training protocol: {metrics['protocol']}. Operating point: "
        f"{metrics['operating']['qkeras']['rule']} (target "
        f"{metrics['operating']['qkeras']['target_fpr']:.2%}); the firmware uses the QKeras "
        "model's alert rate, the forest firmware its own selection fit's. Confusion matrix as "
        "TP/FP/FN/TN. Measured on this machine, one training seed.",
        *comparison_lines(metrics),
        *[f"n/a {metric_title(k)}: {why}." for k, why in absent.items()],
        "![precision-recall](precision_recall.png)", "![roc](roc.png)"]
    return (f"Model quality ({period})", text,
            ["model", "AUC ROC", "AP", metric_title(cp), "threshold", "precision", "recall", "F1",
             "FPR", "TP/FP/FN/TN"], rows)
