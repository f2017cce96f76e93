"""The simulator's rules, checked on the default (handbook-size) stream."""

import numpy as np
import pytest

from fraudfpga.models.simulator import (SimulatorSettings, add_frauds, available_terminals,
                                        customer_profiles, generate_transactions, simulate,
                                        terminal_profiles)


@pytest.fixture(scope="module")
def stream():
    return simulate(SimulatorSettings(), seed=0, progress=lambda _: None)


def test_size_and_fraud_rate_match_the_handbook(stream):
    # The handbook reports 1,754,155 transactions and a 0.84 % fraud rate at these settings.
    assert 1_650_000 < len(stream) < 1_850_000
    assert 0.006 < stream.TX_FRAUD.mean() < 0.011
    assert stream.TX_DATETIME.is_monotonic_increasing
    assert stream.TX_DATETIME.min() >= np.datetime64("2018-04-01")
    assert stream.TX_TIME_DAYS.max() == 182
    per_day = stream.groupby("TX_TIME_DAYS").size()
    assert 9_000 < per_day.mean() < 10_500


def test_every_amount_above_220_is_fraud(stream):
    assert stream.loc[stream.TX_AMOUNT > 220, "TX_FRAUD"].eq(1).all()
    assert (stream.loc[stream.TX_FRAUD_SCENARIO == 1, "TX_AMOUNT"] > 220).all()
    assert ((stream.TX_FRAUD == 1) == (stream.TX_FRAUD_SCENARIO > 0)).all()


def test_compromised_terminal_windows(stream):
    records = stream.attrs["compromised_terminals"]
    assert len(records) == 2 * 183
    covered = np.zeros(len(stream), dtype=bool)
    terminal, day = stream.TERMINAL_ID.to_numpy(), stream.TX_TIME_DAYS.to_numpy()
    for first_day, t in records:
        window = (terminal == t) & (day >= first_day) & (day < first_day + 28)
        assert stream.TX_FRAUD.to_numpy()[window].all()
        covered |= window
    # Scenario 2 marks exactly the windows (scenario 3 may overwrite some of them).
    scenario = stream.TX_FRAUD_SCENARIO.to_numpy()
    assert not (scenario[~covered] == 2).any()
    assert (scenario[covered] >= 2).all()


def test_compromised_card_windows_multiply_a_third_of_the_amounts():
    settings = SimulatorSettings(n_customers=300, n_terminals=600, n_days=40)
    rng = np.random.default_rng(3)
    customers, terminals = customer_profiles(300, rng), terminal_profiles(600, rng)
    offsets, ids = available_terminals(customers, terminals, settings.radius)
    clean = generate_transactions(customers, offsets, ids, settings, rng)
    fraud = add_frauds(clean, 300, 600, settings, rng)
    records = fraud.attrs["compromised_cards"]
    assert len(records) == 3 * 40
    customer, day = fraud.CUSTOMER_ID.to_numpy(), fraud.TX_TIME_DAYS.to_numpy()
    scenario = fraud.TX_FRAUD_SCENARIO.to_numpy()
    ratio = fraud.TX_AMOUNT.to_numpy() / np.where(clean.TX_AMOUNT > 0, clean.TX_AMOUNT, 1)
    covered = np.zeros(len(fraud), dtype=bool)
    drawn_count = {}
    for _, c in records:
        drawn_count[c] = drawn_count.get(c, 0) + 1
    checked = 0
    for first_day in range(40):
        cards = [c for d, c in records if d == first_day]
        window = np.isin(customer, cards) & (day >= first_day) & (day < first_day + 14)
        covered |= window
        if all(drawn_count[c] == 1 for c in cards):
            # One third (floor) of the day's pooled transactions of its 3 cards.
            marked = window & (scenario == 3)
            assert marked.sum() == window.sum() // 3
            assert np.allclose(ratio[marked & (clean.TX_AMOUNT.to_numpy() > 0)], 5)
            assert np.allclose(ratio[window & ~marked], 1)
            checked += 1
    assert checked > 5
    assert not (scenario[~covered] == 3).any()


def test_customers_only_use_terminals_within_the_radius():
    rng = np.random.default_rng(1)
    customers, terminals = customer_profiles(50, rng), terminal_profiles(400, rng)
    offsets, ids = available_terminals(customers, terminals, 5.0)
    for c in range(50):
        mine = ids[offsets[c]:offsets[c + 1]]
        dx = terminals.x_terminal_id.to_numpy() - customers.x_customer_id[c]
        dy = terminals.y_terminal_id.to_numpy() - customers.y_customer_id[c]
        assert set(mine) == set(np.flatnonzero(np.hypot(dx, dy) < 5.0))


def test_same_seed_same_stream_other_seed_other_stream():
    settings = SimulatorSettings(n_customers=100, n_terminals=200, n_days=10)
    quiet = lambda _: None  # noqa: E731
    a, b = simulate(settings, 7, quiet), simulate(settings, 7, quiet)
    c = simulate(settings, 8, quiet)
    assert a.equals(b)
    assert not a.equals(c)
