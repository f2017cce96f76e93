"""The rtl, sim, open-source synthesis and place-and-route steps."""

from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np

from fraudfpga.hls.artifacts import GOLDEN, NETWORK
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.errors import FlowError
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json
from fraudfpga.schema import register_check

from .artifacts import (FIRMWARES, NETWORK_FIRMWARE, RTL_DIR, RTL_METADATA, TIMING_CHOSEN,
                        TIMING_PLOT, TIMING_POINTS, TIMING_TABLE, TOP_VERILOG, AXIS_VERILOG, Firmware)
from . import axis_plan
from .delay_model import model_file
from .interfaces import Interface, interface
from .pnr import constraint_mhz, family, nextpnr_options, place_and_route
from .rtl import PipelineChoice, generate_rtl
from .runner import AXIS_TESTBENCH, build, simulate
from .timing import choose, explore, goals, plot, summary_table
from .yosys import synthesize


def generate(run: RunFolder, cfg, progress=print) -> list[str]:
    return write_network_rtl(NETWORK_FIRMWARE, NETWORK, FixedNetwork.load(run.path(NETWORK)),
                             run, cfg, progress)


def write_network_rtl(fw: Firmware, source: str, network: FixedNetwork, run: RunFolder, cfg,
                      progress=print) -> list[str]:
    """The family's rtl step body for a fixed-point network read from `source`."""
    golden = np.load(run.path(fw.golden))
    out = run.path(fw.rtl_dir)
    shutil.rmtree(out, ignore_errors=True)
    generate_rtl(network, out, PipelineChoice.from_config(cfg["fpga"]),
                 golden["random_input_codes"], progress, id_bits=cfg["rtl"]["axis_id_bits"],
                 source=source, golden=fw.golden)
    return fw.rtl_sources(run)


def _take(codes: np.ndarray, count) -> np.ndarray:
    if count == "all":
        return codes
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"vector count {count!r}: expected 'all' or a non-negative number")
    return codes[:count]


def golden_vectors(golden, test_vectors, random_vectors) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test-set and random vectors to stream, their expected output codes, and their counts."""
    test_in = _take(golden["test_input_codes"], test_vectors)
    random_in = _take(golden["random_input_codes"], random_vectors)
    inputs = np.concatenate([test_in, random_in])
    expected = np.concatenate([golden["test_output_codes"][:len(test_in)],
                               golden["random_output_codes"][:len(random_in)]])
    return inputs, expected, {"test_set": int(len(test_in)), "random_and_edge": int(len(random_in))}


def check_against_golden(rtl_dir, metadata: dict, golden, test_vectors, random_vectors,
                         sim: str, work, progress=print) -> dict:
    """Stream test-set and random vectors through the RTL with cocotb and compare every output
    with the C simulation's; the results (kind, counts, latency, II) as a dict."""
    inputs, expected, counts = golden_vectors(golden, test_vectors, random_vectors)
    build_dir = work / f"build_{sim}"
    build_seconds = build(rtl_dir, metadata, sim, build_dir, progress, vectors=len(inputs))
    figures = simulate(rtl_dir, metadata, inputs, expected, sim, build_dir, work / f"work_{sim}",
                       progress)
    return {
        "kind": "measured in simulation (cocotb + " + sim + ", bit-accurate RTL)",
        "golden_model": metadata["golden_model"],
        "vectors_checked": figures["outputs"],
        "vectors": counts,
        "mismatch_count": figures["mismatch_count"], "mismatches": figures["mismatches"],
        "testbench_failures": figures["testbench_failures"],
        "latency_cycles": figures["latency_cycles_data"],
        "latency_cycles_out_valid": figures["latency_cycles_valid"],
        "latency_cycles_metadata": metadata["latency_cycles"],
        "initiation_interval_cycles": figures["initiation_interval_cycles"],
        "valid_tracking_with_idle_cycles": figures["bubble_replay"],
        "vectors_per_second": figures["vectors_per_second"],
        "stream_seconds": figures["stream_seconds"],
        "build_seconds": round(build_seconds, 1),
        "simulator": sim, "simulator_version": figures["simulator_version"],
        "junit_xml": str(figures["junit_xml"]),
        "log": str(work / f"work_{sim}" / "sim.log"),
    }


