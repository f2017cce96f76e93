"""The report's section on a team's own model (the imported family): "your model" beside "what
the toolkit trained" on the same split, the input contract and what quantization moved, the
verification chain and the FPGA figures. Everything comes from the family's contract files,
and only while they are current."""

from __future__ import annotations

from fraudfpga.gpu_baseline.artifacts import IMPORTED_SERVING
from pathlib import Path

from fraudfpga.hls.artifacts import (IMPORTED_CHECK, IMPORTED_CONTRACT, IMPORTED_EXPLAIN,
                                     IMPORTED_FIXED, IMPORTED_METRICS)
from fraudfpga.optional import figure
from fraudfpga.runfolder import RunFolder
from fraudfpga.sim.artifacts import IMPORTED_FIRMWARE as FW

from .common import load

INPUTS = (IMPORTED_METRICS, IMPORTED_CHECK, IMPORTED_CONTRACT, FW.rtl_metadata, FW.sim_results,
          FW.pnr, IMPORTED_SERVING, IMPORTED_EXPLAIN)
OPTIONAL = (FW.rtl_metadata, FW.sim_results, FW.pnr, IMPORTED_SERVING, IMPORTED_EXPLAIN)
TITLE = "Your model (imported)"
SIDE = "FPGA imported"
# needed for the first screen: the firmware's verification and timing, and the serving figures
FIRST_SCREEN = (FW.sim_results, FW.yosys, FW.rtl_metadata, IMPORTED_SERVING, IMPORTED_FIXED,
                FW.golden)


def available(run: RunFolder) -> bool:
    """Your model's files up to its verification and serving are current (its place and route
    may not be): its rows join the first screen."""
    return all(p in run.optional_inputs for p in (*INPUTS, *FIRST_SCREEN) if p != FW.pnr)


def metrics_rows(run: RunFolder) -> dict:
    return load(run, IMPORTED_METRICS)


def test_scores(run: RunFolder):
    import numpy as np

    from fraudfpga.hls.imported_flow import load_fixed

    _, fixed = load_fixed(run.path(IMPORTED_FIXED))
    return fixed.fraud_scores(np.load(run.path(FW.golden))["test_output_codes"])


def golden_name(run: RunFolder) -> str:
    """Your model's golden model, in a few words (conifer's emulation or hls4ml's C simulation)."""
    return load(run, IMPORTED_CHECK)["golden_model"].split(" (")[0] + " of your model"


def serving(run: RunFolder) -> dict:
    return load(run, IMPORTED_SERVING)["backends"]


def verdict_line(run: RunFolder, metrics: dict, sides: dict) -> str:
    """The first screen's sentence on your model: its firmware beside your library."""
    m = metrics_rows(run)
    fpga = sides.get(SIDE)
    cpu = {n: s for n, s in sides.items() if not s.get("fpga") and s["model"] == "imported"}
    fastest = min(cpu, key=lambda n: cpu[n]["batch1_p50_us"]) if cpu else None
    ap = {k: m[k].get("average_precision") for k in ("imported_firmware", "imported_library")}
    text = (f"**Your model** ({Path(m['model']['path']).name}, {m['model']['kind']}): its "
            f"firmware's test AP {ap['imported_firmware']:.4f} against {ap['imported_library']:.4f}"
            f" in {m['model']['library']}")
    if fpga:
        text += (f"; on the FPGA {fpga['compute_us'] * 1e3:.0f} ns compute, "
                 f"{fpga['batch1_p50_us']:.2f} us with the assumed link")
    if fastest:
        text += (f"; on this machine's CPU its fastest back end, {fastest}, takes "
                 f"{cpu[fastest]['batch1_p50_us']:.1f} us at batch 1 (p50, measured)")
    return text + "."


def _forest_rows(m: dict, check: dict, contract: dict) -> list[list]:
    shape, versus, thresholds = check["forest"], check["firmware_vs_library"], contract["thresholds"]
    return [
        ["model file", f"{m['model']['path']}: {m['model']['kind']}, {shape['trees']} trees, "
                       f"{shape['split_nodes']:,} split nodes, {shape['comparators']:,} "
                       "comparators", m["model"]["library"]],
        ["input contract", f"{contract['bits']}-bit codes, offset and power-of-two scale per "
                           f"input; {thresholds['splits_decided_by_the_code_range']} splits "
                           "decided by the code range, "
                           f"{sum(thresholds['collapsed_onto_one_code'].values())} thresholds "
                           "sharing a code", contract["arithmetic"]],
        ["test rows whose path moved", f"{versus['rows_whose_path_moved']:,} of "
                                       f"{versus['rows']:,}", versus["why_paths_move"]],
        ["largest difference from your library (other rows)",
         f"{versus['max_difference_unmoved_rows']:.3g} (bound {versus['bound_unmoved_rows']:.3g})",
         versus["bound_why"]]]


def _network_rows(m: dict, check: dict, contract: dict) -> list[list]:
    shape, versus = check["network"], check["firmware_vs_library"]
    layers = ", ".join(f"{l['shape'][0]}x{l['shape'][1]} ({l['weight_type']} weights, out "
                       f"{l['output_type']})" for l in shape["layers"])
    return [
        ["model file", f"{m['model']['path']}: {m['model']['kind']}; dense layers {layers}",
         m["model"]["library"]],
        ["input contract", f"{contract['bits']}-bit codes, offset and power-of-two scale per "
                           f"input; read as {contract['firmware_input_type']}",
         contract["arithmetic"] + "; " + contract["firmware_input"]],
        ["largest logit difference from your library",
         f"{versus['max_difference']:.3g} ({versus['max_difference_rows_not_saturated']:.3g} "
         f"without the {versus['rows_with_a_saturated_input']:,} rows that saturate an input; "
         f"99 % of test rows within {versus['p99_difference']:.3g}; output LSB "
         f"{versus['output_lsb']:.3g})",
         versus["why_not_identical"]]]


