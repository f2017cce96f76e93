"""The feature engine's RTL (sim/templates/feature_engine.v) in cocotb against the op-level
reference: a simulated month back to back and with idle clocks, and directed hazards (the same
card or terminal in consecutive clocks, a day boundary inside a burst, labels whose bucket has
expired, saturation, capacity, a late transaction)."""

import numpy as np
import pandas as pd
import pytest

from fraudfpga.models.features import SECONDS_PER_DAY
from fraudfpga.models.simulator import SimulatorSettings, simulate
from fraudfpga.models.streaming import StreamingEngine
from fraudfpga.sim.engine_reference import Ops, expected_outputs, op_stream
from fraudfpga.sim.engine_rtl import (DAY_DIVISION, LATENCY_CYCLES, EngineParameters,
                                      ExactDivision, render)
from fraudfpga.sim.engine_sim import build_engine, replay
from fraudfpga.sim.runner import simulator_version

CARDS, TERMINALS, DELAY = 64, 128, 7
DAY0 = 17_700  # 2018-06-18, a Monday
PARAMS = EngineParameters(CARDS, TERMINALS, DELAY)


def _simulator_available():
    try:
        simulator_version("verilator")
    except Exception as error:  # noqa: BLE001 - the reason is shown in the skip message
        return str(error)
    return None


needs_verilator = pytest.mark.skipif(_simulator_available() is not None,
                                     reason=str(_simulator_available()))


@pytest.fixture(scope="module")
def engine(tmp_path_factory, month):
    folder = tmp_path_factory.mktemp("engine")
    return folder, build_engine(folder, PARAMS, "verilator", progress=lambda m: None,
                                ops=len(month["seconds"]))


@pytest.fixture(scope="module")
def month():
    """A simulated month and a half of 60 cards and 120 terminals, in time order."""
    settings = SimulatorSettings(n_customers=60, n_terminals=120, n_days=45)
    tx = simulate(settings, 3, lambda message: None)
    tx = tx.iloc[np.argsort(pd.DatetimeIndex(tx["TX_DATETIME"]).asi8, kind="stable")]
    seconds = ((pd.DatetimeIndex(tx["TX_DATETIME"]) - pd.Timestamp("1970-01-01"))
               // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    return {"seconds": seconds, "card": tx["CUSTOMER_ID"].to_numpy(np.int64),
            "terminal": tx["TERMINAL_ID"].to_numpy(np.int64),
            "cents": np.rint(tx["TX_AMOUNT"].to_numpy() * 100).astype(np.int64),
            "fraud": tx["TX_FRAUD"].to_numpy(np.int64)}


