"""cocotb testbench of the feature engine (alone, or in front of a model: then the score too):
send the op stream (transactions and fraud labels), one op per clock or with idle clocks between
them, and check every transaction's output (id, order, features where the top has them, flags,
score where it has one) and the counters at the end against the software reference.

Run through `fraudfpga.sim.runner.simulate_engine`; the job file named by FRAUDFPGA_SIM_JOB
names the ops, the expected outputs and where the results go.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

CLOCK_NS = 10
MISMATCHES_KEPT = 20


def _fields(value: int, count: int, bits: int) -> list[int]:
    mask = (1 << bits) - 1
    return [(value >> (bits * k)) & mask for k in range(count)]


@cocotb.test()
async def replay_ops(dut):
    with open(os.environ["FRAUDFPGA_SIM_JOB"]) as handle:
        job = json.load(handle)
    meta = job["metadata"]
    with np.load(job["ops"]) as saved:
        ops = {name: saved[name] for name in saved.files}
    with np.load(job["expected"]) as saved:  # read once: an NpzFile reads its file per access
        expected = {name: saved[name] for name in saved.files}
    label, when = ops["label"].tolist(), ops["time"].tolist()
    card, terminal, cents = ops["card"].tolist(), ops["terminal"].tolist(), ops["cents"].tolist()
    n_ops, n_tx = len(label), int(expected["features"].shape[0])
    rng = np.random.default_rng(job.get("seed", 0))
    idle = rng.random(n_ops) < job.get("idle_probability", 0.0)
    bits, n_features = meta["feature_bits"], expected["features"].shape[1]

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    falling = FallingEdge(dut.clk)
    await falling

    in_valid, in_label, in_time = dut.in_valid, dut.in_label, dut.in_time
    in_card, in_terminal, in_cents, in_id = dut.in_card, dut.in_terminal, dut.in_cents, dut.in_id
    has_features = meta.get("features_out", True)
    has_score = "out_score" in meta["ports"]
    out_valid, out_id, out_flags = dut.out_valid, dut.out_id, dut.out_flags
    out_features = dut.out_features if has_features else None
    out_score = dut.out_score if has_score else None
    sent_cycle: list[int] = []  # per transaction, the clock it was sent
    got_cycle, got_id, got_flags, got_raw, got_score = [], [], [], [], []
    op, cycle, tx_sent = 0, 0, 0
    drain = meta["latency_cycles"] + 4
    started = time.perf_counter()
    while op < n_ops or drain:
        if out_valid.value:
            got_cycle.append(cycle)
            got_id.append(int(out_id.value))
            got_flags.append(int(out_flags.value))
            if has_features:
                got_raw.append(out_features.value.to_unsigned())
            if has_score:
                got_score.append(out_score.value.to_signed())
        if op < n_ops and idle[op]:
            in_valid.value = 0
            idle[op] = False
        elif op < n_ops:
            in_valid.value = 1
            in_label.value = label[op]
            in_time.value = when[op]
            in_card.value = card[op]
            in_terminal.value = terminal[op]
            in_cents.value = cents[op]
            if not label[op]:
                in_id.value = tx_sent
                sent_cycle.append(cycle)
                tx_sent += 1
            op += 1
        else:
            in_valid.value = 0
            drain -= 1
        await falling
        cycle += 1
    seconds = time.perf_counter() - started

    ids = np.array(got_id, dtype=np.int64)
    in_order = bool(len(ids) == n_tx and np.array_equal(ids, np.arange(n_tx)))
    count = min(len(ids), n_tx)
    features = (np.array([_fields(v, n_features, bits) for v in got_raw[:count]],
                         dtype=np.int64).reshape(count, n_features) if has_features
                else expected["features"][:count])
    flags = np.array([[(f >> k) & 1 for k in range(expected["flags"].shape[1])]
                      for f in got_flags[:count]], dtype=np.int64).reshape(count, -1)
    scores = np.array(got_score[:count], dtype=np.int64) if has_score else None
    score_wrong = (scores != expected["scores"][:count]) if has_score else np.zeros(count, bool)
    wrong = np.flatnonzero((features != expected["features"][:count]).any(axis=1)
                           | (flags != expected["flags"][:count]).any(axis=1) | score_wrong)
    mismatches = [{"transaction": int(i), "expected": expected["features"][i].tolist(),
                   "actual": features[i].tolist(), "expected_flags": expected["flags"][i].tolist(),
                   "actual_flags": flags[i].tolist(),
                   **({"expected_score": int(expected["scores"][i]), "actual_score": int(scores[i])}
                      if has_score else {})} for i in wrong[:MISMATCHES_KEPT]]
    per_feature = ((features != expected["features"][:count]).sum(axis=0).tolist()
                   if count else [])
    counters = _fields(dut.counters.value.to_unsigned(), len(meta["counters"]), 32)
    counters = dict(zip(meta["counters"], counters))
    expected_counters = json.loads(str(expected["counters"]))
    latency = sorted({g - s for g, s in zip(got_cycle, sent_cycle)})
    results = {
        "ops": n_ops, "transactions": n_tx, "labels": n_ops - n_tx, "outputs": len(ids),
        "in_order": in_order, "lost": max(0, n_tx - len(set(got_id))),
        "duplicated": len(got_id) - len(set(got_id)),
        "mismatch_count": int(wrong.size + (n_tx - count)), "mismatches": mismatches,
        "mismatches_per_feature": per_feature, "features_checked": bool(has_features),
        "scores_checked": bool(has_score),
        "score_mismatches": int(score_wrong.sum()) if has_score else None,
        "counters": counters,
        "expected_counters": expected_counters, "counters_ok": counters == expected_counters,
        "latency_cycles": latency, "cycles": cycle,
        "idle_probability": job.get("idle_probability", 0.0),
        "ops_per_cycle": n_ops / cycle if cycle else None,
        "stream_seconds": seconds, "ops_per_second": n_ops / seconds,
    }
    with open(job["results"], "w") as handle:
        json.dump(results, handle, indent=2)
    assert in_order, f"{len(ids)} outputs for {n_tx} transactions, in order: {in_order}"
    assert not wrong.size, (f"{wrong.size} of {n_tx} transactions differ from the reference; "
                            f"first: {mismatches[0]}")
    assert counters == expected_counters, f"counters {counters}, expected {expected_counters}"
    assert latency == [meta["latency_cycles"]], (
        f"latency {latency} cycles, metadata says {meta['latency_cycles']}")
