"""`make report`: the decision first (which model on which platform, at what latency and load,
with what quality, how far the firmware is trusted), then the evidence in order: the decision
chart, model quality, the FPGA implementation, CPU/GPU details, verification, reason codes,
sweeps and provenance. HTML and Markdown with PNG plots, readable offline; every figure says how
it was obtained and on what machine. One module per section (this package); this module gathers
the run's files and orders the sections."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from fraudfpga.gpu_baseline.artifacts import BASELINE, FOREST_SERVING, SERVING
from fraudfpga.hls.artifacts import (BIT_EXACTNESS, EXPLAIN_PLOT, EXPLAIN_SUMMARY,
                                     FIRMWARE_METRICS, FOREST_METRICS, GOLDEN, NETWORK,
                                     REASON_CODES, VENDOR)
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.models.artifacts import DATA_SUMMARY, MODEL_METRICS, SCALER, TEST_SCORES
from fraudfpga.models.metrics import strongest_reference
from fraudfpga.quality import QUALITY_SUMMARY
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, atomic_path, write_json
from fraudfpga.sim.artifacts import (INTERFACE_STUDY, PNR, RTL_METADATA, SIM_RESULTS,
                                     TIMING_CHOSEN, TIMING_PLOT, TIMING_POINTS, YOSYS)

from . import (browser, cpu_gpu, first_screen, forest, fpga, imported, provenance, render,
               transaction, verification)
from .axis import axis_section, interface_study_section
from .common import load
from .fpga_figures import fpga_figures
from .quality import label, model_section, plot_curves, seeds_section
from .reasons import reason_codes_section
from .cpu_gpu import GPU_RESULTS
from .serving import FPGA, decision, decision_section, network_input_bytes, plot_decision
from .sweeps import sweeps_on_this_data, sweeps_section

REPORT_DIR = "report"
PLOTS = ("decision.png", "precision_recall.png", "roc.png", "latency_vs_batch.png",
         "throughput_vs_batch.png", Path(EXPLAIN_PLOT).name)
REPORT_FILES = ("report/index.html", "report/report.md", "report/summary.json",
                *(f"report/{p}" for p in PLOTS))
CODE = ("fraudfpga.report", "fraudfpga.gpu_baseline.serving", "fraudfpga.hls.codec",
        "fraudfpga.hls.fixed", "fraudfpga.hls.network", "fraudfpga.hls.forest")


def run_metrics(run: RunFolder, firmware: bool = True, forest_rows: bool = False,
                imported_rows: bool = False) -> dict:
    """The models' test metrics, with the firmware's row when `firmware` (the caller knows
    that the hls step is current, so the row belongs to the current QKeras model), the
    forest firmware's rows when `forest_rows` (likewise for the forest step), and your
    imported model's (its library and its firmware) when `imported_rows`."""
    metrics = load(run, MODEL_METRICS)
    if firmware:
        firmware_metrics = load(run, FIRMWARE_METRICS)
        metrics["models"]["firmware"] = firmware_metrics["firmware"]
        metrics["operating"]["firmware"] = firmware_metrics["operating"]
        metrics["firmware_scores"] = "firmware: logit from the hls4ml C simulation"
    if forest_rows:
        forest_metrics = load(run, FOREST_METRICS)
        for name in ("forest_firmware", "forest_float"):
            metrics["models"][name] = forest_metrics[name]
            metrics["operating"][name] = forest_metrics["operating"][name]
            metrics["labels"][name] = forest_metrics["labels"][name]
    if imported_rows:
        rows = imported.metrics_rows(run)
        for name in ("imported_firmware", "imported_library"):
            metrics["models"][name] = rows[name]
            metrics["operating"][name] = rows["operating"][name]
            metrics["labels"][name] = rows["labels"][name]
    return metrics


def _firmware_logits(run: RunFolder) -> np.ndarray:
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.models.split import Scaler

    network = FixedNetwork.load(run.path(NETWORK))
    codec = FirmwareCodec(Scaler.from_dict(load(run, SCALER)), network.input_type,
                          network.output_type)
    return codec.logits(np.load(run.path(GOLDEN))["test_output_codes"])


def _verification(sim: dict, golden: str) -> dict:
    axis = sim["axis"]
    return {"golden": golden, "vectors": sim["vectors_checked"],
            "mismatches": sim["mismatch_count"], "axis_scores": axis["vectors_checked"],
            "axis_errors": sum(axis[k] or 0 for k in ("lost", "duplicated", "reordered",
                                                      "mismatched")),
            "simulator": sim["simulator"]}


def _resources(pnr: dict | None, yosys: dict) -> str:
    return (f"{pnr['logic_cells']:,} logic cells, {pnr['flip_flops']:,} FF (placed and routed)"
            if pnr else f"{yosys['resources']['LUT']:,} LUT (Yosys estimate)")


