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
   transaction was a fraud (a label whose bucket has been reused is counted as expired);
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


def _compiled():
    import numba

    @numba.njit(cache=True)
    def engine(day, second, card, terminal, cents, fraud, delay, extra, n_cards, n_terminals,
               windows, reciprocal, out, overflow):
        terminal_days = delay + CARD_DAYS
        card_tag = np.full((n_cards, CARD_DAYS), -1, np.int64)
        card_count = np.zeros((n_cards, CARD_DAYS), np.int64)
        card_sum = np.zeros((n_cards, CARD_DAYS), np.int64)
        term_tag = np.full((n_terminals, terminal_days), -1, np.int64)
        term_count = np.zeros((n_terminals, terminal_days), np.int64)
        term_fraud = np.zeros((n_terminals, terminal_days), np.int64)
        count_max, sum_max = (1 << COUNT_BITS) - 1, (1 << SUM_BITS) - 1
        label = 0
        for i in range(day.size):
            d = day[i]
            while label < i and day[label] + delay <= d:  # label messages due today
                if fraud[label]:
                    t, slot = terminal[label], day[label] % terminal_days
                    if term_tag[t, slot] == day[label]:
                        if term_fraud[t, slot] == count_max:
                            overflow[3] += 1
                        else:
                            term_fraud[t, slot] += 1
                    else:
                        overflow[5] += 1
                label += 1
            c, slot = card[i], d % CARD_DAYS
            if card_tag[c, slot] != d:
                card_tag[c, slot], card_count[c, slot], card_sum[c, slot] = d, 0, 0
            if card_count[c, slot] == count_max:
                overflow[0] += 1
            else:
                card_count[c, slot] += 1
            if card_sum[c, slot] + cents[i] > sum_max:
                overflow[1] += 1
                card_sum[c, slot] = sum_max
            else:
                card_sum[c, slot] += cents[i]
            t, tslot = terminal[i], d % terminal_days
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
                    s = (d - back) % CARD_DAYS
                    if card_tag[c, s] == d - back:
                        count += card_count[c, s]
                        total += card_sum[c, s]
                if count > COUNT_LIMIT:
                    overflow[4] += 1
                    count = COUNT_LIMIT
                out[i, 3 + 2 * w] = count
                out[i, 4 + 2 * w] = (total * reciprocal[count] + (1 << (RECIPROCAL_BITS - 1))) \
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
                out[i, 9 + 2 * w] = count
                out[i, 10 + 2 * w] = (frauds * reciprocal[count]) >> (RECIPROCAL_BITS - RISK_BITS)
            out[i, 0] = cents[i]
            out[i, 1] = 1 if (d + 3) % 7 >= 5 else 0
            out[i, 2] = 1 if second[i] < 7 * 3600 else 0

    return engine


_ENGINE = None


def streaming_features(seconds: np.ndarray, card: np.ndarray, terminal: np.ndarray,
                       amount: np.ndarray, fraud: np.ndarray, delay_days: int,
                       extra: int = 0) -> StreamingFeatures:
    """The 15 inputs of every transaction, computed event by event in time order (ties: the
    original order), returned in the original order."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _compiled()
    seconds = np.asarray(seconds, dtype=np.int64)
    order = np.lexsort((np.arange(seconds.size), seconds))
    s = seconds[order]
    cents = np.rint(np.asarray(amount, dtype=np.float64)[order] * 100).astype(np.int64)
    out = np.zeros((s.size, len(FEATURE_COLUMNS)), dtype=np.int64)
    overflow = np.zeros(len(OVERFLOWS), dtype=np.int64)
    card_ids, terminal_ids = np.asarray(card)[order], np.asarray(terminal)[order]
    _ENGINE(s // SECONDS_PER_DAY, s % SECONDS_PER_DAY, card_ids.astype(np.int64),
            terminal_ids.astype(np.int64), cents, np.asarray(fraud)[order].astype(np.int64),
            int(delay_days), int(extra), int(card_ids.max()) + 1, int(terminal_ids.max()) + 1,
            np.array(WINDOWS_DAYS, dtype=np.int64), RECIPROCAL, out, overflow)
    values = np.empty_like(out, dtype=np.float64)
    values[order] = out
    divisor = np.ones(len(FEATURE_COLUMNS))  # integers -> the model's units
    for w in range(len(WINDOWS_DAYS)):
        divisor[4 + 2 * w] = 100.0  # cents -> euros (the nearest double to the decimal)
        divisor[10 + 2 * w] = 2.0 ** RISK_BITS
    divisor[0] = 100.0
    terminal_days = int(delay_days) + CARD_DAYS
    return StreamingFeatures(
        {name: values[:, k] / divisor[k] for k, name in enumerate(FEATURE_COLUMNS)},
        dict(zip(OVERFLOWS, (int(v) for v in overflow))),
        {"card": -(-(CARD_DAYS * (COUNT_BITS + SUM_BITS + 1) + DAY_BITS) // 8),
         "terminal": -(-(terminal_days * (2 * COUNT_BITS + 1) + DAY_BITS) // 8)})


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
    tx.attrs["streaming_overflows"] = result.overflows
    return tx