def verify(fw: Firmware, run: RunFolder, cfg, progress=print) -> None:
    """Both top levels of `fw`: the `valid` one streamed back to back and with idle cycles, the
    AXI4-Stream one under backpressure; one results file."""
    rtl_cfg = cfg["rtl"]
    sim = rtl_cfg["simulator"]
    metadata = json.loads(run.path(fw.rtl_metadata).read_text())
    golden = np.load(run.path(fw.golden))
    results = check_against_golden(run.path(fw.rtl_dir), metadata, golden, rtl_cfg["vectors"],
                                   rtl_cfg["random_vectors"], sim, run.path(fw.sim_dir), progress)
    shutil.copy(results["junit_xml"], run.path(fw.sim_junit))
    results |= {"junit_xml": fw.sim_junit, "log": f"{fw.sim_dir}/work_{sim}/sim.log"}
    progress(f"[sim] {metadata['top']}: {results['vectors_checked']:,} vectors checked, "
             f"{results['mismatch_count']} mismatches; latency {results['latency_cycles']} cycles, "
             f"II {results['initiation_interval_cycles']}; {results['vectors_per_second']:,.0f} "
             f"vectors/s ({sim}, build {results['build_seconds']:.0f} s)")
    raise_on_mismatch(results, run.path(fw.sim_results))
    axis = check_axis(run.path(fw.rtl_dir), metadata, golden, rtl_cfg, run.path(fw.sim_dir),
                      progress)
    results["axis"] = axis | {"log": f"{fw.sim_dir}/work_{axis['top']}_{sim}/sim.log"}
    write_json(run.path(fw.sim_results), results)
    raise_on_axis_failure(axis, run.path(fw.sim_results))


def check_axis(rtl_dir, metadata: dict, golden, rtl_cfg, work, progress=print,
               iface: Interface | None = None, parameters: dict | None = None) -> dict:
    """The AXI4-Stream top (`iface`, default the rtl step's) through the cocotbext-axi
    testbench: the vectors at full rate, then every backpressure pattern and a reset."""
    sim = rtl_cfg["simulator"]
    iface = iface or interface(metadata, "axis")
    inputs, expected, counts = golden_vectors(golden, rtl_cfg["vectors"], rtl_cfg["random_vectors"])
    build_dir = work / f"build_{iface.top}_{sim}"
    job = {"interface": iface.as_dict(), "plan": axis_plan.plan(rtl_cfg)}
    beats = len(inputs) + len(job["plan"]["patterns"]) * rtl_cfg["axis_pattern_vectors"]
    build_seconds = build(rtl_dir, metadata, sim, build_dir, progress, top=iface.top,
                          parameters=parameters, vectors=beats)
    progress(f"[sim] {iface.top}: {len(inputs):,} vectors at full rate, then "
             f"{len(job['plan']['patterns'])} backpressure patterns x "
             f"{rtl_cfg['axis_pattern_vectors']:,} vectors and a reset (cocotbext-axi)")
    work_dir = work / f"work_{iface.top}_{sim}"
    figures = simulate(rtl_dir, metadata, inputs, expected, sim, build_dir, work_dir, progress,
                       top=iface.top, testbench=AXIS_TESTBENCH, job=job)
    phases = figures.get("phases", [])
    summary = axis_summary(phases, job["plan"]["patterns"])
    result = {
        "kind": f"measured in simulation (cocotb + cocotbext-axi + {sim}, bit-accurate RTL)",
        "top": iface.top, "interface": iface.as_dict(), "vectors": counts,
        "testbench_failures": figures["testbench_failures"], **summary,
        "phases": phases, "reset": figures.get("reset"), "build_seconds": round(build_seconds, 1),
        "simulator": sim, "simulator_version": figures["simulator_version"],
        "log": str(work_dir / "sim.log"),
    }
    progress(f"[sim] {iface.top}: {summary['vectors_checked']:,} scores checked, lost "
             f"{summary['lost']}, duplicated {summary['duplicated']}, reordered "
             f"{summary['reordered']}, mismatched {summary['mismatched']}; full rate "
             f"{summary['full_rate_per_cycle']} per cycle, latency {summary['latency_cycles']} "
             "cycles; throughput / tready duty, worst seed: " + ", ".join(
                 f"{duty:.0%}: {min(d['throughput_over_duty'] for d in summary['duty_cycles'] if d['duty'] == duty):.3f}"
                 for duty in sorted({d["duty"] for d in summary["duty_cycles"]}, reverse=True)))
    return result


