"""The streaming definition of the 15 inputs: the event-by-event engine against an independent
whole-array computation of the same day-bucket definition, the hazards (a card several times in a
row, a day boundary inside a burst, labels arriving after the delay, saturation), and the
division-free means."""

import numpy as np
import pandas as pd
import pytest
from test_features import frame  # hand-made transactions, as the offline tests write them

from fraudfpga.models.features import FEATURE_COLUMNS, SECONDS_PER_DAY, WINDOWS_DAYS
from fraudfpga.models.simulator import SimulatorSettings, simulate
from fraudfpga.models.streaming import (COUNT_LIMIT, RECIPROCAL, RECIPROCAL_BITS, RISK_BITS,
                                        add_streaming_features, streaming_features)


def whole_array(seconds, card, terminal, cents, fraud, delay, extra):
    """The same definition computed per day with dense (entity, day) tables, no state machine:
    today's bucket up to and including the row (time order, ties by position), earlier days
    complete; terminals read days D - delay - k, whose labels have all arrived."""
    order = np.lexsort((np.arange(seconds.size), seconds))
    day = seconds // SECONDS_PER_DAY
    first = day.min()
    d = day - first
    days = int(d.max()) + 1
    daily_count = np.zeros((card.max() + 1, days), np.int64)
    daily_sum = np.zeros_like(daily_count)
    np.add.at(daily_count, (card, d), 1)
    np.add.at(daily_sum, (card, d), cents)
    t_count = np.zeros((terminal.max() + 1, days), np.int64)
    t_fraud = np.zeros_like(t_count)
    np.add.at(t_count, (terminal, d), 1)
    np.add.at(t_fraud, (terminal, d), fraud)
    frame = pd.DataFrame({"card": card[order], "d": d[order], "cents": cents[order]})
    today_count = np.empty(seconds.size, np.int64)
    today_sum = np.empty(seconds.size, np.int64)
    today_count[order] = frame.groupby(["card", "d"]).cumcount().to_numpy() + 1
    today_sum[order] = frame.groupby(["card", "d"])["cents"].cumsum().to_numpy()

    def back(table, rows, offset):
        index = d - offset
        ok = index >= 0
        return np.where(ok, table[rows, np.clip(index, 0, None)], 0)

    out = {}
    for n in WINDOWS_DAYS:
        count, total = today_count.copy(), today_sum.copy()
        for k in range(1, n + extra):
            count += back(daily_count, card, k)
            total += back(daily_sum, card, k)
        count = np.minimum(count, COUNT_LIMIT)
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (
            (total * RECIPROCAL[count] + (1 << (RECIPROCAL_BITS - 1))) >> RECIPROCAL_BITS) / 100
        count = sum(back(t_count, terminal, delay + k) for k in range(n + extra))
        frauds = sum(back(t_fraud, terminal, delay + k) for k in range(n + extra))
        count = np.minimum(count, COUNT_LIMIT)
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (
            (frauds * RECIPROCAL[count]) >> (RECIPROCAL_BITS - RISK_BITS)) / 2.0 ** RISK_BITS
    return out


@pytest.fixture(scope="module")
def transactions():
    return simulate(SimulatorSettings(n_customers=300, n_terminals=600, n_days=70), 1,
                    lambda message: None)


