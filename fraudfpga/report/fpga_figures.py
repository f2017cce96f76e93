"""FPGA latency and throughput from the run's own measurements, with the strongest timing
evidence available.

Latency = pipeline cycles measured in the cocotb simulation / clock frequency. The clock comes,
in this order, from a vendor tool's timing when one ran, from the placed-and-routed Fmax on the
open FPGA family (nextpnr), or, labelled "not timed", from the hls4ml project's target clock for
the UltraScale+ part: no timing analysis of this RTL on that part exists here, so that figure is
an uncalibrated estimate and is never the headline while a timed figure exists. Throughput =
clock / II for one instance; how many instances fit is an estimate from resource counts.
"""

from __future__ import annotations

import math

# Capacities of the parts the defaults name, from AMD's published data sheets.
PART_CAPACITY = {
    "xcu250-figd2104-2L-e": {"LUT": 1_728_000, "FF": 3_456_000, "DSP": 12_288,
                             "source": "AMD Alveo U250 data sheet (DS962): 1,728K LUTs, "
                                       "3,456K registers, 12,288 DSP slices"},
}
NOT_TIMED = "not timed"


def _timing(vendor: dict, pnr: dict | None, part: str, hls_clock_ns: float) -> dict:
    if vendor.get("status") == "ok" and vendor.get("clock_ns", {}).get("estimated"):
        clock_ns = float(vendor["clock_ns"]["estimated"])
        return {"clock_ns": clock_ns, "timed_on": vendor.get("part", part), "timing": "vendor",
                "clock_source": f"clock of the vendor report ({vendor.get('tool')} "
                                f"{vendor.get('tool_version')}, {vendor.get('part', part)})"}
    if pnr is not None:
        return {"clock_ns": 1e3 / pnr["fmax_mhz"], "timed_on": pnr["device"], "timing": "pnr",
                "clock_source": f"Fmax after place and route on {pnr['family_title']} "
                                f"{pnr['device']} (nextpnr, seed {pnr['seed']})"}
    return {"clock_ns": hls_clock_ns, "timed_on": part, "timing": NOT_TIMED,
            "clock_source": f"{NOT_TIMED}: the hls4ml target clock for {part}; no timing analysis "
                            "of this RTL exists (uncalibrated estimate; run `make pnr`)"}


def _instances(resources: dict, capacity: dict, max_utilization: float) -> tuple[int, str] | None:
    limits = {k: capacity[k] * max_utilization / resources[k]
              for k in capacity if isinstance(capacity[k], int) and resources.get(k)}
    if not limits:
        return None
    return max(0, math.floor(min(limits.values()))), min(limits, key=limits.get)


def interface_latency(sim_results: dict, interface: str) -> tuple[int, str]:
    """The measured latency of the top level the user integrates (`rtl.interface`), and how it
    was measured."""
    if interface == "axis":
        return (int(sim_results["axis"]["latency_cycles"]),
                f"measured in simulation (cocotbext-axi + {sim_results['simulator']}): s_axis "
                "handshake to m_axis handshake of the AXI4-Stream top, tready always high")
    return (int(sim_results["latency_cycles"]),
            f"measured in simulation (cocotb + {sim_results['simulator']}): in_valid to out_valid")


def fpga_figures(sim_results: dict, yosys: dict, vendor: dict, pnr: dict | None, part: str,
                 hls_clock_ns: float, max_utilization: float, interface: str = "valid") -> dict:
    cycles, cycles_kind = interface_latency(sim_results, interface)
    ii = float(sim_results["initiation_interval_cycles"])
    timing = _timing(vendor, pnr, part, hls_clock_ns)
    clock_ns = timing.pop("clock_ns")
    clock_mhz = 1e3 / clock_ns
    per_instance = clock_mhz * 1e6 / ii
    figures = {
        "latency_cycles": cycles, "interface": interface,
        "latency_cycles_kind": cycles_kind,
        "initiation_interval_cycles": ii,
        "clock_ns": round(clock_ns, 3), "clock_mhz": round(clock_mhz, 2), **timing,
        "latency_ns": round(cycles * clock_ns, 2),
        "latency_kind": f"simulated cycles x clock period ({timing['clock_source']})",
        "throughput_per_instance_tx_s": per_instance,
        "throughput_kind": f"clock / II for one instance on {timing['timed_on']}",
        "part": part,
    }
    if pnr is not None:
        used = {r: u["used"] for r, u in pnr["utilization"].items()}
        capacity = {r: u["available"] for r, u in pnr["utilization"].items()}
        fit = _instances(used, capacity, max_utilization)
        if fit:
            figures |= {"instances_on_device": fit[0], "limiting_resource_device": fit[1],
                        "instances_on_device_kind": f"estimate: placed-and-routed utilization "
                                                    f"against {max_utilization:.0%} of "
                                                    f"{pnr['device']}"}
    capacity = PART_CAPACITY.get(part)
    resources = (vendor.get("resources") if vendor.get("status") == "ok" else None) or yosys.get("resources", {})
    source = "vendor HLS estimate" if vendor.get("status") == "ok" else "Yosys estimate"
    fit = _instances(resources, {k: v for k, v in (capacity or {}).items() if k != "source"},
                     max_utilization) if capacity else None
    if fit:
        part_timed = timing["timing"] == "vendor"
        part_clock_mhz = clock_mhz if part_timed else 1e3 / hls_clock_ns
        figures |= {
            "instances_on_part": fit[0], "limiting_resource": fit[1],
            "instances_kind": f"estimate: {source} resources against {max_utilization:.0%} of the "
                              f"part's capacity ({capacity['source']}); routing and I/O ignored",
            "part_clock_mhz": round(part_clock_mhz, 2),
            "part_clock_kind": "vendor timing" if part_timed else
                               f"{NOT_TIMED}: hls4ml target clock, uncalibrated estimate",
            "card_throughput_tx_s": fit[0] * part_clock_mhz * 1e6 / ii,
            "card_throughput_kind": "estimate: instances x clock / II, I/O bandwidth ignored" +
                                    ("" if part_timed else f" ({NOT_TIMED})"),
        }
    else:
        figures |= {"instances_on_part": None,
                    "instances_kind": f"not estimated: no capacity figures for part {part!r}"}
    return figures
