"""The report's FPGA implementation of the network firmware: latency and clock with their
evidence, throughput (bounded by the host link), critical path, resources, and the `make timing`
exploration while it belongs to the current network."""

from __future__ import annotations

from pathlib import Path

from fraudfpga.runfolder import RunFolder
from fraudfpga.sim.artifacts import PNR, RTL_METADATA, TIMING_CHOSEN, TIMING_PLOT, TIMING_POINTS

from .common import fmt, load


def network_section(run: RunFolder, fpga: dict, yosys: dict, vendor: dict, link: dict,
                    link_limit: float, network_bytes: int) -> tuple:
    rows = [["latency", f"{fpga['latency_cycles']} cycles = {fpga['latency_ns']:.1f} ns",
             fpga["latency_kind"]],
            ["clock", f"{fpga['clock_mhz']:.1f} MHz ({fpga['clock_ns']} ns)", fpga["clock_source"]],
            ["throughput, one instance", f"{fpga['throughput_per_instance_tx_s']:,.0f} tx/s",
             fpga["throughput_kind"]]]
    if fpga.get("instances_on_device") is not None:
        rows.append([f"instances on {fpga['timed_on']}", fmt(fpga["instances_on_device"]),
                     fpga["instances_on_device_kind"]])
    if fpga.get("card_throughput_tx_s"):
        deliverable = min(link_limit, fpga["card_throughput_tx_s"])
        rows.append([f"throughput deliverable to a host over the {link['name']}",
                     f"{deliverable:,.0f} tx/s",
                     f"{fpga['instances_on_part']} instances on {fpga['part']} would compute "
                     f"{fpga['card_throughput_tx_s']:,.0f} tx/s ({fpga['card_throughput_kind']}), "
                     f"bounded by the link: {link['gbytes_per_s']:g} GB/s / {network_bytes} bytes "
                     f"per transaction (assumed link figures)"])
    res = yosys["resources"]
    resources = [["Yosys " + yosys["command"], fmt(res["LUT"]), fmt(res["FF"]), fmt(res["CARRY"]),
                  fmt(res["DSP"]), fmt(res["BRAM"]), yosys["kind"]]]
    if vendor.get("status") == "ok":
        v = vendor["resources"]
        resources.append([f"{vendor['tool']} {vendor['tool_version']} ({vendor['part']})",
                          fmt(v.get("LUT")), fmt(v.get("FF")), "", fmt(v.get("DSP")),
                          fmt(v.get("BRAM_18K")), vendor["kind"]])
    else:
        resources.append(["vendor HLS", "", "", "", "", "", vendor.get("reason", "not run")])
    if PNR in run.optional_inputs:
        pnr = load(run, PNR)
        path = pnr["critical_path"] or {}
        rows.append([f"critical path on {pnr['device']}",
                     f"{path.get('delay_ns')} ns through {path.get('cell_count')} cells, "
                     f"{100 * (path.get('routing_share') or 0):.0f} % routing",
                     f"{pnr['kind']}; from {path.get('start')} to {path.get('end')}"])
        rtl = load(run, RTL_METADATA)
        rows.append(["delay model prediction", f"{rtl['predicted']['fmax_mhz']} MHz, "
                     f"{rtl['predicted']['latency_ns']} ns", rtl["predicted"]["kind"]])
        resources.append([f"{pnr['family_title']} {pnr['device']} (nextpnr)",
                          f"{fmt(pnr['logic_cells'])} logic cells", fmt(pnr["flip_flops"]), "",
                          "", "", pnr["kind"] + f"; the {pnr['harness_flip_flops']} FF of the pin "
                          "harness included"])
    if TIMING_POINTS in run.optional_inputs:
        chosen = load(run, TIMING_CHOSEN)
        rows.append([f"make timing: chosen by {chosen['objective']}",
                     f"{chosen['stages']} stages, {chosen['cycles']} cycles at "
                     f"{chosen['fmax_mhz']:.1f} MHz = {chosen['latency_ns']:.1f} ns",
                     f"placed and routed on {chosen['device']}; "
                     f"{chosen['verified']['vectors_checked']:,} vectors, "
                     f"{chosen['verified']['mismatch_count']} mismatches in cocotb"])
    for stale, why in run.stale_inputs.items():
        if stale.startswith(("synth/", "timing/")):
            rows.append([f"{stale} (left out)", "stale", why])
    rows += [[f"resources: {r[0]}", " / ".join(f"{h} {c}" for h, c in
                                             zip(("LUT", "FF", "CARRY", "DSP", "BRAM"), r[1:6]) if c),
              r[6]] for r in resources]
    return ("FPGA implementation: the network firmware",
            ["Yosys and vendor HLS figures are synthesis estimates; the nextpnr figures are "
             "placed and routed."], ["FPGA figure", "value", "how it was obtained"], rows)


def timing_section(run: RunFolder) -> list[tuple]:
    """The `make timing` exploration, while it belongs to the current network."""
    if TIMING_POINTS not in run.optional_inputs:
        return []
    data = load(run, TIMING_POINTS)
    rows = [[p["stages"], p["seed"], "failed", p["failed"], "", "", "", "", ""] if "failed" in p else
            [p["stages"], p["seed"], p["cycles"], f"{p['fmax_mhz']:.1f}", f"{p['predicted_fmax_mhz']:.0f}",
             f"{p['latency_ns']:.1f}", fmt(p["logic_cells"]), fmt(p["flip_flops"]),
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
