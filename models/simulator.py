"""Built-in transaction simulator (shared spec `transaction-simulator.md`).

It follows the design of chapter 3 of the ULB *Reproducible Machine Learning for Credit Card
Fraud Detection* handbook, vectorised with numpy: customers and terminals on a 100 x 100
square, daily Poisson transaction counts, three fraud scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class SimulatorSettings:
    n_customers: int = 5000
    n_terminals: int = 10000
    n_days: int = 183
    start_date: str = "2018-04-01"
    radius: float = 5.0
    compromised_terminals_per_day: int = 2
    terminal_compromise_days: int = 28
    compromised_cards_per_day: int = 3
    card_compromise_days: int = 14

    @classmethod
    def from_config(cls, section: dict) -> "SimulatorSettings":
        return cls(**section)


def customer_profiles(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    mean_amount = rng.uniform(5, 100, n_customers)
    return pd.DataFrame({
        "CUSTOMER_ID": np.arange(n_customers),
        "x_customer_id": rng.uniform(0, 100, n_customers),
        "y_customer_id": rng.uniform(0, 100, n_customers),
        "mean_amount": mean_amount,
        "std_amount": mean_amount / 2,
        "mean_nb_tx_per_day": rng.uniform(0, 4, n_customers),
    })


def terminal_profiles(n_terminals: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "TERMINAL_ID": np.arange(n_terminals),
        "x_terminal_id": rng.uniform(0, 100, n_terminals),
        "y_terminal_id": rng.uniform(0, 100, n_terminals),
    })


def available_terminals(customers: pd.DataFrame, terminals: pd.DataFrame,
                        radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Terminals strictly closer than `radius` to each customer, as CSR (offsets, ids)."""
    coords = terminals[["x_terminal_id", "y_terminal_id"]].to_numpy()
    tree = cKDTree(coords)
    points = customers[["x_customer_id", "y_customer_id"]].to_numpy()
    # query_ball_point includes the boundary (<= r); the spec asks for < r.
    neighbours = tree.query_ball_point(points, r=radius, return_sorted=True)
    ids, counts = [], np.zeros(len(points), dtype=np.int64)
    for i, found in enumerate(neighbours):
        found = np.asarray(found, dtype=np.int64)
        if found.size:
            distance = np.hypot(*(coords[found] - points[i]).T)
            found = found[distance < radius]
        ids.append(found)
        counts[i] = found.size
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return offsets, (np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64))


def generate_transactions(customers: pd.DataFrame, offsets: np.ndarray, terminal_ids: np.ndarray,
                          settings: SimulatorSettings, rng: np.random.Generator) -> pd.DataFrame:
    n_customers = len(customers)
    n_available = np.diff(offsets)
    daily = rng.poisson(customers["mean_nb_tx_per_day"].to_numpy()[:, None],
                        size=(n_customers, settings.n_days))
    daily[n_available == 0] = 0  # a customer with no terminal in reach makes no transaction
    customer = np.repeat(np.repeat(np.arange(n_customers), settings.n_days), daily.ravel())
    day = np.repeat(np.tile(np.arange(settings.n_days), n_customers), daily.ravel())

    seconds = np.rint(rng.normal(SECONDS_PER_DAY / 2, 20000, customer.size))
    keep = (seconds > 0) & (seconds < SECONDS_PER_DAY)  # no redraw, as in the handbook
    customer, day, seconds = customer[keep], day[keep], seconds[keep].astype(np.int64)

    mean = customers["mean_amount"].to_numpy()[customer]
    std = customers["std_amount"].to_numpy()[customer]
    amount = rng.normal(mean, std)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    amount = np.round(amount, 2)

    pick = np.floor(rng.random(customer.size) * n_available[customer]).astype(np.int64)
    terminal = terminal_ids[offsets[customer] + pick]

    time_seconds = day * SECONDS_PER_DAY + seconds
    order = np.lexsort((customer, time_seconds))
    start = pd.Timestamp(settings.start_date)
    frame = pd.DataFrame({
        "TX_DATETIME": start + pd.to_timedelta(time_seconds[order], unit="s"),
        "CUSTOMER_ID": customer[order],
        "TERMINAL_ID": terminal[order],
        "TX_AMOUNT": amount[order],
        "TX_TIME_SECONDS": time_seconds[order],
        "TX_TIME_DAYS": day[order],
    })
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame)))
    return frame


