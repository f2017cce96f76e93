"""Place and route on an open FPGA family: the plug-in interface, the registry and the driver.

A family plug-in (one small module: `ecp5.py`, `nexus.py`) declares its devices (capacity and
timing model), the Yosys synthesis command, any netlist repair its nextpnr needs, the nextpnr
arguments and its pin constraints. The driver here wraps the RTL in a pin harness, runs Yosys
and nextpnr from PyPI (YoWASP), checks that the design fits the device and parses nextpnr's
JSON report into Fmax, utilization and the critical path with its routing share. The result
file is written last, only when every tool succeeded, so a failed run leaves none.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from fraudfpga.errors import FlowError, ToolFailed, cause_line
from fraudfpga.runfolder import write_json
from fraudfpga.sim.interfaces import Interface, interface
from fraudfpga.sim.pnr.progress import Router1Projection, run_watched
from fraudfpga.sim.yosys import (run_in_common_folder, without_fsm_search, yosys_command, yosys_version,
                                 yowasp_command)

HARNESS = "pnr_harness"
HARNESS_PORTS = ("clk", "rst", "serial_in", "serial_valid", "serial_out")
RESULT = "result.json"
PLACED = "placed.json"  # nextpnr's placed design (--write after --no-route), routed from
PLACE_LOG = "nextpnr_place.log"


@dataclass(frozen=True)
class Device:
    """One device of a family: its nextpnr name and arguments, speed grade and capacity.

    `capacity` holds the resources the fit check compares Yosys' cell counts with; the counts
    are the `available` figures nextpnr reports for that device.
    """
    name: str
    args: tuple[str, ...]
    speed_grade: int
    capacity: dict[str, int]


ROUTERS = ("router1", "router2")
PLACERS = ("heap", "sa", "static")


@dataclass(frozen=True)
class NextpnrOptions:
    """The placer and router nextpnr runs (`fpga.placer`, `fpga.router`); with
    `router1_budget`, a router1 run projected to need more arc routings is stopped and the
    design routed with router2 instead (`fpga.router1_budget`)."""
    placer: str = "heap"
    router: str = "router1"
    router1_budget: int = 0

    def to_dict(self) -> dict:
        return {"placer": self.placer, "router": self.router,
                "router1_budget": self.router1_budget}


@dataclass(frozen=True)
class Family:
    """An open FPGA family placed and routed by a nextpnr from PyPI."""
    name: str
    title: str
    nextpnr: str
    synth_command: str
    devices: dict[str, Device]
    default_device: str
    logic_bel: str
    ff_bel: str
    # Yosys cell type -> (capacity resource, cells of that resource per Yosys cell)
    cell_resources: dict[str, tuple[str, int]]
    extra_args: tuple[str, ...] = ()
    default_options: NextpnrOptions = NextpnrOptions()
    constraint_suffix: str = ""
    constraint_flag: str = ""
    pins: dict[str, str] = field(default_factory=dict)
    # nextpnr routes this family's placed design when loaded again (--write after --no-route,
    # then --no-pack --no-place); nextpnr-nexus 0.11 then fails to route its clock to the DCC.
    routes_a_placed_design: bool = False
    # (logic cells, placer): the default placer of a netlist with at least that many logic
    # cells in Yosys' count; smaller ones get default_options.placer.
    large_design_placer: tuple[int, str] | None = None

    def device(self, name: str) -> Device:
        if name in ("", "default"):
            name = self.default_device
        if name not in self.devices:
            raise FlowError(f"fpga.device: {name!r} is not a supported {self.title} device; "
                            f"supported: {', '.join(self.devices)}")
        return self.devices[name]

    def placer_for(self, usage: dict[str, dict]) -> str:
        """The default placer of a netlist with this resource use (`fit_check`)."""
        cells = usage.get(self.logic_bel, {}).get("used", 0)
        if self.large_design_placer and cells >= self.large_design_placer[0]:
            return self.large_design_placer[1]
        return self.default_options.placer

    def constraints(self) -> str:
        """Pin constraints for the harness's ports (empty when the family places I/O itself)."""
        return ""

    def fix_netlist(self, netlist: dict) -> int:
        """Repair what this family's nextpnr refuses in Yosys' netlist; the number of changes."""
        return 0

    def tool_command(self) -> list[str]:
        return yowasp_command(self.nextpnr, self.nextpnr, f"pip install yowasp-{self.nextpnr}")


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise FlowError(f"fpga.family: {name!r} is not a supported FPGA family; supported: "
                        f"{', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def nextpnr_options(fam: Family, fpga_cfg) -> NextpnrOptions:
    """The placer and router of the configuration (`fpga.placer`, `fpga.router`); `default`
    is the family's router, and the family's placer for the netlist's size once it is known."""
    router = fpga_cfg["router"]
    return NextpnrOptions(fpga_cfg["placer"],
                          fam.default_options.router if router == "default" else router,
                          fpga_cfg["router1_budget"])


def constraint_mhz(metadata: dict) -> float:
    """The clock nextpnr is asked for: 20 % above the delay model's prediction for the RTL, so
    that the timing-driven placer keeps working on the critical paths."""
    return round(1.2 * metadata["predicted"]["fmax_mhz"], 1)


def harness_verilog(iface: Interface) -> str:
    """The 5-pin harness around the top level `iface` (templates/pnr_harness.v)."""
    inputs, outputs = list(iface.inputs.items()), list(iface.outputs.items())
    if not inputs or inputs[0][1] != 1:
        raise ValueError(f"{iface.top}: the harness drives a 1-bit first input from serial_valid")
    shift_bits = sum(bits for _, bits in inputs) - 1
    reset = "!rst" if iface.reset_active_low else "rst"
    connections, offset = [f"        .{iface.clock}(clk)", f"        .{iface.reset}({reset})"], 0
    for name, bits in inputs:
        connections.append(f"        .{name}(drive[{offset + bits - 1}:{offset}])")
        offset += bits
    connections += [f"        .{name}({name})" for name, _ in outputs]
    template = resources.files("fraudfpga.sim").joinpath("templates/pnr_harness.v").read_text()
    return template.format(
        harness=HARNESS, top=iface.top, shift_bits=shift_bits, shift_msb=shift_bits - 1,
        shift_msb_m1=max(shift_bits - 2, 0), out_bits=sum(b for _, b in outputs),
        output_wires="\n".join(f"    wire [{bits - 1}:0] {name};" for name, bits in outputs),
        connections=",\n".join(connections), output_list=", ".join(n for n, _ in outputs))


def harness_flip_flops(iface: Interface) -> int:
    """The harness's own registers: the shift register, the serial_valid register, the output."""
    return sum(iface.inputs.values()) + 1


def fit_check(fam: Family, device: Device, cells: dict[str, int]) -> dict[str, dict]:
    """Resource use from Yosys' cells against the device; raise when the design cannot fit."""
    used: dict[str, int] = {}
    for cell, count in cells.items():
        if cell in fam.cell_resources:
            resource, per_cell = fam.cell_resources[cell]
            used[resource] = used.get(resource, 0) + count * per_cell
    usage = {r: {"used": n, "available": device.capacity[r]} for r, n in used.items()}
    over = [(r, u) for r, u in usage.items() if u["used"] > u["available"]]
    if over:
        text = "; ".join(f"{r}: {u['used']:,} of {u['available']:,} "
                         f"({100 * u['used'] / u['available']:.0f} %)" for r, u in over)
        raise FlowError(f"the design does not fit {device.name}: {text}; choose a larger device "
                        "(fpga.device) or a smaller network")
    return usage


def critical_path(report: dict) -> dict | None:
    """The slowest path of nextpnr's report: its cells, logic and routing delay."""
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(step["delay"] for step in p["path"]))
    steps = worst["path"]
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    total = sum(s["delay"] for s in steps)
    cells = []
    for s in steps:
        if s["type"] != "routing":
            cell = s.get("to", {}).get("cell") or s.get("from", {}).get("cell")
            if cell and (not cells or cells[-1] != cell):
                cells.append(cell)
    return {
        "clock": worst.get("from"), "start": cells[0] if cells else None,
        "end": cells[-1] if cells else None,
        "delay_ns": round(total, 3), "routing_ns": round(routing, 3),
        "routing_share": round(routing / total, 3) if total else None,
        "cells": cells, "cell_count": len(cells),
        "steps": [{"type": s["type"], "delay_ns": round(s["delay"], 3),
                   "net": s.get("net"), "to": s.get("to", {}).get("cell")} for s in steps],
    }


