"""The rtl, sim and open-source synthesis steps."""

from __future__ import annotations

import json
import shutil

import numpy as np

from fraudfpga.hls.network import FixedNetwork
from fraudfpga.runfolder import RunFolder, write_json

from .rtl import generate_rtl
from .runner import build, simulate
from .yosys import place_and_route_ecp5, synthesize


def generate(run: RunFolder, progress=print):
    hls_cfg, rtl_cfg = run.config["hls"], run.config["rtl"]
    network = FixedNetwork.load(run.path("hls/network.json"))
    golden = np.load(run.path("hls/golden.npz"))
    out = run.path("rtl")
    shutil.rmtree(out, ignore_errors=True)
    metadata = generate_rtl(network, out, hls_cfg["clock_period_ns"], rtl_cfg["adder_level_ns"],
                            hls_cfg["part"], golden["random_input_codes"], progress)
    return ["rtl/metadata.json", *(f"rtl/{s}" for s in metadata["sources"])], {}


def _take(codes: np.ndarray, count) -> np.ndarray:
    if count == "all":
        return codes
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"vector count {count!r}: expected 'all' or a non-negative number")
    return codes[:count]


def verify(run: RunFolder, progress=print):
    rtl_cfg = run.config["rtl"]
    sim = rtl_cfg["simulator"]
    metadata = json.loads(run.path("rtl/metadata.json").read_text())
    golden = np.load(run.path("hls/golden.npz"))
    test_in = _take(golden["test_input_codes"], rtl_cfg["vectors"])
    random_in = _take(golden["random_input_codes"], rtl_cfg["random_vectors"])
    inputs = np.concatenate([test_in, random_in])
    expected = np.concatenate([golden["test_output_codes"][:len(test_in)],
                               golden["random_output_codes"][:len(random_in)]])
    build_dir = run.path(f"sim/build_{sim}")
    build_seconds = build(run.path("rtl"), metadata, sim, build_dir, progress)
    figures = simulate(run.path("rtl"), metadata, inputs, expected, sim, build_dir,
                       run.path(f"sim/work_{sim}"), progress)
    shutil.copy(figures["junit_xml"], run.path("sim/results.xml"))
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
        "junit_xml": "sim/results.xml",
    }
    write_json(run.path("sim/results.json"), results)
    progress(f"[sim] {results['vectors_checked']:,} vectors checked, {results['mismatch_count']} "
             f"mismatches; latency {results['latency_cycles']} cycles, II "
             f"{results['initiation_interval_cycles']}; {results['vectors_per_second']:,.0f} "
             f"vectors/s ({sim}, build {build_seconds:.0f} s)")
    if figures["testbench_failures"] or figures["mismatch_count"]:
        first = figures["mismatches"][0] if figures["mismatches"] else "see the log"
        raise RuntimeError(f"RTL simulation failed: {figures['mismatch_count']} mismatches with "
                           f"the golden model (first: {first}); {run.path('sim/results.json')}, "
                           f"log {run.path(f'sim/work_{sim}/sim.log')}")
    return ["sim/results.json", "sim/results.xml"], {}


def open_synthesis(run: RunFolder, progress=print):
    metadata = json.loads(run.path("rtl/metadata.json").read_text())
    figures = synthesize(run.path("rtl"), metadata, run.path("synth/yosys"),
                         run.config["rtl"]["yosys_family"], progress)
    write_json(run.path("synth/yosys.json"), figures)
    progress(f"[synth] Yosys estimate: {figures['resources']}, logic depth "
             f"{figures['logic_depth_cells']} cells ({figures['seconds']:.0f} s)")
    return ["synth/yosys.json"], {}


def ecp5_place_and_route(run: RunFolder, progress=print):
    cfg = run.config["pnr"]
    metadata = json.loads(run.path("rtl/metadata.json").read_text())
    figures = place_and_route_ecp5(run.path("rtl"), metadata, run.path("synth/nextpnr_ecp5"),
                                   cfg["ecp5_device"], cfg["ecp5_package"], cfg["ecp5_speed"],
                                   progress)
    write_json(run.path("synth/nextpnr_ecp5.json"), figures)
    progress(f"[pnr] {figures['device']}: Fmax {figures['fmax_mhz']:.1f} MHz after placement and "
             f"routing (constraint {figures['constraint_mhz']:.0f} MHz); "
             f"{figures['utilization'].get('TRELLIS_COMB', {}).get('used')} logic cells")
    return ["synth/nextpnr_ecp5.json"], {}
