"""cocotb testbench of the AXI4-Stream top level, driven by cocotbext-axi.

Run through `fraudfpga.sim.runner` like `testbench.py`; the job file (FRAUDFPGA_SIM_JOB) names
the vectors, the interface and the plan (`axis_plan.py`). An `AxiStreamSource` sends the
transactions in frames of 1-8 (tlast on each frame's last), the transaction's sequence number
modulo 2**id_bits in s_axis_tuser; an `AxiStreamSink` takes the scores, its tready driven by
the pattern's pause generator; a recorder notes every handshake on both sides with its clock
cycle. Each phase is scored by `scoreboard.score_stream`: every score against the golden model
in order with its identifier and tlast, and the lost, duplicated and reordered counts.

Phases: the whole vector set at full rate (throughput and latency with tready always high);
each backpressure pattern on a sample; reset in the middle of a stream under backpressure.
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

from fraudfpga.hls.fixed import pack_rows

from .axis_plan import pause_pattern
from .scoreboard import latency_figures, score_stream, throughput_figures

CLOCK_NS = 10
MAX_FRAME = 8            # transactions per frame (one tlast each)
IDLE_CHECK_CYCLES = 3    # x latency: how long m_axis_tvalid must stay low after a reset


class Recorder:
    """Every handshake on both streams, with its cycle, sampled at each rising edge."""

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0
        self.accepted: list[tuple[int, int]] = []          # (cycle, tuser)
        self.delivered: list[tuple[int, int, int, int]] = []  # (cycle, tuser, tdata, tlast)
        self.ready_log = bytearray()  # m_axis_tready in cycle c at index c - 1
        self.valid_after_reset = 0
        self.watch_spurious = False
        cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.dut
        edge = RisingEdge(dut.aclk)
        while True:
            await edge
            self.cycle += 1
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                self.accepted.append((self.cycle, int(dut.s_axis_tuser.value)))
            m_ready = int(dut.m_axis_tready.value)
            self.ready_log.append(m_ready)
            if dut.m_axis_tvalid.value:
                if self.watch_spurious:
                    self.valid_after_reset += 1
                if m_ready:
                    self.delivered.append((self.cycle, int(dut.m_axis_tuser.value),
                                           int(dut.m_axis_tdata.value), int(dut.m_axis_tlast.value)))

    def mark(self) -> tuple[int, int]:
        return len(self.accepted), len(self.delivered)


class Bench:
    def __init__(self, dut, job: dict):
        self.dut = dut
        iface = job["interface"]
        self.iface = iface
        self.id_bits = iface["details"]["id_bits"]
        self.latency = iface["latency_cycles"]
        self.m_bits = iface["outputs"]["m_axis_tdata"]
        meta = job["metadata"]
        vectors = np.load(job["vectors"])
        in_width = meta["ports"]["in_data"] // meta["n_inputs"]
        self.words = pack_rows(vectors["input_codes"], in_width)
        mask = (1 << self.m_bits) - 1
        self.expected = [int(c) & mask for c in vectors["expected_codes"].ravel()]
        self.plan = job["plan"]
        self.rng = np.random.default_rng(self.plan["seed"])
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk,
                                      dut.aresetn, reset_active_level=False, byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk,
                                  dut.aresetn, reset_active_level=False, byte_lanes=1)
        self.recorder = Recorder(dut)
        self.sequence = 0  # transactions sent so far (their identifiers count on)

    async def reset(self, cycles: int = 3):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, cycles)
        self.dut.aresetn.value = 1
        await FallingEdge(self.dut.aclk)

    def send(self, rows: np.ndarray) -> tuple[int, list[int]]:
        """Queue the vectors `rows` in frames; returns the first sequence number and the
        expected tlast of each transaction."""
        first, lasts = self.sequence, []
        start = 0
        while start < len(rows):
            size = int(self.rng.integers(1, MAX_FRAME + 1))
            chunk = rows[start:start + size]
            ids = [(first + start + k) % (1 << self.id_bits) for k in range(len(chunk))]
            self.source.send_nowait(AxiStreamFrame([self.words[r] for r in chunk], tuser=ids))
            lasts += [0] * (len(chunk) - 1) + [1]
            start += len(chunk)
        self.sequence += len(rows)
        return first, lasts

    async def run_phase(self, name: str, rows: np.ndarray, input_pause, ready_pause) -> dict:
        """Send `rows` under the two pause generators (None: never paused) and score them."""
        self.source.set_pause_generator(input_pause)
        self.sink.set_pause_generator(ready_pause)
        mark = self.recorder.mark()
        started = time.perf_counter()
        first, lasts = self.send(rows)
        await self._drain(len(rows), mark)
        self.source.clear_pause_generator()
        self.sink.clear_pause_generator()
        self.source.pause = self.sink.pause = False  # a generator leaves its last value behind
        return self._score(name, rows, first, lasts, mark, time.perf_counter() - started)

    async def _drain(self, count: int, mark, idle_limit: int | None = None):
        """Wait until `count` results came back, or nothing moved for `idle_limit` cycles."""
        idle_limit = idle_limit or self.plan["stall_limit_cycles"]
        edge, quiet = RisingEdge(self.dut.aclk), 0
        done = len(self.recorder.delivered)
        while len(self.recorder.delivered) - mark[1] < count and quiet < idle_limit:
            await edge
            quiet = 0 if len(self.recorder.delivered) != done else quiet + 1
            done = len(self.recorder.delivered)
        await ClockCycles(self.dut.aclk, self.latency + 4)  # anything late or duplicated shows
        while not self.sink.empty():
            self.sink.recv_nowait()

    def _score(self, name, rows, first, lasts, mark, seconds) -> dict:
        accepted = self.recorder.accepted[mark[0]:]
        delivered = self.recorder.delivered[mark[1]:]
        expected = [self.expected[r] for r in rows]
        board = score_stream(first, len(rows), [d[1] for d in delivered], [d[2] for d in delivered],
                             [d[3] for d in delivered], expected, lasts, self.id_bits)
        result = {"name": name, "vectors": int(len(rows)), **board,
                  **throughput_figures(accepted, delivered, self.recorder.ready_log),
                  "latency_cycles": latency_figures(accepted, delivered, self.id_bits),
                  "wall_seconds": round(seconds, 2)}
        self.dut._log.info("%s: %s", name, {k: result[k] for k in (
            "vectors", "delivered", "lost", "duplicated", "reordered", "mismatched")})
        return result

    async def reset_in_stream(self, spec: dict) -> dict:
        """Reset with transactions in the pipeline and the FIFO; they are dropped, nothing
        spurious comes out, and a new stream afterwards is delivered whole."""
        dut, rec = self.dut, self.recorder
        rows = self.rng.choice(len(self.words), spec["before"], replace=True)
        self.sink.set_pause_generator(pause_pattern({"kind": "bernoulli", "duty": spec["duty"]},
                                                    self.rng))
        mark = rec.mark()
        self.send(rows)
        await ClockCycles(dut.aclk, spec["reset_after_cycles"])
        self.source.clear()  # what was not sent yet never will be
        dut.aresetn.value = 0
        await RisingEdge(dut.aclk)  # the reset takes effect at this edge
        rec.watch_spurious = True
        accepted_before = len(rec.accepted) - mark[0]
        delivered_before = len(rec.delivered) - mark[1]
        await ClockCycles(dut.aclk, spec["reset_cycles"] - 1)
        dut.aresetn.value = 1
        self.sink.clear_pause_generator()
        self.sink.pause = False  # a generator leaves its last value behind
        await ClockCycles(dut.aclk, IDLE_CHECK_CYCLES * self.latency)
        rec.watch_spurious = False
        spurious = rec.valid_after_reset
        after_rows = self.rng.choice(len(self.words), spec["after"], replace=True)
        after = await self.run_phase("after reset", after_rows,
                                     pause_pattern({"kind": "bernoulli", "duty": 0.7}, self.rng),
                                     pause_pattern({"kind": "bernoulli", "duty": spec["duty"]},
                                                   self.rng))
        return {"accepted_before_reset": accepted_before, "delivered_before_reset": delivered_before,
                "dropped_in_flight": accepted_before - delivered_before,
                "outputs_after_reset_before_new_input": spurious,
                "policy": "transactions in flight at reset are dropped", "after_reset": after}


@cocotb.test()
async def axis_stream(dut):
    with open(os.environ["FRAUDFPGA_SIM_JOB"]) as handle:
        job = json.load(handle)
    cocotb.start_soon(Clock(dut.aclk, CLOCK_NS, unit="ns").start())
    dut.aresetn.value = 0
    bench = Bench(dut, job)
    await bench.reset()
    plan = bench.plan
    n = len(bench.words)

    phases = [await bench.run_phase("full rate", np.arange(n), None, None)]
    for pattern in plan["patterns"]:
        rng = np.random.default_rng(pattern["seed"])
        rows = rng.choice(n, min(plan["pattern_vectors"], n), replace=False)
        phases.append(await bench.run_phase(
            pattern["name"], rows, pause_pattern(pattern["input"], rng),
            pause_pattern(pattern["ready"], rng)))
    reset = await bench.reset_in_stream(plan["reset"]) if plan.get("reset") else None

    results = {"phases": phases, "reset": reset,
               "interface": {k: bench.iface[k] for k in ("top", "latency_cycles")}}
    with open(job["results"], "w") as handle:
        json.dump(results, handle, indent=2)
    for phase in phases + ([reset["after_reset"]] if reset else []):
        for count in ("lost", "duplicated", "reordered", "mismatched", "tlast_mismatched"):
            assert phase[count] == 0, f"{phase['name']}: {phase[count]} {count.replace('_', ' ')}"
    for phase, pattern in zip(phases[1:], plan["patterns"]):
        if pattern["input"]["kind"] == "always":
            assert phase["delivered_per_cycle"] >= 0.99 * phase["ready_duty"], (
                f"{phase['name']}: {phase['delivered_per_cycle']:.4f} scores per cycle with tready "
                f"high on {phase['ready_duty']:.4f} of the cycles")
    full = phases[0]
    assert full["delivered_per_cycle"] == 1.0, (
        f"full rate: {full['delivered_per_cycle']:.4f} scores per cycle with tready always high")
    assert full["latency_cycles"]["max"] == full["latency_cycles"]["min"] == bench.latency, (
        f"full rate: latency {full['latency_cycles']}, expected {bench.latency} cycles")
    if reset:
        assert reset["outputs_after_reset_before_new_input"] == 0, "m_axis_tvalid rose after reset"