def axis_summary(phases: list[dict], patterns: list[dict]) -> dict:
    """The figures the report and the closing checks use, from the testbench's phases."""
    if not phases:
        return {"vectors_checked": 0, "lost": None, "duplicated": None, "reordered": None,
                "mismatched": None, "full_rate_per_cycle": None, "latency_cycles": None,
                "duty_cycles": []}
    full = phases[0]
    duties = []
    for phase, pattern in zip(phases[1:], patterns):
        if pattern["input"]["kind"] == "always" and pattern["ready"]["kind"] == "bernoulli":
            duties.append({"duty": pattern["ready"]["duty"], "seed": pattern["seed"],
                           "ready_duty": phase["ready_duty"],
                           "delivered_per_cycle": phase["delivered_per_cycle"],
                           "throughput_over_duty": phase["throughput_over_duty"] or 0.0,
                           "throughput_over_nominal_duty":
                               (phase["delivered_per_cycle"] or 0) / pattern["ready"]["duty"],
                           "latency_cycles": phase["latency_cycles"]})
    return {
        "vectors_checked": sum(p["delivered"] - p["unknown_identifiers"] for p in phases),
        **{count: sum(p[count] for p in phases)
           for count in ("lost", "duplicated", "reordered", "mismatched", "tlast_mismatched")},
        "full_rate_per_cycle": full["delivered_per_cycle"],
        "latency_cycles": full["latency_cycles"]["max"],
        "duty_cycles": duties,
    }


def raise_on_axis_failure(axis: dict, where) -> None:
    bad = {k: axis[k] for k in ("lost", "duplicated", "reordered", "mismatched") if axis[k]}
    if axis["testbench_failures"] or bad:
        raise RuntimeError(f"AXI4-Stream simulation of {axis['top']} failed: "
                           f"{bad or 'a check of the testbench'}; {where}, log {axis['log']}")


def raise_on_mismatch(results: dict, where) -> None:
    if results["testbench_failures"] or results["mismatch_count"]:
        first = results["mismatches"][0] if results["mismatches"] else "see the log"
        raise RuntimeError(f"RTL simulation failed: {results['mismatch_count']} mismatches with "
                           f"the golden model (first: {first}); {where}, log {results['log']}")


def open_synthesis(fw: Firmware, run: RunFolder, cfg, progress=print) -> None:
    """The top level of `rtl.interface`; for the AXI4-Stream one, also the wrapper alone (the
    `valid` top as a black box), so its own cost is known."""
    metadata = json.loads(run.path(fw.rtl_metadata).read_text())
    family = cfg["rtl"]["yosys_family"]
    iface = interface(metadata, cfg["rtl"]["interface"])
    figures = synthesize(run.path(fw.rtl_dir), metadata, run.path(fw.path("synth/yosys")), family,
                         progress, top=iface.top)
    figures["interface"] = iface.name
    progress(f"[synth] Yosys estimate of {iface.top}: {figures['resources']}, logic depth "
             f"{figures['logic_depth_cells']} cells ({figures['seconds']:.0f} s)")
    if iface.name != "valid":
        wrapper = synthesize(run.path(fw.rtl_dir), metadata, run.path(fw.path("synth/yosys_wrapper")),
                             family, progress, top=iface.top, blackbox=metadata["top"])
        figures["wrapper"] = wrapper_cost(figures["resources"], wrapper, metadata["top"])
        progress(f"[synth] the wrapper alone: {wrapper['resources']} "
                 f"({figures['wrapper']['lut_share_of_core']:.1%} of the core's LUTs)")
    write_json(run.path(fw.yosys), figures)


