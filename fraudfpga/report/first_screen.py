"""The report's first screen: which model on which platform, at what latency, what load under
which p99, with what fraud-detection quality, and how far the firmware is trusted; then one
table of every model on every platform measured. Each figure says how it was obtained."""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import load_text

# the models an FPGA runs, best first on ties (a team's own model first)
FIRMWARE_KEYS = ("imported_firmware", "forest_firmware", "firmware")


@dataclass
class Platform:
    """One model on one platform, as the table shows it."""
    model: str                 # key of the model in the metrics (firmware, forest_float, ...)
    model_label: str
    platform: str
    side: dict                 # the serving decision's side (latency, loads)
    resources: str
    bound: str
    fpga: bool = False
    extra: dict = field(default_factory=dict)  # FPGA: figures, verification


def quality_of(model: str, metrics: dict, quality: dict | None) -> tuple[float | None, str]:
    """A model's AP and how it was measured: the mean over seeds with its interval when `make
    quality` ran for it, otherwise the one training seed."""
    if quality and model in quality["models"]:
        ap = quality["models"][model]["average_precision"]
        return ap["mean"], (f"{ap['mean']:.4f} [{ap['ci'][0]:.3f}, {ap['ci'][1]:.3f}] "
                            f"({len(quality['seeds'])} seeds)")
    value = metrics["models"].get(model, {}).get("average_precision")
    return value, ("n/a" if value is None else f"{value:.4f} (1 seed)")


def best_firmware(metrics: dict, quality: dict | None) -> str:
    present = [m for m in FIRMWARE_KEYS if m in metrics["models"]]
    return max(present, key=lambda m: quality_of(m, metrics, quality)[0] or -1.0)


def _fpga_row_text(p: Platform) -> tuple[str, str]:
    side = p.side
    one = (f"{side['compute_us'] * 1e3:.0f} ns compute; {side['batch1_p50_us']:.2f} / "
           f"{side['batch1_p50_us']:.2f} us with the link (assumed)")
    return one, "cycles measured in simulation at the placed-and-routed clock"


def table(platforms: list[Platform], metrics: dict, quality: dict | None,
          targets: list[float], top_load: float) -> tuple[list[str], list[list[str]]]:
    header = ["model", "platform", "test AP", "one transaction: p50 / p99",
              *[f"highest load, p99 <= {t:g} us" for t in targets[:2]], "resources",
              "bounded by"]
    rows = []
    for p in platforms:
        _, ap = quality_of(p.model, metrics, quality)
        side = p.side
        if p.fpga:
            one, _ = _fpga_row_text(p)
        else:
            b = side["batch1"]
            one = f"{b['p50_us']:.1f} / {b['p99_us']:.1f} us (batch 1, measured)"

        def highest(target):
            load = side["highest"][target]
            saturated = any(lv["saturated"] for lv in side["levels"])
            return (f">= {load_text(load)} (highest tried)" if load == top_load and not saturated
                    else load_text(load))

        rows.append([p.model_label, p.platform, ap, one, *[highest(t) for t in targets[:2]],
                     p.resources, p.bound])
    return header, rows


def verdict(platforms: list[Platform], metrics: dict, quality: dict | None, labels: dict,
            strongest: str | None, targets: list[float], top_load: float,
            gpu_note: str, yours: str | None = None,
            transaction: str | None = None) -> list[str]:
    """One sentence per question: model, latency, load, quality, trust, GPU; `yours`: the
    sentence on a team's imported model, after the model's; `transaction`: the one on
    transaction to decision (the windows included), after the model's latency and load."""
    chosen = best_firmware(metrics, quality)
    fpga = next((p for p in platforms if p.fpga and p.model == chosen), None)
    cpu = [p for p in platforms if not p.fpga and p.extra.get("serves") == chosen]
    lines = []
    _, chosen_ap = quality_of(chosen, metrics, quality)
    others = [m for m in FIRMWARE_KEYS if m in metrics["models"] and m != chosen]
    comparison = "; ".join(f"{labels[m]} {quality_of(m, metrics, quality)[1]}" for m in others)
    if quality and others and f"{chosen} - {others[0]}" in quality.get("paired_differences", {}):
        d = quality["paired_differences"][f"{chosen} - {others[0]}"]["metrics"]["average_precision"]
        comparison += (f", paired difference {d['mean']:+.4f} [{d['ci'][0]:+.4f}, "
                       f"{d['ci'][1]:+.4f}]")
    reference = (f"; the strongest tuned reference, the {labels[strongest]} (not on the FPGA): "
                 f"{quality_of(strongest, metrics, quality)[1]}" if strongest else "")
    lines.append(f"**Model**: the {labels[chosen]} catches the most fraud of the firmwares: test "
                 f"AP {chosen_ap} against {comparison or 'no other firmware'}{reference}."
                 + ("" if quality else " One training seed: `make quality` gives means and "
                                       "intervals over seeds."))
    if yours:
        lines.append(yours)
    if fpga:
        figures = fpga.extra["figures"]
        fastest_cpu = min(cpu, key=lambda p: p.side["batch1"]["p50_us"]) if cpu else None
        cpu_text = (f" The fastest CPU/GPU back end of the same model, {fastest_cpu.platform}, "
                    f"takes {fastest_cpu.side['batch1']['p50_us']:.1f} us per transaction at "
                    f"batch 1 (p50, measured on this machine)." if fastest_cpu else "")
        lines.append(
            f"**Latency**: on the FPGA ({fpga.platform.removeprefix('FPGA, ')}) it takes "
            f"{figures['latency_cycles']} "
            f"cycles = {figures['latency_ns']:.0f} ns (cycles measured in simulation, "
            f"{figures['clock_mhz']:.1f} MHz {'placed and routed' if figures['timing'] == 'pnr' else figures['timing']}); "
            f"{fpga.side['batch1_p50_us']:.2f} us end to end with the assumed host link."
            + cpu_text)
        target = targets[0]
        loads = ", ".join(f"{p.platform} {load_text(p.side['highest'][target])}" for p in cpu)
        fpga_load = fpga.side["highest"][target]
        lines.append(
            f"**Load**: under a p99 of {target:g} us the FPGA serves "
            f"{'>= ' if fpga_load == top_load else ''}{load_text(fpga_load)}"
            f"{' (the highest load tried)' if fpga_load == top_load else ''}; bounded by its "
            f"pipeline ({fpga.side['rate_per_s'] / 1e6:,.0f} M/s) and the link "
            f"({fpga.side['link_limit_per_s'] / 1e6:,.0f} M/s)"
            + (f"; {loads} (measured: Poisson arrivals through a dynamic batcher)." if loads
               else "."))
        check = fpga.extra["verification"]
        lines.append(
            f"**Trust**: its RTL reproduced the golden model ({check['golden']}) on "
            f"{check['vectors']:,} vectors with {check['mismatches']} mismatches; the AXI4-Stream "
            f"top delivered {check['axis_scores']:,} scores with {check['axis_errors']} lost, "
            f"duplicated, reordered or wrong (measured in simulation, cocotb + "
            f"{check['simulator']}).")
    else:
        lines.append(f"**Platform**: the {labels[chosen]} has no timed FPGA result in this run "
                     "(its place and route is missing or stale; see 'FPGA implementation').")
    if transaction:
        lines.append(transaction)
    lines.append(gpu_note)
    return lines
