"""Verilog of the feature engine: the streaming definition (`models/streaming.py`) as a pipeline
that keeps per-card and per-terminal state in block RAM and takes one transaction or fraud label
per clock (`templates/feature_engine.v`).

The chip gets raw transactions: the time in seconds since 1970 (UTC), card and terminal ids, the
amount in cents. It computes the day, the second of the day and the bucket slots by multiplying
with constants (exact division, checked here for the whole input range), reads the card's and the
terminal's record, updates and writes them back (the record written one clock before is
forwarded), sums the window buckets and divides by a reciprocal table, as the software engine
does. `engine_reference` holds the same arithmetic op by op, with the engine's capacity policy.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from fraudfpga.models.streaming import CARD_DAYS, COUNT_LIMIT, OVERFLOWS, RECIPROCAL
from fraudfpga.runfolder import write_json

from .interfaces import Interface

MODULE = "fraud_feature_engine"
VERILOG = f"{MODULE}.v"
RECIPROCAL_HEX = "engine_reciprocal.hex"
METADATA = "engine.json"
COUNTERS = (*OVERFLOWS, "card_capacity", "terminal_capacity", "late")
FLAGS = ("card_new_by_policy", "terminal_new_by_policy", "late")
FEATURE_BITS = 32  # each feature's field in out_features
TIME_BITS = 32  # in_time: seconds since 1970, up to 2106
CENTS_BITS = 24
DAY_BITS = 16
TEMPLATE = Path(__file__).parent / "templates" / "feature_engine.v"
LATENCY_CYCLES = 16  # from the op's input clock to its out_valid (checked by the testbench)


@dataclass(frozen=True)
class ExactDivision:
    """floor(x / divisor) == (x * multiplier) >> shift for every 0 <= x < 2**bits."""
    divisor: int
    bits: int
    multiplier: int
    shift: int

    @classmethod
    def of(cls, divisor: int, bits: int) -> "ExactDivision":
        shift = bits + math.ceil(math.log2(divisor))
        multiplier = -(-(1 << shift) // divisor)
        # Granlund and Montgomery (PLDI 1994), theorem 4.2: exact when the multiplier's excess
        # over 2**shift / divisor, times the largest x, stays below 2**shift / divisor's step.
        if not multiplier * divisor - (1 << shift) <= (1 << (shift - bits)):
            raise ValueError(f"no exact {bits}-bit division by {divisor} with shift {shift}")
        return cls(divisor, bits, multiplier, shift)

    def __call__(self, x):
        return (x * self.multiplier) >> self.shift


# floor(time / 86400) = floor((time >> 7) / 675): 86400 = 2**7 * 675
DAY_DIVISION = ExactDivision.of(675, TIME_BITS - 7)


@dataclass(frozen=True)
class EngineParameters:
    """What the engine holds: `cards` and `terminals` records (ids at or beyond them take the
    capacity policy), `delay_days` before a fraud label arrives, `extra_day` bucket per window."""
    cards: int
    terminals: int
    delay_days: int = 7
    extra_day: int = 0
    id_bits: int = 32

    def __post_init__(self):
        if self.cards < 1 or self.terminals < 1:
            raise ValueError("the engine holds at least one card and one terminal")
        if not 1 <= self.delay_days <= 32:
            raise ValueError(f"feature delay {self.delay_days} days: the engine takes 1 to 32")
        if self.extra_day not in (0, 1):
            raise ValueError(f"extra day {self.extra_day}: 0 or 1")

    @property
    def terminal_days(self) -> int:
        return self.delay_days + CARD_DAYS

    @property
    def card_bits(self) -> int:
        return max(1, (self.cards - 1).bit_length()) + 1  # one more: ids beyond the capacity

    @property
    def terminal_bits(self) -> int:
        return max(1, (self.terminals - 1).bit_length()) + 1

    @property
    def card_record_bits(self) -> int:
        return DAY_BITS + CARD_DAYS * (1 + 8 + 24)

    @property
    def terminal_record_bits(self) -> int:
        return DAY_BITS + self.terminal_days * (1 + 8 + 8)


def render(params: EngineParameters) -> str:
    """The engine's Verilog for `params`."""
    day_bits = DAY_BITS
    residues = {name: ExactDivision.of(d, day_bits)
                for name, d in (("31", CARD_DAYS), ("TD", params.terminal_days), ("7", 7))}
    for division in residues.values():
        if division.multiplier >= 1 << 17:
            raise ValueError(f"residue multiplier of {division.divisor} exceeds 17 bits")
    values = {
        "CARDS": params.cards, "TERMINALS": params.terminals, "CARD_BITS": params.card_bits,
        "TERMINAL_BITS": params.terminal_bits, "ID_BITS": params.id_bits,
        "TERMINAL_DAYS": params.terminal_days, "DELAY": params.delay_days,
        "EXTRA": params.extra_day, "N_COUNTERS": len(COUNTERS),
        "COUNTER_NAMES": ", ".join(COUNTERS), "RECIPROCAL_FILE": RECIPROCAL_HEX,
        "DAY_M": DAY_DIVISION.multiplier, "DAY_M_BITS": DAY_DIVISION.multiplier.bit_length(),
        "DAY_K": DAY_DIVISION.shift,
        **{f"M{k}": d.multiplier for k, d in residues.items()},
        **{f"K{k}": d.shift for k, d in residues.items()},
    }
    text = resources.files("fraudfpga.sim").joinpath(f"templates/{TEMPLATE.name}").read_text()
    for key, value in values.items():
        text = text.replace(f"__{key}__", str(value))
    missing = re.search(r"__[A-Z0-9_]+__", text)
    if missing:
        raise ValueError(f"feature_engine.v: placeholder {missing.group()} has no value")
    return text