@pytest.mark.parametrize("extra", [0, 1])
def test_the_event_engine_equals_the_whole_array_definition(transactions, extra):
    tx = transactions
    seconds = ((pd.DatetimeIndex(tx["TX_DATETIME"]) - pd.Timestamp("1970-01-01"))
               // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    cents = np.rint(tx["TX_AMOUNT"].to_numpy() * 100).astype(np.int64)
    fraud = tx["TX_FRAUD"].to_numpy().astype(np.int64)
    result = streaming_features(seconds, tx["CUSTOMER_ID"].to_numpy(), tx["TERMINAL_ID"].to_numpy(),
                                tx["TX_AMOUNT"].to_numpy(), fraud, 7, extra)
    assert set(result.values) == set(FEATURE_COLUMNS)
    assert result.overflows == dict.fromkeys(result.overflows, 0)
    expected = whole_array(seconds, tx["CUSTOMER_ID"].to_numpy(), tx["TERMINAL_ID"].to_numpy(),
                           cents, fraud, 7, extra)
    assert fraud.sum() > 20 and expected["TERMINAL_ID_RISK_30DAY_WINDOW"].max() > 0
    for name, values in expected.items():
        assert np.array_equal(result.values[name], values), name
    weekend = (pd.DatetimeIndex(tx["TX_DATETIME"]).day_of_week >= 5).astype(float)
    assert np.array_equal(result.values["TX_DURING_WEEKEND"], weekend)


def test_bursts_day_boundaries_and_label_delay():
    tx = frame([
        ("2018-04-02 23:59:58", 1, 5, 10.00, 1),  # a fraud at terminal 5
        ("2018-04-02 23:59:59", 1, 5, 20.00, 0),  # the same card back to back
        ("2018-04-03 00:00:00", 1, 5, 30.00, 0),  # a day boundary inside the burst
        ("2018-04-03 00:00:00", 1, 6, 40.00, 0),  # the same second
        ("2018-04-08 12:00:00", 2, 5, 50.00, 0),  # 6 days later: the fraud's label not yet known
        ("2018-04-09 00:00:00", 2, 5, 60.00, 0),  # day 04-09 = 04-02 + 7: its label has arrived
    ])
    f = add_streaming_features(tx, delay_days=7, progress=lambda m: None)
    assert f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 1, 2, 1, 1]
    assert f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10, 15, 30, 35, 50, 60]
    assert f["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3, 4, 1, 2]
    # terminal 5 on 04-09 reads day 04-02 (delay 7, a 1-day window): two transactions, one fraud
    assert f["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 0, 0, 0, 0, 2]
    assert f["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0, 0, 0, 0, 0, 0.5]
    # its 7-day window is days 03-27 ... 04-02: 04-03 (day D - 6) has labels still unknown
    assert f["TERMINAL_ID_RISK_7DAY_WINDOW"].tolist()[-1] == 0.5
    wide = add_streaming_features(tx, delay_days=7, extra=1, progress=lambda m: None)
    assert wide["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 3, 4, 1, 2]


def test_saturation_is_counted_never_silent():
    seconds = 17_600 * SECONDS_PER_DAY + np.arange(300)  # 300 transactions of one card in a day
    result = streaming_features(seconds, np.zeros(300, int), np.arange(300) % 2,
                                np.full(300, 90_000.0), np.zeros(300, int), 7)
    assert result.overflows["card_count"] == 300 - 255
    assert result.overflows["card_sum"] > 0
    assert result.values["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].max() == 255
    assert result.overflows["terminal_count"] == 0


def test_division_free_means_round_to_the_nearest_cent_or_next():
    count = np.arange(1, COUNT_LIMIT + 1)
    rng = np.random.default_rng(0)
    for total in (rng.integers(0, 2 ** 24 * 31, COUNT_LIMIT), count * 12_345):
        mean = (total * RECIPROCAL[count] + (1 << (RECIPROCAL_BITS - 1))) >> RECIPROCAL_BITS
        assert np.abs(mean - total / count).max() <= 1.0
    assert (count * 12_345 * RECIPROCAL[count] + (1 << 31) >> 32 == 12_345).all()


def test_the_per_event_engine_gives_the_replay_s_inputs(transactions):
    from fraudfpga.models.streaming import StreamingEngine

    tx = transactions.sort_values("TX_DATETIME", kind="stable").head(6000)
    seconds = ((pd.DatetimeIndex(tx["TX_DATETIME"]) - pd.Timestamp("1970-01-01"))
               // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    card, terminal = tx["CUSTOMER_ID"].to_numpy(np.int64), tx["TERMINAL_ID"].to_numpy(np.int64)
    cents = np.rint(tx["TX_AMOUNT"].to_numpy() * 100).astype(np.int64)
    fraud = tx["TX_FRAUD"].to_numpy(np.int64)
    whole = StreamingEngine(300, 600, 7).replay(seconds, card, terminal, cents, fraud)
    engine, pending, day = StreamingEngine(300, 600, 7), 0, seconds // SECONDS_PER_DAY
    for i in range(len(seconds)):
        while pending < i and day[pending] + 7 <= day[i]:
            if fraud[pending]:
                engine.label(int(terminal[pending]), int(day[pending]))
            pending += 1
        assert np.array_equal(engine.transaction(int(seconds[i]), int(card[i]), int(terminal[i]),
                                                 int(cents[i])), whole[i]), i
    assert fraud[:pending].sum() > 0 and whole[:, 14].max() > 0


def test_transaction_to_decision_replays_the_data_steps_inputs_and_decisions(tmp_path, capsys):
    import json

    from conftest import TINY, cli

    settings = [*TINY, "data.features=streaming"]
    for command in ("data", "forest", "decision"):
        assert cli(command, "--run", "stream", "--projects-dir", str(tmp_path),
                   settings=settings) == 0, command
    summary = json.loads((tmp_path / "stream/data/summary.json").read_text())["streaming"]
    assert summary["state_bytes"] == {"card": 130, "terminal": 83}
    assert summary["overflows"] == dict.fromkeys(summary["overflows"], 0)
    bank = summary["scale"]["a_bank"]
    assert bank["state_bytes"] == 100_000_000 * 130 + 1_000_000 * 83
    assert bank["memory_bytes_per_s"] == 50_000 * (2 * (130 + 83) + 2 * 83)
    result = json.loads((tmp_path / "stream/baseline/transaction_decision.json").read_text())
    assert result["checks"]["inputs_equal_data_step"]
    assert result["checks"]["decisions_differing_from_scikit_learn_batch"] == 0
    assert result["warm_up"]["transactions"] > 0 and result["transactions"] > 100
    total = result["transaction_to_decision"]
    assert 0 < total["p50_us"] <= total["p99_us"]
    assert "inputs equal the data step's" in capsys.readouterr().out
    from types import SimpleNamespace

    from fraudfpga.gpu_baseline.artifacts import TRANSACTION_DECISION
    from fraudfpga.report import transaction

    run = SimpleNamespace(optional_inputs={TRANSACTION_DECISION}, stale_inputs={},
                          path=lambda name: tmp_path / "stream" / name)
    (title, text, header, rows), = transaction.section(run, {"latency_ns": 72.0})
    table = {row[0].split(":")[0]: row for row in rows}
    assert f"p50 {total['p50_us']:.1f} us" in rows[0][1] and "measured" in rows[0][2]
    assert "not in this run (`make engine`" in table["FPGA"][1] and "72 ns" in table["FPGA"][1]
    assert sum("cited, not measured here" in row[2] for row in rows) == 2
    line = transaction.verdict_line(run)  # the answer's line: the CPU's figure, the anchor
    assert f"p50 {total['p50_us']:.1f} us, p99 {total['p99_us']:.1f} us" in line
    assert "FPGA" not in line and "cited, not measured here" in line
    # a run on the offline features is refused with the setting to change
    assert cli("data", "--run", "offline", "--projects-dir", str(tmp_path), settings=TINY) == 0
    assert cli("forest", "--run", "offline", "--projects-dir", str(tmp_path), settings=TINY) == 0
    assert cli("decision", "--run", "offline", "--projects-dir", str(tmp_path), settings=TINY) == 2
    assert "set data.features=streaming" in capsys.readouterr().err
