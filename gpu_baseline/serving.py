"""Serving under load: an open-loop Poisson trace through a dynamic batcher in front of each
back end, and the FPGA (pipelined, II = 1) behind a host link through the same trace.

The trace runs on a virtual clock; every batch the batcher forms is a real call of the back end
on real test transactions, timed, and that measured time is the batch's service time. So the
latencies are measured compute plus the queueing and batching delays the policy causes, without
the simulation's own Python time. The batcher follows Triton's dynamic batching policy: when
the back end is free, wait until `max_batch` requests are queued or the oldest has waited
`max_queue_delay`, then send up to `max_batch`. A request still queued after `max_wait`
is dropped (a bounded queue); a level with drops or with throughput below 95 % of the offered
load is saturated, and no latency is claimed for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SUSTAINED = 0.95  # achieved / offered below this is saturation


def poisson_arrivals(rate: float, seconds: float, seed: int) -> np.ndarray:
    """Arrival times (s) of an open-loop Poisson process of `rate` per second."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(rate * seconds)
    return np.sort(rng.uniform(0.0, seconds, count))


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int
    max_queue_delay_s: float
    max_wait_s: float  # queued longer than this: dropped


@dataclass
class Served:
    latency_s: np.ndarray   # per served request, arrival to result
    dropped: int
    batches: np.ndarray     # size of each batch sent
    end_s: float            # last completion (the trace starts at 0)


def serve_batched(arrivals: np.ndarray, call, inputs: np.ndarray, policy: BatchPolicy) -> Served:
    """Run the trace through the dynamic batcher and `call` (timed on real rows)."""
    n = arrivals.size
    latency = np.full(n, np.nan)
    sizes, dropped, free_at, i = [], 0, 0.0, 0
    rows = inputs.shape[0]
    while i < n:
        start = max(free_at, arrivals[i])
        # Requests that waited past max_wait by the time the back end is free are dropped.
        expired = int(np.searchsorted(arrivals, start - policy.max_wait_s, side="left")) - i
        if expired > 0:
            dropped += expired
            i += expired
            continue
        full_at = arrivals[i + policy.max_batch - 1] if i + policy.max_batch - 1 < n else np.inf
        dispatch = max(start, min(full_at, arrivals[i] + policy.max_queue_delay_s))
        end = min(int(np.searchsorted(arrivals, dispatch, side="right")), i + policy.max_batch)
        index = np.arange(i, end) % rows
        batch = np.ascontiguousarray(inputs[index])
        t0 = time.perf_counter()
        call(batch)
        took = time.perf_counter() - t0
        free_at = dispatch + took
        latency[i:end] = free_at - arrivals[i:end]
        sizes.append(end - i)
        i = end
    served = latency[~np.isnan(latency)]
    return Served(served, dropped, np.asarray(sizes), free_at)


@dataclass(frozen=True)
class FpgaPath:
    """The FPGA behind a host link: pipelined at II = 1, one result per clock."""
    compute_s: float          # measured cycles / placed-and-routed clock
    clock_hz: float
    link_round_trip_s: float  # assumption, with its source
    link_bytes_per_s: float   # assumption, with its source
    bytes_per_transaction: int

    @property
    def rate_per_s(self) -> float:
        """What the path sustains: the pipeline or the link, whichever is lower."""
        return min(self.clock_hz, self.link_bytes_per_s / self.bytes_per_transaction)

    def end_to_end_s(self) -> float:
        return self.link_round_trip_s + self.compute_s + 1 / self.rate_per_s


def serve_fpga(arrivals: np.ndarray, path: FpgaPath) -> Served:
    """Each request enters the link and the pipeline one slot (1 / rate) after the previous one
    at the earliest: start_k = max(arrival_k, start_(k-1) + slot), computed in closed form."""
    slot = 1.0 / path.rate_per_s
    k = np.arange(arrivals.size)
    start = slot * k + np.maximum.accumulate(arrivals - slot * k) if arrivals.size else arrivals
    done = start + path.end_to_end_s()
    return Served(done - arrivals, 0, np.ones(arrivals.size, dtype=int),
                  float(done[-1]) if arrivals.size else 0.0)


def summarize(served: Served, offered: float, arrivals: int, seconds: float) -> dict:
    """One load level. Achieved throughput: requests served over the trace's length, or until
    the last result when the back end finished later (a backlog)."""
    achieved = served.latency_s.size / max(seconds, served.end_s)
    saturated = served.dropped > 0 or achieved < SUSTAINED * arrivals / seconds
    result = {"offered_per_s": offered, "arrivals": arrivals, "served": int(served.latency_s.size),
              "dropped": served.dropped, "achieved_per_s": achieved, "saturated": bool(saturated),
              "mean_batch": float(served.batches.mean()) if served.batches.size else 0.0}
    if not saturated and served.latency_s.size:
        p50, p99, p999 = np.percentile(served.latency_s, [50, 99, 99.9]) * 1e6
        result |= {"p50_us": p50, "p99_us": p99, "p999_us": p999}
    return result


def highest_load_under(levels: list[dict], target_us: float) -> float | None:
    """The highest offered load, among the sustained levels, whose p99 stays under target."""
    ok = [lv["offered_per_s"] for lv in levels if not lv["saturated"] and lv["p99_us"] <= target_us]
    return max(ok) if ok else None


def time_batch1(call, inputs: np.ndarray, calls: int) -> dict:
    """Batch-1 latency of a bare loop of calls on one transaction at a time."""
    times = []
    for index in range(calls):
        row = np.ascontiguousarray(inputs[index % inputs.shape[0]][None, :])
        t0 = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - t0)
    times = np.asarray(times[calls // 10:])  # the first tenth is warm-up
    return {"p50_us": float(np.percentile(times, 50) * 1e6),
            "p99_us": float(np.percentile(times, 99) * 1e6), "calls": int(times.size)}
