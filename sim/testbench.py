"""cocotb testbench: stream vectors through the RTL, one per clock, and check every output.

Run through `fraudfpga.sim.runner` (cocotb's runner, from pytest or the CLI). The vectors,
expected outputs and the design's metadata come from the JSON file named by
FRAUDFPGA_SIM_JOB; the measured figures are written to the results file it names.

Phase 1 streams all vectors back to back (in_valid high every cycle): it gives the
throughput, the initiation interval and the latency. Phase 2 replays the first vectors with
random idle cycles in between, which checks that out_valid follows in_valid.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from fraudfpga.hls.fixed import FixedType, pack_rows


UNRESOLVED = 1 << 62  # an output sample holding X or Z bits (4-state simulators)
CLOCK_NS = 10          # simulation clock; cycles, not nanoseconds, are what is measured
DRAIN_CYCLES = 4       # idle cycles after the last vector, beyond the pipeline's latency
REPLAY_VECTORS = 200   # vectors replayed with idle cycles in between (phase 2)
MISMATCHES_KEPT = 20


def decode(raw: np.ndarray, output_type: FixedType) -> np.ndarray:
    """Sampled output bits -> output codes; unresolved samples stay UNRESOLVED."""
    raw = np.asarray(raw, dtype=np.int64)
    return np.where(raw == UNRESOLVED, UNRESOLVED, output_type.from_bits(raw))


async def stream(dut, bus: list[int], valid: list[int], cycles: int):
    """Drive `bus`/`valid` on falling edges; sample out_valid/out_data every cycle."""
    in_valid, in_data = dut.in_valid, dut.in_data
    out_valid, out_data = dut.out_valid, dut.out_data
    falling = FallingEdge(dut.clk)
    valid_log, data_log = [], []
    for cycle in range(cycles):
        valid_log.append(int(out_valid.value))
        try:
            data_log.append(out_data.value.to_unsigned())
        except ValueError:  # X/Z bits, e.g. Icarus before the pipeline has filled
            data_log.append(UNRESOLVED)
        if cycle < len(bus):
            in_valid.value = valid[cycle]
            in_data.value = bus[cycle]
        else:
            in_valid.value = 0
        await falling
    return np.array(valid_log), np.array(data_log, dtype=object)


@cocotb.test()
async def stream_vectors(dut):
    with open(os.environ["FRAUDFPGA_SIM_JOB"]) as handle:
        job = json.load(handle)
    meta = job["metadata"]
    vectors = np.load(job["vectors"])
    inputs, expected = vectors["input_codes"], vectors["expected_codes"].ravel()
    in_width = meta["ports"]["in_data"] // meta["n_inputs"]
    output_type = FixedType.parse(meta["output_type"])
    latency = meta["latency_cycles"]
    n = len(inputs)

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_data.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await FallingEdge(dut.clk)

    bus = pack_rows(inputs, in_width)
    started = time.perf_counter()
    valid_log, data_log = await stream(dut, bus, [1] * n, n + latency + DRAIN_CYCLES)
    seconds = time.perf_counter() - started
    data = decode(data_log.astype(np.int64), output_type)

    out_cycles = np.flatnonzero(valid_log)
    got = data[out_cycles]
    latency_valid = int(out_cycles[0]) if out_cycles.size else None
    # Latency from the data alone: the offset at which the output sequence is the expected one.
    latency_data = next((d for d in range(len(data) - n + 1)
                         if np.array_equal(data[d:d + n], expected)), None)
    ii = float((out_cycles[-1] - out_cycles[0]) / (n - 1)) if out_cycles.size > 1 else None
    count = min(len(got), n)
    bad = np.flatnonzero(got[:count] != expected[:count])
    mismatches = [{"index": int(i), "input": inputs[i].tolist(), "expected": int(expected[i]),
                   "actual": "X" if got[i] == UNRESOLVED else int(got[i])} for i in bad[:MISMATCHES_KEPT]]

    # Phase 2: the first vectors again with random idle cycles; out_valid must follow.
    rng = np.random.default_rng(0)
    replay = min(n, REPLAY_VECTORS)
    pattern, replay_bus = [], []
    for index in range(replay):
        for _ in range(int(rng.integers(0, 3))):
            pattern.append(0)
            replay_bus.append(0)
        pattern.append(1)
        replay_bus.append(bus[index])
    valid2, data2 = await stream(dut, replay_bus, pattern, len(pattern) + latency + DRAIN_CYCLES)
    got2 = decode(data2.astype(np.int64), output_type)[np.flatnonzero(valid2)]
    bubbles_ok = bool(len(got2) == replay and np.array_equal(got2, expected[:replay]))

    results = {
        "vectors": n, "outputs": int(len(got)), "mismatch_count": int(bad.size + (n - count)),
        "mismatches": mismatches, "latency_cycles_valid": latency_valid,
        "latency_cycles_data": latency_data, "latency_cycles_expected": latency,
        "initiation_interval_cycles": ii, "stream_seconds": seconds,
        "vectors_per_second": n / seconds, "bubble_replay": {"vectors": replay, "ok": bubbles_ok},
    }
    with open(job["results"], "w") as handle:
        json.dump(results, handle, indent=2)
    assert len(got) == n, f"{len(got)} outputs for {n} inputs"
    assert not bad.size, (f"{bad.size} of {n} outputs differ from the golden model; first: "
                          f"{mismatches[0]}")
    assert latency_valid == latency_data == latency, (
        f"latency: out_valid after {latency_valid} cycles, data after {latency_data}, "
        f"metadata says {latency}")
    assert ii == 1.0, f"initiation interval {ii}, expected 1"
    assert bubbles_ok, "with idle input cycles, out_valid/out_data did not follow in_valid"
