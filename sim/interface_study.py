"""`make interface-study`: how to give the non-stallable da4ml pipeline backpressure, measured.

The run's design point is built three ways: the bare `valid` top, the credit-based AXI4-Stream
top (`axis`, the default) and a clock-enable AXI4-Stream top (`axis_ce`: one enable on every
pipeline register, derived from da4ml's Verilog here). The clock-enable top is verified in
cocotb with the same AXI4-Stream testbench, then all three are synthesised with Yosys (whole
top and wrapper alone) and placed and routed on `fpga.family` with each of
`fpga.timing_seeds` (one Yosys netlist per top, shared by the seeds).
"""

from __future__ import annotations

import json
import shutil
from statistics import mean

import numpy as np

from fraudfpga.hls.artifacts import GOLDEN, NETWORK
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import INTERFACE_STUDY, INTERFACE_STUDY_DIR, NETWORK_FIRMWARE, RTL_DIR, RTL_METADATA
from .flow import SIM_CODE, check_axis, raise_on_axis_failure, wrapper_cost
from .interfaces import CE_VALID_TOP, VALID_TOP, axis_ce_interface, axis_verilog, interface
from .pnr import (constraint_mhz, family, in_parallel, nextpnr_options, place_and_route,
                  synthesize_in_harness)
from .rtl import CORE, WHAT, clock_enabled_core, top_verilog
from .yosys import synthesize

VARIANTS = ("valid", "axis", "axis_ce")
WRAPPED = {"axis": VALID_TOP, "axis_ce": CE_VALID_TOP}  # the module each wrapper is built around


def with_clock_enable_variant(run: RunFolder, network: FixedNetwork, metadata: dict, id_bits: int,
                              rtl_dir) -> dict:
    """Copy the run's RTL into `rtl_dir` and add the clock-enable core, valid top and AXI4-Stream
    top; returns the metadata of the copy."""
    shutil.copytree(run.path(RTL_DIR), rtl_dir)
    core = rtl_dir / "da4ml" / "src" / f"{CORE}.v"
    ce_core = rtl_dir / f"{CORE}_ce.v"
    ce_core.write_text(clock_enabled_core(core.read_text()))
    latency = metadata["latency_cycles"]
    formats = (metadata["core_port_formats"]["inputs"], metadata["core_port_formats"]["outputs"])
    (rtl_dir / f"{CE_VALID_TOP}.v").write_text(top_verilog(network, formats, latency,
                                                           clock_enable=True))
    ce = axis_ce_interface(network, latency, id_bits)
    (rtl_dir / ce.file).write_text(axis_verilog(network, ce, WHAT))
    return {**metadata, "sources": [*metadata["sources"], ce_core.name, f"{CE_VALID_TOP}.v", ce.file],
            "interfaces": {**metadata["interfaces"], ce.name: ce.as_dict()}}