def write_engine_rtl(folder: Path, params: EngineParameters) -> dict:
    """The engine's Verilog, its reciprocal table and its metadata in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / VERILOG).write_text(render(params))
    (folder / RECIPROCAL_HEX).write_text(
        "".join(f"{int(v):09x}\n" for v in RECIPROCAL[:COUNT_LIMIT + 1]))
    metadata = {
        "top": MODULE, "sources": [VERILOG], "data_files": [RECIPROCAL_HEX],
        "parameters": asdict(params), "latency_cycles": LATENCY_CYCLES,
        "pipeline_stages": LATENCY_CYCLES,
        "initiation_interval_cycles": 1,
        "ports": {"in_time": TIME_BITS, "in_card": params.card_bits,
                  "in_terminal": params.terminal_bits, "in_cents": CENTS_BITS,
                  "in_id": params.id_bits, "out_features": 15 * FEATURE_BITS,
                  "counters": 32 * len(COUNTERS)},
        "feature_bits": FEATURE_BITS, "counters": list(COUNTERS), "flags": list(FLAGS),
        "state": {"card_record_bits": params.card_record_bits,
                  "terminal_record_bits": params.terminal_record_bits,
                  "card_state_bits": params.cards * params.card_record_bits,
                  "terminal_state_bits": params.terminals * params.terminal_record_bits},
        "day_division": asdict(DAY_DIVISION),
    }
    write_json(folder / METADATA, metadata)
    return metadata


def engine_interface(metadata: dict) -> Interface:
    """The ports of the engine's top (alone or in front of a model), as the place-and-route
    harness and Yosys take them."""
    ports = metadata["ports"]
    outputs = {"out_valid": 1, "out_id": ports["in_id"], "out_flags": len(FLAGS)}
    if metadata.get("features_out", True):
        outputs["out_features"] = ports["out_features"]
    if "out_score" in ports:
        outputs["out_score"] = ports["out_score"]
    return Interface(
        name="valid", top=metadata["top"], file=metadata["sources"][0], clock="clk",
        reset="rst", reset_active_low=False,
        inputs={"in_valid": 1, "in_label": 1, **{k: ports[k] for k in (
            "in_time", "in_card", "in_terminal", "in_cents", "in_id")}},
        outputs={**outputs, "counters": ports["counters"]},
        latency_cycles=metadata["latency_cycles"])
