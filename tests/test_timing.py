"""Timing closure: the delay model's stage cuts and fit, place and route on each open family,
clear failures, and `fraudfpga timing` on the tiny run."""

import json
import math

import numpy as np
import pytest

from fraudfpga.errors import FlowError, ToolFailed
from fraudfpga.hls.flow import random_vectors
from fraudfpga.sim.delay_model import (DelayModel, arrival_times, balanced_point, choose_point,
                                       design_points, fit, model_file, op_features, operands, pipeline,
                                       predicted_period, stage_of, stage_path_vectors)
from fraudfpga.sim.pnr import FAMILIES, family, place_and_route
from fraudfpga.sim.pnr.family import Device, NextpnrOptions, fit_check
from fraudfpga.sim.rtl import PipelineChoice, generate_rtl, trace_network

from conftest import cli
from test_hls import firmware, random_qkeras_model

QUIET = {"progress": lambda _: None}
CARRY_HEAVY = DelayModel("test", register=1.0, carry_op=3.0, carry_bit=0.0, lut_op=0.1)
LUT_HEAVY = DelayModel("test", register=1.0, carry_op=0.1, carry_bit=0.0, lut_op=3.0)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    _, network, csim = firmware(random_qkeras_model(6, [6, 4], seed=3), tmp)
    codes = random_vectors(network, 300, seed=2)
    return network, trace_network(network), codes, csim.run(codes), tmp


def test_every_stage_holds_at_most_its_budget_and_ops_follow_their_operands(small):
    _, comb, _, _, _ = small
    model = DelayModel.load("ecp5")
    delays = model.op_delays(comb)
    for point in design_points(comb, model):
        times = arrival_times(comb, delays, point.budget_ns)
        for index, op in enumerate(comb.ops):
            stage = stage_of(times[index], point.budget_ns)
            start = times[index] - delays[index]
            assert start >= stage * point.budget_ns - 1e-6  # no op straddles a boundary
            for parent in operands(op):
                assert times[parent] <= start + 1e-6
        assert point.predicted_period_ns <= model.register + point.budget_ns + 1e-6


def test_the_cuts_follow_the_models_costs(small):
    """Each model's own balanced cut is at least as fast, under that model, as the cut another
    model makes with the same number of stages, and the generated pipeline's period is what the
    model predicted."""
    _, comb, _, _, _ = small
    cuts = {}
    for model in (CARRY_HEAVY, LUT_HEAVY):
        point = balanced_point(comb, model, 3)
        pipe = pipeline(comb, model, point)
        assert len(pipe.solutions) == 3
        cuts[model] = stage_path_vectors(pipe, out_bits=2)
        assert predicted_period(model, cuts[model]) == pytest.approx(point.predicted_period_ns,
                                                                     abs=1e-6)
    for model, other in ((CARRY_HEAVY, LUT_HEAVY), (LUT_HEAVY, CARRY_HEAVY)):
        assert predicted_period(model, cuts[model]) <= predicted_period(model, cuts[other]) + 1e-9
    assert cuts[CARRY_HEAVY] != cuts[LUT_HEAVY]


def test_objectives_pick_the_points_they_name(small):
    _, comb, _, _, _ = small
    points = design_points(comb, DelayModel.load("nexus"))
    assert [p.stages for p in points] == sorted({p.stages for p in points})
    latency = choose_point(points, "latency", 100)
    fmax = choose_point(points, "fmax", 100)
    assert latency.predicted_latency_ns == min(p.predicted_latency_ns for p in points)
    assert fmax.predicted_period_ns == min(p.predicted_period_ns for p in points)
    assert fmax.stages >= latency.stages
    slow_enough = choose_point(points, "throughput", latency.predicted_fmax_mhz * 0.5)
    assert slow_enough.predicted_fmax_mhz >= latency.predicted_fmax_mhz * 0.5
    with pytest.raises(FlowError, match="predicts at most"):
        choose_point(points, "throughput", 1e6)


