"""`make report`: the FPGA/GPU comparison, model quality and verification, as HTML and Markdown
with PNG plots, readable offline. Every figure says how it was obtained and on what machine."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from fraudfpga.gpu_baseline.artifacts import BASELINE, SERVING
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.hls.artifacts import (BIT_EXACTNESS, EXPLAIN_PLOT, EXPLAIN_SUMMARY,
                                     FIRMWARE_METRICS, FOREST_METRICS, GOLDEN, NETWORK,
                                     REASON_CODES, VENDOR)
from fraudfpga.models.artifacts import DATA_SUMMARY, MODEL_METRICS, SCALER, TEST_SCORES
from fraudfpga.models.metrics import strongest_reference
from fraudfpga.sim.artifacts import (INTERFACE_STUDY, PNR, RTL_METADATA, SIM_RESULTS, TIMING_CHOSEN, TIMING_PLOT,
                                     TIMING_POINTS, YOSYS)

from . import report_forest
from .fpga_figures import fpga_figures
from .report_axis import axis_section, interface_study_section
from .report_sweeps import sweeps_on_this_data, sweeps_section
from .quality import QUALITY_SUMMARY
from .report_models import (comparison_lines, label, metric_title, reason_codes_section,
                            seeds_section)
from .report_serving import (FPGA, GPU_RESULTS, decision, decision_section, gpu_results_section,
                             network_input_bytes, plot_decision)
from .optional import NOT_AVAILABLE, figure
from .quality import seed_cell
from .registry import Step, register
from .runfolder import RunFolder, atomic_path, write_json

REPORT_DIR = "report"
PLOTS = ("latency_vs_batch.png", "throughput_vs_batch.png", "roc.png", "precision_recall.png",
         Path(EXPLAIN_PLOT).name, "decision.png")
REPORT_FILES = ("report/index.html", "report/report.md", "report/summary.json",
                *(f"report/{p}" for p in PLOTS))


def _load(run: RunFolder, name: str) -> dict:
    return json.loads(run.path(name).read_text())


def run_metrics(run: RunFolder, firmware: bool = True, forest: bool = False) -> dict:
    """The models' test metrics, with the firmware's row when `firmware` (the caller knows
    that the hls step is current, so the row belongs to the current QKeras model), and the
    forest firmware's rows when `forest` (likewise for the forest step)."""
    metrics = _load(run, MODEL_METRICS)
    if firmware:
        firmware_metrics = _load(run, FIRMWARE_METRICS)
        metrics["models"]["firmware"] = firmware_metrics["firmware"]
        metrics["operating"]["firmware"] = firmware_metrics["operating"]
        metrics["firmware_scores"] = "firmware: logit from the hls4ml C simulation"
    if forest:
        forest_metrics = _load(run, FOREST_METRICS)
        for name in ("forest_firmware", "forest_float"):
            metrics["models"][name] = forest_metrics[name]
            metrics["operating"][name] = forest_metrics["operating"][name]
            metrics["labels"][name] = forest_metrics["labels"][name]
    return metrics