def wrapper_cost(whole: dict, wrapper: dict, core_top: str) -> dict:
    """The wrapper's own resources, and its LUTs as a share of the core's (the whole top minus
    the wrapper: with the core a black box nothing is optimised across the boundary)."""
    core = {k: whole[k] - wrapper["resources"].get(k, 0) for k in whole}
    lut = wrapper["resources"]["LUT"] + wrapper["resources"]["LUTRAM"]
    return {"resources": wrapper["resources"], "core_resources": core,
            "lut_share_of_core": lut / core["LUT"] if core["LUT"] else None,
            "lut_share_note": "wrapper LUT + LUTRAM over the core's LUT (whole top - wrapper)",
            "command": wrapper["command"] + f" (with {core_top} as a black box)",
            "seconds": wrapper["seconds"]}


def fpga_place_and_route(fw: Firmware, run: RunFolder, cfg, progress=print) -> None:
    fpga = cfg["fpga"]
    fam = family(fpga["family"])
    metadata = json.loads(run.path(fw.rtl_metadata).read_text())
    result = place_and_route(fam, fpga["device"], run.path(fw.rtl_dir), metadata,
                             run.path(fw.pnr_dir),
                             constraint_mhz(metadata), fpga["seed"], progress,
                             iface=interface(metadata, cfg["rtl"]["interface"]),
                             options=nextpnr_options(fam, fpga))
    write_json(run.path(fw.pnr), result)
    path = result["critical_path"] or {}
    progress(f"[pnr] {result['top']} on {result['device']}: Fmax {result['fmax_mhz']:.1f} MHz placed and routed "
             f"(delay model: {metadata['predicted']['fmax_mhz']:.0f} MHz), latency "
             f"{result['latency_cycles']} cycles = {result['latency_ns']:.1f} ns; "
             f"{result['logic_cells']:,} logic cells, {result['flip_flops']:,} FF; critical path "
             f"{path.get('delay_ns')} ns, {100 * (path.get('routing_share') or 0):.0f} % routing")


def timing(run: RunFolder, cfg, progress=print) -> list[str]:
    fpga = cfg["fpga"]
    network = FixedNetwork.load(run.path(NETWORK))
    golden = np.load(run.path(GOLDEN))
    points = explore(run, network, golden, fpga, progress)
    chosen = choose(points, fpga["objective"], fpga["min_fmax_mhz"])
    progress(f"[timing] chosen ({fpga['objective']}): {chosen['stages']} stages, "
             f"{chosen['cycles']} cycles at {chosen['fmax_mhz']:.1f} MHz = "
             f"{chosen['latency_ns']:.1f} ns; verifying it bit for bit in cocotb")
    rtl_dir = run.path(chosen["rtl"])
    metadata = json.loads((rtl_dir / "metadata.json").read_text())
    check = check_against_golden(rtl_dir, metadata, golden, "all", "all",
                                 cfg["rtl"]["simulator"], rtl_dir.parent / "sim", progress)
    raise_on_mismatch(check, run.path(TIMING_CHOSEN))
    fam = family(fpga["family"])
    placed = sum("failed" not in p for p in points)
    title = f"{fam.title} {fam.device(fpga['device']).name}: {placed} place-and-route runs (nextpnr)"
    plot(points, chosen, title, run.path(TIMING_PLOT))
    write_json(run.path(TIMING_POINTS), {
        "kind": "placed and routed by nextpnr on this machine; latency = the RTL's pipeline cycles "
                "(measured in cocotb for the chosen point) / Fmax", "family": fam.name, "device": fam.device(fpga["device"]).name,
        "objective": fpga["objective"], "goals": goals(points, fam.name), "points": points})
    write_json(run.path(TIMING_CHOSEN), chosen | {
        "objective": fpga["objective"], "verified": {k: check[k] for k in (
            "kind", "vectors_checked", "mismatch_count", "latency_cycles",
            "initiation_interval_cycles", "simulator")},
        "use_it": f"fraudfpga all --run {run.root.name} --reconfigure --set "
                  f"fpga.stages={chosen['stages']}"})
    run.path(TIMING_TABLE).write_text("\n".join(summary_table(points)) + "\n")
    progress("\n".join(summary_table(points)))
    progress(f"[timing] verified: {check['vectors_checked']:,} vectors, {check['mismatch_count']} "
             f"mismatches; {run.path(TIMING_PLOT)}")
    return [TIMING_TABLE]