def _where(pnr: dict | None, figures: dict) -> str:
    return (f"FPGA, {pnr['family_title']} {pnr['device']}" if pnr
            else f"FPGA, {figures['timed_on']} (not timed)")


# a family's model keys in the metrics: on the FPGA, and the float model its CPU back ends serve
FPGA_MODEL = {"network": "firmware", "forest": "forest_firmware", "imported": "imported_firmware"}
CPU_MODEL = {"network": "float", "forest": "forest_float", "imported": "imported_library"}


def _platforms(metrics: dict, decided: dict, figures: dict, checks: dict, resources: dict,
               where: dict, policy: dict) -> list[first_screen.Platform]:
    """Every model on every platform the run measured, for the first screen."""
    platforms = []
    for name, side in decided["sides"].items():
        if side.get("fpga"):
            model = FPGA_MODEL[side["model"]]
            f = figures[side["model"]]
            bound = (f"pipeline: II 1 at {f['clock_mhz']:.1f} MHz = "
                     f"{side['rate_per_s'] / 1e6:,.0f} M/s; link "
                     f"{side['link_limit_per_s'] / 1e6:,.0f} M/s (assumed)")
            platforms.append(first_screen.Platform(
                model, label(metrics, model), where[side["model"]], side,
                resources[side["model"]], bound, fpga=True,
                extra={"figures": f, "verification": checks[side["model"]]}))
        else:
            model = CPU_MODEL[side["model"]]
            saturated = next((lv["offered_per_s"] for lv in side["levels"] if lv["saturated"]),
                             None)
            bound = (f"batching (up to {policy['max_batch']}, {policy['max_queue_delay_us']:g} us "
                     "queue delay) and the call's own time"
                     + (f"; saturated at {saturated:,.0f} tx/s" if saturated else ""))
            platforms.append(first_screen.Platform(
                model, label(metrics, model), f"{name}, {side['label'].split(', ', 1)[-1][:-1]}",
                side, "1 process on this machine's CPU", bound,
                extra={"serves": FPGA_MODEL[side["model"]]}))
    order = {"imported_firmware": 0, "imported_library": 1, "forest_firmware": 2,
             "forest_float": 3, "firmware": 4, "float": 5}
    return sorted(platforms, key=lambda p: (order.get(p.model, 9), not p.fpga))


def _gpu_note() -> str:
    files = sorted(GPU_RESULTS.glob("*.json")) if GPU_RESULTS.is_dir() else []
    if not files:
        return ("**GPU**: no GPU has been measured for this project (no accelerator machine was "
                "lent to a session); every CPU/GPU figure here is a CPU figure of this machine.")
    return (f"**GPU**: {len(files)} committed result(s) from lent accelerators, each with its "
            "card and date, are in 'CPU/GPU details'.")


