"""The time-ordered split with known-card removal, the scaler, and the metrics."""

import numpy as np
import pandas as pd
import pytest

from fraudfpga.models.loaders import DataError
from fraudfpga.models.metrics import card_precision_at_k, evaluate, threshold_at_fpr
from fraudfpga.models.split import Scaler, book_split, fraction_split


def daily_frame(n_days=30, cards=range(10), frauds=()):
    """One transaction per card per day at noon; `frauds` lists (day, card) pairs."""
    rows = [(day, card) for day in range(n_days) for card in cards]
    frame = pd.DataFrame(rows, columns=["day", "card"])
    frame["datetime"] = pd.Timestamp("2018-07-01 12:00") + pd.to_timedelta(frame["day"], unit="D")
    frame["time"] = frame["day"] * 86400.0
    frame["label"] = [int((d, c) in set(frauds)) for d, c in rows]
    frame["x"] = np.arange(len(frame), dtype=float)
    return frame


def test_book_split_periods_and_known_card_removal():
    # Training days 0..6 (2018-07-01..07), delay 7..13, test 14..20.
    frauds = [(2, 1), (5, 9), (3, 2),   # training frauds: cards 1, 9, 2 are known from the start
              (7, 3),                   # first delay day: known before test day 15 (15 - 8 = 7)
              (12, 4),                  # known before test day 20 (20 - 8 = 12)
              (13, 5),                  # last delay day: never revealed within the test week
              (15, 6), (16, 0)]         # test-period frauds are not revealed in the test week
    frame = daily_frame(frauds=frauds)
    split = book_split(frame, "2018-07-01", train_days=7, delay_days=7, test_days=7, valid_days=2)
    assert sorted(split.train["day"].unique()) == [0, 1, 2, 3, 4]
    assert sorted(split.valid["day"].unique()) == [5, 6]
    assert sorted(split.test["day"].unique()) == list(range(14, 21))
    cards_on = {d: set(split.test.loc[split.test["day"] == d, "card"]) for d in range(14, 21)}
    for cards in cards_on.values():
        assert not cards & {1, 2, 9}
    assert 3 in cards_on[14] and all(3 not in cards_on[d] for d in range(15, 21))
    assert all(4 in cards_on[d] for d in range(14, 20)) and 4 not in cards_on[20]
    assert all(5 in cards_on[d] for d in range(14, 21))
    assert all(6 in cards_on[d] and 0 in cards_on[d] for d in range(14, 21))


def test_book_split_errors_name_the_problem():
    frame = daily_frame(frauds=[(2, 1), (5, 2)])
    with pytest.raises(DataError, match="no transaction in the training period"):
        book_split(frame, "2019-01-01", 7, 7, 7, 2)
    with pytest.raises(DataError, match="valid part holds a single class"):
        book_split(daily_frame(frauds=[(1, 1)]), "2018-07-01", 7, 7, 7, 2)
    with pytest.raises(DataError, match="valid_days"):
        book_split(frame, "2018-07-01", 7, 7, 7, 7)


def test_fraction_split_keeps_time_order():
    frame = daily_frame(frauds=[(d, d % 10) for d in range(0, 30, 2)]).sample(frac=1, random_state=0)
    split = fraction_split(frame, 0.5, 0.2)
    assert split.train["time"].max() <= split.valid["time"].min()
    assert split.valid["time"].max() <= split.test["time"].min()
    assert len(split.train) == 150 and len(split.valid) == 60 and len(split.test) == 90


def test_scaler_uses_training_statistics_only():
    train = pd.DataFrame({"a": [1.0, 3.0] * 500, "b": [5.0, 5.0] * 500})
    scaler = Scaler.fit(train, ["a", "b"])
    test = pd.DataFrame({"a": [101.0], "b": [7.0]})
    # a: mean 2, std 1; b: constant, so its scale is 1 (no division by zero).
    np.testing.assert_allclose(scaler.transform(test), [[99.0, 2.0]])
    assert Scaler.from_dict(scaler.to_dict()).to_dict() == scaler.to_dict()


def test_card_precision_at_k_hand_computed():
    # Day 0: card scores a=0.9 (fraud), b=0.8, c=0.7 (fraud via its 2nd tx), d=0.1 (fraud).
    #   top-2 = a, b -> 1 fraud -> 0.5; a is detected.
    # Day 1: a (0.99, fraud) is dropped as already detected; c=0.6 (fraud), d=0.5, b=0.2.
    #   top-2 = c, d -> c is a fraud, d is not -> 0.5.
    day = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    card = ["a", "b", "c", "c", "d", "a", "c", "d", "b"]
    label = [1, 0, 0, 1, 1, 1, 1, 0, 0]
    score = [0.9, 0.8, 0.7, 0.1, 0.1, 0.99, 0.6, 0.5, 0.2]
    assert card_precision_at_k(np.array(day), np.array(card), np.array(label), np.array(score),
                               k=2) == pytest.approx(0.5)
    # With k=3, day 0: a, b, c -> 2/3 (a and c detected); day 1 leaves d, b -> 0.
    assert card_precision_at_k(np.array(day), np.array(card), np.array(label), np.array(score),
                               k=3) == pytest.approx(1 / 3)


def test_threshold_at_fpr_and_operating_point():
    label = np.array([0] * 100 + [1] * 5)
    score = np.concatenate([np.arange(100) / 100, [0.5, 0.985, 0.99, 0.995, 2.0]])
    threshold = threshold_at_fpr(label, score, 0.02)
    # Two genuine rows (0.98, 0.99) may be above the threshold.
    assert threshold == pytest.approx(0.97)
    result = evaluate(label, score, threshold)
    assert result["confusion_matrix"] == {"tn": 98, "fp": 2, "fn": 1, "tp": 4}
    assert result["false_positive_rate"] == pytest.approx(0.02)
    assert result["precision"] == pytest.approx(4 / 6) and result["recall"] == pytest.approx(0.8)
    assert result["card_precision_at_100"] is None