def in_parallel(function, jobs: list) -> list:
    """`function` over `jobs` in order, as many at a time as this machine has cores (the work
    is in Yosys and nextpnr subprocesses)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        return list(pool.map(function, jobs))


@dataclass(frozen=True)
class HarnessNetlist:
    """Yosys' netlist of one top level in the pin harness, ready for nextpnr. Synthesis does not
    depend on the placement seed, so one netlist serves every seed placed from the same RTL."""
    folder: Path
    cells: dict[str, int]
    usage: dict[str, dict]
    repairs: list
    seconds: float


def synthesize_in_harness(fam: Family, device_name: str, rtl_dir: Path, metadata: dict,
                          out_dir: Path, iface: Interface | None = None,
                          sources: list[str] | None = None, progress=print) -> HarnessNetlist:
    """Wrap `iface` (default: the `valid` top) in the pin harness and synthesise it for the
    family into `out_dir/netlist.json`; raise when the design cannot fit the device."""
    iface = iface or interface(metadata, "valid")
    sources = sources or metadata["sources"]
    device = fam.device(device_name)
    rtl_dir, out_dir = Path(rtl_dir).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "netlist.json").unlink(missing_ok=True)
    (out_dir / f"{HARNESS}.v").write_text(harness_verilog(iface))

    def synth_args(rtl: Path, out: Path) -> list[str]:
        (out_dir / "synth.ys").write_text(
            f"read_verilog -sv {' '.join(str(rtl / s) for s in sources)} {out / (HARNESS + '.v')}\n"
            + without_fsm_search(f"{fam.synth_command} -top {HARNESS} -json {out / 'netlist.json'}")
            + f"tee -q -o {out / 'yosys_stat.json'} stat -json\n")
        return ["-q", "-l", str(out / "yosys.log"), "-s", str(out / "synth.ys")]

    progress(f"[pnr] yosys {fam.synth_command} on {iface.top} in a {len(HARNESS_PORTS)}-pin "
             "harness")
    seconds = run_in_common_folder(yosys_command(), synth_args, rtl_dir, out_dir, "Yosys")
    stat = json.loads((out_dir / "yosys_stat.json").read_text())
    # With kept hierarchy levels (the forest's fan-out registers) `design` holds the totals.
    module = stat.get("design") or stat["modules"].get(f"\\{HARNESS}") or next(iter(stat["modules"].values()))
    cells = module.get("num_cells_by_type", {})
    usage = fit_check(fam, device, cells)
    netlist_path = out_dir / "netlist.json"
    netlist = json.loads(netlist_path.read_text())
    repairs = fam.fix_netlist(netlist)
    if repairs:
        netlist_path.write_text(json.dumps(netlist))
    return HarnessNetlist(out_dir, cells, usage, repairs, round(seconds, 1))


def raise_on_failure(fam: Family, device: Device, watched, log: Path, what: str) -> None:
    """A nextpnr call that exited with an error: its cause line and its log."""
    if watched.returncode != 0:
        cause = cause_line(log) if log.exists() else cause_line(watched.output)
        raise ToolFailed(f"{fam.nextpnr} {what} on {device.name}: {cause} (log: {log})")


def name_router(placed: Path, router: str) -> None:
    """Make `router` the router of nextpnr's placed design. nextpnr saves its settings in the
    design it writes and, reading that design back, takes the saved `router` over the command
    line's `--router` (checked with nextpnr-ecp5 0.11.1: `--router router2` on a design placed
    with router1 in its settings routed with router1)."""
    design = json.loads(placed.read_text())
    saved = [m["settings"] for m in design["modules"].values() if "settings" in m]
    if all(settings.get("router") == router for settings in saved):
        return
    for settings in saved:
        settings["router"] = router
    placed.write_text(json.dumps(design))


def place_and_route(fam: Family, device_name: str, rtl_dir: Path, metadata: dict, out_dir: Path,
                    target_mhz: float, seed: int = 1, progress=print,
                    extra: dict | None = None, iface: Interface | None = None,
                    sources: list[str] | None = None,
                    netlist: HarnessNetlist | None = None,
                    options: "NextpnrOptions | None" = None) -> dict:
    """Synthesise with Yosys (unless `netlist` already holds this top's synthesis), place and
    route with nextpnr; return (and write) the result.

    `iface` is the top level placed (default: the `valid` one), `sources` the Verilog files
    (default: the metadata's). `out_dir/result.json` is removed first and written only after
    nextpnr succeeded; `extra` is recorded in it (the hash of the RTL it came from).
    """
    iface = iface or interface(metadata, "valid")
    device = fam.device(device_name)
    options = options or fam.default_options
    rtl_dir, out_dir = Path(rtl_dir).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (RESULT, "report.json"):
        (out_dir / stale).unlink(missing_ok=True)
    if netlist is None:
        netlist = synthesize_in_harness(fam, device_name, rtl_dir, metadata, out_dir, iface,
                                        sources, progress)
    elif netlist.folder != out_dir:
        shutil.copyfile(netlist.folder / "netlist.json", out_dir / "netlist.json")
    if options.placer == "default":
        options = replace(options, placer=fam.placer_for(netlist.usage))
    constraints = fam.constraints()
    if constraints:
        (out_dir / f"pins{fam.constraint_suffix}").write_text(constraints)

    base = Path(os.path.commonpath([rtl_dir, out_dir]))
    out = out_dir.relative_to(base)

    def common_args() -> list[str]:
        args = [*device.args, *fam.extra_args, "--freq", f"{target_mhz:.3f}",
                "--timing-allow-fail", "--seed", str(seed), "-q"]
        if constraints:
            args += [fam.constraint_flag, str(out / f"pins{fam.constraint_suffix}")]
        return args

    def watched_run(args: list[str], log: Path, projection=None):
        log.unlink(missing_ok=True)
        return run_watched([*fam.tool_command(), *args, "--log", str(out / log.name)], base, log,
                           progress, f"{iface.top} seed {seed}", projection=projection)

    # Where the family allows it, placement once (nextpnr writes the placed design), then
    # routing from it, so a router that gives up is replaced without placing again.
    (out_dir / PLACE_LOG).unlink(missing_ok=True)
    placement = None
    if fam.routes_a_placed_design:
        progress(f"[pnr] {fam.nextpnr} {device.name}, seed {seed}: packing and placing "
                 f"(placer {options.placer}; log: {out_dir / PLACE_LOG})")
        placement = watched_run([*common_args(), "--json", str(out / "netlist.json"),
                                 "--placer", options.placer, "--no-route",
                                 "--write", str(out / PLACED)], out_dir / PLACE_LOG)
        raise_on_failure(fam, device, placement, out_dir / PLACE_LOG, "failed to place")
    log = out_dir / "nextpnr.log"
    fallback = None
    while True:
        if placement:
            name_router(out_dir / PLACED, options.router)
            what, design = f"routing with {options.router}", [
                "--json", str(out / PLACED), "--no-pack", "--no-place"]
        else:
            what, design = f"placer {options.placer}, {options.router}", [
                "--json", str(out / "netlist.json"), "--placer", options.placer]
        progress(f"[pnr] {fam.nextpnr} {device.name}, seed {seed}: {what} (log: {log})")
        projection = (Router1Projection(options.router1_budget)
                      if options.router == "router1" and options.router1_budget else None)
        watched = watched_run([*common_args(), *design, "--router", options.router,
                               "--report", str(out / "report.json")], log, projection)
        if not watched.gave_up:
            break
        shutil.copyfile(log, out_dir / "nextpnr_router1.log")
        fallback = {"reason": watched.gave_up, "router1_seconds": round(watched.seconds, 1),
                    "router1_log": "nextpnr_router1.log"}
        progress(f"[pnr] {watched.gave_up}; routing with router2"
                 + (" (the same placement)" if placement else ""))
        options = NextpnrOptions(options.placer, "router2")
    raise_on_failure(fam, device, watched, log, "failed")
    placement_seconds = placement.seconds if placement else None
    pnr_seconds = (placement_seconds or 0) + watched.seconds
    (out_dir / PLACED).unlink(missing_ok=True)  # tens of MB; the flow keeps the routed result
    report = json.loads((out_dir / "report.json").read_text())
    clocks = {name: {"fmax_mhz": round(c["achieved"], 2), "constraint_mhz": round(c["constraint"], 2)}
              for name, c in report.get("fmax", {}).items()}
    if not clocks:
        raise ToolFailed(f"{fam.nextpnr} reported no clock in {out_dir / 'report.json'}; the "
                         "design has no register-to-register path")
    fmax = min(c["fmax_mhz"] for c in clocks.values())
    utilization = {name: {"used": u["used"], "available": u["available"]}
                   for name, u in report.get("utilization", {}).items() if u["used"]}
    result = {
        "kind": f"placed and routed by {fam.nextpnr} (static timing of the routed design)",
        "family": fam.name, "family_title": fam.title, "device": device.name,
        "speed_grade": device.speed_grade, "seed": seed,
        "fmax_mhz": fmax, "clocks": clocks, "constraint_mhz": round(target_mhz, 3),
        "timing_met": fmax >= target_mhz,
        "interface": iface.name, "top": iface.top,
        "latency_cycles": iface.latency_cycles,
        "latency_ns": round(iface.latency_cycles * 1e3 / fmax, 2),
        "pipeline_stages": metadata["pipeline_stages"],
        "utilization": utilization,
        "logic_cells": utilization.get(fam.logic_bel, {}).get("used"),
        "flip_flops": utilization.get(fam.ff_bel, {}).get("used"),
        "harness_flip_flops": harness_flip_flops(iface),
        "yosys_cells": netlist.cells, "yosys_usage": netlist.usage,
        "critical_path": critical_path(report),
        "harness": f"{HARNESS} ({len(HARNESS_PORTS)} pins: serial input shift register, "
                   "XOR-reduced output register)",
        "netlist_repairs": netlist.repairs,
        "netlist": os.path.relpath(netlist.folder / "netlist.json", out_dir),  # Yosys' output placed
        "tools": {"yosys": yosys_version(), "nextpnr": fam.nextpnr},
        "nextpnr_options": options.to_dict(), "router_fallback": fallback,
        "seconds": {"yosys": netlist.seconds, "nextpnr": round(pnr_seconds, 1),
                    "placement": placement_seconds and round(placement_seconds, 1),
                    "routing": round(watched.seconds, 1),
                    **({"router1_given_up": fallback["router1_seconds"]} if fallback else {})},
        **(extra or {}),
    }
    write_json(out_dir / RESULT, result)
    return result