def build_report(run: RunFolder, cfg, progress=print) -> list[str]:
    out = run.path(REPORT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    baseline = load(run, BASELINE)
    sim, yosys, vendor = load(run, SIM_RESULTS), load(run, YOSYS), load(run, VENDOR)
    pnr = load(run, PNR) if PNR in run.optional_inputs else None
    network_fpga = fpga_figures(sim, yosys, vendor, pnr, cfg["hls"]["part"],
                                cfg["hls"]["clock_period_ns"], cfg["report"]["max_utilization"],
                                cfg["rtl"]["interface"])
    with_forest = forest.available(run)
    forest_fpga = forest.figures(run, cfg) if with_forest else None
    with_imported = imported.available(run)
    imported_fpga = forest.figures(run, cfg, imported.FW) if with_imported else None
    metrics = run_metrics(run, forest_rows=with_forest, imported_rows=with_imported)
    period = metrics["test_period"]

    scores_frame = pd.read_parquet(run.path(TEST_SCORES))
    scores = {label(metrics, c.removeprefix("score_")): scores_frame[c].to_numpy()
              for c in scores_frame.columns if c.startswith("score_")}
    scores[label(metrics, "firmware")] = _firmware_logits(run)
    if with_forest:
        scores[label(metrics, "forest_firmware")] = forest.test_scores(run)
    if with_imported:
        scores[label(metrics, "imported_firmware")] = imported.test_scores(run)
    plot_curves(scores, scores_frame["label"].to_numpy(), period, out)
    shutil.copy(run.path(EXPLAIN_PLOT), out / Path(EXPLAIN_PLOT).name)
    cpu_gpu.plot_baseline(baseline, network_fpga, out)
    timing_plot = out / Path(TIMING_PLOT).name
    timing_plot.unlink(missing_ok=True)
    if TIMING_PLOT in run.optional_inputs:
        shutil.copy(run.path(TIMING_PLOT), timing_plot)

    serving = load(run, SERVING)
    forest_serving = load(run, FOREST_SERVING) if FOREST_SERVING in run.optional_inputs else None
    network = FixedNetwork.load(run.path(NETWORK))
    network_bytes = network_input_bytes(network.input_type.width, network.n_inputs)
    link = cfg["serving"]["link"]
    more_fpgas = {**({forest.SIDE: (forest_fpga[0] | {"model": "forest"}, forest_fpga[1])}
                     if forest_fpga else {}),
                  **({imported.SIDE: (imported_fpga[0] | {"model": "imported"}, imported_fpga[1])}
                     if imported_fpga else {})}
    more_backends = {**(forest_serving["backends"] if forest_serving else {}),
                     **(imported.serving(run) if with_imported else {})}
    decided = decision(serving, network_fpga | {"model": "network"}, network_bytes, link,
                       more_fpgas or None, more_backends or None)
    plot_decision(decided, out / "decision.png")

    quality = load(run, QUALITY_SUMMARY) if QUALITY_SUMMARY in run.optional_inputs else None
    exact = load(run, BIT_EXACTNESS)
    figures = {"network": network_fpga, **({"forest": forest_fpga[0]} if forest_fpga else {}),
               **({"imported": imported_fpga[0]} if imported_fpga else {})}
    checks = {"network": _verification(sim, "hls4ml C simulation")}
    where = {"network": _where(pnr, network_fpga)}
    resources = {"network": _resources(pnr, yosys)}
    for name, fw, fpga_of, golden in (
            ("forest", forest.FW, forest_fpga, "conifer C++ emulation"),
            ("imported", imported.FW, imported_fpga,
             imported.golden_name(run) if imported_fpga else None)):
        if fpga_of:
            checks[name] = _verification(load(run, fw.sim_results), golden)
            family_pnr = load(run, fw.pnr) if fw.pnr in run.optional_inputs else None
            where[name] = _where(family_pnr, fpga_of[0])
            resources[name] = _resources(family_pnr, load(run, fw.yosys))
    platforms = _platforms(metrics, decided, figures, checks, resources, where,
                           serving["policy"])
    labels = {name: label(metrics, name) for name in metrics["models"]}
    strongest = strongest_reference(metrics)
    targets, top_load = decided["targets"], max(serving["trace"]["loads"])
    header, rows = first_screen.table(platforms, metrics, quality, targets, top_load)
    rows += cpu_gpu.gpu_platform_rows()
    yours = imported.verdict_line(run, metrics, decided["sides"]) if with_imported else None
    answer = ("The answer", first_screen.verdict(platforms, metrics, quality, labels, strongest,
                                                 targets, top_load, _gpu_note(), yours,
                                                 transaction.verdict_line(run)),
              header, rows)
    sections = [
        answer,
        *transaction.section(run, forest_fpga[0] if forest_fpga else None),
        decision_section(serving, decided, link, network_bytes),
        model_section(metrics),
        *seeds_section(run),
        fpga.network_section(run, network_fpga, yosys, vendor, link,
                             decided["sides"][FPGA]["link_limit_per_s"], network_bytes),
        *forest.section(run, forest_fpga[0] if forest_fpga else None, network_fpga,
                        metrics["models"]["firmware"]["average_precision"]),
        *forest.fusion_section(run),
        *imported.section(run, metrics, labels),
        *axis_section(sim, yosys, pnr),
        *(interface_study_section(load(run, INTERFACE_STUDY))
          if INTERFACE_STUDY in run.optional_inputs else []),
        *fpga.timing_section(run),
        cpu_gpu.baseline_section(baseline),
        cpu_gpu.gpu_results_section(),
        verification.network_section(exact, sim, period),
        *reason_codes_section(run),
        *sweeps_section(run),
        provenance.section(run.manifest(), baseline, sim, yosys),
    ]
    headline = _headline(network_fpga, baseline, decided, metrics, sim)
    title = f"fraudfpga report: run '{run.root.name}'"
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(render.markdown(title, sections))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(render.page(title, sections))
    write_json(out / "summary.json", {"headline": headline, "fpga": network_fpga,
                                      "forest_fpga": forest_fpga[0] if forest_fpga else None,
                                      "imported_fpga": imported_fpga[0] if imported_fpga else None,
                                      "answer": answer[1], "platforms": [header, *rows],
                                      "stale_results_left_out": run.stale_inputs})
    for path, why in run.stale_inputs.items():
        progress(f"[report] left out {path}: {why}")
    extra = [f"{REPORT_DIR}/{timing_plot.name}"] if timing_plot.exists() else []
    return extra + _screenshot(out, cfg["report"]["screenshot"], progress)


def _screenshot(out: Path, wanted: bool, progress) -> list[str]:
    """The first screen in headless Chromium, saved beside the report; checked as a reader
    would see it (images load, no console error, the verdict within the window)."""
    shot = out / "first_screen.png"
    shot.unlink(missing_ok=True)
    if not wanted:
        return []
    why = browser.missing()
    if why:
        progress(f"[report] no screenshot of the first screen: {why}")
        return []
    state = browser.check_page(out / "index.html", screenshot=shot)
    progress(f"[report] first screen ({state['window'][0]} x {state['window'][1]}, headless "
             f"Chromium): verdict ends at {state['verdict_bottom']:.0f} px; {state['images']} "
             f"images, {len(state['broken'])} broken; {len(state['console_errors'])} console "
             f"errors; {shot}")
    return [f"{REPORT_DIR}/{shot.name}"]


def _headline(fpga_figs: dict, baseline: dict, decided: dict, metrics: dict, sim: dict) -> dict:
    rows = pd.DataFrame([r for r in baseline["results"] if "p50_latency_ms" in r])
    batch1 = rows[rows.batch_size == 1].sort_values("p50_latency_ms").iloc[0]
    fastest = rows.sort_values("transactions_per_s", ascending=False).iloc[0]
    sides, fastest_backend = decided["sides"], decided["fastest_backend"]
    fpga_side = sides[FPGA]
    return {
        "fpga_latency_ns": fpga_figs["latency_ns"], "fpga_latency_cycles": fpga_figs["latency_cycles"],
        "fpga_clock_mhz": fpga_figs["clock_mhz"], "fpga_clock_source": fpga_figs["clock_source"],
        "fpga_timing": fpga_figs["timing"], "fpga_timed_on": fpga_figs["timed_on"],
        "baseline_device": f"{baseline['device']['name']} ({baseline['device']['label']})",
        "baseline_best_batch1_p50_ms": float(batch1["p50_latency_ms"]),
        "baseline_best_batch1_setting": f"{batch1['model']}, {batch1['compile']}, {batch1['variant']}",
        "fastest_backend": fastest_backend,
        "fastest_backend_batch1_p50_us": sides[fastest_backend]["batch1_p50_us"]
        if fastest_backend else None,
        "fpga_end_to_end_us": fpga_side["batch1_p50_us"],
        "latency_ratio_fastest_backend_over_fpga_end_to_end":
            sides[fastest_backend]["batch1_p50_us"] / fpga_side["batch1_p50_us"]
            if fastest_backend else None,
        "fpga_throughput_per_instance_tx_s": fpga_figs["throughput_per_instance_tx_s"],
        "baseline_best_throughput_tx_s": float(fastest["transactions_per_s"]),
        "baseline_best_throughput_batch": int(fastest["batch_size"]),
        "firmware_ap": metrics["models"].get("firmware", {}).get("average_precision"),
        "forest_firmware_ap": metrics["models"].get("forest_firmware", {}).get("average_precision"),
        "rtl_vectors_checked": sim["vectors_checked"], "rtl_mismatches": sim["mismatch_count"],
    }


register(Step(
    name="report", command="report",
    help="write the decision report (HTML + Markdown + PNG plots): the answer first, then the "
         "evidence",
    reads=("hls.part", "hls.clock_period_ns", "report", "serving.link", "rtl.interface",
           "data", "split"),
    inputs=(MODEL_METRICS, TEST_SCORES, DATA_SUMMARY, SCALER, FIRMWARE_METRICS, GOLDEN, NETWORK,
            BIT_EXACTNESS, RTL_METADATA, SIM_RESULTS, YOSYS, VENDOR, BASELINE, EXPLAIN_SUMMARY,
            REASON_CODES, EXPLAIN_PLOT, SERVING),
    optional_inputs=(PNR, TIMING_POINTS, TIMING_CHOSEN, TIMING_PLOT, QUALITY_SUMMARY,
                     INTERFACE_STUDY, FOREST_SERVING, *forest.INPUTS, *imported.INPUTS,
                     *imported.FIRST_SCREEN, *transaction.INPUTS),
    outputs=REPORT_FILES, body=build_report,
    external_inputs=lambda cfg: [str(p) for p in sorted(GPU_RESULTS.glob("*.json"))],
    neighbour_inputs=sweeps_on_this_data, code=CODE))


def print_summary(run: RunFolder, progress=print) -> None:
    summary = load(run, f"{REPORT_DIR}/summary.json")
    progress(f"[report] {run.path(REPORT_DIR + '/index.html')}")
    for line in summary["answer"]:
        progress("  " + line.replace("**", ""))
