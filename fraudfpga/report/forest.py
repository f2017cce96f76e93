"""The report's forest firmware: its quality beside the network firmware's, its verification
(conifer emulation against the integer reference and the forest, RTL against the emulation),
its resources and timing, and its FPGA figures for the serving decision. Everything comes from
the forest family's contract files, and only while they are current."""

from __future__ import annotations

import numpy as np

from fraudfpga.hls.artifacts import (FOREST_EXACTNESS, FOREST_EXPLAIN, FOREST_FIXED,
                                     FOREST_METRICS)
from fraudfpga.fusion import FUSION
from fraudfpga.hls.forest import FixedForest
from fraudfpga.runfolder import RunFolder
from fraudfpga.sim.artifacts import FOREST_FIRMWARE as FW

from .common import load
from .fpga_figures import fpga_figures
from fraudfpga.optional import figure, shown

INPUTS = (FOREST_METRICS, FOREST_EXACTNESS, FOREST_FIXED, FW.golden, FW.rtl_metadata,
          FW.sim_results, FW.yosys, FW.pnr, FOREST_EXPLAIN, FUSION)
OPTIONAL = (FW.pnr, FOREST_EXPLAIN, FUSION)  # the section is shown without them
SIDE = "FPGA forest"


def available(run: RunFolder) -> bool:
    """The forest's files up to its verification are current (its place and route may not be)."""
    return all(p in run.optional_inputs for p in INPUTS if p not in OPTIONAL)


def metrics(run: RunFolder) -> dict:
    return load(run, FOREST_METRICS)


def test_scores(run: RunFolder) -> np.ndarray:
    forest = FixedForest.load(run.path(FOREST_FIXED))
    return forest.fraud_scores(np.load(run.path(FW.golden))["test_output_codes"])


