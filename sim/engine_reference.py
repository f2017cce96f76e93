"""What the feature engine's RTL must produce, op by op: the op stream a host sends (each
transaction, and each fraud label `delay` days after its transaction, before the first
transaction of that day), and the streaming definition's kernels (`models/streaming.py`) run
over it with the engine's capacity and ordering policy:

- a card id at or beyond the engine's card capacity, or a transaction older than its card's last
  day, is computed as if the card were new (its features from an empty record) and changes no
  state; the same for terminals; a label for a terminal beyond the capacity changes nothing;
- each case is counted (`card_capacity`, `terminal_capacity`, `late`) and flagged on the
  transaction's output.
With the capacity at least the population and ops in time order, the features are the software
engine's (`streaming_features`) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from fraudfpga.models.features import FEATURE_COLUMNS, SECONDS_PER_DAY, WINDOWS_DAYS
from fraudfpga.models.streaming import CARD_DAYS, RECIPROCAL, _kernels

from .engine_rtl import COUNTERS, FLAGS, EngineParameters


@dataclass
class Ops:
    """The op stream, in the order the engine takes it."""
    label: np.ndarray  # 1: a fraud label for the transaction at (time, terminal)
    time: np.ndarray  # seconds since 1970-01-01 UTC
    card: np.ndarray
    terminal: np.ndarray
    cents: np.ndarray
    transaction: np.ndarray  # the transaction's index in the input (labels: the labelled one's)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def transactions(self) -> int:
        return int((self.label == 0).sum())

    def head(self, count: int) -> "Ops":
        """The first `count` ops."""
        return Ops(*(getattr(self, k)[:count] for k in (
            "label", "time", "card", "terminal", "cents", "transaction")))


def op_stream(seconds, card, terminal, cents, fraud, delay_days: int) -> Ops:
    """Transactions in time order with each fraud's label inserted before the first transaction
    on or after its day + `delay_days` (labels not due by the last transaction are not sent)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if np.any(np.diff(seconds) < 0):
        raise ValueError("the transactions are not in time order")
    n = seconds.size
    day = seconds // SECONDS_PER_DAY
    frauds = np.flatnonzero(np.asarray(fraud) != 0)
    due = np.maximum(np.searchsorted(day, day[frauds] + delay_days, side="left"), frauds + 1)
    frauds, due = frauds[due < n], due[due < n]
    # positions: transaction i goes after every label due before it
    tx_position = np.arange(n) + np.searchsorted(due, np.arange(n), side="right")
    label_position = due + np.arange(due.size)
    total = n + due.size
    label = np.zeros(total, dtype=np.int64)
    index = np.empty(total, dtype=np.int64)
    label[label_position] = 1
    index[tx_position] = np.arange(n)
    index[label_position] = frauds
    cents = np.asarray(cents, dtype=np.int64)
    return Ops(label, seconds[index], np.asarray(card, np.int64)[index],
               np.asarray(terminal, np.int64)[index], np.where(label == 1, 0, cents[index]),
               index)


@cache
def _run_kernel():
    import numba

    label_kernel, transaction_kernel, _ = _kernels()

    @numba.njit(cache=True)
    def run(label, time, card, terminal, cents, cards, terminals, state, delay, extra, windows,
            reciprocal, out, flags, counters):
        card_tag, card_count, card_sum, term_tag, term_count, term_fraud = state
        tx = 0
        for i in range(label.size):
            d = time[i] // 86400
            second = time[i] % 86400
            t = terminal[i]
            if label[i]:
                if t >= terminals:
                    counters[7] += 1
                else:
                    label_kernel(term_tag, term_fraud, t, d, counters)
                continue
            c = card[i]
            card_late = c < cards and card_tag[c].max() > d
            term_late = t < terminals and term_tag[t].max() > d
            card_new = c >= cards or card_late
            term_new = t >= terminals or term_late
            if card_new:  # the scratch record: empty, and never kept
                c = cards
                card_tag[c, :] = -1
                card_count[c, :] = 0
                card_sum[c, :] = 0
            if term_new:
                t = terminals
                term_tag[t, :] = -1
                term_count[t, :] = 0
                term_fraud[t, :] = 0
            transaction_kernel(card_tag, card_count, card_sum, term_tag, term_count, term_fraud,
                               d, second, c, t, cents[i], delay, extra, windows, reciprocal,
                               out[tx], counters)
            flags[tx, 0] = card_new
            flags[tx, 1] = term_new
            flags[tx, 2] = card_late or term_late
            counters[6] += card[i] >= cards
            counters[7] += terminal[i] >= terminals
            counters[8] += card_late or term_late
            tx += 1

    return run


@dataclass
class Expected:
    features: np.ndarray  # (transactions, 15) integers, the engine's output codes
    flags: np.ndarray  # (transactions, 3): FLAGS
    counters: dict[str, int]


def expected_outputs(ops: Ops, params: EngineParameters) -> Expected:
    """The engine's outputs for `ops` from the software kernels."""
    n_tx = ops.transactions
    td = params.terminal_days
    state = (np.full((params.cards + 1, CARD_DAYS), -1, np.int64),
             np.zeros((params.cards + 1, CARD_DAYS), np.int64),
             np.zeros((params.cards + 1, CARD_DAYS), np.int64),
             np.full((params.terminals + 1, td), -1, np.int64),
             np.zeros((params.terminals + 1, td), np.int64),
             np.zeros((params.terminals + 1, td), np.int64))
    out = np.zeros((n_tx, len(FEATURE_COLUMNS)), dtype=np.int64)
    flags = np.zeros((n_tx, len(FLAGS)), dtype=np.int64)
    counters = np.zeros(len(COUNTERS), dtype=np.int64)
    _run_kernel()(ops.label, ops.time, ops.card, ops.terminal, ops.cents, params.cards,
                  params.terminals, state, params.delay_days, params.extra_day,
                  np.array(WINDOWS_DAYS, dtype=np.int64), RECIPROCAL, out, flags, counters)
    return Expected(out, flags, dict(zip(COUNTERS, (int(v) for v in counters))))
