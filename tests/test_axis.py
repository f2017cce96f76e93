"""The AXI4-Stream top: cocotbext-axi under backpressure on small random networks, a wrapper
with one credit too few is caught, reset in the middle of a stream, the clock-enable variant,
and the scoreboard on hand-made streams."""

import numpy as np
import pytest

from fraudfpga.sim import axis_plan
from fraudfpga.sim.flow import check_axis
from fraudfpga.sim.interface_study import with_clock_enable_variant
from fraudfpga.sim.interfaces import axis_depth, interface
from fraudfpga.sim.pnr.family import harness_verilog
from fraudfpga.sim.rtl import clock_enabled_core
from fraudfpga.sim.scoreboard import latency_figures, score_stream, throughput_figures, unwrap

from test_rtl import design

RTL_CFG = {"simulator": "verilator", "vectors": "all", "random_vectors": "all",
           "axis_pattern_vectors": 150, "axis_duty_cycles": [0.5], "axis_seeds": [3, 4]}
QUIET = {"progress": lambda _: None}


def golden_of(codes, expected):
    """The golden file's layout, with the design's random vectors as the 'test set'."""
    empty = np.zeros((0, codes.shape[1]), dtype=np.int64)
    return {"test_input_codes": codes, "test_output_codes": expected,
            "random_input_codes": empty, "random_output_codes": np.zeros((0, 1), dtype=np.int64)}