def test_the_fit_recovers_the_coefficients_that_made_the_periods(small):
    _, comb, _, _, _ = small
    truth = DelayModel("ecp5", register=2.1, carry_op=1.7, carry_bit=0.06, lut_op=0.9)
    runs = []
    for point in design_points(comb, truth):
        vectors = stage_path_vectors(pipeline(comb, truth, point), out_bits=16)
        runs.append({"fmax_mhz": 1e3 / predicted_period(truth, vectors), "path_vectors": vectors})
    fitted, quality = fit(runs, "ecp5")
    assert quality["rms_error_ns"] < 0.05
    for run in runs:
        assert predicted_period(fitted, run["path_vectors"]) == pytest.approx(
            1e3 / run["fmax_mhz"], rel=0.02)
    with pytest.raises(FlowError, match="cannot fit 4 coefficients"):
        fit(runs[:2], "ecp5")


def test_the_op_features_know_every_opcode_the_tracer_emits(small):
    _, comb, _, _, _ = small
    assert {op_features(op) for op in comb.ops} >= {(0, 0, 0), (0, 0, 1)}
    assert any(f[0] == 1 and f[1] > 0 for f in map(op_features, comb.ops))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_small_network_places_and_routes_and_stays_bit_exact(small, name):
    network, _, codes, golden, tmp = small
    fam = family(name)
    meta = generate_rtl(network, tmp / f"rtl_{name}", PipelineChoice(name, "latency"), codes, **QUIET)
    result = place_and_route(fam, "default", tmp / f"rtl_{name}", meta, tmp / f"pnr_{name}", 100.0,
                             **QUIET)
    assert result["device"] == fam.default_device and result["family"] == name
    assert 10 < result["fmax_mhz"] < 1000
    assert result["latency_ns"] == pytest.approx(meta["latency_cycles"] * 1e3 / result["fmax_mhz"],
                                                 abs=0.01)
    assert result["logic_cells"] > 0 and result["flip_flops"] >= result["harness_flip_flops"]
    path = result["critical_path"]
    assert 0 < path["routing_share"] < 1 and path["cell_count"] >= 2
    assert json.loads((tmp / f"pnr_{name}" / "result.json").read_text()) == result
    if name == "nexus":
        assert result["netlist_repairs"] > 0  # constant carry-ins removed for nextpnr-nexus


def test_a_placed_design_is_routed_by_the_router_asked_for(small):
    """ECP5 places once and routes the placed design; nextpnr would take the router saved in
    that design (router1) over `--router`, so asking for router2 must give router2."""
    network, _, codes, _, tmp = small
    fam = family("ecp5")
    meta = generate_rtl(network, tmp / "rtl_router2", PipelineChoice("ecp5", "latency"), codes,
                        **QUIET)
    result = place_and_route(fam, "default", tmp / "rtl_router2", meta, tmp / "pnr_router2",
                             100.0, options=NextpnrOptions("heap", "router2"), **QUIET)
    log = (tmp / "pnr_router2" / "nextpnr.log").read_text()
    assert "Running router2" in log and "Router2 time" in log
    assert result["nextpnr_options"]["router"] == "router2" and result["fmax_mhz"] > 10


def test_a_design_too_large_for_the_device_names_the_resource():
    device = Device("TINY-1", (), 6, {"TRELLIS_COMB": 100, "TRELLIS_FF": 100})
    with pytest.raises(FlowError, match=r"does not fit TINY-1: TRELLIS_COMB: 250 of 100 \(250 %\)"):
        fit_check(family("ecp5"), device, {"LUT4": 150, "CCU2C": 50, "TRELLIS_FF": 20})


def test_a_failed_place_and_route_leaves_no_result(small, monkeypatch):
    network, _, codes, _, tmp = small
    meta = generate_rtl(network, tmp / "rtl_fail", PipelineChoice("nexus"), codes, **QUIET)
    out = tmp / "pnr_fail"
    out.mkdir()
    (out / "result.json").write_text('{"fmax_mhz": 999}')  # from an earlier run
    fam = family("nexus")
    broken = type(fam)(**{**fam.__dict__, "pins": {**fam.pins, "serial_out": "Z99"}})
    with pytest.raises(ToolFailed, match="nextpnr-nexus failed on LIFCL-40-9BG400C: .*invalid pin"):
        place_and_route(broken, "default", tmp / "rtl_fail", meta, out, 100.0, **QUIET)
    assert not (out / "result.json").exists() and not (out / "report.json").exists()


