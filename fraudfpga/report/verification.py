"""The report's verification: how far each firmware is trusted. The network: its C simulation
against the independent integer reference, the RTL against the C simulation, the firmware
against QKeras. The forest's rows are in its own section (conifer emulation, RTL)."""

from __future__ import annotations


def network_section(exact: dict, sim: dict, period: str) -> tuple:
    fq = exact["firmware_vs_qkeras"]
    change = exact["average_precision_change_vs_qkeras"]
    rows = [
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
        ["AP change firmware vs QKeras", "n/a (AP undefined on this test set)" if change is None
         else f"{change:+.4f}", f"measured on the {period}"],
        ["RTL simulation speed", f"{sim['vectors_per_second']:,.0f} vectors/s",
         f"{sim['simulator_version']}, build {sim['build_seconds']} s"],
    ]
    return ("Verification: the network firmware", [], ["check", "result", "kind"], rows)
