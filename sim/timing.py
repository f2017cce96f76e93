"""`make timing`: place and route several pipeline depths of the firmware's network on one open
FPGA family, pick the design point by the configured objective, and re-verify it in cocotb.

Each point is an ordinary RTL folder, one Yosys netlist shared by its seeds, and one nextpnr
result per seed under `timing/`; the runs go as many at a time as the machine has cores. A
point whose result was produced from the same Verilog (same hash) on the same device and seed
is reused, so an interrupted exploration resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from fraudfpga.errors import FlowError, ToolFailed

from .delay_model import DelayModel, choose_point, design_points, pick
from .pnr import constraint_mhz, family, nextpnr_options, place_and_route, synthesize_in_harness
from .rtl import PipelineChoice, generate_rtl, trace_network

AUTO_POINTS = 6
# The project's timing targets for the default model (benchmarks, not tests): a lowest-latency
# point and a high-throughput point per family, placed and routed with the open tools.
TIMING_GOALS = {"ecp5": {"latency_ns": 120.0, "fmax_mhz": 125.0},
                "nexus": {"latency_ns": 60.0, "fmax_mhz": 200.0}}


def rtl_hash(rtl_dir: Path, metadata: dict) -> str:
    digest = hashlib.sha256()
    for source in metadata["sources"]:
        digest.update(source.encode())
        digest.update((Path(rtl_dir) / source).read_bytes())
    return digest.hexdigest()


def auto_depths(comb, model: DelayModel, min_fmax_mhz: float) -> list[int]:
    """The model's latency optimum and Fmax optimum, and depths spread around and between."""
    points = design_points(comb, model)
    by_stages = [p.stages for p in points]
    latency = choose_point(points, "latency", min_fmax_mhz).stages
    fmax = choose_point(points, "fmax", min_fmax_mhz).stages
    wanted = {latency, fmax, max(1, latency // 2), latency + max(1, latency // 3)}
    wanted.add(round(math.sqrt(latency * fmax)))
    wanted.add(round((latency + fmax) / 2))
    depths = sorted({min(by_stages, key=lambda s: abs(s - w)) for w in wanted})
    return depths[:AUTO_POINTS]


def _measured(result: dict, metadata: dict, rtl_dir: str) -> dict:
    path = result["critical_path"] or {}
    return {
        "stages": metadata["pipeline_stages"], "cycles": metadata["latency_cycles"],
        "seed": result["seed"], "device": result["device"],
        "fmax_mhz": result["fmax_mhz"], "latency_ns": result["latency_ns"],
        "logic_cells": result["logic_cells"], "flip_flops": result["flip_flops"],
        "predicted_fmax_mhz": metadata["predicted"]["fmax_mhz"],
        "predicted_latency_ns": metadata["predicted"]["latency_ns"],
        "critical_path_ns": path.get("delay_ns"), "routing_share": path.get("routing_share"),
        "critical_path_cells": path.get("cell_count"),
        "path_vectors": metadata["path_vectors"],
        "rtl": rtl_dir, "nextpnr_seconds": result["seconds"]["nextpnr"],
    }


def explore(run, network, golden, fpga: dict, progress=print) -> list[dict]:
    """Generate every depth's RTL, synthesise each once, place and route it with every seed;
    the measured points (failures too), depth by depth."""
    fam = family(fpga["family"])
    device = fam.device(fpga["device"]).name
    model = DelayModel.load(fam.name)
    depths, seeds = fpga["timing_stages"], fpga["timing_seeds"]
    if depths == [0]:
        depths = auto_depths(trace_network(network), model, fpga["min_fmax_mhz"])
    progress(f"[timing] {fam.title} {device}: pipeline depths {depths}, seeds {seeds}")
    points: dict[tuple[int, int], dict] = {}
    pending: dict[int, tuple[str, dict, str, list[int]]] = {}  # depth: rtl, metadata, hash, seeds
    for stages in depths:
        rtl_rel = f"timing/stages_{stages}/rtl"
        try:
            metadata = generate_rtl(network, run.path(rtl_rel),
                                    PipelineChoice(fam.name, stages=stages),
                                    golden["random_input_codes"], progress, model)
        except FlowError as error:  # a depth this network cannot have
            progress(f"[timing] {stages} stages: skipped: {error}")
            points |= {(stages, seed): {"stages": stages, "seed": seed, "device": device,
                                        "failed": str(error), "rtl": rtl_rel} for seed in seeds}
            continue
        digest = rtl_hash(run.path(rtl_rel), metadata)
        missing = []
        for seed in seeds:
            previous = run.path(f"timing/stages_{stages}/{fam.name}_seed_{seed}/result.json")
            result = json.loads(previous.read_text()) if previous.exists() else {}
            if (result.get("rtl_sha256") == digest and result["device"] == device
                    and result["seed"] == seed):
                progress(f"[timing] {stages} stages, seed {seed}: reusing {previous}")
                points[(stages, seed)] = _measured(result, metadata, rtl_rel)
            else:
                missing.append(seed)
        if missing:
            pending[stages] = (rtl_rel, metadata, digest, missing)

    def synthesize(stages: int):
        rtl_rel, metadata, _, _ = pending[stages]
        try:
            return synthesize_in_harness(fam, device, run.path(rtl_rel), metadata,
                                         run.path(f"timing/stages_{stages}/{fam.name}_netlist"),
                                         progress=progress)
        except ToolFailed as failed:
            progress(f"[timing] {stages} stages: synthesis failed: {failed}")
            return failed

    def place(stages: int, seed: int, netlist) -> dict:
        rtl_rel, metadata, digest, _ = pending[stages]
        failure = {"stages": stages, "seed": seed, "device": device, "rtl": rtl_rel}
        if isinstance(netlist, ToolFailed):
            return failure | {"failed": str(netlist)}
        try:
            result = place_and_route(fam, device, run.path(rtl_rel), metadata,
                                     run.path(f"timing/stages_{stages}/{fam.name}_seed_{seed}"),
                                     constraint_mhz(metadata), seed, progress,
                                     extra={"rtl_sha256": digest}, netlist=netlist,
                                     options=nextpnr_options(fam, fpga))
        except ToolFailed as failed:
            progress(f"[timing] {stages} stages, seed {seed}: failed: {failed}")
            return failure | {"failed": str(failed)}
        point = _measured(result, metadata, rtl_rel)
        progress(f"[timing] {stages} stages ({point['cycles']} cycles), seed {seed}: "
                 f"{point['fmax_mhz']:.1f} MHz (model {point['predicted_fmax_mhz']:.0f}), "
                 f"{point['latency_ns']:.1f} ns, {point['logic_cells']:,} logic cells, "
                 f"{point['flip_flops']:,} FF")
        return point

    # A depth's seeds are placed as soon as its netlist is ready: a deep combinational depth
    # can keep Yosys busy far longer than the others take to synthesise and place.
    runs = sum(len(missing) for *_, missing in pending.values())
    with ThreadPoolExecutor(max_workers=max(1, min(runs, os.cpu_count() or 1))) as pool:
        synthesis = {pool.submit(synthesize, stages): stages for stages in pending}
        placing = {}
        for done in as_completed(synthesis):
            stages = synthesis[done]
            placing |= {(stages, seed): pool.submit(place, stages, seed, done.result())
                        for seed in pending[stages][3]}
        points |= {job: future.result() for job, future in placing.items()}
    return [points[(stages, seed)] for stages in depths for seed in seeds]


def best_per_depth(points: list[dict]) -> list[dict]:
    """For each depth, the seed with the highest Fmax."""
    best: dict[int, dict] = {}
    for p in points:
        if "failed" not in p and (p["stages"] not in best or p["fmax_mhz"] > best[p["stages"]]["fmax_mhz"]):
            best[p["stages"]] = p
    return [best[s] for s in sorted(best)]


def choose(points: list[dict], objective: str, min_fmax_mhz: float) -> dict:
    candidates = best_per_depth(points)
    if not candidates:
        raise FlowError("make timing: no design point placed and routed; see the failures above")
    chosen = pick(candidates, objective, min_fmax_mhz, lambda p: p["fmax_mhz"],
                  lambda p: p["latency_ns"], lambda p: p["stages"])
    if chosen is None:
        best = max(p["fmax_mhz"] for p in candidates)
        raise FlowError(f"fpga.min_fmax_mhz = {min_fmax_mhz}: no explored depth reaches it (best "
                        f"{best:.1f} MHz); add deeper pipelines to fpga.timing_stages")
    return chosen


def plot(points: list[dict], chosen: dict, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [p for p in points if "failed" not in p]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([p["fmax_mhz"] for p in good], [p["latency_ns"] for p in good], color="tab:blue",
               label="placed and routed (one point per seed)")
    ax.scatter([p["predicted_fmax_mhz"] for p in good], [p["predicted_latency_ns"] for p in good],
               marker="x", color="tab:gray", label="delay model prediction")
    for p in best_per_depth(points):
        ax.annotate(f"{p['cycles']} cyc", (p["fmax_mhz"], p["latency_ns"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.scatter([chosen["fmax_mhz"]], [chosen["latency_ns"]], s=200, marker="*", color="black",
               zorder=5, label=f"chosen: {chosen['cycles']} cycles")
    ax.set_xlabel("Fmax after place and route (MHz)")
    ax.set_ylabel("latency (ns) = cycles / Fmax")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def summary_table(points: list[dict]) -> list[str]:
    lines = ["| stages | cycles | seed | Fmax (MHz) | model (MHz) | latency (ns) | logic cells | FF | "
             "critical path (ns) | routing |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (p["stages"], p["seed"])):
        if "failed" in p:
            lines.append(f"| {p['stages']} | | {p['seed']} | failed: {p['failed']} | | | | | | |")
            continue
        lines.append(f"| {p['stages']} | {p['cycles']} | {p['seed']} | {p['fmax_mhz']:.1f} | "
                     f"{p['predicted_fmax_mhz']:.0f} | {p['latency_ns']:.1f} | "
                     f"{p['logic_cells']:,} | {p['flip_flops']:,} | {p['critical_path_ns']} | "
                     f"{100 * p['routing_share']:.0f} % |")
    return lines



def goals(points: list[dict], family_name: str) -> dict | None:
    """The best measured latency and Fmax against the family's targets."""
    target = TIMING_GOALS.get(family_name)
    measured = best_per_depth(points)
    if not target or not measured:
        return None
    fastest = min(measured, key=lambda p: p["latency_ns"])
    highest = max(measured, key=lambda p: p["fmax_mhz"])
    return {"targets": target,
            "lowest_latency": {"stages": fastest["stages"], "latency_ns": fastest["latency_ns"],
                               "met": fastest["latency_ns"] <= target["latency_ns"]},
            "highest_fmax": {"stages": highest["stages"], "fmax_mhz": highest["fmax_mhz"],
                             "met": highest["fmax_mhz"] >= target["fmax_mhz"]}}
