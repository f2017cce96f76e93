"""The rtl, sim, open-source synthesis and place-and-route steps."""

from __future__ import annotations

import json
import shutil

import numpy as np

from fraudfpga.hls.artifacts import GOLDEN, NETWORK
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import (PNR_ECP5, RTL_DIR, RTL_METADATA, SIM_JUNIT, SIM_RESULTS, TOP_VERILOG,
                        YOSYS, rtl_sources)
from .runner import build, simulate
from .rtl import generate_rtl
from .yosys import place_and_route_ecp5, synthesize


def generate(run: RunFolder, cfg, progress=print) -> list[str]:
    hls_cfg, rtl_cfg = cfg["hls"], cfg["rtl"]
    network = FixedNetwork.load(run.path(NETWORK))
    golden = np.load(run.path(GOLDEN))
    out = run.path(RTL_DIR)
    shutil.rmtree(out, ignore_errors=True)
    generate_rtl(network, out, hls_cfg["clock_period_ns"], rtl_cfg["adder_level_ns"],
                 hls_cfg["part"], golden["random_input_codes"], progress)
    return rtl_sources(run)


def _take(codes: np.ndarray, count) -> np.ndarray:
    if count == "all":
        return codes
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"vector count {count!r}: expected 'all' or a non-negative number")
    return codes[:count]


def verify(run: RunFolder, cfg, progress=print) -> None:
    rtl_cfg = cfg["rtl"]
    sim = rtl_cfg["simulator"]
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    golden = np.load(run.path(GOLDEN))
    test_in = _take(golden["test_input_codes"], rtl_cfg["vectors"])
    random_in = _take(golden["random_input_codes"], rtl_cfg["random_vectors"])
    inputs = np.concatenate([test_in, random_in])
    expected = np.concatenate([golden["test_output_codes"][:len(test_in)],
                               golden["random_output_codes"][:len(random_in)]])
    build_dir = run.path(f"sim/build_{sim}")
    build_seconds = build(run.path(RTL_DIR), metadata, sim, build_dir, progress)
    figures = simulate(run.path(RTL_DIR), metadata, inputs, expected, sim, build_dir,
                       run.path(f"sim/work_{sim}"), progress)
    shutil.copy(figures["junit_xml"], run.path(SIM_JUNIT))
    results = {
        "kind": "measured in simulation (cocotb + " + sim + ", bit-accurate RTL)",
        "golden_model": "hls4ml C simulation (hls/golden.npz)",
        "vectors_checked": figures["outputs"],
        "vectors": {"test_set": int(len(test_in)), "random_and_edge": int(len(random_in))},
        "mismatch_count": figures["mismatch_count"], "mismatches": figures["mismatches"],
        "latency_cycles": figures["latency_cycles_data"],
        "latency_cycles_out_valid": figures["latency_cycles_valid"],
        "latency_cycles_metadata": metadata["latency_cycles"],
        "initiation_interval_cycles": figures["initiation_interval_cycles"],
        "valid_tracking_with_idle_cycles": figures["bubble_replay"],
        "vectors_per_second": figures["vectors_per_second"],
        "stream_seconds": figures["stream_seconds"],
        "build_seconds": round(build_seconds, 1),
        "simulator": sim, "simulator_version": figures["simulator_version"],
        "junit_xml": SIM_JUNIT,
    }
    write_json(run.path(SIM_RESULTS), results)
    progress(f"[sim] {results['vectors_checked']:,} vectors checked, {results['mismatch_count']} "
             f"mismatches; latency {results['latency_cycles']} cycles, II "
             f"{results['initiation_interval_cycles']}; {results['vectors_per_second']:,.0f} "
             f"vectors/s ({sim}, build {build_seconds:.0f} s)")
    if figures["testbench_failures"] or figures["mismatch_count"]:
        first = figures["mismatches"][0] if figures["mismatches"] else "see the log"
        raise RuntimeError(f"RTL simulation failed: {figures['mismatch_count']} mismatches with "
                           f"the golden model (first: {first}); {run.path(SIM_RESULTS)}, "
                           f"log {run.path(f'sim/work_{sim}/sim.log')}")


def open_synthesis(run: RunFolder, cfg, progress=print) -> None:
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    figures = synthesize(run.path(RTL_DIR), metadata, run.path("synth/yosys"),
                         cfg["rtl"]["yosys_family"], progress)
    write_json(run.path(YOSYS), figures)
    progress(f"[synth] Yosys estimate: {figures['resources']}, logic depth "
             f"{figures['logic_depth_cells']} cells ({figures['seconds']:.0f} s)")


def ecp5_place_and_route(run: RunFolder, cfg, progress=print) -> None:
    pnr = cfg["pnr"]
    metadata = json.loads(run.path(RTL_METADATA).read_text())
    figures = place_and_route_ecp5(run.path(RTL_DIR), metadata, run.path("synth/nextpnr_ecp5"),
                                   pnr["ecp5_device"], pnr["ecp5_package"], pnr["ecp5_speed"],
                                   progress)
    write_json(run.path(PNR_ECP5), figures)
    progress(f"[pnr] {figures['device']}: Fmax {figures['fmax_mhz']:.1f} MHz after placement and "
             f"routing (constraint {figures['constraint_mhz']:.0f} MHz); "
             f"{figures['utilization'].get('TRELLIS_COMB', {}).get('used')} logic cells")


SIM_CODE = ("fraudfpga.sim", "fraudfpga.hls.fixed", "fraudfpga.hls.network")

register(Step(
    name="rtl", command="rtl",
    help="generate pipelined Verilog (II = 1) of the firmware's network with da4ml",
    reads=("hls.clock_period_ns", "hls.part", "rtl.adder_level_ns"), inputs=(NETWORK, GOLDEN),
    outputs=(RTL_METADATA, TOP_VERILOG), body=generate, code=SIM_CODE))

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
    help="optional: place and route the RTL on a Lattice ECP5 with nextpnr for a real Fmax "
         "(minutes; not part of `all`)",
    reads=("pnr",), inputs=(RTL_METADATA,), outputs=(PNR_ECP5,), body=ecp5_place_and_route,
    code=SIM_CODE, more_inputs=rtl_sources, in_all=False))
