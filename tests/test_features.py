"""Feature windows and the label delay, on hand-made frames with known answers."""

import numpy as np
import pandas as pd
import pytest

from fraudfpga.models.features import FEATURE_COLUMNS, add_features


def frame(rows):
    tx = pd.DataFrame(rows, columns=["TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT",
                                     "TX_FRAUD"])
    tx["TX_DATETIME"] = pd.to_datetime(tx["TX_DATETIME"])
    return tx


def test_customer_windows_include_the_current_transaction_and_exclude_t_minus_n():
    tx = frame([
        ("2018-04-02 10:00:00", 1, 0, 10.0, 0),   # Monday
        ("2018-04-02 12:00:00", 1, 0, 20.0, 0),
        ("2018-04-03 10:00:00", 1, 0, 30.0, 0),   # exactly 1 day after the first: excluded
        ("2018-04-03 10:00:00", 2, 0, 99.0, 0),   # another customer
        ("2018-04-09 11:00:00", 1, 0, 40.0, 0),   # 7 days + 1 h after the first
    ])
    f = add_features(tx)
    assert f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 2, 1, 1]
    assert f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10, 15, 25, 99, 40]
    # (04-02 11:00, 04-09 11:00] holds 04-02 12:00, 04-03 10:00 and the current one.
    assert f["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3, 1, 3]
    assert f["CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"].tolist() == [10, 15, 20, 99, 30]
    assert f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].tolist() == [1, 2, 3, 1, 4]


def test_weekend_and_night_flags():
    tx = frame([
        ("2018-04-07 06:59:59", 1, 0, 1.0, 0),   # Saturday, night
        ("2018-04-08 07:00:00", 1, 0, 1.0, 0),   # Sunday, day
        ("2018-04-09 00:00:01", 1, 0, 1.0, 0),   # Monday, night
    ])
    f = add_features(tx)
    assert f["TX_DURING_WEEKEND"].tolist() == [1, 1, 0]
    assert f["TX_DURING_NIGHT"].tolist() == [1, 0, 1]


def test_terminal_risk_only_sees_labels_older_than_the_delay():
    tx = frame([
        ("2018-04-01 12:00:00", 5, 7, 10.0, 1),   # fraud at terminal 7
        ("2018-04-01 13:00:00", 6, 7, 10.0, 0),
        ("2018-04-08 11:00:00", 5, 7, 10.0, 0),   # 7 d - 1 h later: both still inside the delay
        ("2018-04-08 12:30:00", 5, 7, 10.0, 0),   # 7 d + 30 min: the fraud is visible
        ("2018-04-08 13:30:00", 5, 7, 10.0, 0),   # both visible: risk 1/2
        ("2018-04-09 12:30:00", 5, 7, 10.0, 0),   # 8 d + 30 min: 1-day window holds the 13:00 one
        ("2018-04-08 13:30:00", 5, 8, 10.0, 0),   # other terminal: nothing
    ])
    f = add_features(tx, delay_days=7)
    assert f["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 0, 0, 1, 2, 1, 0]
    assert f["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0, 0, 0, 1.0, 0.5, 0, 0]
    assert f["TERMINAL_ID_NB_TX_7DAY_WINDOW"].tolist() == [0, 0, 0, 1, 2, 2, 0]
    assert f["TERMINAL_ID_RISK_7DAY_WINDOW"].tolist() == [0, 0, 0, 1.0, 0.5, 0.5, 0]


def brute_force(tx, delay_days):
    seconds = (tx.TX_DATETIME - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    out = {}
    for n in (1, 7, 30):
        counts, means, tcounts, risks = [], [], [], []
        for i in range(len(tx)):
            same_customer = tx.CUSTOMER_ID.to_numpy() == tx.CUSTOMER_ID.iloc[i]
            # (t - n, t], rows up to and including the current one.
            window = same_customer & (seconds > seconds[i] - n * 86400) & (seconds <= seconds[i])
            window &= (seconds < seconds[i]) | (np.arange(len(tx)) <= i)
            counts.append(window.sum())
            means.append(tx.TX_AMOUNT.to_numpy()[window].mean())
            same_terminal = tx.TERMINAL_ID.to_numpy() == tx.TERMINAL_ID.iloc[i]
            d = delay_days * 86400
            twin = same_terminal & (seconds > seconds[i] - d - n * 86400) & (seconds <= seconds[i] - d)
            tcounts.append(twin.sum())
            risks.append(tx.TX_FRAUD.to_numpy()[twin].mean() if twin.any() else 0.0)
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = counts
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = means
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = tcounts
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = risks
    return out


def test_windows_equal_a_brute_force_count_on_random_transactions():
    rng = np.random.default_rng(0)
    n = 300
    tx = frame({
        "TX_DATETIME": pd.Timestamp("2018-04-01") + pd.to_timedelta(
            np.sort(rng.integers(0, 60 * 86400, n)), unit="s"),
        "CUSTOMER_ID": rng.integers(0, 6, n),
        "TERMINAL_ID": rng.integers(0, 4, n),
        "TX_AMOUNT": rng.uniform(1, 100, n).round(2),
        "TX_FRAUD": (rng.random(n) < 0.2).astype(int),
    })
    f = add_features(tx, delay_days=7)
    for name, expected in brute_force(tx, 7).items():
        np.testing.assert_allclose(f[name].to_numpy(), expected, err_msg=name)
    assert set(FEATURE_COLUMNS) <= set(f.columns) and len(FEATURE_COLUMNS) == 15


@pytest.mark.parametrize("delay", [0, 3])
def test_delay_is_a_parameter(delay):
    tx = frame([("2018-04-01 12:00:00", 1, 1, 5.0, 1), ("2018-04-04 13:00:00", 1, 1, 5.0, 0)])
    f = add_features(tx, delay_days=delay)
    # With no delay the window (t - 30 d, t] holds the current transaction itself.
    expected = [1, 2] if delay == 0 else [0, 1]
    assert f["TERMINAL_ID_NB_TX_30DAY_WINDOW"].tolist() == expected
