"""cocotb testbench of the engine + forest AXI4-Stream top (`fraud_engine_axis`), driven by
cocotbext-axi: the op stream goes in on s_axis (one op per beat, the transaction's sequence number
in s_axis_tuser), results come out on m_axis under the job's backpressure (tready low with a
probability, input gaps with another); every result is checked in order against the reference
(score, flags, features where the top carries them), with the lost, duplicated and reordered
counts, the counters and the rate at full speed.

Run through `fraudfpga.sim.runner.run_testbench`; the job file names the ops, the expected
outputs and the plan.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

CLOCK_NS = 10
MISMATCHES_KEPT = 20


def _pause(rng: np.random.Generator, probability: float):
    while True:
        yield bool(probability and rng.random() < probability)


def _field(word: int, place) -> int:
    offset, bits = place
    return (word >> offset) & ((1 << bits) - 1)


@cocotb.test()
async def axis_replay(dut):
    with open(os.environ["FRAUDFPGA_SIM_JOB"]) as handle:
        job = json.load(handle)
    meta = job["metadata"]
    layout = meta["axis"]
    with np.load(job["ops"]) as saved:
        ops = {name: saved[name] for name in saved.files}
    with np.load(job["expected"]) as saved:
        expected = {name: saved[name] for name in saved.files}
    id_bits = meta["parameters"]["id_bits"]
    s = layout["s_axis_tdata"]
    words, ids, sequence = [], [], 0
    for label, when, card, terminal, cents in zip(*(ops[k].tolist() for k in (
            "label", "time", "card", "terminal", "cents"))):
        words.append(label << s["label"][0] | when << s["time"][0] | card << s["card"][0]
                     | terminal << s["terminal"][0] | cents << s["cents"][0])
        ids.append(0 if label else sequence % (1 << id_bits))
        sequence += 0 if label else 1
    n_tx = sequence

    cocotb.start_soon(Clock(dut.aclk, CLOCK_NS, unit="ns").start())
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                             reset_active_level=False, byte_lanes=1)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                         reset_active_level=False, byte_lanes=1)
    rng = np.random.default_rng(job.get("seed", 0))
    source.set_pause_generator(_pause(rng, job.get("input_pause", 0.0)))
    sink.set_pause_generator(_pause(rng, job.get("ready_pause", 0.0)))
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    await FallingEdge(dut.aclk)

    delivered = []  # (cycle, tuser, tdata)
    accepted_cycles = []

    async def record():
        cycle, edge = 0, RisingEdge(dut.aclk)
        while True:
            await edge
            cycle += 1
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                accepted_cycles.append(cycle)
            if dut.m_axis_tvalid.value and dut.m_axis_tready.value:
                delivered.append((cycle, int(dut.m_axis_tuser.value),
                                  int(dut.m_axis_tdata.value)))
    cocotb.start_soon(record())
    started = time.perf_counter()
    for word, tuser in zip(words, ids):
        source.send_nowait(AxiStreamFrame([word], tuser=[tuser]))
    limit = 50 * len(words) + 1000
    waited = 0
    while len(delivered) < n_tx and waited < limit:
        await ClockCycles(dut.aclk, 64)
        waited += 64
    await ClockCycles(dut.aclk, 2 * meta["latency_cycles"])  # anything spurious after the end
    seconds = time.perf_counter() - started
    while not sink.empty():
        sink.recv_nowait()

    m = layout["m_axis_tdata"]
    got_ids = [tuser for _, tuser, _ in delivered]
    expected_ids = [k % (1 << id_bits) for k in range(n_tx)]
    in_order = got_ids == expected_ids
    seen = set(got_ids)
    lost = sum(1 for k in expected_ids if k not in seen) if n_tx < (1 << id_bits) else None
    duplicated = len(got_ids) - len(seen)
    reordered = sum(1 for a, b in zip(got_ids, got_ids[1:]) if b != (a + 1) % (1 << id_bits))
    count = min(len(delivered), n_tx)
    score_bits = m["score"][1]
    scores = np.array([_field(w, m["score"]) for _, _, w in delivered[:count]], dtype=np.int64)
    scores = np.where(scores >= 1 << (score_bits - 1), scores - (1 << score_bits), scores)
    flags = np.array([[(_field(w, m["flags"]) >> k) & 1 for k in range(m["flags"][1])]
                      for _, _, w in delivered[:count]], dtype=np.int64).reshape(count, -1)
    wrong = (scores != expected["scores"][:count]) | (flags != expected["flags"][:count]).any(1)
    if "features" in m:
        features = np.array([[(_field(w, m["features"]) >> (32 * k)) & 0xFFFFFFFF
                              for k in range(expected["features"].shape[1])]
                             for _, _, w in delivered[:count]], dtype=np.int64)
        wrong |= (features != expected["features"][:count]).any(1)
    bad = np.flatnonzero(wrong)
    counters = int(dut.counters.value.to_unsigned())
    counters = dict(zip(meta["counters"], ((counters >> (32 * k)) & 0xFFFFFFFF
                                           for k in range(len(meta["counters"])))))
    expected_counters = json.loads(str(expected["counters"]))
    cycles = delivered[-1][0] - accepted_cycles[0] + 1 if delivered and accepted_cycles else None
    results = {
        "ops": len(words), "transactions": n_tx, "labels": len(words) - n_tx,
        "delivered": len(delivered),
        "in_order": in_order, "lost": lost, "duplicated": duplicated, "reordered": reordered,
        "mismatch_count": int(bad.size + (n_tx - count)),
        "mismatches": [{"transaction": int(i), "expected_score": int(expected["scores"][i]),
                        "actual_score": int(scores[i])} for i in bad[:MISMATCHES_KEPT]],
        "features_checked": "features" in m, "counters": counters,
        "expected_counters": expected_counters, "counters_ok": counters == expected_counters,
        "input_pause": job.get("input_pause", 0.0), "ready_pause": job.get("ready_pause", 0.0),
        "cycles_first_accept_to_last_result": cycles,
        "ops_per_cycle": len(words) / cycles if cycles else None,
        "first_result_latency_cycles": (delivered[0][0] - accepted_cycles[0]) if delivered else None,
        "stream_seconds": seconds,
    }
    with open(job["results"], "w") as handle:
        json.dump(results, handle, indent=2)
    assert in_order and not duplicated and not bad.size, (
        f"{len(delivered)} results for {n_tx} transactions, in order: {in_order}, "
        f"{bad.size} differ; first: {results['mismatches'][:1]}")
    assert counters == expected_counters, f"counters {counters}, expected {expected_counters}"
