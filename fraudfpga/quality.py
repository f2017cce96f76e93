"""`make quality`: every model over several training seeds on the same data.

For each training seed (seed, seed+1, ...; the data stay those of data.seed) the networks are
trained and refitted as in the train step, the tree references are fitted with the settings the
train step's search found (the search itself is not repeated per seed), and the QKeras model is
converted to firmware whose C simulation gives the firmware's scores. The summary holds, per
model and metric, the mean and standard deviation over the seeds and a card-level bootstrap
interval of the seed-mean (models/statistics.py), and the paired difference between the firmware
and the strongest reference (the reference with the highest mean test AP: the comparison least
favourable to the firmware).
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd

from fraudfpga.models.artifacts import DATA_SUMMARY, REFERENCE_SEARCH, SCALER, SPLIT_FILES
from fraudfpga.models.flow import PROTOCOLS
from fraudfpga.models.metrics import FIRMWARE_ROWS
from fraudfpga.models.operating import DELAY_ALERT_RATE, VALIDATION
from fraudfpga.models.statistics import METRICS, TestPeriod, bootstrap, interval

from .optional import NOT_AVAILABLE, figure, na
from .registry import Step, register
from .runfolder import RunFolder, atomic_path, write_json

QUALITY_SEEDS = "quality/seeds.json"
QUALITY_SUMMARY = "quality/summary.json"
QUALITY_TABLE = "quality/table.md"
QUALITY_SCORES = "quality/test_scores.parquet"
SCRATCH = "quality/work"

# Goals of issue 11 for the firmware (mean over the seeds, default data).
GOALS = {"average_precision": 0.68, "auc_roc": 0.87}
# Goal of issue 21 for the forest firmware's mean test AP.
FOREST_AP_GOAL = 0.685
LOWER_IS_BETTER = {"false_positive_rate"}
METRIC_NAMES = {"auc_roc": "AUC ROC", "average_precision": "AP", "card_precision": "CP@k",
                "precision": "precision", "recall": "recall",
                "false_positive_rate": "false-positive rate"}


def seed_models(run: RunFolder, cfg, seed: int, reference_params: dict, progress) -> dict:
    """Test scores, thresholds and metrics of every model trained with one seed."""
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.hls.flow import compile_firmware, evaluate_firmware
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.train import train_all

    data = PreparedData(run.root)
    trained = train_all(data, cfg, seed, reference_params, progress)
    results = {name: {"score": t.scores["test"], "threshold": t.operating["threshold"],
                      "metrics": t.metrics} for name, t in trained.items()}
    project = run.path(f"{SCRATCH}/seed_{seed}")
    _, network, csim = compile_firmware(trained["qkeras"].model, cfg["hls"], project,
                                        lambda _: None)
    codec = FirmwareCodec(data.scaler, network.input_type, network.output_type)
    parts = ("valid", "delay", "test") if cfg["train"]["refit"] else ("valid", "test")
    codes = {part: csim.run(codec.codes_from_scaled(data.inputs(part))) for part in parts}
    operating, metrics = evaluate_firmware(data, codes, codec, trained["qkeras"].operating,
                                           cfg["evaluation"])
    results["firmware"] = {"score": codec.logits(codes["test"]),
                           "threshold": operating["threshold"], "metrics": metrics}
    shutil.rmtree(project, ignore_errors=True)
    if "forest" in cfg["firmware"]["families"]:
        from fraudfpga.hls.forest_flow import train_forest_firmware

        forest_project = run.path(f"{SCRATCH}/forest_seed_{seed}")
        fitted = train_forest_firmware(data, cfg, seed, forest_project, lambda _: None)
        results["forest_firmware"] = {"score": fitted["scores"]["test"],
                                      "threshold": fitted["operating"]["threshold"],
                                      "metrics": fitted["metrics"]}
        shutil.rmtree(forest_project, ignore_errors=True)
    return results


def better(metric: str, low: float, high: float, second: str, first: str = "firmware") -> str:
    """Which model the interval of (first - second) favours; a false-positive rate is better
    lower."""
    if low <= 0 <= high:
        return "neither (the interval contains 0)"
    higher = first if low > 0 else second
    if metric in LOWER_IS_BETTER:
        return second if higher == first else first
    return higher


def summarize(per_seed: list[dict], period: TestPeriod, cfg, progress) -> dict:
    settings = cfg["quality"]
    names = list(per_seed[0])
    prepared = {name: [period.prepare(s[name]["score"], s[name]["threshold"]) for s in per_seed]
                for name in names}
    plain = np.ones(period.n_cards)
    point = {name: [period.metrics(p, plain) for p in prepared[name]] for name in names}
    references = [n for n in names if n not in ("qkeras", "float", *FIRMWARE_ROWS)]
    strongest = max(references, key=lambda n: np.mean([m["average_precision"] for m in point[n]]))
    progress(f"[quality] bootstrap: {settings['bootstrap']} resamples of the test period's "
             f"{period.n_cards:,} {period.unit}")
    samples = bootstrap(period, prepared, settings["bootstrap"], cfg["seed"], progress)
    summary = {}
    for name in names:
        summary[name] = {}
        for metric in period.metric_names:
            values = np.array([m[metric] for m in point[name]])
            low, high = interval(samples[name][metric], settings["confidence"])
            summary[name][metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)),
                                     "per_seed": values.tolist(), "ci": [low, high]}

    def paired(first: str, second: str) -> dict:
        result = {}
        for metric in period.metric_names:
            differences = np.array([f[metric] - r[metric]
                                    for f, r in zip(point[first], point[second])])
            low, high = interval(samples[first][metric] - samples[second][metric],
                                 settings["confidence"])
            result[metric] = {"mean": float(differences.mean()),
                              "std": float(differences.std(ddof=1)),
                              "per_seed": differences.tolist(), "ci": [low, high],
                              "better": better(metric, low, high, second, first)}
        return result

    comparisons = [("firmware", strongest)]
    if "forest_firmware" in names:
        comparisons += [("forest_firmware", strongest), ("forest_firmware", "firmware")]
    differences = {f"{a} - {b}": {"first": a, "second": b, "metrics": paired(a, b)}
                   for a, b in comparisons}
    firmware = summary["firmware"]
    goals = {
        "firmware_ap_at_least_strongest": {
            "met": firmware["average_precision"]["mean"] >= summary[strongest]["average_precision"]["mean"],
            "firmware": firmware["average_precision"]["mean"],
            "strongest": summary[strongest]["average_precision"]["mean"]},
        **{f"firmware_{metric}_at_least_{target}": {"met": firmware[metric]["mean"] >= target,
                                                    "firmware": firmware[metric]["mean"],
                                                    "target": target}
           for metric, target in GOALS.items()},
    }
    if "forest_firmware" in names:
        forest_ap = summary["forest_firmware"]["average_precision"]["mean"]
        over_network = differences["forest_firmware - firmware"]["metrics"]["average_precision"]
        over_strongest = differences[f"forest_firmware - {strongest}"]["metrics"]["average_precision"]
        goals |= {
            f"forest_firmware_ap_at_least_{FOREST_AP_GOAL}": {
                "met": forest_ap >= FOREST_AP_GOAL, "forest_firmware": forest_ap,
                "target": FOREST_AP_GOAL},
            "forest_firmware_ap_above_network_firmware": {
                "met": over_network["ci"][0] > 0, "interval": over_network["ci"],
                "rule": "the paired interval of forest - network firmware lies above 0"},
            "forest_firmware_not_worse_than_strongest": {
                "met": over_strongest["ci"][1] >= 0, "interval": over_strongest["ci"],
                "rule": "the paired interval of forest firmware - strongest reference contains "
                        "0 or lies above it (moonshot)"},
        }
    return {"models": summary, "strongest_reference": strongest,
            "firmware_minus_strongest": differences[f"firmware - {strongest}"]["metrics"],
            "paired_differences": differences, "goals": goals,
            "resampling_unit": period.unit, NOT_AVAILABLE: period.not_available}


def seed_cell(m: dict | None) -> str:
    """One model's figure over the seeds: mean ± std [interval], or n/a (the reason follows
    the table)."""
    if m is None:
        return na()
    return f"{m['mean']:.4f} ± {m['std']:.4f} [{m['ci'][0]:.4f}, {m['ci'][1]:.4f}]"


def markdown_table(result: dict, labels: dict, top_k: int) -> str:
    confidence = f"{100 * result['confidence']:.0f} %"
    lines = [f"Mean ± standard deviation over {len(result['seeds'])} training seeds "
             f"{result['seeds']}, [{confidence} bootstrap interval of the mean, resampling "
             f"{result.get('resampling_unit', 'cards')}]; "
             f"operating point: {result['operating_point']}.", "",
             "| model | AUC ROC | AP | CP@" + str(top_k) + " | precision | recall | FPR |",
             "|---|---|---|---|---|---|---|"]
    absent = result.get(NOT_AVAILABLE, {})
    for name, metrics in result["models"].items():
        cells = [seed_cell(metrics.get(k)) for k in METRICS]
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
    lines += [f"{METRIC_NAMES[k].replace('@k', f'@{top_k}')}: n/a, {why}." for k, why in absent.items()]
    strongest = result["strongest_reference"]
    for comparison in result["paired_differences"].values():
        first, second = comparison["first"], comparison["second"]
        note = " (the strongest reference by mean test AP)" if second == strongest else ""
        lines += ["", f"Paired difference {labels.get(first, first)} − "
                      f"{labels.get(second, second)}{note}:", "",
                  "| metric | mean ± std over seeds | bootstrap interval | better |",
                  "|---|---|---|---|"]
        for metric, d in comparison["metrics"].items():
            name = METRIC_NAMES[metric].replace("@k", f"@{top_k}")
            lines.append(f"| {name} | {d['mean']:+.4f} ± {d['std']:.4f} | "
                         f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}] | "
                         f"{labels.get(d['better'], d['better'])} |")
    return "\n".join(lines) + "\n"


def measure_quality(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData

    settings = cfg["quality"]
    seeds = [cfg["seed"] + i for i in range(settings["seeds"])]
    search = json.loads(run.path(REFERENCE_SEARCH).read_text())
    reference_params = {name: search[name]["params"] for name in cfg["references"]["models"]}
    started = time.perf_counter()
    per_seed = []
    for seed in seeds:
        progress(f"[quality] training seed {seed} ({len(per_seed) + 1}/{len(seeds)})")
        per_seed.append(seed_models(run, cfg, seed, reference_params, progress))
        line = ", ".join(f"{name} {figure(r['metrics'], 'average_precision', '.4f')}"
                         for name, r in per_seed[-1].items())
        progress(f"[quality] seed {seed}: test AP {line}")
    shutil.rmtree(run.path(SCRATCH), ignore_errors=True)
    data = PreparedData(run.root)
    period = TestPeriod(data.labels("test"), data.column("test", "day"),
                        data.column("test", "card"), cfg["evaluation"]["top_k"])
    result = summarize(per_seed, period, cfg, progress)
    labels = {"qkeras": "QKeras", "float": "float twin", "firmware": "firmware (C simulation)",
              "forest_firmware": "forest firmware (conifer emulation)",
              **{name: search[name]["label"] for name in reference_params}}
    result = {"seeds": seeds, "data_seed": cfg["data"]["seed"],
              "confidence": settings["confidence"], "bootstrap_resamples": settings["bootstrap"],
              "protocol": PROTOCOLS[cfg["train"]["refit"]],
              "operating_point": (DELAY_ALERT_RATE if cfg["train"]["refit"] else VALIDATION)
              + f" (target {cfg['evaluation']['target_fpr']:.2%})",
              "reference_settings": reference_params, "labels": labels,
              "card_precision_k": cfg["evaluation"]["top_k"], **result,
              "seconds": round(time.perf_counter() - started, 1),
              "kind": "measured on this machine"}
    write_json(run.path(QUALITY_SUMMARY), result)
    write_json(run.path(QUALITY_SEEDS), {"seeds": seeds, "models": {
        name: [s[name]["metrics"] | {"threshold": s[name]["threshold"]} for s in per_seed]
        for name in per_seed[0]}})
    frame = pd.DataFrame({f"{name}_seed{seed}": s[name]["score"]
                          for seed, s in zip(seeds, per_seed) for name in s})
    frame.insert(0, "label", data.labels("test"))
    with atomic_path(run.path(QUALITY_SCORES)) as tmp:
        frame.to_parquet(tmp, index=False)
    table = markdown_table(result, labels, cfg["evaluation"]["top_k"])
    with atomic_path(run.path(QUALITY_TABLE)) as tmp:
        tmp.write_text(table)
    progress(table)
    for goal, state in result["goals"].items():
        progress(f"[quality] goal {goal}: {'met' if state['met'] else 'NOT met'} ({state})")


register(Step(
    name="quality", command="quality",
    help="train and evaluate every model over several training seeds: means, bootstrap "
         "intervals, firmware vs the strongest reference",
    reads=("seed", "data.seed", "model", "train", "references", "evaluation", "quality",
           "firmware.families", "forest", "hls.backend",
           "hls.io_type", "hls.strategy", "hls.reuse_factor", "hls.part",
           "hls.clock_period_ns", "hls.activation_rounding"),
    inputs=(*SPLIT_FILES.values(), SCALER, DATA_SUMMARY, REFERENCE_SEARCH),
    outputs=(QUALITY_SEEDS, QUALITY_SUMMARY, QUALITY_TABLE, QUALITY_SCORES),
    body=measure_quality, code=("fraudfpga.quality", "fraudfpga.models", "fraudfpga.hls"),
    in_all=False))
