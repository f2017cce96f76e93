"""The report's decision section: p99 latency against offered load for every CPU/GPU back end
(measured, `make serving`) and the FPGA (cycles measured in simulation at its timed clock, behind
a host link whose figures are assumptions with a source), through the same Poisson trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import load_text
from fraudfpga.gpu_baseline.serving import (FpgaPath, highest_load_under, poisson_arrivals,
                                            serve_fpga, summarize)

FPGA = "FPGA"


def fpga_path(fpga: dict, network_bytes: int, link: dict) -> FpgaPath:
    clock_hz = fpga["clock_mhz"] * 1e6 / fpga["initiation_interval_cycles"]
    return FpgaPath(compute_s=fpga["latency_ns"] * 1e-9, clock_hz=clock_hz,
                    link_round_trip_s=link["round_trip_us"] * 1e-6,
                    link_bytes_per_s=link["gbytes_per_s"] * 1e9,
                    bytes_per_transaction=network_bytes)


def fpga_levels(serving: dict, path: FpgaPath) -> list[dict]:
    """The FPGA through the very arrivals the back ends saw (same loads, seconds, seeds)."""
    trace = serving["trace"]
    levels = []
    for index, load in enumerate(trace["loads"]):
        arrivals = poisson_arrivals(load, trace["seconds_per_load"], trace["seed"] + index)
        levels.append(summarize(serve_fpga(arrivals, path), load, arrivals.size,
                                trace["seconds_per_load"]))
    return levels


def decision(serving: dict, fpga: dict, network_bytes: int, link: dict,
             more_fpgas: dict[str, tuple[dict, int]] | None = None,
             more_backends: dict | None = None) -> dict:
    """Every side's levels, its highest load under each target, and the fastest back end.
    `fpga` is the network firmware's figures (side FPGA); `more_fpgas` other firmwares:
    side name -> (figures, input bytes per transaction); `more_backends` the back ends of other
    models measured through the same trace (the forest's)."""
    targets = serving["latency_targets_us"]
    backends = {**serving["backends"], **(more_backends or {})}
    sides = {name: {"levels": r["levels"], "model": r.get("model", "network"),
                    "label": f"{name} ({r.get('model', 'network')}, {r['device']})",
                    "batch1_p50_us": r["batch1"]["p50_us"], "batch1": r["batch1"],
                    "highest": {t: highest_load_under(r["levels"], t) for t in targets}}
             for name, r in backends.items()}
    for name, (figures, in_bytes) in {FPGA: (fpga, network_bytes), **(more_fpgas or {})}.items():
        path = fpga_path(figures, in_bytes, link)
        levels = fpga_levels(serving, path)
        what = "" if name == FPGA else f" ({name.removeprefix('FPGA').strip()})"
        sides[name] = {"levels": levels, "fpga": True, "model": figures.get("model", "network"),
                       "label": f"FPGA{what} on {figures['timed_on']} + {link['name']}",
                       "batch1_p50_us": path.end_to_end_s() * 1e6,
                       "compute_us": path.compute_s * 1e6,
                       "link_limit_per_s": link["gbytes_per_s"] * 1e9 / in_bytes,
                       "rate_per_s": path.rate_per_s,
                       "highest": {t: highest_load_under(levels, t) for t in targets}}
    backends = [n for n in sides if not sides[n].get("fpga")]
    fastest = min(backends, key=lambda n: sides[n]["batch1_p50_us"]) if backends else None
    return {"sides": sides, "targets": targets, "fastest_backend": fastest}


def plot_decision(result: dict, out: Path) -> None:
    from .common import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    marks = []
    for name, side in result["sides"].items():
        ok = [lv for lv in side["levels"] if not lv["saturated"]]
        line, = ax.plot([lv["offered_per_s"] for lv in ok], [lv["p99_us"] for lv in ok],
                        marker="o" if side.get("fpga") else ".", label=side["label"],
                        color="black" if name == FPGA else None)
        marks += [(lv["offered_per_s"], line.get_color()) for lv in side["levels"]
                  if lv["saturated"]]
    top = ax.get_ylim()[1]
    for load, color in marks:  # saturated levels have no latency: marked at the top
        ax.scatter([load], [top], marker="x", s=60, color=color, clip_on=False)
    for target in result["targets"]:
        ax.axhline(target, color="grey", lw=0.7, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="offered load (transactions/s, Poisson)",
           ylabel="p99 end-to-end latency (us)",
           title="Serving under load (x: saturated, drops or < 95 % of the load served)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def decision_section(serving: dict, result: dict, link: dict, network_bytes: int) -> tuple:
    sides, targets = result["sides"], result["targets"]
    rows = []
    top = max(serving["trace"]["loads"])
    for name, side in sides.items():
        saturated = next((lv["offered_per_s"] for lv in side["levels"] if lv["saturated"]), None)
        compute = (f"{side['compute_us']:.3f} us compute (measured cycles / timed clock), "
                   f"{side['batch1_p50_us']:.2f} us with the link (assumed)"
                   if side.get("fpga") else f"{side['batch1_p50_us']:.1f} us (batch-1 p50, measured)")
        lowest = next((lv for lv in side["levels"] if not lv["saturated"]), None)
        end_to_end = (f"{lowest['p50_us']:.1f} / {lowest['p99_us']:.1f} us at "
                      f"{load_text(lowest['offered_per_s'])}" if lowest else "saturated")

        def highest(target):
            load = side["highest"][target]
            beyond = saturated is None and load == top
            return f">= {load_text(load)} (highest load tried)" if beyond else load_text(load)

        rows.append([side["label"], compute, end_to_end, *[highest(t) for t in targets],
                     load_text(saturated) if saturated else f"none up to {load_text(top)}"])
    fastest = result["fastest_backend"]
    fpga = sides[FPGA]
    text = [
        f"An open-loop Poisson trace at each offered load ({serving['trace']['seconds_per_load']} "
        f"s per level, seed {serving['trace']['seed']}) goes through a dynamic batcher (largest "
        f"batch {serving['policy']['max_batch']}, queue delay {serving['policy']['max_queue_delay_us']:g} "
        f"us, requests dropped after {serving['policy']['max_wait_ms']:g} ms) in front of each "
        f"back end; {serving['kind']}. The FPGA takes the same arrivals: II = 1 at its timed "
        f"clock, {fpga['compute_us'] * 1e3:.0f} ns compute, behind the {link['name']} "
        f"({link['round_trip_us']:g} us round trip, {link['gbytes_per_s']:g} GB/s, "
        f"{network_bytes} bytes per transaction in; {link['source']}).",
        f"The link bounds the FPGA at {fpga['link_limit_per_s'] / 1e6:,.0f} M transactions/s and "
        f"the pipeline at {fpga['rate_per_s'] / 1e6:,.0f} M/s here; part throughput claims "
        "beyond the link are not deliverable to a host.",
        "![decision](decision.png)",
    ]
    if fastest:
        side = sides[fastest]
        text.append(
            f"**Verdict**: the fastest CPU/GPU back end measured is {side['label']} at "
            f"{side['batch1_p50_us']:.1f} us batch-1 p50; the FPGA's end-to-end latency "
            f"(link + compute) is {fpga['batch1_p50_us']:.2f} us, "
            f"{side['batch1_p50_us'] / fpga['batch1_p50_us']:.1f} times lower, and its compute "
            f"alone {fpga['compute_us'] * 1e3:.0f} ns. "
            + " ".join(f"Under a p99 of {t:g} us: {_winner(sides, t)}." for t in targets))
    for name, why in serving.get("skipped", {}).items():
        text.append(f"Back end {name} skipped: {why}.")
    header = ["side", "latency of one transaction", "end-to-end p50 / p99, lowest load",
              *[f"highest load, p99 <= {t:g} us" for t in targets], "first saturated load"]
    return ("Serving under load: the decision", text, header, rows)


def _winner(sides: dict, target: float) -> str:
    loads = {name: side["highest"][target] or 0 for name, side in sides.items()}
    best_load = max(loads.values())
    if not best_load:
        return "no side sustains any load tried"
    best = [name for name, load in loads.items() if load == best_load]
    others = ", ".join(f"{n} {load_text(load or None)}" for n, load in loads.items() if n not in best)
    lead = (f"{best[0]} sustains the most" if len(best) == 1
            else f"{' and '.join(best)} tie")
    return f"{lead}, {load_text(best_load)}" + (f" ({others})" if others else "")


def network_input_bytes(input_width_bits: int, n_inputs: int) -> int:
    """Bytes of one transaction's input bus (what the host sends per request)."""
    return int(np.ceil(input_width_bits * n_inputs / 8))