MODEL_ROWS = {"forest": _forest_rows, "network": _network_rows}


def section(run: RunFolder, metrics: dict, labels: dict) -> list[tuple]:
    """`metrics`: the run's test metrics (the toolkit's models), `labels`: their names."""
    if not all(p in run.optional_inputs for p in INPUTS if p not in OPTIONAL):
        why = {p: run.stale_inputs[p] for p in INPUTS if p in run.stale_inputs}
        return [(TITLE, ["Left out: " + "; ".join(f"{p} {w}" for p, w in why.items())], None,
                 None)] if why else []
    m, check, contract = (load(run, IMPORTED_METRICS), load(run, IMPORTED_CHECK),
                          load(run, IMPORTED_CONTRACT))
    rows = [[m["labels"]["imported_library"], figure(m["imported_library"], "average_precision",
                                                    ".4f"), "your library's own predictions"],
            [m["labels"]["imported_firmware"], figure(m["imported_firmware"], "average_precision",
                                                     ".4f"), check["golden_model"]]]
    rows += [[f"{labels[name]} (trained by the toolkit)",
              figure(metrics["models"][name], "average_precision", ".4f"), "same split"]
             for name in metrics["models"] if name in labels]
    details = MODEL_ROWS[m["model"]["generator"]](m, check, contract)
    details += [
        ["test AP change, firmware - library", f"{check['average_precision']['change']:+.4f}",
         "same test rows"],
        ["decisions that differ at the firmware's operating point",
         f"{check['decisions_flipped_at_operating_point']:,}", "same threshold on both"],
        [f"{check['golden_model'].split(' (')[0]} == integer reference",
         f"{check['test_set_vs_reference']['identical']:,} / "
         f"{check['test_set_vs_reference']['vectors']:,} test, "
         f"{check['random_vs_reference']['identical']:,} / "
         f"{check['random_vs_reference']['vectors']:,} "
         + ("random, edge and threshold" if "threshold_vectors" in check["random_vs_reference"]
            else "random and edge") + " vectors",
         check["reference"]],
    ]
    if FW.sim_results in run.optional_inputs:
        sim = load(run, FW.sim_results)
        details.append(["RTL == golden model (cocotb)",
                        f"{sim['vectors_checked'] - sim['mismatch_count']:,} / "
                        f"{sim['vectors_checked']:,}; AXI4-Stream: {sim['axis']['vectors_checked']:,}"
                        f" scores, lost {sim['axis']['lost']}, wrong {sim['axis']['mismatched']}; "
                        f"latency {sim['latency_cycles']} cycles, II "
                        f"{sim['initiation_interval_cycles']:g}", sim["kind"]])
    if FW.pnr in run.optional_inputs:
        pnr = load(run, FW.pnr)
        details.append([f"placed and routed on {pnr['device']}",
                        f"{pnr['fmax_mhz']:.1f} MHz, {pnr['latency_cycles']} cycles = "
                        f"{pnr['latency_ns']:.0f} ns, {pnr['logic_cells']:,} logic cells",
                        pnr["kind"]])
    if IMPORTED_EXPLAIN in run.optional_inputs:
        explain = load(run, IMPORTED_EXPLAIN)
        importance = explain["importance"]
        top = [importance["features"][i] for i in
               sorted(range(len(importance["firmware"])), key=lambda i: -importance["firmware"][i])[:3]]
        versus = explain["check_against_library"]
        details.append(["reason codes (imported/reason_codes.csv)",
                        f"{explain['alerts']:,} alerts; strongest inputs overall: "
                        f"{', '.join(top)}; against {versus['library']}'s own values on the "
                        f"{versus['alerts']} highest alerts: correlation "
                        f"{versus['correlation']:.3f}", explain["explainer"]])
    if IMPORTED_SERVING in run.optional_inputs:
        serving = load(run, IMPORTED_SERVING)
        target = str(min(serving["latency_targets_us"]))
        for name, backend in serving["backends"].items():
            highest = backend["highest_load_under_us"].get(target)
            details.append([f"your model on {name}, {backend['device']}",
                            f"batch 1: p50 {backend['batch1']['p50_us']:.1f} us, p99 "
                            f"{backend['batch1']['p99_us']:.1f} us; highest load with p99 <= "
                            f"{float(target):g} us: "
                            f"{'none' if highest is None else f'{highest:,.0f} tx/s'}",
                            serving["kind"]])
    text = [f"Your model, read from {m['model']['path']} ({m['model']['kind']}), scored the "
            "same test rows as the toolkit's models. The firmware compares integer codes: the "
            f"host turns each raw value into a code by the input contract "
            f"(imported/input_contract.json, with a plain-Python reference beside it), stated "
            "exactly so that any IEEE 754 host reproduces it."]
    return [(TITLE, text, ["model", "test AP", "how"], rows),
            (f"{TITLE}: contract and verification", [], ["item", "value", "how"], details)]
