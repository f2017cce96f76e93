"""What the AXI4-Stream testbench drives: the backpressure patterns (tready and input gaps) and
the reset test, built from the `rtl.axis_*` configuration."""

from __future__ import annotations

from itertools import chain, repeat

import numpy as np

BLOCK = 4096
STALL_LIMIT_CYCLES = 5000  # a phase fails when no score has moved for this many cycles
BURST_MEAN_CYCLES = 12
LONG_STALL = {"mean_on": 300, "min_off": 200, "max_off": 2000}


def patterns(duty_cycles: list[float], seeds: list[int]) -> list[dict]:
    """For each seed: tready at each duty cycle with the input always valid (throughput), tready
    in bursts with random input gaps, and long stalls of hundreds to thousands of cycles."""
    out = []
    for seed in seeds:
        for duty in duty_cycles:
            out.append({"name": f"tready {duty:.0%}, input always valid (seed {seed})",
                        "seed": seed, "input": {"kind": "always"},
                        "ready": {"kind": "bernoulli", "duty": duty}})
        out.append({"name": f"tready in bursts, input 60 % (seed {seed})", "seed": seed,
                    "input": {"kind": "bernoulli", "duty": 0.6},
                    "ready": {"kind": "bursts", "mean_on": BURST_MEAN_CYCLES,
                              "mean_off": BURST_MEAN_CYCLES}})
        out.append({"name": f"long tready stalls, input 90 % (seed {seed})", "seed": seed,
                    "input": {"kind": "bernoulli", "duty": 0.9},
                    "ready": {"kind": "stalls", **LONG_STALL}})
    return out


def plan(rtl_cfg) -> dict:
    return {"seed": 0, "pattern_vectors": rtl_cfg["axis_pattern_vectors"],
            "patterns": patterns(rtl_cfg["axis_duty_cycles"], rtl_cfg["axis_seeds"]),
            "stall_limit_cycles": STALL_LIMIT_CYCLES,
            "reset": {"before": 300, "reset_after_cycles": 60, "reset_cycles": 4, "after": 500,
                      "duty": 0.5}}


def pause_pattern(spec: dict, rng: np.random.Generator):
    """A cocotbext-axi pause generator (True = paused) for `spec`, or None for never paused."""
    kind = spec["kind"]
    if kind == "always":
        return None
    if kind == "bernoulli":
        duty = spec["duty"]
        return chain.from_iterable((rng.random(BLOCK) >= duty).tolist() for _ in repeat(None))
    if kind == "bursts":
        runs = lambda: chain(repeat(False, int(rng.geometric(1 / spec["mean_on"]))),  # noqa: E731
                             repeat(True, int(rng.geometric(1 / spec["mean_off"]))))
        return chain.from_iterable(runs() for _ in repeat(None))
    if kind == "stalls":  # starts with a stall
        runs = lambda: chain(repeat(True, int(rng.integers(spec["min_off"], spec["max_off"] + 1))),  # noqa: E731
                             repeat(False, int(rng.geometric(1 / spec["mean_on"]))))
        return chain.from_iterable(runs() for _ in repeat(None))
    raise ValueError(f"unknown pause pattern {kind!r}")
