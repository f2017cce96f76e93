"""A per-family delay model of the da4ml operations, and timing-driven stage cuts from it.

da4ml's own pipelining counts adder levels and gives rounding, saturation and ReLU no delay.
On an FPGA each of them costs time: every carry-chain operation (sum, bias add, rounding add,
subtraction of a comparison) pays for entering and leaving the chain plus the route to it and
a little per bit it ripples, and every LUT operation (ReLU, the saturation multiplexer) a LUT
plus its route. The model is

    stage delay = register + sum over the ops of the stage's slowest path of
                  (carry_op + carry_bit * width) for carry-chain ops, lut_op for LUT ops

with coefficients per family, fitted (non-negative least squares) on placed-and-routed periods
of this toolkit's own designs. The fitting runs are stored with the coefficients in
`sim/delay_models/<family>.json`; `make delay-model` refits them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fraudfpga.errors import FlowError

# da4ml opcodes (da4ml.types.Op): what each costs on an FPGA.
CARRY_OPS = {0, 1, 4, -3}          # add, subtract, constant add, negate
LUT_OPS = {2, -2, 6, -6, 7, 8, 9, -9, 10}  # ReLU, MSB multiplexer, multiply, table, bit ops
FREE_OPS = {-1, 3, 5}             # input copy, quantize (bit selection), constant
FEATURES = ("register", "carry_op", "carry_bit", "lut_op")
# The harness's XOR reduction of the output bits is a register-to-register path too.
LUT_INPUTS = 4


def operands(op) -> list[int]:
    if op.opcode in (-1, 5):
        return []
    ids = [op.id0] + ([op.id1] if op.id1 >= 0 else [])
    if op.opcode in (6, -6):
        ids.append(op.data & 0xFFFFFFFF)
    return [i for i in ids if i >= 0]


def op_features(op) -> tuple[int, int, int]:
    """(carry-chain ops, carry bits, LUT ops) this op adds to a path."""
    from da4ml.types import minimal_kif

    if op.opcode in CARRY_OPS:
        return 1, int(sum(minimal_kif(op.qint))), 0
    if op.opcode in LUT_OPS:
        return 0, 0, 1
    if op.opcode in FREE_OPS:
        return 0, 0, 0
    raise FlowError(f"the delay model does not know da4ml opcode {op.opcode}")


@dataclass(frozen=True)
class DelayModel:
    family: str
    register: float
    carry_op: float
    carry_bit: float
    lut_op: float

    def vector(self) -> np.ndarray:
        return np.array([self.register, self.carry_op, self.carry_bit, self.lut_op])

    def path_delay(self, features) -> float:
        """Delay of a register-to-register path with (carry ops, carry bits, LUT ops)."""
        return float(self.register + np.dot(self.vector()[1:], features))

    def op_delays(self, comb) -> list[float]:
        return [float(np.dot(self.vector()[1:], op_features(op))) for op in comb.ops]

    @classmethod
    def load(cls, family: str, path: Path | None = None) -> "DelayModel":
        data = read_model_file(family, path)
        return cls(family=family, **data["coefficients"])

    def as_dict(self) -> dict:
        return {"register": self.register, "carry_op": self.carry_op,
                "carry_bit": self.carry_bit, "lut_op": self.lut_op}


def model_file(family: str) -> Path:
    return Path(str(resources.files("fraudfpga.sim").joinpath(f"delay_models/{family}.json")))


def read_model_file(family: str, path: Path | None = None) -> dict:
    path = path or model_file(family)
    if not path.exists():
        raise FlowError(f"no delay model for FPGA family {family!r} ({path}); run `make "
                        f"delay-model` with fpga.family={family} to fit one")
    return json.loads(path.read_text())


def arrival_times(comb, delays: list[float], budget: float) -> list[float]:
    """Each op's finishing time when a register is inserted every `budget` ns of logic.

    An op that would straddle a stage boundary starts at the boundary (da4ml's rule), so an
    op's stage is floor(time / budget) and no stage holds more than `budget` ns of logic.
    """
    times = [0.0] * len(comb.ops)
    for index, op in enumerate(comb.ops):
        base = max((times[i] for i in operands(op)), default=0.0)
        delay = delays[index]
        if delay > budget + 1e-9:
            raise FlowError(f"a single operation takes {delay:.2f} ns, more than the stage budget "
                            f"of {budget:.2f} ns; choose a slower clock")
        end = base + delay
        if delay > 0 and math.ceil(end / budget - 1e-9) > math.ceil(base / budget - 1e-9):
            end = math.ceil(base / budget - 1e-9) * budget + delay
        times[index] = end
    return times


def stage_of(time: float, budget: float) -> int:
    return max(0, math.ceil(time / budget - 1e-9) - 1)


def stage_count(comb, delays: list[float], budget: float) -> int:
    times = arrival_times(comb, delays, budget)
    return 1 + max(stage_of(times[i], budget) for i in comb.out_idxs)


def stage_delays(comb, delays: list[float], budget: float) -> list[float]:
    """Logic delay of each stage: its slowest op's finishing time minus the stage start."""
    times = arrival_times(comb, delays, budget)
    worst: dict[int, float] = {}
    for t in times:
        s = stage_of(t, budget)
        worst[s] = max(worst.get(s, 0.0), t - s * budget)
    return [worst.get(s, 0.0) for s in range(max(worst) + 1)]


@dataclass(frozen=True)
class DesignPoint:
    """A pipeline depth and the budget that balances it, with the model's prediction."""
    stages: int
    budget_ns: float
    predicted_period_ns: float

    @property
    def cycles(self) -> int:
        return self.stages + 1  # one register per stage and the output register

    @property
    def predicted_fmax_mhz(self) -> float:
        return 1e3 / self.predicted_period_ns

    @property
    def predicted_latency_ns(self) -> float:
        return self.cycles * self.predicted_period_ns


def balanced_point(comb, model: DelayModel, stages: int, delays: list[float] | None = None,
                   ) -> DesignPoint:
    """The smallest stage budget that still fits the logic in `stages` stages."""
    delays = delays if delays is not None else model.op_delays(comb)
    low = max(delays) if delays else 0.0
    high = max(sum(delays), low) + 1e-6
    if stage_count(comb, delays, high) > stages:
        high *= 2
    for _ in range(40):
        if high - low < 1e-3:
            break
        middle = (low + high) / 2
        if stage_count(comb, delays, middle) <= stages:
            high = middle
        else:
            low = middle
    logic = max(stage_delays(comb, delays, high))
    return DesignPoint(stages=stage_count(comb, delays, high), budget_ns=high,
                       predicted_period_ns=model.register + logic)


def design_points(comb, model: DelayModel) -> list[DesignPoint]:
    """Every pipeline depth from one stage to the finest cut, each balanced."""
    delays = model.op_delays(comb)
    finest = stage_count(comb, delays, max(delays))
    points: dict[int, DesignPoint] = {}
    for n in range(1, finest + 1):
        point = balanced_point(comb, model, n, delays)
        points.setdefault(point.stages, point)
    return [points[n] for n in sorted(points)]


OBJECTIVES = ("latency", "fmax", "throughput")


def pick(points: list, objective: str, min_fmax_mhz: float, fmax, latency, stages):
    """The point `objective` asks for, predicted or measured alike (`fmax`, `latency`, `stages`
    read a point); ties go to fewer stages. None when no point reaches `min_fmax_mhz` for the
    throughput objective."""
    if objective not in OBJECTIVES:
        raise FlowError(f"fpga.objective: {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    if objective == "fmax":
        return max(points, key=lambda p: (round(fmax(p), 3), -stages(p)))
    if objective == "throughput":
        points = [p for p in points if fmax(p) >= min_fmax_mhz]
        if not points:
            return None
    return min(points, key=lambda p: (round(latency(p), 3), stages(p)))


def choose_point(points: list[DesignPoint], objective: str, min_fmax_mhz: float) -> DesignPoint:
    """The design point the delay model's predictions give for the objective."""
    chosen = pick(points, objective, min_fmax_mhz, lambda p: p.predicted_fmax_mhz,
                  lambda p: p.predicted_latency_ns, lambda p: p.stages)
    if chosen is None:
        best = max(p.predicted_fmax_mhz for p in points)
        raise FlowError(f"fpga.min_fmax_mhz = {min_fmax_mhz}: the delay model predicts at most "
                        f"{best:.0f} MHz for this network on this family")
    return chosen


def _prune(vectors: set[tuple[int, int, int]]) -> set[tuple[int, int, int]]:
    """Drop path vectors that another dominates (no positive model makes them slower)."""
    ordered = sorted(vectors, reverse=True)
    kept: list[tuple[int, int, int]] = []
    for v in ordered:
        if not any(all(k >= x for k, x in zip(other, v)) for other in kept):
            kept.append(v)
    return set(kept)


def stage_path_vectors(pipeline, out_bits: int) -> list[list[int]]:
    """Every non-dominated (carry ops, carry bits, LUT ops) of a register-to-register path in
    the generated pipeline, plus the harness's XOR reduction of the output bits.

    The model's period for any coefficients is the register delay plus the largest of these
    dotted with the coefficients, so the fit needs no netlist, only these vectors.
    """
    all_vectors: set[tuple[int, int, int]] = set()
    for stage in pipeline.solutions:
        ending: list[set[tuple[int, int, int]]] = []
        for op in stage.ops:
            own = op_features(op)
            incoming = set().union(*(ending[i] for i in operands(op))) or {(0, 0, 0)}
            ending.append(_prune({tuple(a + b for a, b in zip(v, own)) for v in incoming}))
        for vectors in ending:
            all_vectors |= vectors
    levels = max(1, math.ceil(math.log(out_bits + 1, LUT_INPUTS)))
    all_vectors.add((0, 0, levels))
    return sorted(list(v) for v in _prune(all_vectors))


def predicted_period(model: DelayModel, vectors: list[list[int]]) -> float:
    return max(model.path_delay(v) for v in vectors)


def fit(runs: list[dict], family: str, rounds: int = 20) -> tuple[DelayModel, dict]:
    """Fit the coefficients to measured periods: each round takes every run's critical vector
    under the current coefficients and solves non-negative least squares on them."""
    from scipy.optimize import nnls

    if len(runs) < len(FEATURES):
        raise FlowError(f"{family}: {len(runs)} placed-and-routed runs cannot fit "
                        f"{len(FEATURES)} coefficients; run `make delay-model`")
    periods = np.array([1e3 / r["fmax_mhz"] for r in runs])
    model = DelayModel(family, 1.0, 1.0, 0.05, 1.0)
    for _ in range(rounds):
        rows = []
        for run in runs:
            critical = max(run["path_vectors"], key=model.path_delay)
            rows.append([1.0, *critical])
        coefficients, _ = nnls(np.array(rows), periods)
        new = DelayModel(family, *[float(round(c, 4)) for c in coefficients])
        if new == model:
            break
        model = new
    predicted = np.array([predicted_period(model, r["path_vectors"]) for r in runs])
    errors = predicted - periods
    quality = {"runs": len(runs), "rms_error_ns": round(float(np.sqrt(np.mean(errors ** 2))), 3),
               "max_abs_error_ns": round(float(np.abs(errors).max()), 3),
               "mean_abs_relative_error": round(float(np.mean(np.abs(errors) / periods)), 3)}
    return model, quality


def pipeline(comb, model: DelayModel, point: DesignPoint):
    """The da4ml pipeline with the stage cuts of `point` (ops placed by the model's times)."""
    from da4ml.trace.pipeline import to_pipeline

    budget = point.budget_ns
    times = arrival_times(comb, model.op_delays(comb), budget)
    ops = [op._replace(latency=(stage_of(t, budget) + 0.5) * budget)
           for op, t in zip(comb.ops, times)]
    return to_pipeline(comb._replace(ops=ops), budget, retiming=False, verbose=False)


RUN_FIELDS = ("stages", "cycles", "seed", "device", "fmax_mhz", "latency_ns", "logic_cells",
              "flip_flops", "critical_path_ns", "routing_share", "path_vectors")


def refit(points_file: Path, family: str, design: str, machine: str,
          out: Path | None = None) -> tuple[DelayModel, dict, Path]:
    """Add the placed-and-routed points of a `make timing` run to the family's stored runs
    (replacing runs of the same design, depth, seed and device), refit, and write the file."""
    data = json.loads(Path(points_file).read_text())
    if data["family"] != family:
        raise FlowError(f"{points_file}: its points are for {data['family']}, not {family}")
    out = out or model_file(family)
    stored = read_model_file(family, out) if out.exists() else {"runs": []}
    new = [{"design": design, **{k: p[k] for k in RUN_FIELDS}, "measured_on": machine}
           for p in data["points"] if "failed" not in p]
    if not new:
        raise FlowError(f"{points_file}: no placed-and-routed point to fit")
    keys = {(r["design"], r["stages"], r["seed"], r["device"]) for r in new}
    runs = [r for r in stored["runs"]
            if (r["design"], r["stages"], r["seed"], r["device"]) not in keys] + new
    model, quality = fit(runs, family)
    for run in runs:
        run["model_fmax_mhz"] = round(1e3 / predicted_period(model, run["path_vectors"]), 1)
    devices = sorted({r["device"] for r in runs})
    document = {
        "family": family, "devices": devices,
        "status": "fitted by `fraudfpga delay-model` (non-negative least squares on the "
                  "placed-and-routed periods of the runs below)",
        "coefficients": model.as_dict(), "coefficient_units": "ns (carry_bit: ns per bit)",
        "fit": quality, "runs": sorted(runs, key=lambda r: (r["design"], r["stages"], r["seed"])),
    }
    out.write_text(json.dumps(document, indent=1) + "\n")
    return model, quality, out
