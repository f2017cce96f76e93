"""Scoring a stream of results that carry a wrapping transaction identifier: lost, duplicated,
reordered and wrong results; throughput and latency from the handshake cycles. Plain Python,
used by the AXI4-Stream testbench and tested on hand-made streams."""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np

MISMATCHES_KEPT = 10


def unwrap(ids: list[int], first: int, id_bits: int) -> list[int]:
    """Identifiers (sequence numbers modulo 2**id_bits) back to positions in the sent stream:
    the k-th result is taken as the sent transaction nearest to position k with its identifier.
    Exact while no result is displaced by half the identifier range or more."""
    modulus = 1 << id_bits
    half = modulus // 2
    out = []
    for k, tid in enumerate(ids):
        guess = first + k
        offset = (tid - guess) % modulus
        if offset >= half:
            offset -= modulus
        out.append(guess + offset - first)
    return out


def score_stream(first: int, count: int, ids: list[int], words: list[int], lasts: list[int],
                 expected_words: list[int], expected_lasts: list[int], id_bits: int) -> dict:
    """`count` transactions were sent with sequence numbers first, first+1, ...; the results
    came back with identifiers `ids`, data `words` and `lasts`. Counts every kind of error."""
    positions = unwrap(ids, first, id_bits)
    known = [p for p in positions if 0 <= p < count]
    reordered, highest, seen = 0, -1, set()
    for p in known:  # first arrivals after a later-sent transaction's (duplicates count apart)
        if p < highest and p not in seen:
            reordered += 1
        highest = max(highest, p)
        seen.add(p)
    mismatches, tlast_wrong = [], 0
    for k, p in enumerate(positions):
        if not 0 <= p < count:
            continue
        if words[k] != expected_words[p]:
            mismatches.append({"position": p, "expected": expected_words[p], "actual": words[k]})
        tlast_wrong += int(lasts[k] != expected_lasts[p])
    return {
        "delivered": len(ids),
        "lost": count - len(set(known)),
        "duplicated": len(known) - len(set(known)),
        "reordered": reordered,
        "unknown_identifiers": len(positions) - len(known),
        "mismatched": len(mismatches),
        "mismatches": mismatches[:MISMATCHES_KEPT],
        "tlast_mismatched": tlast_wrong,
    }


def latency_figures(accepted: list[tuple], delivered: list[tuple], id_bits: int) -> dict:
    """Cycles from each transaction's s_axis handshake to its score's m_axis handshake, matched
    by identifier in order (a lost transaction has none)."""
    waiting: dict[int, deque] = defaultdict(deque)
    for cycle, tid in accepted:
        waiting[tid].append(cycle)
    latencies = []
    for cycle, tid, *_ in delivered:
        if waiting[tid]:
            latencies.append(cycle - waiting[tid].popleft())
    if not latencies:
        return {"min": None, "p50": None, "p99": None, "max": None, "mean": None}
    values = np.array(latencies)
    return {"min": int(values.min()), "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)), "max": int(values.max()),
            "mean": round(float(values.mean()), 3)}


def throughput_figures(accepted: list[tuple], delivered: list[tuple], ready_log: bytes) -> dict:
    """Results per clock cycle from the first to the last m_axis handshake, and the share of
    those cycles in which m_axis_tready was high (`ready_log[c - 1]` for cycle c)."""
    def per_cycle(events):
        if len(events) < 2:
            return None, 0
        cycles = events[-1][0] - events[0][0] + 1
        return len(events) / cycles, cycles

    delivered_rate, window = per_cycle(delivered)
    accepted_rate, _ = per_cycle(accepted)
    duty = None
    if window:
        start = delivered[0][0] - 1
        duty = sum(ready_log[start:start + window]) / window
    return {"delivered_per_cycle": delivered_rate, "accepted_per_cycle": accepted_rate,
            "window_cycles": window, "ready_duty": duty,
            "throughput_over_duty": (delivered_rate / duty) if duty else None}