def _ops(rows) -> Ops:
    """Ops from (label, seconds, card, terminal, cents) rows, in the order given."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Ops(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], np.arange(len(a)))


def _assert_clean(results):
    assert results["testbench_failures"] == 0, results["mismatches"][:2]
    assert results["mismatch_count"] == 0 and results["in_order"]
    assert results["lost"] == results["duplicated"] == 0
    assert results["counters_ok"], (results["counters"], results["expected_counters"])
    assert results["latency_cycles"] == [LATENCY_CYCLES]


def test_exact_divisions_hold_over_their_whole_range():
    days = np.arange(1 << 16, dtype=np.int64)
    for divisor in (31, DELAY + 31, 7):
        division = ExactDivision.of(divisor, 16)
        assert np.array_equal(division(days), days // divisor)
    rng = np.random.default_rng(0)
    seconds = np.concatenate([rng.integers(0, 1 << 32, 1_000_000),
                              (np.arange(1, 49_711) * SECONDS_PER_DAY
                               + np.array([[-1], [0], [1]])).ravel(),
                              [0, (1 << 32) - 1]])
    seconds = seconds[(seconds >= 0) & (seconds < 1 << 32)].astype(np.int64)
    assert np.array_equal(DAY_DIVISION(seconds >> 7), seconds // SECONDS_PER_DAY)


def test_a_placeholder_without_a_value_is_refused(monkeypatch):
    from fraudfpga.sim import engine_rtl

    class Template:
        def files(self, package):
            return self

        def joinpath(self, name):
            return self

        def read_text(self):
            return "module x; localparam A = __UNKNOWN__; endmodule"

    monkeypatch.setattr(engine_rtl, "resources", Template())
    with pytest.raises(ValueError, match="__UNKNOWN__"):
        render(PARAMS)


def test_the_reference_is_the_software_engine_within_the_capacity(month):
    ops = op_stream(*(month[k] for k in ("seconds", "card", "terminal", "cents", "fraud")),
                    DELAY)
    expected = expected_outputs(ops, PARAMS)
    software = StreamingEngine(CARDS, TERMINALS, DELAY)
    features = software.replay(*(month[k] for k in ("seconds", "card", "terminal", "cents",
                                                    "fraud")))
    assert np.array_equal(expected.features, features)
    assert not expected.flags.any()
    assert ops.transactions == len(month["seconds"])
    assert len(ops) - ops.transactions > 100  # labels are exercised
    # each label sits before the first transaction on or after its day + delay, none earlier
    label_day = ops.time[ops.label == 1] // SECONDS_PER_DAY
    next_tx_day = np.array([ops.time[i + 1] // SECONDS_PER_DAY for i in np.flatnonzero(ops.label)
                            if i + 1 < len(ops) and not ops.label[i + 1]])
    assert np.all(next_tx_day >= label_day[:next_tx_day.size] + DELAY)


@needs_verilator
@pytest.mark.parametrize("idle", [0.0, 0.3])
def test_a_simulated_month_is_bit_exact(engine, month, idle):
    folder, metadata = engine
    ops = op_stream(*(month[k] for k in ("seconds", "card", "terminal", "cents", "fraud")),
                    DELAY)
    results = replay(folder, metadata, ops, "verilator", f"month{idle}", idle_probability=idle,
                     progress=lambda m: None)
    _assert_clean(results)
    assert results["transactions"] == len(month["seconds"])
    if idle == 0.0:
        assert results["ops_per_cycle"] > 0.99  # one op per clock, back to back


def _hazards() -> Ops:
    t0 = DAY0 * SECONDS_PER_DAY
    rows = []
    # the same card and terminal in consecutive clocks, then alternating (read after write)
    rows += [(0, t0 + 60 + k, 1, 2, 1000 + k) for k in range(6)]
    rows += [(0, t0 + 100 + k, 1 + k % 2, 2 + k % 3, 500) for k in range(9)]
    # a day boundary inside a burst of one card
    midnight = t0 + SECONDS_PER_DAY
    rows += [(0, midnight - 2 + k, 3, 4, 2500) for k in range(5)]
    # a fraud at terminal 5 on day 1, its label on day 8 right before a transaction there
    rows += [(0, midnight + 3600, 6, 5, 7000)]
    day8 = t0 + 8 * SECONDS_PER_DAY
    rows += [(1, midnight + 3600, 0, 5, 0), (0, day8 + 10, 6, 5, 100), (0, day8 + 11, 7, 5, 100)]
    # saturation on day 9: 300 transactions of card 8 (bucket count 255; amounts beyond 2**24
    # cents), 300 at terminal 9 with their labels on day 16 (frauds beyond 255)
    day9 = t0 + 9 * SECONDS_PER_DAY
    rows += [(0, day9 + k, 8, 9, 90_000) for k in range(300)]
    # a window count beyond 1,023: card 10, 230 a day for five days (bucket counts stay < 255)
    for d in range(5):
        rows += [(0, t0 + (10 + d) * SECONDS_PER_DAY + 7 * 3600 + k, 10, 11, 1) for k in range(230)]
    day16 = t0 + 16 * SECONDS_PER_DAY
    rows += [(1, day9 + k, 0, 9, 0) for k in range(300)]
    rows += [(0, day16 + 5, 12, 9, 100)]
    # ids beyond the capacity, a label for a terminal beyond it
    rows += [(0, day16 + 20, CARDS + 3, 13, 100), (0, day16 + 21, 14, TERMINALS + 1, 100),
             (1, day16 + 22, 0, TERMINALS + 1, 0)]
    # card 1 and terminal 2 come back after 40 days (every bucket expired), then a label for a
    # day whose terminal bucket has been reused (expired), then a late transaction of card 1
    day50 = t0 + 50 * SECONDS_PER_DAY
    rows += [(0, day50 + 30, 1, 2, 4000), (1, t0 + 60, 0, 2, 0),
             (0, day50 - 3 * SECONDS_PER_DAY, 1, 15, 800), (0, day50 + 40, 1, 2, 4100)]
    # exactly 30 and 31 days later (the 30-day window's edge)
    rows += [(0, day50 + 30 * SECONDS_PER_DAY, 1, 2, 10), (0, day50 + 31 * SECONDS_PER_DAY, 1, 2, 10)]
    # labels in consecutive clocks with transactions at their terminal: a transaction, its
    # terminal's label right after it, another transaction right after the label, two labels
    day90 = t0 + 90 * SECONDS_PER_DAY
    day97 = day90 + DELAY * SECONDS_PER_DAY
    rows += [(0, day90 + 100, 20, 40, 300), (0, day90 + 200, 21, 40, 300)]
    rows += [(0, day97 + 1, 22, 40, 50), (1, day90 + 100, 0, 40, 0), (0, day97 + 2, 23, 40, 60),
             (1, day90 + 200, 0, 40, 0), (1, day90 + 200, 0, 40, 0), (0, day97 + 3, 24, 40, 70),
             (0, day97 + DELAY * SECONDS_PER_DAY, 25, 40, 80)]  # reads day 97's bucket
    return _ops(rows)


def test_the_hazard_stream_reaches_every_counter():
    expected = expected_outputs(_hazards(), PARAMS)
    assert all(v > 0 for v in expected.counters.values()), expected.counters
    assert expected.counters["card_capacity"] == 1 and expected.counters["late"] == 1
    assert expected.counters["terminal_capacity"] == 2
    assert expected.flags[:, 2].sum() == 1


@needs_verilator
@pytest.mark.parametrize("idle", [0.0, 0.5])
def test_hazards_are_bit_exact(engine, idle):
    folder, metadata = engine
    results = replay(folder, metadata, _hazards(), "verilator", f"hazards{idle}",
                     idle_probability=idle, seed=7, progress=lambda m: None)
    _assert_clean(results)


def test_the_state_sizes_are_the_records_as_packed():
    params = EngineParameters(5000, 10_000, 7)
    assert params.card_record_bits == 16 + 31 * 33  # 130 bytes, as models.streaming says
    assert params.terminal_record_bits == 16 + 38 * 17
    text = render(params)
    assert "__" not in text and "parameter integer CARDS = 5000" in text
    with pytest.raises(ValueError, match="delay"):
        EngineParameters(10, 10, 0)


def _random_forest(rng, trees=12, depth=5):
    """A forest of random trees on the 15 inputs' 8-bit codes (every split a random input and
    threshold code, leaf values random)."""
    from fraudfpga.hls.forest import LEAF, FixedForest, input_type

    t_in = input_type(8, 5)
    out = []
    for _ in range(trees):
        tree = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}

        def grow(level):
            node = len(tree["feature"])
            for key in tree:
                tree[key].append(0)
            if level == depth or rng.random() < 0.15:
                tree["feature"][node], tree["value"][node] = LEAF, int(rng.integers(-500, 500))
                tree["left"][node] = tree["right"][node] = -1
                return node
            tree["feature"][node] = int(rng.integers(0, 15))
            tree["threshold"][node] = int(rng.integers(t_in.min_code, t_in.max_code + 1))
            tree["left"][node] = grow(level + 1)
            tree["right"][node] = grow(level + 1)
            return node
        grow(0)
        out.append(tree)
    from fraudfpga.hls.fixed import FixedType
    return FixedForest(15, t_in, FixedType.parse("ap_fixed<18,6>"), out)


def _codes(features):
    from fraudfpga.hls.codec import FirmwareCodec
    from fraudfpga.hls.forest import input_type
    from fraudfpga.models.features import FEATURE_COLUMNS
    from fraudfpga.models.split import Scaler
    from fraudfpga.models.streaming import to_model_units
    from fraudfpga.sim.engine_forest import RawCodes

    frame = pd.DataFrame(to_model_units(features), columns=FEATURE_COLUMNS)
    scaler = Scaler.fit(frame, list(FEATURE_COLUMNS))
    codec = FirmwareCodec(scaler, input_type(8, 5), None)
    return RawCodes(codec), codec.codes_from_scaled(scaler.transform(frame))


def test_thresholds_in_the_integer_domain_make_the_forests_choices(month):
    from fraudfpga.sim.engine_forest import raw_forest

    ops = op_stream(*(month[k] for k in ("seconds", "card", "terminal", "cents", "fraud")),
                    DELAY)
    raw = expected_outputs(ops, PARAMS).features
    codes, data_path = _codes(raw)
    assert np.array_equal(codes.all(raw), data_path)  # the data path's codes exactly
    forest = _random_forest(np.random.default_rng(1))
    moved = raw_forest(forest, codes)
    assert np.array_equal(moved.forward(raw), forest.forward(data_path))
    # each moved threshold T: code(T) <= t < code(T + 1), or none / every integer qualifies
    pairs = forest.comparisons()
    feature = np.array([f for f, _ in pairs])
    threshold = np.array([t for _, t in pairs])
    top = codes.largest_at_most(feature, threshold)
    inside = top >= 0
    assert np.all(codes.of(top[inside], feature[inside]) <= threshold[inside])
    above = top < (1 << 32) - 1
    assert np.all(codes.of(top[above] + 1, feature[above]) > threshold[above])
    assert np.all(codes.of(np.zeros((~inside).sum(), np.int64), feature[~inside])
                  > threshold[~inside])


@needs_verilator
def test_the_engine_and_a_forest_give_every_score_bit_exact(month, tmp_path):
    from fraudfpga.sim.engine_forest import raw_forest, write_engine_forest_rtl
    from fraudfpga.sim.forest_rtl import ForestPipeline

    ops = op_stream(*(month[k] for k in ("seconds", "card", "terminal", "cents", "fraud")),
                    DELAY)
    expected = expected_outputs(ops, PARAMS)
    codes, data_path = _codes(expected.features)
    forest = _random_forest(np.random.default_rng(2))
    metadata = build_engine(tmp_path, PARAMS, "verilator", progress=lambda m: None,
                            write=lambda rtl: write_engine_forest_rtl(
                                rtl, PARAMS, raw_forest(forest, codes),
                                ForestPipeline(tree_stages=2, adder_levels=2, fanout_trees=5)),
                            ops=len(ops))
    results = replay(tmp_path, metadata, ops, "verilator", "replay", expected=expected,
                     scores=forest.forward(data_path)[:, 0], progress=lambda m: None)
    assert results["scores_checked"] and results["features_checked"]
    assert results["score_mismatches"] == 0
    assert results["testbench_failures"] == 0 and results["mismatch_count"] == 0
    assert results["latency_cycles"] == [metadata["latency_cycles"]]
    # the AXI4-Stream top: at full rate, then under backpressure and input gaps
    from fraudfpga.sim.engine_sim import replay_axis

    for name, input_pause, ready_pause in (("axis_full", 0.0, 0.0), ("axis_pressure", 0.2, 0.5)):
        axis = replay_axis(tmp_path, metadata, ops, "verilator", name, expected,
                           forest.forward(data_path)[:, 0], input_pause, ready_pause, seed=3,
                           progress=lambda m: None)
        assert axis["testbench_failures"] == 0, axis["mismatches"][:2]
        assert axis["in_order"] and axis["mismatch_count"] == 0 and axis["counters_ok"]
        assert axis["lost"] == axis["duplicated"] == axis["reordered"] == 0
        assert axis["features_checked"]
        if name == "axis_full":
            assert axis["ops_per_cycle"] > 0.99 * len(ops) / (len(ops) + metadata["latency_cycles"] + 3)