def study(run: RunFolder, cfg, progress=print) -> None:
    fpga, rtl_cfg = cfg["fpga"], cfg["rtl"]
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    network = FixedNetwork.load(run.path(NETWORK))
    out = run.path(INTERFACE_STUDY_DIR)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rtl_dir = out / "rtl"
    meta = with_clock_enable_variant(run, network, metadata, rtl_cfg["axis_id_bits"], rtl_dir)
    ifaces = {name: interface(meta, name) for name in VARIANTS}

    verified = check_axis(rtl_dir, meta, np.load(run.path(GOLDEN)), rtl_cfg, out / "sim", progress,
                          iface=ifaces["axis_ce"])
    raise_on_axis_failure(verified, run.path(INTERFACE_STUDY))

    synth = {}
    for name, iface in ifaces.items():
        whole = synthesize(rtl_dir, meta, out / f"yosys_{name}", rtl_cfg["yosys_family"], progress,
                           top=iface.top)
        synth[name] = {"resources": whole["resources"], "command": whole["command"]}
        if name in WRAPPED:
            alone = synthesize(rtl_dir, meta, out / f"yosys_{name}_wrapper", rtl_cfg["yosys_family"],
                               progress, top=iface.top, blackbox=WRAPPED[name])
            synth[name]["wrapper"] = wrapper_cost(whole["resources"], alone, WRAPPED[name])

    fam = family(fpga["family"])
    target = constraint_mhz(metadata)
    jobs = [(name, seed) for seed in fpga["timing_seeds"] for name in VARIANTS]

    netlists = dict(zip(VARIANTS, in_parallel(
        lambda name: synthesize_in_harness(fam, fpga["device"], rtl_dir, meta, out / f"netlist_{name}",
                                           ifaces[name], progress=progress), list(VARIANTS))))

    def place(job):
        name, seed = job
        return place_and_route(fam, fpga["device"], rtl_dir, meta, out / f"pnr_{name}_seed{seed}",
                               target, seed, progress, iface=ifaces[name], netlist=netlists[name],
                               options=nextpnr_options(fam, fpga))

    placed = dict(zip(jobs, in_parallel(place, jobs)))

    variants = {}
    for name, iface in ifaces.items():
        runs = [placed[(name, seed)] for seed in fpga["timing_seeds"]]
        fmax = mean(r["fmax_mhz"] for r in runs)
        variants[name] = {
            "top": iface.top, "latency_cycles": iface.latency_cycles,
            "backpressure": iface.details.get("backpressure", "none"),
            "yosys": synth[name],
            "pnr": [{"seed": r["seed"], "fmax_mhz": r["fmax_mhz"], "logic_cells": r["logic_cells"],
                     "flip_flops": r["flip_flops"], "critical_path_ns": (r["critical_path"] or {}).get("delay_ns"),
                     "critical_path": [(r["critical_path"] or {}).get("start"),
                                       (r["critical_path"] or {}).get("end")]} for r in runs],
            "fmax_mhz_mean": round(fmax, 2),
            "latency_ns": round(iface.latency_cycles * 1e3 / fmax, 2),
        }
    base = variants["valid"]
    for name in WRAPPED:
        v = variants[name]
        v["vs_valid"] = {
            "fmax_change": round(v["fmax_mhz_mean"] / base["fmax_mhz_mean"] - 1, 4),
            "logic_cells_added": round(mean(r["logic_cells"] for r in v["pnr"])
                                       - mean(r["logic_cells"] for r in base["pnr"]), 1),
            "flip_flops_added": round(mean(r["flip_flops"] for r in v["pnr"])
                                      - mean(r["flip_flops"] for r in base["pnr"]), 1)}
    result = {
        "kind": f"placed and routed by {fam.nextpnr} on this machine (Fmax: mean over seeds "
                f"{fpga['timing_seeds']}); resources estimated by Yosys; the axis_ce top verified in "
                "cocotb",
        "family": fam.name, "device": fam.device(fpga["device"]).name,
        "seeds": fpga["timing_seeds"], "constraint_mhz": target, "variants": variants,
        "axis_ce_verified": {k: verified[k] for k in ("vectors_checked", "lost", "duplicated",
                                                     "reordered", "mismatched", "full_rate_per_cycle",
                                                     "latency_cycles", "duty_cycles")},
    }
    write_json(run.path(INTERFACE_STUDY), result)
    for name, v in variants.items():
        change = v.get("vs_valid", {})
        progress(f"[interface-study] {name:8s} {v['top']}: Fmax {v['fmax_mhz_mean']:.1f} MHz"
                 + (f" ({100 * change['fmax_change']:+.1f} % vs valid, "
                    f"{change['logic_cells_added']:+.0f} logic cells, "
                    f"{change['flip_flops_added']:+.0f} FF)" if change else "")
                 + f"; {v['latency_cycles']} cycles = {v['latency_ns']:.1f} ns; Yosys "
                 f"{v['yosys']['resources']['LUT']:,} LUT")


register(Step(
    name="interface_study", command="interface-study",
    help="backpressure by credits (the axis top) against a clock enable through the pipeline: "
         "verify the clock-enable top in cocotb, synthesise and place and route the valid, axis "
         "and clock-enable tops with each fpga.timing_seeds (tens of minutes; not part of `all`)",
    reads=("fpga.family", "fpga.device", "fpga.timing_seeds", "fpga.placer", "fpga.router",
           "fpga.router1_budget",
           "rtl"),
    inputs=(RTL_METADATA, NETWORK, GOLDEN), outputs=(INTERFACE_STUDY,), body=study,
    code=SIM_CODE, more_inputs=NETWORK_FIRMWARE.rtl_sources, in_all=False))