def test_unknown_families_and_devices_list_the_supported_ones(tmp_path, capsys):
    assert cli("rtl", "--run", "x", "--projects-dir", str(tmp_path),
               settings=["fpga.family=virtex"]) == 2
    err = capsys.readouterr().err
    assert "fpga.family: 'virtex' is not a supported FPGA family; supported: ecp5, nexus" in err
    assert cli("rtl", "--run", "x", "--projects-dir", str(tmp_path),
               settings=["fpga.family=nexus", "fpga.device=LIFCL-17"]) == 2
    err = capsys.readouterr().err
    assert "'LIFCL-17' is not a supported Lattice CrossLink-NX (Nexus) device" in err
    assert "LIFCL-40-9BG400C" in err and not (tmp_path / "x").exists()


def test_timing_explores_depths_picks_one_and_verifies_it(tiny_copy):
    projects = str(tiny_copy.parent)
    assert cli("timing", "--run", "tiny", "--projects-dir", projects, "--reconfigure",
               settings=["fpga.timing_stages=[2, 3]", "fpga.timing_seeds=[1, 2]"]) == 0
    points = json.loads((tiny_copy / "timing/points.json").read_text())["points"]
    assert sorted({(p["stages"], p["seed"]) for p in points}) == [
        (s, seed) for s in (2, 3) for seed in (1, 2)]
    chosen = json.loads((tiny_copy / "timing/chosen.json").read_text())
    best = min((p for p in points), key=lambda p: (p["latency_ns"], p["stages"]))
    assert (chosen["stages"], chosen["latency_ns"]) == (best["stages"], best["latency_ns"])
    assert chosen["verified"]["mismatch_count"] == 0
    assert chosen["verified"]["latency_cycles"] == chosen["cycles"]
    assert chosen["verified"]["vectors_checked"] > 1000
    assert (tiny_copy / "timing/latency_vs_fmax.png").read_bytes().startswith(b"\x89PNG")
    assert "fpga.stages=" in chosen["use_it"]
    for stages in (2, 3):  # Yosys ran once per depth; both seeds placed its netlist
        assert (tiny_copy / f"timing/stages_{stages}/ecp5_netlist/yosys.log").exists()
        for seed in (1, 2):
            placed = tiny_copy / f"timing/stages_{stages}/ecp5_seed_{seed}"
            assert not (placed / "yosys.log").exists()
            assert json.loads((placed / "result.json").read_text())["netlist"] == \
                "../ecp5_netlist/netlist.json"
    # A second run reuses every placed-and-routed point (same Verilog, device and seed).
    seconds = {(p["stages"], p["seed"]): p["nextpnr_seconds"] for p in points}
    assert cli("timing", "--run", "tiny", "--projects-dir", projects, "--force", settings=[]) == 0
    again = json.loads((tiny_copy / "timing/points.json").read_text())["points"]
    assert {(p["stages"], p["seed"]): p["nextpnr_seconds"] for p in again} == seconds
    assert all(math.isfinite(p["fmax_mhz"]) for p in again)
    # The report shows the chosen point while it is current.
    assert cli("report", "--run", "tiny", "--projects-dir", projects, settings=[]) == 0
    markdown = (tiny_copy / "report/report.md").read_text()
    assert "make timing: chosen by latency" in markdown and "## Timing closure" in markdown
    assert (tiny_copy / "report/latency_vs_fmax.png").exists()


def test_the_stored_delay_models_were_fitted_on_their_runs():
    for name in FAMILIES:
        data = json.loads(model_file(name).read_text())
        model = DelayModel(name, **data["coefficients"])
        assert data["runs"], f"{name}: no runs stored"
        _, quality = fit(data["runs"], name)
        assert quality == data["fit"]
        for run in data["runs"]:
            assert run["model_fmax_mhz"] == pytest.approx(
                1e3 / predicted_period(model, run["path_vectors"]), abs=0.1)
        assert np.all(np.array(list(data["coefficients"].values())) >= 0)


def test_the_cheaper_relu_is_bit_exact_and_saves_a_carry_chain_per_layer(small):
    network, _, codes, golden, _ = small
    expected = network.output_type.to_float(golden)
    counts = {}
    for cheaper in (False, True):
        comb = trace_network(network, cheaper_relu=cheaper)
        got = np.asarray(comb.predict(network.input_type.to_float(codes)), dtype=np.float64)
        np.testing.assert_array_equal(got.reshape(expected.shape), expected)
        counts[cheaper] = sum(op_features(op)[1] for op in comb.ops)  # carry-chain bits
    assert counts[True] < counts[False]