def _firmware_logits(run: RunFolder) -> np.ndarray:
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.models.split import Scaler

    network = FixedNetwork.load(run.path(NETWORK))
    codec = FirmwareCodec(Scaler.from_dict(_load(run, SCALER)), network.input_type,
                          network.output_type)
    return codec.logits(np.load(run.path(GOLDEN))["test_output_codes"])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _plot_curves(scores: dict[str, np.ndarray], labels: np.ndarray, period: str,
                 out: Path) -> None:
    plt = _pyplot()
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    for kind, filename in (("roc", "roc.png"), ("pr", "precision_recall.png")):
        fig, ax = plt.subplots(figsize=(6, 5))
        if np.unique(labels).size < 2:
            ax.text(0.5, 0.5, f"n/a: the {period} holds one class only", ha="center")
            fig.savefig(out / filename, dpi=110)
            plt.close(fig)
            continue
        for name, score in scores.items():
            if kind == "roc":
                x, y, _ = roc_curve(labels, score)
                ax.plot(x, y, label=f"{name} (AUC {roc_auc_score(labels, score):.3f})")
            else:
                y, x, _ = precision_recall_curve(labels, score)
                ax.plot(x, y, label=f"{name} (AP {average_precision_score(labels, score):.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
            ax.set(xlabel="false-positive rate", ylabel="true-positive rate",
                   title=f"ROC, {period}")
        else:
            ax.axhline(labels.mean(), color="grey", lw=0.8, ls=":", label="constant score")
            ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall, {period}")
        ax.legend(loc="lower right" if kind == "roc" else "upper right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)


def _plot_baseline(baseline: dict, fpga: dict, out: Path) -> None:
    plt = _pyplot()

    rows = pd.DataFrame([r for r in baseline["results"] if "p50_latency_ms" in r])
    label = baseline["device"]["label"]
    styles = {"device_resident": "-", "host_copy": "--"}
    for metric, filename, ylabel in (
            ("p50_latency_ms", "latency_vs_batch.png", "latency per call, p50 (ms)"),
            ("transactions_per_s", "throughput_vs_batch.png", "transactions / s")):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        for (model, compile_mode, variant), group in rows.groupby(["model", "compile", "variant"]):
            group = group.sort_values("batch_size")
            ax.plot(group["batch_size"], group[metric], styles[variant], marker=".",
                    label=f"{label}: {model}, {compile_mode}, {variant.replace('_', ' ')}")
        if metric == "p50_latency_ms":
            ax.scatter([1], [fpga["latency_ns"] * 1e-6], marker="*", s=180, color="black", zorder=5,
                       label=f"FPGA: {fpga['latency_cycles']} cycles = {fpga['latency_ns']:.0f} ns "
                             f"(simulated cycles at {fpga['clock_mhz']:.0f} MHz, "
                             f"{'not timed' if fpga['timing'] == 'not timed' else fpga['timed_on']})")
        else:
            ax.axhline(fpga["throughput_per_instance_tx_s"], color="black", lw=1.2,
                       label=f"FPGA, one instance at II={fpga['initiation_interval_cycles']:g} on "
                             f"{fpga['timed_on']}")
            if fpga.get("card_throughput_tx_s"):
                ax.axhline(fpga["card_throughput_tx_s"], color="black", lw=1.2, ls=":",
                           label=f"FPGA, {fpga['instances_on_part']} instances on {fpga['part']} "
                                 f"(estimate, {fpga['part_clock_kind'].split(':')[0]})")
        ax.set(xscale="log", yscale="log", xlabel="batch size (transactions per call)", ylabel=ylabel,
               title=f"TensorFlow on {baseline['device']['name']} ({label}) vs FPGA")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)


def _fmt(value, digits=4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _sections(run: RunFolder, fpga: dict, baseline: dict,
              serving: tuple[dict, dict, dict, int],
              forest_fpga: dict | None = None) -> tuple[dict, list[tuple]]:
    serving_results, decision_result, link, network_bytes = serving
    metrics = run_metrics(run, forest=report_forest.available(run))
    period = metrics["test_period"]
    exact = _load(run, BIT_EXACTNESS)
    sim = _load(run, SIM_RESULTS)
    yosys = _load(run, YOSYS)
    vendor = _load(run, VENDOR)
    manifest = run.manifest()
    device = baseline["device"]
    rows = pd.DataFrame([r for r in baseline["results"] if "p50_latency_ms" in r])
    batch1 = rows[rows.batch_size == 1].sort_values("p50_latency_ms").iloc[0]
    fastest = rows.sort_values("transactions_per_s", ascending=False).iloc[0]
    where = f"{device['name']} ({device['label']})"
    fastest_backend = decision_result["fastest_backend"]
    sides = decision_result["sides"]
    fpga_side = sides[FPGA]
    headline = {
        "fpga_latency_ns": fpga["latency_ns"], "fpga_latency_cycles": fpga["latency_cycles"],
        "fpga_clock_mhz": fpga["clock_mhz"], "fpga_clock_source": fpga["clock_source"],
        "fpga_timing": fpga["timing"], "fpga_timed_on": fpga["timed_on"],
        "baseline_device": where,
        "baseline_best_batch1_p50_ms": float(batch1["p50_latency_ms"]),
        "baseline_best_batch1_setting": f"{batch1['model']}, {batch1['compile']}, {batch1['variant']}",
        "fastest_backend": fastest_backend,
        "fastest_backend_batch1_p50_us": sides[fastest_backend]["batch1_p50_us"]
        if fastest_backend else None,
        "fpga_end_to_end_us": fpga_side["batch1_p50_us"],
        "latency_ratio_fastest_backend_over_fpga_end_to_end":
            sides[fastest_backend]["batch1_p50_us"] / fpga_side["batch1_p50_us"]
            if fastest_backend else None,
        "fpga_throughput_per_instance_tx_s": fpga["throughput_per_instance_tx_s"],
        "fpga_card_throughput_tx_s": fpga.get("card_throughput_tx_s"),
        "baseline_best_throughput_tx_s": float(fastest["transactions_per_s"]),
        "baseline_best_throughput_batch": int(fastest["batch_size"]),
        "firmware_ap": metrics["models"].get("firmware", {}).get("average_precision"),
        "rtl_vectors_checked": sim["vectors_checked"], "rtl_mismatches": sim["mismatch_count"],
    }
    models = metrics["models"]
    strongest = strongest_reference(metrics)
    quality_line = (
        f"**Model quality**: the firmware's AP on the {period} is "
        f"{figure(models.get('firmware', {}), 'average_precision', '.4f')} "
        f"(QKeras {figure(models['qkeras'], 'average_precision', '.4f')}, float twin "
        f"{figure(models['float'], 'average_precision', '.4f')}"
        + "".join(f", {label(metrics, n)} {figure(models[n], 'average_precision', '.4f')}"
                  for n in models if n not in ("qkeras", "float", "firmware")) + "); one training seed.")
    if QUALITY_SUMMARY in run.optional_inputs:
        q = _load(run, QUALITY_SUMMARY)
        fw, ref = q["models"]["firmware"], q["models"][q["strongest_reference"]]
        d = q["firmware_minus_strongest"]["average_precision"]
        quality_line += (
            f" Over {len(q['seeds'])} training seeds: firmware AP "
            f"{seed_cell(fw['average_precision']).split(' [')[0]}, "
            f"{q['labels'][q['strongest_reference']]} "
            f"{seed_cell(ref['average_precision']).split(' [')[0]}; "
            f"difference {d['mean']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}], "
            f"{q['labels'].get(d['better'], d['better'])} better.")
    elif strongest:
        quality_line += " `make quality` gives several seeds."
    summary = [
        f"**FPGA**: {fpga['latency_cycles']} clock cycles per transaction (measured in simulation), "
        f"{fpga['latency_ns']:.0f} ns at {fpga['clock_mhz']:.0f} MHz ({fpga['clock_source']}); "
        f"one new transaction every {fpga['initiation_interval_cycles']:g} cycle(s): "
        f"{fpga['throughput_per_instance_tx_s'] / 1e6:,.0f} M transactions/s per instance "
        f"({fpga['throughput_kind']}).",
        *([f"**Fastest CPU/GPU back end**: {sides[fastest_backend]['label']}, "
           f"{sides[fastest_backend]['batch1_p50_us']:.1f} us per transaction at batch 1 (p50, "
           f"measured); the FPGA's end-to-end latency with the host link is "
           f"{fpga_side['batch1_p50_us']:.2f} us ({link['name']}, assumed), "
           f"{headline['latency_ratio_fastest_backend_over_fpga_end_to_end']:.1f} times lower."]
          if fastest_backend else []),
        f"**TensorFlow on {where}** (the baseline): best p50 latency for one transaction "
        f"{batch1['p50_latency_ms']:.3f} ms ({headline['baseline_best_batch1_setting']}); best "
        f"throughput {fastest['transactions_per_s']:,.0f} transactions/s at batch "
        f"{int(fastest['batch_size']):,} (measured on this machine).",
        quality_line,
        f"**Trust**: the RTL reproduced the firmware's C simulation on {sim['vectors_checked']:,} "
        f"vectors with {sim['mismatch_count']} mismatches; the C simulation equals an independent "
        f"integer reference on {exact['test_set_vs_reference']['identical_fraction']:.2%} of the test "
        f"set and {exact['random_vs_reference']['identical_fraction']:.2%} of random inputs.",
    ]
    if device["type"] == "CPU":
        summary.append("**CPU fallback**: no GPU was visible to TensorFlow on this machine, so the "
                       "baseline figures are CPU figures, not GPU figures.")

    cp = next(k for k in models["qkeras"] if k.startswith("card_precision_at_"))
    absent = {k: why for m in models.values() for k, why in m.get(NOT_AVAILABLE, {}).items()}
    model_rows = [[label(metrics, name), _fmt(m["auc_roc"]), _fmt(m["average_precision"]), _fmt(m.get(cp), 3),
                   _fmt(m["threshold"], 3), _fmt(m["precision"], 3), _fmt(m["recall"], 3),
                   _fmt(m["f1"], 3), _fmt(m["false_positive_rate"], 4),
                   f"{m['confusion_matrix']['tp']}/{m['confusion_matrix']['fp']}/"
                   f"{m['confusion_matrix']['fn']}/{m['confusion_matrix']['tn']}"]
                  for name, m in metrics["models"].items()]
    fq = exact["firmware_vs_qkeras"]
    exact_rows = [
        ["C simulation == numpy integer reference, test set",
         f"{exact['test_set_vs_reference']['identical']:,} / {exact['test_set_vs_reference']['vectors']:,}",
         "measured (C simulation)"],
        ["C simulation == numpy integer reference, random + edge inputs",
         f"{exact['random_vs_reference']['identical']:,} / {exact['random_vs_reference']['vectors']:,}",
         "measured (C simulation)"],
        ["RTL == C simulation (cocotb)", f"{sim['vectors_checked'] - sim['mismatch_count']:,} / "
                                         f"{sim['vectors_checked']:,}", sim["kind"]],
        ["latency / II", f"{sim['latency_cycles']} cycles / {sim['initiation_interval_cycles']:g}",
         sim["kind"]],
        ["out_valid follows in_valid with idle cycles",
         "yes" if sim["valid_tracking_with_idle_cycles"]["ok"] else "NO", sim["kind"]],
        ["firmware output identical to QKeras", f"{fq['identical_fraction']:.2%} (max "
         f"{fq['max_difference_lsb']:.0f} LSB)", fq["why_not_identical"]],
        ["AP change firmware vs QKeras", f"{exact['average_precision_change_vs_qkeras']:+.4f}",
         f"measured on the {period}"],
        ["RTL simulation speed", f"{sim['vectors_per_second']:,.0f} vectors/s",
         f"{sim['simulator_version']}, build {sim['build_seconds']} s"],
    ]
    res = yosys["resources"]
    resource_rows = [["Yosys " + yosys["command"], _fmt(res["LUT"]), _fmt(res["FF"]), _fmt(res["CARRY"]),
                      _fmt(res["DSP"]), _fmt(res["BRAM"]), yosys["kind"]]]
    if vendor.get("status") == "ok":
        v = vendor["resources"]
        resource_rows.append([f"{vendor['tool']} {vendor['tool_version']} ({vendor['part']})",
                              _fmt(v.get("LUT")), _fmt(v.get("FF")), "", _fmt(v.get("DSP")),
                              _fmt(v.get("BRAM_18K")), vendor["kind"]])
    else:
        resource_rows.append(["vendor HLS", "", "", "", "", "", vendor.get("reason", "not run")])
    fpga_rows = [["latency", f"{fpga['latency_cycles']} cycles = {fpga['latency_ns']:.1f} ns", fpga["latency_kind"]],
                 ["clock", f"{fpga['clock_mhz']:.1f} MHz ({fpga['clock_ns']} ns)", fpga["clock_source"]],
                 ["throughput, one instance", f"{fpga['throughput_per_instance_tx_s']:,.0f} tx/s",
                  fpga["throughput_kind"]]]
    if fpga.get("instances_on_device") is not None:
        fpga_rows.append([f"instances on {fpga['timed_on']}", _fmt(fpga["instances_on_device"]),
                          fpga["instances_on_device_kind"]])
    fpga_rows.append(["instances on " + fpga["part"], _fmt(fpga.get("instances_on_part")),
                      fpga["instances_kind"]])
    if fpga.get("card_throughput_tx_s"):
        fpga_rows.append([f"throughput, whole {fpga['part']}", f"{fpga['card_throughput_tx_s']:,.0f} tx/s "
                          f"at {fpga['part_clock_mhz']:.0f} MHz", fpga["card_throughput_kind"]])
        link_limit = fpga_side["link_limit_per_s"]
        fpga_rows.append([f"throughput deliverable to a host over the {link['name']}",
                          f"{min(link_limit, fpga['card_throughput_tx_s']):,.0f} tx/s",
                          f"the part's figure bounded by the link: {link['gbytes_per_s']:g} GB/s / "
                          f"{network_bytes} bytes per transaction = {link_limit:,.0f} tx/s "
                          "(assumed link figures)"])
    if PNR in run.optional_inputs:
        pnr = _load(run, PNR)
        path = pnr["critical_path"] or {}
        fpga_rows.append([f"critical path on {pnr['device']}",
                          f"{path.get('delay_ns')} ns through {path.get('cell_count')} cells, "
                          f"{100 * (path.get('routing_share') or 0):.0f} % routing",
                          f"{pnr['kind']}; from {path.get('start')} to {path.get('end')}"])
        rtl = _load(run, RTL_METADATA)
        fpga_rows.append(["delay model prediction", f"{rtl['predicted']['fmax_mhz']} MHz, "
                          f"{rtl['predicted']['latency_ns']} ns", rtl["predicted"]["kind"]])
        resource_rows.append([f"{pnr['family_title']} {pnr['device']} (nextpnr)",
                              f"{_fmt(pnr['logic_cells'])} logic cells", _fmt(pnr["flip_flops"]),
                              "", "", "", pnr["kind"] + f"; the {pnr['harness_flip_flops']} FF of "
                              "the pin harness included"])
    if TIMING_POINTS in run.optional_inputs:
        chosen = _load(run, TIMING_CHOSEN)
        fpga_rows.append([f"make timing: chosen by {chosen['objective']}",
                          f"{chosen['stages']} stages, {chosen['cycles']} cycles at "
                          f"{chosen['fmax_mhz']:.1f} MHz = {chosen['latency_ns']:.1f} ns",
                          f"placed and routed on {chosen['device']}; "
                          f"{chosen['verified']['vectors_checked']:,} vectors, "
                          f"{chosen['verified']['mismatch_count']} mismatches in cocotb"])
    for path, why in run.stale_inputs.items():
        fpga_rows.append([f"{path} (left out)", "stale", why])
    best = (rows.sort_values("p50_latency_ms").groupby(["batch_size", "variant"]).head(1)
            .sort_values(["variant", "batch_size"]))
    baseline_rows = [[r.variant.replace("_", " "), _fmt(int(r.batch_size)), f"{r.model}, {r.compile}",
                      f"{r.p50_latency_ms:.3f}", f"{r.p99_latency_ms:.3f}", f"{r.transactions_per_s:,.0f}"]
                     for r in best.itertuples()]
    versions = next(iter(manifest["steps"].values()))["versions"]
    env_rows = [["baseline device", f"{device['name']} ({device['label']})"],
                ["host CPU", f"{device['host_cpu']}, {device['host_cores']} cores ({device['host']})"],
                ["TensorFlow", f"{device['tensorflow']} (built for CUDA {device.get('cuda_build')}, "
                               f"cuDNN {device.get('cudnn_build')}); GPU driver {device.get('driver') or 'n/a'}"],
                ["simulator", sim["simulator_version"]], ["Yosys", yosys["tool_version"].split(" (")[0]],
                *[[k, v] for k, v in versions.items()]]
    sections = [
        ("Summary", summary, None, None),
        ("Latency and throughput", [
            "Latency per call and throughput of the TensorFlow models across batch sizes (p50 of "
            "repeated calls after warm-up), with the FPGA point: one transaction, simulated cycles "
            "at the clock named below. 'device resident': the batch is already on the device; "
            "'host copy': copy to the device and read-back included.",
            "![latency](latency_vs_batch.png)", "![throughput](throughput_vs_batch.png)"],
         ["FPGA figure", "value", "how it was obtained"], fpga_rows),
        decision_section(serving_results, decision_result, link, network_bytes),
        gpu_results_section(),
        ("TensorFlow baseline: fastest setting per batch size",
         [f"Measured on {where} with TensorFlow {device['tensorflow']}."],
         ["variant", "batch", "model, compile", "p50 ms", "p99 ms", "tx/s (p50)"], baseline_rows),
        (f"Model quality ({period})", [
            f"Training protocol: {metrics['protocol']}. Operating point: "
            f"{metrics['operating']['qkeras']['rule']} (target "
            f"{metrics['operating']['qkeras']['target_fpr']:.2%}); the firmware uses the QKeras "
            "model's alert rate. Confusion matrix as TP/FP/FN/TN.",
            *comparison_lines(metrics),
            *[f"n/a {metric_title(k)}: {why}." for k, why in absent.items()],
            "![roc](roc.png)", "![pr](precision_recall.png)"],
         ["model", "AUC ROC", "AP", metric_title(cp), "threshold", "precision", "recall", "F1", "FPR",
          "TP/FP/FN/TN"], model_rows),
        *report_forest.section(run, forest_fpga, fpga,
                               metrics["models"]["firmware"]["average_precision"]),
        *seeds_section(run),
        *reason_codes_section(run),
        *_timing_section(run),
        *sweeps_section(run),
        *axis_section(sim, yosys, _load(run, PNR) if PNR in run.optional_inputs else None),
        *(interface_study_section(_load(run, INTERFACE_STUDY))
          if INTERFACE_STUDY in run.optional_inputs else []),
        ("Bit-exactness and verification", [], ["check", "result", "kind"], exact_rows),
        ("Resources", ["Yosys and vendor HLS rows are synthesis estimates; the nextpnr row is "
                       "placed and routed."],
         ["source", "LUT", "FF", "CARRY", "DSP", "BRAM", "kind"], resource_rows),
        ("Environment", [], ["item", "value"], env_rows),
    ]
    return headline, sections


def _timing_section(run: RunFolder) -> list[tuple]:
    """The `make timing` exploration, while it belongs to the current network."""
    if TIMING_POINTS not in run.optional_inputs:
        return []
    data = _load(run, TIMING_POINTS)
    rows = [[p["stages"], p["seed"], "failed", p["failed"], "", "", "", "", ""] if "failed" in p else
            [p["stages"], p["seed"], p["cycles"], f"{p['fmax_mhz']:.1f}", f"{p['predicted_fmax_mhz']:.0f}",
             f"{p['latency_ns']:.1f}", _fmt(p["logic_cells"]), _fmt(p["flip_flops"]),
             f"{p['critical_path_ns']} ns, {100 * p['routing_share']:.0f} % routing"]
            for p in sorted(data["points"], key=lambda p: (p["stages"], p["seed"]))]
    text = [f"Pipeline depths of this network placed and routed on {data['device']} ({data['kind']}); "
            f"objective: {data['objective']}. Crosses: the delay model's prediction."]
    if data.get("goals"):
        g = data["goals"]
        text.append(f"Targets for this family: latency <= {g['targets']['latency_ns']:.0f} ns "
                    f"(best {g['lowest_latency']['latency_ns']:.1f} ns, "
                    f"{'met' if g['lowest_latency']['met'] else 'not met'}), Fmax >= "
                    f"{g['targets']['fmax_mhz']:.0f} MHz (best {g['highest_fmax']['fmax_mhz']:.1f} MHz, "
                    f"{'met' if g['highest_fmax']['met'] else 'not met'}).")
    text.append(f"![timing]({Path(TIMING_PLOT).name})")
    return [("Timing closure (make timing)", text,
             ["stages", "seed", "cycles", "Fmax MHz", "model MHz", "latency ns", "logic cells", "FF",
              "critical path"], rows)]


def _markdown(title: str, sections) -> str:
    lines = [f"# {title}", ""]
    for heading, paragraphs, header, rows in sections:
        lines += [f"## {heading}", ""]
        for text in paragraphs:
            lines += [f"- {text}" if heading == "Summary" else text, ""]
        if header:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def _html(title: str, sections) -> str:
    def inline(text: str) -> str:
        image = re.fullmatch(r"!\[(.*)\]\((.*)\)", text)
        if image:
            return f'<img alt="{html.escape(image.group(1))}" src="{html.escape(image.group(2))}">'
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
        return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)

    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, paragraphs, header, rows in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if heading == "Summary":
            body.append("<ul>" + "".join(f"<li>{inline(p)}</li>" for p in paragraphs) + "</ul>")
        else:
            body += [f"<p>{inline(p)}</p>" for p in paragraphs]
        if header:
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                                  for row in rows) + "</table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:0.5em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def build_report(run: RunFolder, cfg, progress=print) -> list[str]:
    out = run.path(REPORT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    baseline = _load(run, BASELINE)
    pnr = _load(run, PNR) if PNR in run.optional_inputs else None
    fpga = fpga_figures(_load(run, SIM_RESULTS), _load(run, YOSYS), _load(run, VENDOR), pnr,
                        cfg["hls"]["part"], cfg["hls"]["clock_period_ns"],
                        cfg["report"]["max_utilization"], cfg["rtl"]["interface"])
    scores_frame = pd.read_parquet(run.path(TEST_SCORES))
    metrics = _load(run, MODEL_METRICS)
    scores = {label(metrics, c.removeprefix("score_")): scores_frame[c].to_numpy()
              for c in scores_frame.columns if c.startswith("score_")}
    scores[label(metrics, "firmware")] = _firmware_logits(run)
    forest = report_forest.figures(run, cfg) if report_forest.available(run) else None
    if forest:
        scores[report_forest.metrics(run)["labels"]["forest_firmware"]] = \
            report_forest.test_scores(run)
    _plot_curves(scores, scores_frame["label"].to_numpy(), metrics["test_period"], out)
    shutil.copy(run.path(EXPLAIN_PLOT), out / Path(EXPLAIN_PLOT).name)
    _plot_baseline(baseline, fpga, out)
    timing_plot = out / Path(TIMING_PLOT).name
    timing_plot.unlink(missing_ok=True)
    if TIMING_PLOT in run.optional_inputs:
        shutil.copy(run.path(TIMING_PLOT), timing_plot)
    serving = _load(run, SERVING)
    network = FixedNetwork.load(run.path(NETWORK))
    network_bytes = network_input_bytes(network.input_type.width, network.n_inputs)
    link = cfg["serving"]["link"]
    decided = decision(serving, fpga, network_bytes, link,
                       {report_forest.SIDE: forest} if forest else None)
    plot_decision(decided, out / "decision.png")
    headline, sections = _sections(run, fpga, baseline, (serving, decided, link, network_bytes),
                                   forest[0] if forest else None)
    title = f"fraudfpga report: run '{run.root.name}'"
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_markdown(title, sections))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(_html(title, sections))
    write_json(out / "summary.json", {"headline": headline, "fpga": fpga, "summary": sections[0][1],
                                      "stale_results_left_out": run.stale_inputs})
    for path, why in run.stale_inputs.items():
        progress(f"[report] left out {path}: {why}")
    return [f"{REPORT_DIR}/{timing_plot.name}"] if timing_plot.exists() else []