@pytest.fixture(scope="module")
def small_design(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("axis")
    network, codes, golden, meta = design(tmp, 6, [7, 5], objective="fmax", seed=3)
    return tmp, network, golden_of(codes, golden), meta


def test_axis_top_under_backpressure_and_reset(small_design):
    tmp, _, golden, meta = small_design
    result = check_axis(tmp / "rtl", meta, golden, RTL_CFG, tmp / "sim", **QUIET)
    core = meta["latency_cycles"]
    assert result["testbench_failures"] == 0
    assert (result["lost"], result["duplicated"], result["reordered"], result["mismatched"],
            result["tlast_mismatched"]) == (0, 0, 0, 0, 0)
    n = len(golden["test_input_codes"])
    # full rate + every pattern, all scored (the second seed's first pattern, input always valid,
    # follows one with input gaps: nothing of a pattern may linger into the next)
    assert result["vectors_checked"] == n + 2 * 3 * 150
    assert result["full_rate_per_cycle"] == 1.0 and result["latency_cycles"] == core + 1
    for duty in result["duty_cycles"]:
        assert duty["throughput_over_duty"] >= 0.99 and 0.35 < duty["ready_duty"] < 0.65
    names = [p["name"] for p in result["phases"]]
    assert any("bursts" in n for n in names) and any("long tready stalls" in n for n in names)
    stalls = next(p for p in result["phases"] if "long tready stalls" in p["name"])
    assert stalls["latency_cycles"]["max"] > axis_plan.LONG_STALL["min_off"]  # waited out a stall
    reset = result["reset"]
    assert reset["dropped_in_flight"] > 0  # the reset hit transactions in flight
    assert reset["outputs_after_reset_before_new_input"] == 0
    after = reset["after_reset"]
    assert after["delivered"] == after["vectors"] and after["lost"] == after["mismatched"] == 0


def test_one_credit_too_few_stalls_and_is_caught(small_design):
    tmp, _, golden, meta = small_design
    core = meta["latency_cycles"]
    shallow = axis_depth(core) - 1
    result = check_axis(tmp / "rtl", meta, golden, RTL_CFG, tmp / "sim_shallow", **QUIET,
                        parameters={"DEPTH": shallow})
    assert result["testbench_failures"] == 1
    assert result["full_rate_per_cycle"] < 1  # admission stalls with the pipeline full
    assert result["lost"] == result["mismatched"] == 0  # slower, never wrong


def test_clock_enable_variant_passes_the_same_testbench(small_design, tmp_path):
    tmp, network, golden, meta = small_design

    class Run:  # the one thing with_clock_enable_variant reads of a run folder
        def path(self, name):
            return tmp / name

    ce_meta = with_clock_enable_variant(Run(), network, meta, 16, tmp_path / "rtl")
    ce = interface(ce_meta, "axis_ce")
    result = check_axis(tmp_path / "rtl", ce_meta, golden, RTL_CFG, tmp_path / "sim", **QUIET,
                        iface=ce)
    assert result["testbench_failures"] == 0 and result["lost"] == result["mismatched"] == 0
    assert result["latency_cycles"] == meta["latency_cycles"]  # no FIFO: no added cycle
    assert result["duty_cycles"][0]["throughput_over_duty"] >= 0.99


def test_clock_enable_transform_refuses_unknown_verilog():
    ok = "module fraud_mlp (\n    input clk,\n    x\n    always @(posedge clk) begin\n end\n"
    assert "if (ce) begin" in clock_enabled_core(ok) and "input ce," in clock_enabled_core(ok)
    with pytest.raises(RuntimeError, match="exactly one"):
        clock_enabled_core(ok.replace("always @(posedge clk) begin", "always @(posedge clk)"))


def test_harness_connects_every_port_of_both_tops(small_design):
    _, _, _, meta = small_design
    for name in ("valid", "axis"):
        iface = interface(meta, name)
        text = harness_verilog(iface)
        for port in [*iface.inputs, *iface.outputs, iface.clock, iface.reset]:
            assert f".{port}(" in text
    assert ".aresetn(!rst)" in harness_verilog(interface(meta, "axis"))
    with pytest.raises(ValueError, match="not among this RTL's top levels"):
        interface(meta, "avalon")


def test_scoreboard_counts_each_kind_of_error():
    sent = [10, 11, 12, 13, 14, 15]
    lasts = [0, 1, 0, 0, 0, 1]
    good = score_stream(0, 6, list(range(6)), sent, lasts, sent, lasts, 8)
    assert (good["lost"], good["duplicated"], good["reordered"], good["mismatched"]) == (0, 0, 0, 0)
    # position 2 lost, 4 duplicated, 5 before 3 and 4 (two arrive late), a wrong score and a
    # wrong tlast
    ids = [0, 1, 5, 3, 4, 4]
    words = [10, 11, 15, 99, 14, 14]
    got = score_stream(0, 6, ids, words, [0, 1, 1, 0, 1, 0], sent, lasts, 8)
    assert got["lost"] == 1 and got["duplicated"] == 1 and got["reordered"] == 2
    assert got["mismatched"] == 1 and got["mismatches"][0] == {"position": 3, "expected": 13,
                                                              "actual": 99}
    assert got["tlast_mismatched"] == 1


def test_identifiers_unwrap_across_the_modulus():
    # 4-bit identifiers, a stream starting at sequence 30: 30 % 16 = 14, then 15, 0, 1
    assert unwrap([14, 15, 0, 1], 30, 4) == [0, 1, 2, 3]
    assert unwrap([14, 0, 1], 30, 4) == [0, 2, 3]  # one lost: the others keep their place


def test_throughput_and_latency_from_handshakes():
    accepted = [(1, 0), (2, 1), (3, 2), (4, 3)]
    delivered = [(6, 0, 0, 0), (8, 1, 0, 0), (10, 2, 0, 0), (12, 3, 0, 1)]
    ready = bytes([0] * 5 + [1, 0] * 4)  # tready high every other cycle from cycle 6
    figures = throughput_figures(accepted, delivered, ready)
    assert figures["window_cycles"] == 7 and figures["delivered_per_cycle"] == pytest.approx(4 / 7)
    assert figures["ready_duty"] == pytest.approx(4 / 7) and figures["throughput_over_duty"] == 1
    assert latency_figures(accepted, delivered, 8) == {"min": 5, "p50": 6.5, "p99": pytest.approx(7.97),
                                                       "max": 8, "mean": 6.5}


def test_pause_patterns_have_their_duty_cycle():
    rng = np.random.default_rng(0)
    for spec, duty in [({"kind": "bernoulli", "duty": 0.25}, 0.25),
                       ({"kind": "bursts", "mean_on": 12, "mean_off": 12}, 0.5)]:
        generator = axis_plan.pause_pattern(spec, rng)
        paused = [next(generator) for _ in range(40000)]
        assert abs(1 - np.mean(paused) - duty) < 0.03
    stalls = axis_plan.pause_pattern({"kind": "stalls", **axis_plan.LONG_STALL}, rng)
    first = [next(stalls) for _ in range(axis_plan.LONG_STALL["min_off"])]
    assert all(first)  # starts with a stall of at least min_off cycles
    assert axis_plan.pause_pattern({"kind": "always"}, rng) is None
