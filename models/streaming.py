"""The 15 inputs defined for streaming: what a machine that sees the transactions in time order
(and each fraud label `delay` days after its transaction) computes exactly from bounded state per
card and per terminal. The offline features (`features.py`) slide windows over seconds, which
needs every past transaction; this definition keeps day buckets.

State (the arithmetic an FPGA implements, all integers):
- per card, `CARD_DAYS` = 31 buckets, bucket `day % 31` holding (day tag, count: 8 bits,
  saturating at 255; amount sum in cents: 24 bits, saturating at 2**24 - 1);
- per terminal, `delay + 31` buckets, bucket `day % (delay + 31)` holding (day tag, count: 8
  bits; frauds: 8 bits), the frauds filled by the label-feedback stream;
- a bucket whose tag is not the day asked for reads as empty (buckets are cleared lazily, when a
  new day first writes them). On the chip the tags are one valid bit per bucket and the last day
  the entity was seen (16 bits): 31 x (8 + 24 + 1) + 16 bits = 130 bytes per card, and
  (delay + 31) x (8 + 8 + 1) + 16 bits per terminal (83 bytes for a 7-day delay).

Per transaction on day D (UTC days since 1970) with amount a (cents):
1. the label messages due by day D are applied first: the label of a transaction of day X arrives
   at the start of day X + delay and adds one fraud to its terminal's bucket of day X when the
   transaction was a fraud (a label whose bucket has been reused, or whose terminal has written
   a day `delay + 31` or more days after X, is counted as expired);
2. the card's bucket of day D takes the transaction (count + 1, sum + a), then for n in 1, 7, 30:
   count_n and sum_n over the buckets of days D - n + 1 - extra ... D (today included);
3. the terminal's bucket of day D counts the transaction, and for n in 1, 7, 30: count_n and
   frauds_n over the days D - delay - n + 1 - extra ... D - delay (whose labels have all
   arrived);
4. no division: a mean is sum * RECIPROCAL[c] >> RECIPROCAL_BITS with RECIPROCAL[c] =
   round(2**RECIPROCAL_BITS / c) for c = min(count, COUNT_LIMIT) (a table of 1,024 entries),
   rounded to cents; a risk is frauds * RECIPROCAL[c] >> (RECIPROCAL_BITS - RISK_BITS), a
   fraction with RISK_BITS = 16 fractional bits (0 when the window is empty);
5. weekend: (D + 3) % 7 >= 5 (1970-01-01 was a Thursday); night: second of the day < 7 h.
`extra` (0 or 1) widens every window by one day bucket: with 0, a 7-day window covers between 6
and 7 days of the offline definition's (t - 7 days, t]; with 1, between 7 and 8.

Overflows (a bucket count beyond 255, a sum beyond 24 bits, a window count beyond COUNT_LIMIT)
and expired labels are counted and returned, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from .features import FEATURE_COLUMNS, SECONDS_PER_DAY, WINDOWS_DAYS

CARD_DAYS = 31
COUNT_BITS = 8
SUM_BITS = 24
COUNT_LIMIT = 1023
RECIPROCAL_BITS = 32  # sums up to 2**29 cents: the mean within 0.07 cent before its rounding
RISK_BITS = 16
DAY_BITS = 16  # the last day an entity was seen; with one valid bit per bucket, it stands for
# the software's per-bucket day tags on the chip (a bucket is valid iff written on its own day)
RECIPROCAL = np.concatenate([[0], np.rint(2.0 ** RECIPROCAL_BITS /
                                           np.arange(1, COUNT_LIMIT + 1))]).astype(np.int64)
OVERFLOWS = ("card_count", "card_sum", "terminal_count", "terminal_frauds", "window_count",
             "expired_labels")


@dataclass
class StreamingFeatures:
    values: dict[str, np.ndarray]  # the 15 inputs (float64: counts, euros, risk fractions)
    overflows: dict[str, int]
    state_bytes: dict[str, int]  # per card and per terminal, as packed on the chip


@cache
def _kernels():
    """The definition as numba-compiled functions: one label, one transaction, a whole replay
    (which calls the first two: one implementation for the batch and the per-event engine)."""
    import numba

    count_max, sum_max = (1 << COUNT_BITS) - 1, (1 << SUM_BITS) - 1

    @numba.njit(cache=True)
    def label(term_tag, term_fraud, t, day, overflow):
        """A fraud label of a transaction of `day` at terminal `t`: expired when its bucket has
        been reused or has left the terminal's record (a day `terminal_days` or more later was
        written: on the chip the record then holds no bucket of that day)."""
        slot = day % term_tag.shape[1]
        if term_tag[t, slot] != day or term_tag[t].max() - day >= term_tag.shape[1]:
            overflow[5] += 1
        elif term_fraud[t, slot] == count_max:
            overflow[3] += 1
        else:
            term_fraud[t, slot] += 1

    @numba.njit(cache=True)
    def transaction(card_tag, card_count, card_sum, term_tag, term_count, term_fraud, d, second,
                    c, t, cents, delay, extra, windows, reciprocal, out, overflow):
        """One transaction: the state updated, its 15 inputs (integers) written to `out`."""
        card_days, terminal_days = card_tag.shape[1], term_tag.shape[1]
        slot = d % card_days
        if card_tag[c, slot] != d:
            card_tag[c, slot], card_count[c, slot], card_sum[c, slot] = d, 0, 0
        if card_count[c, slot] == count_max:
            overflow[0] += 1
        else:
            card_count[c, slot] += 1
        if card_sum[c, slot] + cents > sum_max:
            overflow[1] += 1
            card_sum[c, slot] = sum_max
        else:
            card_sum[c, slot] += cents
        tslot = d % terminal_days
        if term_tag[t, tslot] != d:
            term_tag[t, tslot], term_count[t, tslot], term_fraud[t, tslot] = d, 0, 0
        if term_count[t, tslot] == count_max:
            overflow[2] += 1
        else:
            term_count[t, tslot] += 1
        for w in range(windows.size):
            n = windows[w] + extra
            count, total = 0, 0
            for back in range(n):
                s = (d - back) % card_days
                if card_tag[c, s] == d - back:
                    count += card_count[c, s]
                    total += card_sum[c, s]
            if count > COUNT_LIMIT:
                overflow[4] += 1
                count = COUNT_LIMIT
            out[3 + 2 * w] = count
            out[4 + 2 * w] = (total * reciprocal[count] + (1 << (RECIPROCAL_BITS - 1))) \
                >> RECIPROCAL_BITS
            count, frauds = 0, 0
            for back in range(n):
                target = d - delay - back
                s = target % terminal_days
                if term_tag[t, s] == target:
                    count += term_count[t, s]
                    frauds += term_fraud[t, s]
            if count > COUNT_LIMIT:
                overflow[4] += 1
                count = COUNT_LIMIT
            out[9 + 2 * w] = count
            out[10 + 2 * w] = (frauds * reciprocal[count]) >> (RECIPROCAL_BITS - RISK_BITS)
        out[0] = cents
        out[1] = 1 if (d + 3) % 7 >= 5 else 0
        out[2] = 1 if second < 7 * 3600 else 0

    @numba.njit(cache=True)
    def replay(state, day, second, card, terminal, cents, fraud, delay, extra, windows,
               reciprocal, out, overflow):
        """Every transaction in time order, each fraud label `delay` days after its own."""
        card_tag, card_count, card_sum, term_tag, term_count, term_fraud = state
        pending = 0
        for i in range(day.size):
            while pending < i and day[pending] + delay <= day[i]:  # labels due today
                if fraud[pending]:
                    label(term_tag, term_fraud, terminal[pending], day[pending], overflow)
                pending += 1
            transaction(card_tag, card_count, card_sum, term_tag, term_count, term_fraud, day[i],
                        second[i], card[i], terminal[i], cents[i], delay, extra, windows,
                        reciprocal, out[i], overflow)

    return label, transaction, replay


class StreamingEngine:
    """The per-event engine: the state of `n_cards` cards and `n_terminals` terminals, one call
    per transaction (its 15 inputs as integers back) and one per fraud label, on the compiled
    functions of the definition."""

    def __init__(self, n_cards: int, n_terminals: int, delay_days: int, extra: int = 0):
        self.delay, self.extra = int(delay_days), int(extra)
        terminal_days = self.delay + CARD_DAYS
        self.state = (np.full((n_cards, CARD_DAYS), -1, np.int64),
                      np.zeros((n_cards, CARD_DAYS), np.int64),
                      np.zeros((n_cards, CARD_DAYS), np.int64),
                      np.full((n_terminals, terminal_days), -1, np.int64),
                      np.zeros((n_terminals, terminal_days), np.int64),
                      np.zeros((n_terminals, terminal_days), np.int64))
        self.overflow = np.zeros(len(OVERFLOWS), dtype=np.int64)
        self.windows = np.array(WINDOWS_DAYS, dtype=np.int64)
        self.out = np.zeros(len(FEATURE_COLUMNS), dtype=np.int64)
        self._label, self._transaction, self._replay = _kernels()

    def replay(self, seconds, card, terminal, cents, fraud) -> np.ndarray:
        """Many transactions in time order (with their labels after the delay): their inputs."""
        out = np.zeros((len(seconds), len(FEATURE_COLUMNS)), dtype=np.int64)
        self._replay(self.state, seconds // SECONDS_PER_DAY, seconds % SECONDS_PER_DAY, card,
                     terminal, cents, fraud, self.delay, self.extra, self.windows, RECIPROCAL,
                     out, self.overflow)
        return out

    def label(self, terminal: int, day: int) -> None:
        """A fraud label for a transaction of `day` at `terminal` (sent `delay` days later)."""
        self._label(self.state[3], self.state[5], terminal, day, self.overflow)

    def transaction(self, seconds: int, card: int, terminal: int, cents: int) -> np.ndarray:
        """One transaction: its 15 inputs as integers (a view reused by the next call)."""
        self._transaction(*self.state, seconds // SECONDS_PER_DAY, seconds % SECONDS_PER_DAY,
                          card, terminal, cents, self.delay, self.extra, self.windows,
                          RECIPROCAL, self.out, self.overflow)
        return self.out


def to_model_units(codes: np.ndarray) -> np.ndarray:
    """The engine's integers in the units of the offline features (euros, fractions)."""
    divisor = np.ones(len(FEATURE_COLUMNS))
    for w in range(len(WINDOWS_DAYS)):
        divisor[4 + 2 * w] = 100.0  # cents -> euros (the nearest double to the decimal)
        divisor[10 + 2 * w] = 2.0 ** RISK_BITS
    divisor[0] = 100.0
    return codes / divisor