register(Step(
    name="report", command="report",
    help="write the FPGA/GPU comparison report (HTML + Markdown + PNG plots)",
    reads=("hls.part", "hls.clock_period_ns", "report", "serving.link", "rtl.interface",
           "data", "split"),
    inputs=(MODEL_METRICS, TEST_SCORES, DATA_SUMMARY, SCALER, FIRMWARE_METRICS, GOLDEN, NETWORK,
            BIT_EXACTNESS, RTL_METADATA, SIM_RESULTS, YOSYS, VENDOR, BASELINE, EXPLAIN_SUMMARY,
            REASON_CODES, EXPLAIN_PLOT, SERVING),
    optional_inputs=(PNR, TIMING_POINTS, TIMING_CHOSEN, TIMING_PLOT, QUALITY_SUMMARY,
                     INTERFACE_STUDY, *report_forest.INPUTS),
    outputs=REPORT_FILES, body=build_report,
    external_inputs=lambda cfg: [str(p) for p in sorted(GPU_RESULTS.glob("*.json"))],
    neighbour_inputs=sweeps_on_this_data,
    code=("fraudfpga.report", "fraudfpga.report_axis", "fraudfpga.report_sweeps",
          "fraudfpga.report_forest", "fraudfpga.hls.forest",
          "fraudfpga.report_models", "fraudfpga.report_serving",
          "fraudfpga.gpu_baseline.serving", "fraudfpga.fpga_figures", "fraudfpga.hls.codec",
          "fraudfpga.hls.fixed", "fraudfpga.hls.network")))


def print_summary(run: RunFolder, progress=print) -> None:
    summary = _load(run, f"{REPORT_DIR}/summary.json")
    progress(f"[report] {run.path(REPORT_DIR + '/index.html')}")
    for line in summary["summary"]:
        progress("  " + line.replace("**", ""))
