"""The report's AXI4-Stream section: the wrapped top's verification under backpressure, its
throughput and latency, its reset behaviour and what the wrapper costs."""

from __future__ import annotations

from collections import defaultdict


def _duty_rows(duties: list[dict]) -> list[list[str]]:
    by_duty = defaultdict(list)
    for d in duties:
        by_duty[d["duty"]].append(d)
    rows = []
    for duty, runs in sorted(by_duty.items(), reverse=True):
        worst = min(runs, key=lambda d: d["throughput_over_duty"])
        rows.append([f"throughput, m_axis_tready high {duty:.0%} of cycles at random",
                     f"{min(d['delivered_per_cycle'] for d in runs):.4f}-"
                     f"{max(d['delivered_per_cycle'] for d in runs):.4f} scores per cycle; worst "
                     f"{worst['throughput_over_duty']:.4f} x the measured duty "
                     f"({worst['throughput_over_nominal_duty']:.4f} x the nominal {duty:g}); "
                     f"latency p99 {max(d['latency_cycles']['p99'] for d in runs):g} cycles",
                     f"{len(runs)} seed(s), input always valid; goal >= 0.99 x duty"])
    return rows


def axis_section(sim: dict, yosys: dict, pnr: dict | None) -> list[tuple]:
    axis = sim.get("axis")
    if not axis:
        return [("AXI4-Stream top level", ["Not simulated in this run (rerun `make sim`)."],
                 None, None)]
    iface = axis["interface"]
    details = iface["details"]
    kind = axis["kind"]
    reset = axis["reset"] or {}
    after = reset.get("after_reset", {})
    clock = (f" = {axis['latency_cycles'] * 1e3 / pnr['fmax_mhz']:.1f} ns at the placed-and-routed "
             f"{pnr['fmax_mhz']:.1f} MHz" if pnr else "")
    rows = [
        ["scores checked against the C simulation, in order with their identifier",
         f"{axis['vectors_checked']:,}; {axis['mismatched']} wrong, {axis['tlast_mismatched']} "
         "wrong tlast", kind],
        ["lost / duplicated / reordered",
         f"{axis['lost']} / {axis['duplicated']} / {axis['reordered']} over the full-rate pass and "
         f"{len(axis['phases']) - 1} backpressure patterns", kind],
        ["throughput, tready always high", f"{axis['full_rate_per_cycle']:.4f} scores per clock "
         f"({axis['vectors']['test_set']:,} test-set + {axis['vectors']['random_and_edge']:,} random "
         "vectors)", kind],
        ["latency, tready always high", f"{axis['latency_cycles']} cycles (pipeline "
         f"{details['core_latency_cycles']} + wrapper {details['wrapper_latency_cycles']}){clock}",
         kind],
        *_duty_rows(axis["duty_cycles"]),
        ["reset in the middle of a stream",
         f"{reset.get('dropped_in_flight')} transactions in flight dropped; "
         f"{reset.get('outputs_after_reset_before_new_input')} outputs before new input; the "
         f"{after.get('vectors')} sent after it: {after.get('lost')} lost, "
         f"{after.get('mismatched')} wrong", f"{kind}; {details['reset']}"],
    ]
    wrapper = yosys.get("wrapper")
    if wrapper:
        res = wrapper["resources"]
        rows.append(["the wrapper's own cost (Yosys)",
                     f"{res['LUT']} LUT + {res['LUTRAM']} LUTRAM, {res['FF']} FF = "
                     f"{wrapper['lut_share_of_core']:.2%} of the core's {wrapper['core_resources']['LUT']:,} "
                     "LUTs", f"estimated by Yosys {wrapper['command']}; goal <= 5 %"])
    if pnr:
        rows.append([f"{pnr['top']} placed and routed on {pnr['device']}",
                     f"Fmax {pnr['fmax_mhz']:.1f} MHz, {pnr['logic_cells']:,} logic cells, "
                     f"{pnr['flip_flops']:,} FF", f"{pnr['kind']}, seed {pnr['seed']}"])
    text = [
        f"`{iface['top']}`: AXI4-Stream slave `s_axis_*` ({iface['inputs']['s_axis_tdata']}-bit "
        f"tdata, {details['id_bits']}-bit tuser = transaction identifier, tlast) and master "
        f"`m_axis_*` (the logit {details['score_extension']}-extended to "
        f"{iface['outputs']['m_axis_tdata']} bits, with the identifier and tlast it came with). "
        f"{details['backpressure'].capitalize()} (DEPTH = {details['depth']} = pipeline latency + 2): "
        "the da4ml pipeline never stalls, s_axis_tready and m_axis_tvalid are registers.",
        "Verified with cocotbext-axi's AxiStreamSource and AxiStreamSink: frames of 1-8 "
        "transactions, random input gaps, random, bursty and long-stalled tready.",
    ]
    return [("AXI4-Stream top level", text, ["check", "result", "kind"], rows)]


def interface_study_section(study: dict) -> list[tuple]:
    """`make interface-study`: the valid, credit-based and clock-enable tops side by side."""
    rows = []
    for name, v in study["variants"].items():
        res = v["yosys"]["resources"]
        wrapper = v["yosys"].get("wrapper")
        change = v.get("vs_valid")
        rows.append([
            f"{name} (`{v['top']}`)", v["backpressure"], str(v["latency_cycles"]),
            f"{v['fmax_mhz_mean']:.1f}" + (f" ({100 * change['fmax_change']:+.1f} %)" if change else ""),
            f"{v['latency_ns']:.1f}", f"{res['LUT']:,} / {res['FF']:,}",
            (f"{wrapper['resources']['LUT'] + wrapper['resources']['LUTRAM']} / "
             f"{wrapper['resources']['FF']} ({wrapper['lut_share_of_core']:.2%})") if wrapper else "",
            " / ".join(f"{mean_of(v['pnr'], k):,.0f}" for k in ("logic_cells", "flip_flops"))
            + (f" ({change['logic_cells_added']:+,.0f} / {change['flip_flops_added']:+,.0f})"
               if change else "")])
    verified = study["axis_ce_verified"]
    text = [
        f"{study['kind']}. {study['device']}, seeds {study['seeds']}. The clock-enable top was "
        f"verified like the default one: {verified['vectors_checked']:,} scores, "
        f"{verified['lost']} lost, {verified['duplicated']} duplicated, {verified['reordered']} "
        f"reordered, {verified['mismatched']} wrong; {verified['full_rate_per_cycle']:.4f} per "
        "clock at full rate.",
    ]
    return [("Backpressure: credits against a clock enable (make interface-study)", text,
             ["top", "backpressure", "cycles", "Fmax MHz (vs valid)", "latency ns",
              "Yosys LUT / FF", "wrapper alone LUT / FF (of core LUT)",
              "P&R logic cells / FF (vs valid)"], rows)]


def mean_of(runs: list[dict], key: str) -> float:
    return sum(r[key] for r in runs) / len(runs)
