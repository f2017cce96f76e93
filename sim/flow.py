"""The rtl, sim, open-source synthesis and place-and-route steps."""

from __future__ import annotations

import json
import shutil

import numpy as np

from fraudfpga.hls.artifacts import GOLDEN, NETWORK
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.errors import FlowError
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json
from fraudfpga.schema import register_check

from .artifacts import (PNR, PNR_DIR, RTL_DIR, RTL_METADATA, SIM_JUNIT, SIM_RESULTS, TIMING_CHOSEN,
                        TIMING_PLOT, TIMING_POINTS, TIMING_TABLE, TOP_VERILOG, YOSYS, rtl_sources)
from .delay_model import model_file
from .pnr import constraint_mhz, family, place_and_route
from .rtl import PipelineChoice, generate_rtl
from .runner import build, simulate
from .timing import choose, explore, goals, plot, summary_table
from .yosys import synthesize


def generate(run: RunFolder, cfg, progress=print) -> list[str]:
    network = FixedNetwork.load(run.path(NETWORK))
    golden = np.load(run.path(GOLDEN))
    out = run.path(RTL_DIR)
    shutil.rmtree(out, ignore_errors=True)
    generate_rtl(network, out, PipelineChoice.from_config(cfg["fpga"]),
                 golden["random_input_codes"], progress)
    return rtl_sources(run)


def _take(codes: np.ndarray, count) -> np.ndarray:
    if count == "all":
        return codes
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"vector count {count!r}: expected 'all' or a non-negative number")
    return codes[:count]


def check_against_golden(rtl_dir, metadata: dict, golden, test_vectors, random_vectors,
                         sim: str, work, progress=print) -> dict:
    """Stream test-set and random vectors through the RTL with cocotb and compare every output
    with the C simulation's; the results (kind, counts, latency, II) as a dict."""
    test_in = _take(golden["test_input_codes"], test_vectors)
    random_in = _take(golden["random_input_codes"], random_vectors)
    inputs = np.concatenate([test_in, random_in])
    expected = np.concatenate([golden["test_output_codes"][:len(test_in)],
                               golden["random_output_codes"][:len(random_in)]])
    build_dir = work / f"build_{sim}"
    build_seconds = build(rtl_dir, metadata, sim, build_dir, progress)
    figures = simulate(rtl_dir, metadata, inputs, expected, sim, build_dir, work / f"work_{sim}",
                       progress)
    return {
        "kind": "measured in simulation (cocotb + " + sim + ", bit-accurate RTL)",
        "golden_model": "hls4ml C simulation (hls/golden.npz)",
        "vectors_checked": figures["outputs"],
        "vectors": {"test_set": int(len(test_in)), "random_and_edge": int(len(random_in))},
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


def verify(run: RunFolder, cfg, progress=print) -> None:
    rtl_cfg = cfg["rtl"]
    sim = rtl_cfg["simulator"]
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    results = check_against_golden(run.path(RTL_DIR), metadata, np.load(run.path(GOLDEN)),
                                   rtl_cfg["vectors"], rtl_cfg["random_vectors"], sim,
                                   run.path("sim"), progress)
    shutil.copy(results["junit_xml"], run.path(SIM_JUNIT))
    results |= {"junit_xml": SIM_JUNIT, "log": f"sim/work_{sim}/sim.log"}
    write_json(run.path(SIM_RESULTS), results)
    progress(f"[sim] {results['vectors_checked']:,} vectors checked, {results['mismatch_count']} "
             f"mismatches; latency {results['latency_cycles']} cycles, II "
             f"{results['initiation_interval_cycles']}; {results['vectors_per_second']:,.0f} "
             f"vectors/s ({sim}, build {results['build_seconds']:.0f} s)")
    raise_on_mismatch(results, run.path(SIM_RESULTS))


def raise_on_mismatch(results: dict, where) -> None:
    if results["testbench_failures"] or results["mismatch_count"]:
        first = results["mismatches"][0] if results["mismatches"] else "see the log"
        raise RuntimeError(f"RTL simulation failed: {results['mismatch_count']} mismatches with "
                           f"the golden model (first: {first}); {where}, log {results['log']}")


def open_synthesis(run: RunFolder, cfg, progress=print) -> None:
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    figures = synthesize(run.path(RTL_DIR), metadata, run.path("synth/yosys"),
                         cfg["rtl"]["yosys_family"], progress)
    write_json(run.path(YOSYS), figures)
    progress(f"[synth] Yosys estimate: {figures['resources']}, logic depth "
             f"{figures['logic_depth_cells']} cells ({figures['seconds']:.0f} s)")


def fpga_place_and_route(run: RunFolder, cfg, progress=print) -> None:
    fpga = cfg["fpga"]
    fam = family(fpga["family"])
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    result = place_and_route(fam, fpga["device"], run.path(RTL_DIR), metadata, run.path(PNR_DIR),
                             constraint_mhz(metadata), fpga["seed"], progress)
    write_json(run.path(PNR), result)
    path = result["critical_path"] or {}
    progress(f"[pnr] {result['device']}: Fmax {result['fmax_mhz']:.1f} MHz placed and routed "
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


def delay_model_file(cfg) -> list[str]:
    return [str(model_file(cfg["fpga"]["family"]))]


register(Step(
    name="rtl", command="rtl",
    help="generate pipelined Verilog (II = 1) of the firmware's network with da4ml; stage cuts "
         "from the FPGA family's delay model",
    reads=("fpga.family", "fpga.objective", "fpga.min_fmax_mhz", "fpga.stages"),
    inputs=(NETWORK, GOLDEN), outputs=(RTL_METADATA, TOP_VERILOG), body=generate, code=SIM_CODE,
    external_inputs=delay_model_file))

register(Step(
    name="sim", command="sim",
    help="verify the RTL bit for bit against the C simulation with cocotb; latency and II",
    reads=("rtl.simulator", "rtl.vectors", "rtl.random_vectors"), inputs=(RTL_METADATA, GOLDEN),
    outputs=(SIM_RESULTS, SIM_JUNIT), body=verify, code=SIM_CODE, more_inputs=rtl_sources))

register(Step(
    name="synth_yosys", command="synth",
    help="Yosys synthesis estimate of the RTL (synth_xilinx, UltraScale+ by default)",
    reads=("rtl.yosys_family",), inputs=(RTL_METADATA,), outputs=(YOSYS,), body=open_synthesis,
    code=SIM_CODE, more_inputs=rtl_sources))

register(Step(
    name="pnr", command="pnr",
    help="place and route the RTL on the open FPGA family (fpga.family) with Yosys and nextpnr: "
         "Fmax, critical path, utilization (minutes)",
    reads=("fpga.family", "fpga.device", "fpga.seed"), inputs=(RTL_METADATA,), outputs=(PNR,),
    body=fpga_place_and_route, code=SIM_CODE, more_inputs=rtl_sources))

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
