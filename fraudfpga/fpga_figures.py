"""FPGA latency and throughput from the run's own measurements and estimates.

Latency = pipeline cycles measured in the cocotb simulation / clock frequency. The clock comes
from the vendor report when one exists, otherwise from the RTL's target clock, whose pipeline
depth was chosen with an adder-delay estimate (no timing analysis). Throughput = clock / II for
one instance; instances that fit on the part come from the resource counts and are an estimate.
"""

from __future__ import annotations

import math

# Capacities of the parts the defaults name, from AMD's published data sheets.
PART_CAPACITY = {
    "xcu250-figd2104-2L-e": {"LUT": 1_728_000, "FF": 3_456_000, "DSP": 12_288,
                             "source": "AMD Alveo U250 data sheet (DS962): 1,728K LUTs, "
                                       "3,456K registers, 12,288 DSP slices"},
}


def fpga_figures(sim_results: dict, rtl_metadata: dict, yosys: dict, vendor: dict,
                 part: str, max_utilization: float) -> dict:
    if vendor.get("status") == "ok" and vendor.get("clock_ns", {}).get("estimated"):
        clock_ns = float(vendor["clock_ns"]["estimated"])
        clock_source = (f"estimated clock of the vendor report ({vendor.get('tool')} "
                        f"{vendor.get('tool_version')})")
    else:
        clock_ns = float(rtl_metadata["clock_period_ns"])
        clock_source = (f"target clock of the RTL ({clock_ns} ns): pipeline depth chosen with an "
                        f"estimate of {rtl_metadata['adder_level_ns_estimate']} ns per adder level; "
                        "no vendor tool and no timing analysis confirmed it")
    cycles = int(sim_results["latency_cycles"])
    ii = float(sim_results["initiation_interval_cycles"])
    clock_mhz = 1e3 / clock_ns
    per_instance = clock_mhz * 1e6 / ii
    figures = {
        "latency_cycles": cycles,
        "latency_cycles_kind": "measured in simulation (cocotb + " + sim_results["simulator"] + ")",
        "initiation_interval_cycles": ii,
        "clock_ns": clock_ns, "clock_mhz": clock_mhz, "clock_source": clock_source,
        "latency_ns": cycles * clock_ns,
        "latency_kind": "simulated cycles x clock period (" +
                        ("vendor estimate" if vendor.get("status") == "ok" else "target clock") + ")",
        "throughput_per_instance_tx_s": per_instance,
        "throughput_kind": "clock / II for one instance (estimate)",
        "part": part,
    }
    capacity = PART_CAPACITY.get(part)
    resources = (vendor.get("resources") if vendor.get("status") == "ok" else None) or yosys.get("resources", {})
    source = "vendor HLS estimate" if vendor.get("status") == "ok" else "Yosys estimate"
    if capacity and resources.get("LUT"):
        limits = {k: capacity[k] * max_utilization / resources[k]
                  for k in ("LUT", "FF", "DSP") if resources.get(k)}
        instances = max(0, math.floor(min(limits.values())))
        figures |= {
            "instances_on_part": instances,
            "instances_kind": f"estimate: {source} resources against {max_utilization:.0%} of the "
                              f"part's capacity ({capacity['source']}); routing and I/O ignored",
            "limiting_resource": min(limits, key=limits.get),
            "card_throughput_tx_s": instances * per_instance,
            "card_throughput_kind": "estimate: instances x clock / II, I/O bandwidth ignored",
        }
    else:
        figures |= {"instances_on_part": None,
                    "instances_kind": f"not estimated: no capacity figures for part {part!r}"}
    return figures