def add_frauds(transactions: pd.DataFrame, n_customers: int, n_terminals: int,
               settings: SimulatorSettings, rng: np.random.Generator) -> pd.DataFrame:
    """Apply the three fraud scenarios in order; a later scenario overwrites the number.

    The (first day, id) of each compromise are kept in `attrs` so the windows can be checked.
    """
    tx = transactions
    amount = tx["TX_AMOUNT"].to_numpy().copy()
    days = tx["TX_TIME_DAYS"].to_numpy()
    scenario = np.zeros(len(tx), dtype=np.int8)

    # 1. Large amounts.
    scenario[amount > 220] = 1

    # 2. Compromised terminals: every transaction for the next 28 days, that day included.
    terminal_records: list[tuple[int, int]] = []
    compromised = np.zeros((n_terminals, settings.n_days + settings.terminal_compromise_days),
                           dtype=bool)
    for day in range(settings.n_days):
        drawn = rng.choice(n_terminals, settings.compromised_terminals_per_day, replace=False)
        compromised[drawn, day:day + settings.terminal_compromise_days] = True
        terminal_records.extend((day, int(t)) for t in drawn)
    scenario[compromised[tx["TERMINAL_ID"].to_numpy(), days]] = 2

    # 3. Compromised cards: a third of the transactions of the next 14 days, amount x 5.
    card_records: list[tuple[int, int]] = []
    by_customer = np.argsort(tx["CUSTOMER_ID"].to_numpy(), kind="stable")
    bounds = np.searchsorted(tx["CUSTOMER_ID"].to_numpy()[by_customer], np.arange(n_customers + 1))
    for day in range(settings.n_days):
        drawn = rng.choice(n_customers, settings.compromised_cards_per_day, replace=False)
        card_records.extend((day, int(c)) for c in drawn)
        rows = np.concatenate([by_customer[bounds[c]:bounds[c + 1]] for c in drawn])
        rows = rows[(days[rows] >= day) & (days[rows] < day + settings.card_compromise_days)]
        chosen = rng.choice(rows, rows.size // 3, replace=False)
        amount[chosen] = amount[chosen] * 5
        scenario[chosen] = 3

    tx = tx.copy()
    tx["TX_AMOUNT"] = amount
    tx["TX_FRAUD"] = (scenario > 0).astype(np.int8)
    tx["TX_FRAUD_SCENARIO"] = scenario
    tx.attrs["compromised_terminals"] = terminal_records
    tx.attrs["compromised_cards"] = card_records
    return tx


def simulate(settings: SimulatorSettings, seed: int, progress=print) -> pd.DataFrame:
    """Simulate the whole transaction stream, frauds included, sorted by time."""
    rng = np.random.default_rng(seed)
    customers = customer_profiles(settings.n_customers, rng)
    terminals = terminal_profiles(settings.n_terminals, rng)
    progress(f"[data] {settings.n_customers} customers, {settings.n_terminals} terminals, "
             f"{settings.n_days} days")
    offsets, terminal_ids = available_terminals(customers, terminals, settings.radius)
    progress(f"[data] {np.diff(offsets).mean():.1f} terminals in reach per customer")
    tx = generate_transactions(customers, offsets, terminal_ids, settings, rng)
    progress(f"[data] {len(tx):,} transactions generated")
    tx = add_frauds(tx, settings.n_customers, settings.n_terminals, settings, rng)
    progress(f"[data] {int(tx.TX_FRAUD.sum()):,} frauds ({tx.TX_FRAUD.mean():.2%})")
    return tx
