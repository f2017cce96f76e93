"""The report's link to the design-space sweeps made on this run's data (`make sweep`)."""

from __future__ import annotations

import json
from pathlib import Path

from fraudfpga.config import read_yaml
from fraudfpga.runfolder import RunFolder


def sweeps_on_this_data(run: RunFolder) -> list[str]:
    """The `sweep.json` of every finished sweep in the run's projects folder whose shared data
    step has this run's data and split configuration."""
    found = []
    for state in sorted(run.root.parent.glob("sweep-*/sweep.json")):
        shared = state.parent / "shared" / "config.yaml"
        if not shared.is_file():
            continue
        config = read_yaml(shared, "sweep data configuration") or {}
        if all(config.get(k) == run.config[k] for k in ("data", "split")):
            found.append(str(state))
    return found


def sweeps_section(run: RunFolder) -> list[tuple]:
    sections = []
    for path in map(Path, sweeps_on_this_data(run)):
        state = json.loads(path.read_text())
        rows = state["trials"]
        done = [r for r in rows if r.get("status") == "done"]
        link = f"../../{path.parent.name}/index.html"
        table = []
        for r in sorted((r for r in done if r.get("on_front") or r.get("reference")),
                        key=lambda r: -r["ap"]):
            v = r.get("verified") or {}
            table.append([r["trial"] + (" (base)" if r.get("reference") else ""),
                          ", ".join(f"{k}={val}" for k, val in r["settings"].items()),
                          f"{r['ap']:.4f}", f"{v.get('model_test_ap_mean') or float('nan'):.4f}",
                          f"{r['lut']:,} / {r['ff']:,}", str(r["cycles"]),
                          f"{v['fmax_mhz']:.1f} MHz, {v['latency_ns']:.1f} ns" if v.get("fmax_mhz") else "",
                          f"{v['vectors_checked']:,} vectors, {v['mismatches']} mismatches"
                          if "vectors_checked" in v else v.get("cause", "")])
        sections.append((
            f"Design-space sweep '{state['spec']['name']}'",
            [f"{state['spec']['strategy']} over {', '.join(state['spec']['space'])}: {len(done)} of "
             f"{len(rows)} trials done in {state['seconds'] / 60:.1f} min on Ray "
             f"({state['address']}, {state['cpus']} CPUs); the Pareto front and each family's "
             f"base design below, every trial on the [sweep page]({link}). Validation AP over "
             f"{state['spec']['seeds']} seed(s), test AP of each design's model (QKeras network; "
             f"forest on the input grid) over {state['spec']['front_seeds']} seeds; LUT / FF "
             "estimated by Yosys (UltraScale+); Fmax placed and routed; cocotb against each "
             "firmware's golden model."],
            ["trial", "settings", "val AP", "test AP", "LUT / FF", "cycles", "P&R", "cocotb"], table))
    return sections