def streaming_features(seconds: np.ndarray, card: np.ndarray, terminal: np.ndarray,
                       amount: np.ndarray, fraud: np.ndarray, delay_days: int,
                       extra: int = 0) -> StreamingFeatures:
    """The 15 inputs of every transaction, computed event by event in time order (ties: the
    original order), returned in the original order."""
    seconds = np.asarray(seconds, dtype=np.int64)
    order = np.lexsort((np.arange(seconds.size), seconds))
    card_ids = np.asarray(card, dtype=np.int64)[order]
    terminal_ids = np.asarray(terminal, dtype=np.int64)[order]
    engine = StreamingEngine(int(card_ids.max()) + 1, int(terminal_ids.max()) + 1, delay_days,
                             extra)
    out = engine.replay(seconds[order], card_ids, terminal_ids,
                        np.rint(np.asarray(amount, dtype=np.float64)[order] * 100).astype(np.int64),
                        np.asarray(fraud)[order].astype(np.int64))
    values = np.empty(out.shape, dtype=np.float64)
    values[order] = to_model_units(out)
    terminal_days = int(delay_days) + CARD_DAYS
    return StreamingFeatures(
        {name: values[:, k] for k, name in enumerate(FEATURE_COLUMNS)},
        dict(zip(OVERFLOWS, (int(v) for v in engine.overflow))),
        {"card": -(-(CARD_DAYS * (COUNT_BITS + SUM_BITS + 1) + DAY_BITS) // 8),
         "terminal": -(-(terminal_days * (2 * COUNT_BITS + 1) + DAY_BITS) // 8)})


ECP5_85F_BLOCK_RAM_BITS = 208 * 18 * 1024  # 208 EBR of 18 kbit (Lattice ECP5 data sheet)


def paper_scale(state_bytes: dict[str, int], cards: int, terminals: int,
                transactions_per_s: float) -> dict:
    """What the definition's state means at a population and a rate, from its own numbers: the
    state in bytes, and the memory traffic if every transaction reads and writes back its card's
    and its terminal's record (a fraud label rewrites one terminal record more: at most as many
    as the transactions, counted in)."""
    per_transaction = 2 * (state_bytes["card"] + state_bytes["terminal"]) \
        + 2 * state_bytes["terminal"]
    total = cards * state_bytes["card"] + terminals * state_bytes["terminal"]
    return {"cards": cards, "terminals": terminals, "transactions_per_s": transactions_per_s,
            "state_bytes": total,
            "state_vs_ecp5_85f_block_ram": total * 8 / ECP5_85F_BLOCK_RAM_BITS,
            "bytes_per_transaction_worst_case": per_transaction,
            "memory_bytes_per_s": per_transaction * transactions_per_s,
            "kind": "computed from the definition's state sizes (not measured)"}


def add_streaming_features(tx: pd.DataFrame, delay_days: int = 7, extra: int = 0,
                           progress=print) -> pd.DataFrame:
    """`tx` with the 15 inputs of the streaming definition (the same column names as the
    offline ones)."""
    tx = tx.copy()
    when = pd.DatetimeIndex(tx["TX_DATETIME"])
    seconds = ((when - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    result = streaming_features(seconds, tx["CUSTOMER_ID"].to_numpy(), tx["TERMINAL_ID"].to_numpy(),
                                tx["TX_AMOUNT"].to_numpy(np.float64), tx["TX_FRAUD"].to_numpy(),
                                delay_days, extra)
    for name, values in result.values.items():
        tx[name] = values
    counted = {k: v for k, v in result.overflows.items() if v}
    progress(f"[data] streaming features (day buckets, {'+1 day' if extra else 'no extra day'}): "
             f"state {result.state_bytes['card']} bytes per card, "
             f"{result.state_bytes['terminal']} per terminal; overflows "
             f"{counted or 'none'}")
    tx.attrs["streaming"] = {"overflows": result.overflows,
                             "state_bytes": result.state_bytes,
                             "extra_day": int(extra), "delay_days": int(delay_days)}
    return tx


def raw_transactions(tx: pd.DataFrame) -> dict[str, np.ndarray]:
    """The engine's inputs of simulated transactions: seconds since 1970, card and terminal ids,
    the amount in cents, the fraud label."""
    seconds = ((pd.DatetimeIndex(tx["TX_DATETIME"]) - pd.Timestamp("1970-01-01"))
               // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    return {"seconds": seconds, "card": tx["CUSTOMER_ID"].to_numpy(np.int64),
            "terminal": tx["TERMINAL_ID"].to_numpy(np.int64),
            "cents": np.rint(tx["TX_AMOUNT"].to_numpy(np.float64) * 100).astype(np.int64),
            "fraud": tx["TX_FRAUD"].to_numpy(np.int64)}


def simulated_history(data_cfg: dict, test_ids: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The whole simulated history in time order (the split keeps only its periods, the windows
    reach further back; the simulator is deterministic in data.seed) as `raw_transactions`, and
    the positions in it of the transactions `test_ids` (TRANSACTION_ID), which must be in time
    order."""
    from .simulator import SimulatorSettings, simulate

    tx = simulate(SimulatorSettings.from_config(data_cfg["simulator"]), data_cfg["seed"],
                  lambda message: None)
    tx = tx.iloc[np.argsort(pd.DatetimeIndex(tx["TX_DATETIME"]).asi8, kind="stable")]
    position = pd.Series(np.arange(len(tx)), index=tx["TRANSACTION_ID"].to_numpy())
    test = position.loc[np.asarray(test_ids)].to_numpy()
    if not np.all(np.diff(test) > 0):
        raise ValueError("the test rows are not in time order in the simulated history")
    return raw_transactions(tx), test