def figures(run: RunFolder, cfg, fw=FW) -> tuple[dict, int]:
    """The FPGA figures (as the network's) of a family with the forest's RTL (`fw`: the forest,
    or an imported model) and its input bytes per transaction."""
    pnr = load(run, fw.pnr) if fw.pnr in run.optional_inputs else None
    fpga = fpga_figures(load(run, fw.sim_results), load(run, fw.yosys),
                        {"status": "not run"}, pnr, cfg["hls"]["part"],
                        cfg["hls"]["clock_period_ns"], cfg["report"]["max_utilization"],
                        cfg["rtl"]["interface"])
    meta = load(run, fw.rtl_metadata)
    in_bytes = -(-meta["ports"]["in_data"] // 8)
    return fpga, in_bytes


def section(run: RunFolder, fpga: dict | None, network_fpga: dict, network_ap) -> list[tuple]:
    if fpga is None or not available(run):
        why = {p: run.stale_inputs[p] for p in INPUTS if p in run.stale_inputs}
        text = ("Left out: " + "; ".join(f"{p} {w}" for p, w in why.items()) if why else
                "Not built for this run (firmware.families does not name forest).")
        return [("Forest firmware (conifer)", [text], None, None)]
    m = metrics(run)
    exact = load(run, FOREST_EXACTNESS)
    sim = load(run, FW.sim_results)
    yosys = load(run, FW.yosys)
    meta = load(run, FW.rtl_metadata)
    shape = exact["forest"]
    firmware = m["forest_firmware"]
    label = m["model"]["label"]
    rows = [
        ["forest", f"{m['model']['settings']}: depth {shape['max_depth']} reached, "
                   f"{shape['split_nodes']:,} split nodes, {shape['comparators']} distinct "
                   "comparisons (one comparator each)", "conifer conversion"],
        [f"test AP: forest firmware / {label} (float) / network firmware",
         f"{figure(firmware, 'average_precision', '.4f')} / "
         f"{figure(m['forest_float'], 'average_precision', '.4f')} / "
         f"{'n/a' if network_ap is None else f'{network_ap:.4f}'}", "one training seed"],
        ["conifer emulation == integer reference",
         f"{exact['test_set_vs_reference']['identical']:,} / "
         f"{exact['test_set_vs_reference']['vectors']:,} test, "
         f"{exact['random_vs_reference']['identical']:,} / "
         f"{exact['random_vs_reference']['vectors']:,} random, edge and threshold vectors",
         exact["golden_model"]],
        [f"largest difference, firmware against the {label} ({exact['firmware_vs_float']['compared']})",
         f"{exact['firmware_vs_float']['max_difference']:.2e} (bound "
         f"{exact['firmware_vs_float']['bound']:.2e})", exact["firmware_vs_float"]["why"]],
        ["RTL == emulation (cocotb)", f"{sim['vectors_checked'] - sim['mismatch_count']:,} / "
                                      f"{sim['vectors_checked']:,}", sim["kind"]],
        ["AXI4-Stream top", f"{sim['axis']['vectors_checked']:,} scores; lost "
                            f"{sim['axis']['lost']}, duplicated {sim['axis']['duplicated']}, "
                            f"reordered {sim['axis']['reordered']}, wrong {sim['axis']['mismatched']}",
         sim["axis"]["kind"]],
        ["latency / II", f"{fpga['latency_cycles']} cycles = {fpga['latency_ns']:.1f} ns at "
                         f"{fpga['clock_mhz']:.1f} MHz / {sim['initiation_interval_cycles']:g}",
         fpga["latency_kind"]],
        ["Yosys " + yosys["command"], f"{yosys['resources']['LUT']:,} LUT, "
                                      f"{yosys['resources']['FF']:,} FF", yosys["kind"]],
        ["pipeline", f"{meta['pipeline']['tree_stages']} tree stage(s), a register every "
                     f"{meta['pipeline']['adder_levels']} adder level(s)", meta["generator"]],
    ]
    if FW.pnr in run.optional_inputs:
        pnr = load(run, FW.pnr)
        rows.append([f"placed and routed on {pnr['device']}",
                     f"{pnr['fmax_mhz']:.1f} MHz, {pnr['logic_cells']:,} logic cells, "
                     f"{pnr['flip_flops']:,} FF", pnr["kind"]])
    elif FW.pnr in run.stale_inputs:
        rows.append([f"{FW.pnr} (left out)", "stale", run.stale_inputs[FW.pnr]])
    if FOREST_EXPLAIN in run.optional_inputs:
        explain = load(run, FOREST_EXPLAIN)
        check = explain["check_against_firmware"]
        rows.append(["reason codes", f"{explain['alerts']:,} alerts explained; on the "
                                     f"{check['alerts']} highest, TreeSHAP against the "
                                     f"firmware's permutation values: correlation "
                                     f"{check['correlation']:.4f}, largest difference "
                                     f"{check['max_abs_difference']:.3f}",
                     f"{explain['explainer']}; forest/reason_codes.csv"])
    text = [
        f"The forest firmware's model ({m['model']['settings']}) is fitted on the inputs as the "
        "firmware sees them (the scaled features rounded to the input type) and converted by "
        "conifer. conifer's C++ emulation is the "
        "golden model; the RTL computes each distinct comparison once and each tree's leaf "
        "through a multiplexer tree, then sums the leaves (TreeLUT's form).",
        f"Beside the network firmware: {fpga['latency_cycles']} cycles = "
        f"{fpga['latency_ns']:.0f} ns against the network's {network_fpga['latency_cycles']} "
        f"cycles = {network_fpga['latency_ns']:.0f} ns.",
    ]
    return [("Forest firmware (conifer)", text, ["item", "value", "how it was obtained"], rows)]


def fusion_section(run: RunFolder) -> list[tuple]:
    """The fusion study: the network and the forest combined, decided on the validation
    window."""
    if FUSION not in run.optional_inputs:
        why = run.stale_inputs.get(FUSION)
        return [("Network and forest combined", [f"Left out: {FUSION} {why}"], None, None)] if why else []
    study = load(run, FUSION)
    valid, test, combiner, decision = (study["valid"], study["test"], study["combiner"],
                                       study["decision"])
    top_k = study["top_k"]
    cp = f"card_precision_at_{top_k}"
    rows = [[name, shown(valid[key], ".4f"), shown(test[entry]["average_precision"], ".4f"),
             shown(test[entry]["auc_roc"], ".4f"), shown(test[entry][cp], ".3f")]
            for name, key, entry in (("network firmware", "network", "network_firmware"),
                                     ("forest firmware", "forest", "forest_firmware"),
                                     (f"combined: {combiner['a']:+.4f} x logit {combiner['b']:+.4f}"
                                      f" x p ({combiner['type']})", "fused_out_of_fold", "fused"))]
    text = [
        f"Would the network and the forest side by side, their scores combined by a fixed-point "
        f"linear combiner, catch more fraud? The combiner is fitted by logistic regression on "
        f"the validation window ({valid['rows']:,} transactions, {valid['frauds']} frauds) on "
        "the selection fits' scores; its validation AP is out of fold (each of "
        f"{valid['folds']} time-ordered blocks scored by a combiner fitted on the others). The "
        "test columns combine both firmwares' verified output codes exactly.",
        f"**Decision: {'worth building' if decision['build'] else 'not built'}** — "
        f"{decision['why']}. {decision['not_built'][0].upper()}{decision['not_built'][1:]}."
        if not decision["built"] else f"**Decision: built** — {decision['why']}.",
    ]
    return [("Network and forest combined", text,
             ["design", "validation AP", "test AP", "test AUC ROC", f"test CP@{top_k}"], rows)]