SIM_CODE = ("fraudfpga.sim", "fraudfpga.hls.fixed", "fraudfpga.hls.network")


def register_verification(fw: Firmware) -> None:
    """The steps every firmware family's RTL goes through, registered once per family: cocotb
    against its golden vectors, Yosys, place and route. They read only `fw`'s contract."""
    sources = fw.rtl_sources
    register(Step(
        name=fw.step("sim"), command="sim",
        help=f"verify both top levels of the {fw.label} bit for bit against its golden model with "
             "cocotb: the valid one back to back, the AXI4-Stream one (cocotbext-axi) at full rate "
             "and under backpressure; latency, II, throughput",
        reads=("rtl.simulator", "rtl.vectors", "rtl.random_vectors", "rtl.axis_pattern_vectors",
               "rtl.axis_duty_cycles", "rtl.axis_seeds"), inputs=(fw.rtl_metadata, fw.golden),
        outputs=(fw.sim_results, fw.sim_junit), body=partial(verify, fw), code=SIM_CODE,
        more_inputs=sources, family=fw.name))
    register(Step(
        name=fw.step("synth_yosys"), command="synth",
        help=f"Yosys synthesis estimate of the {fw.label}'s RTL (synth_xilinx, UltraScale+ by "
             "default)",
        reads=("rtl.yosys_family", "rtl.interface"), inputs=(fw.rtl_metadata,),
        outputs=(fw.yosys,), body=partial(open_synthesis, fw), code=SIM_CODE,
        more_inputs=sources, family=fw.name, background=True, niceness=10))
    register(Step(
        name=fw.step("pnr"), command="pnr",
        help=f"place and route the {fw.label}'s RTL on the open FPGA family (fpga.family) with "
             "Yosys and nextpnr: Fmax, critical path, utilization (minutes)",
        reads=("fpga.family", "fpga.device", "fpga.seed", "fpga.placer", "fpga.router",
               "fpga.router1_budget",
               "rtl.interface"), inputs=(fw.rtl_metadata,), outputs=(fw.pnr,),
        body=partial(fpga_place_and_route, fw), code=SIM_CODE, more_inputs=sources,
        family=fw.name, background=True))


def delay_model_file(cfg) -> list[str]:
    return [str(model_file(cfg["fpga"]["family"]))]


NETWORK_RTL_READS = ("fpga.family", "fpga.objective", "fpga.min_fmax_mhz", "fpga.stages",
                     "rtl.axis_id_bits")

register(Step(
    name="rtl", command="rtl",
    help="generate pipelined Verilog (II = 1) of the firmware's network with da4ml; stage cuts "
         "from the FPGA family's delay model",
    reads=NETWORK_RTL_READS, inputs=(NETWORK, GOLDEN), outputs=(RTL_METADATA, TOP_VERILOG, AXIS_VERILOG), body=generate, code=SIM_CODE,
    external_inputs=delay_model_file))

register_verification(NETWORK_FIRMWARE)

register(Step(
    name="timing", command="timing",
    help="place and route several pipeline depths and seeds, plot latency against Fmax, pick "
         "the point by fpga.objective and verify it in cocotb (tens of minutes; not part of `all`)",
    reads=("fpga", "rtl.simulator"), inputs=(NETWORK, GOLDEN),
    outputs=(TIMING_POINTS, TIMING_CHOSEN, TIMING_PLOT), body=timing, code=SIM_CODE,
    external_inputs=delay_model_file, in_all=False))


def _check_fpga(config: dict) -> list[str]:
    fpga = config["fpga"]
    try:
        family(fpga["family"]).device(fpga["device"])
    except FlowError as error:
        return [str(error)]
    return []


register_check(_check_fpga)
