"""The feature engine in front of the forest firmware: raw transactions in, score out.

The forest compares input codes (the scaler's output quantized to `forest.input_bits`) with its
thresholds. The engine gives integers (cents, counts, risk fractions). Rather than put the
scaler on the chip, every threshold moves to the engine's integer domain: the data path's code of
an input is a non-decreasing function of the integer (a division, a subtraction and a division by
a positive scale in float64, a float32 rounding, a rounding to the grid, saturation: each
monotone), so `code(x) <= t` holds exactly for the integers x <= T, with T the largest such
integer, found by bisection on that same function. The forest with those thresholds, reading the
engine's integers, makes every choice the firmware makes on the codes: the same leaves, the same
score, bit for bit, with no arithmetic added on the chip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fraudfpga.hls.codec import FirmwareCodec
from fraudfpga.hls.fixed import FixedType
from fraudfpga.hls.forest import LEAF, FixedForest
from fraudfpga.models.features import FEATURE_COLUMNS
from fraudfpga.models.streaming import to_model_units

from fraudfpga.runfolder import write_json

from .engine_rtl import (COUNTERS, FEATURE_BITS, FLAGS, METADATA, MODULE, VERILOG,
                         EngineParameters, write_engine_rtl)
from .forest_rtl import CORE, ForestPipeline, core_verilog

TOP = "fraud_engine_forest"
TOP_VERILOG = f"{TOP}.v"
FOREST_CORE_VERILOG = f"{CORE}.v"
RAW_TYPE = FixedType.parse(f"ap_fixed<{FEATURE_BITS + 1},{FEATURE_BITS + 1}>")  # 32-bit unsigned


class RawCodes:
    """The data path's input codes of the engine's integers, one input at a time."""

    def __init__(self, codec: FirmwareCodec):
        if list(codec.features) != list(FEATURE_COLUMNS):
            raise ValueError(f"the forest's inputs {codec.features} are not the engine's "
                             f"{list(FEATURE_COLUMNS)}")
        if np.any(np.asarray(codec.scaler.scale) <= 0):
            raise ValueError("a scaler scale is not positive: the input codes would not grow "
                             "with the integers")
        self.codec = codec
        self.divisor = 1.0 / to_model_units(np.ones(len(FEATURE_COLUMNS)))
        self.mean = np.asarray(codec.scaler.mean)
        self.scale = np.asarray(codec.scaler.scale)

    def of(self, raw: np.ndarray, feature: np.ndarray) -> np.ndarray:
        """Codes of the integers `raw`, each of input `feature` (arrays of one shape)."""
        scaled = ((raw / self.divisor[feature] - self.mean[feature])
                  / self.scale[feature]).astype(np.float32)
        return self.codec.input_type.codes_from_float(scaled.astype(np.float64))

    def all(self, raw: np.ndarray) -> np.ndarray:
        """Codes of rows of the engine's 15 integers: the data path's, which `to_model_units`,
        the scaler and the codec give (checked against them in tests)."""
        raw = np.asarray(raw, dtype=np.int64)
        return self.of(raw, np.broadcast_to(np.arange(raw.shape[1]), raw.shape))

    def largest_at_most(self, feature: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """For each (input, threshold code): the largest integer in [0, 2**32) whose code is at
        most the threshold, -1 when none is."""
        low = np.full(feature.shape, -1, dtype=np.int64)  # code(low) <= t, or low = -1
        high = np.full(feature.shape, 1 << FEATURE_BITS, dtype=np.int64)  # code(high) > t
        while np.any(high - low > 1):
            middle = (low + high) // 2
            ok = self.of(middle, feature) <= threshold
            low = np.where(ok, middle, low)
            high = np.where(ok, high, middle)
        return low


def raw_forest(forest: FixedForest, codes: RawCodes) -> FixedForest:
    """`forest` with every threshold in the engine's integer domain (input type: 33-bit signed,
    the engine's 32-bit unsigned integers with a zero sign)."""
    pairs = forest.comparisons()
    feature = np.array([f for f, _ in pairs], dtype=np.int64)
    threshold = np.array([t for _, t in pairs], dtype=np.int64)
    moved = dict(zip(pairs, codes.largest_at_most(feature, threshold).tolist()))
    trees = [{**tree, "threshold": [t if f == LEAF else moved[(f, t)]
                                    for f, t in zip(tree["feature"], tree["threshold"])]}
             for tree in forest.trees]
    return replace(forest, input_type=RAW_TYPE, trees=trees)


def top_verilog(params: EngineParameters, forest: FixedForest, forest_latency: int,
                features_out: bool) -> str:
    """The engine and the forest core as one module; id and flags (and the features, with
    `features_out`) delayed by the forest's latency beside the score."""
    n = len(FEATURE_COLUMNS)
    inputs = ", ".join(f"1'b0, e_features[{k * FEATURE_BITS} +: {FEATURE_BITS}]"
                       for k in reversed(range(n)))
    carried = [("id", params.id_bits), ("flags", len(FLAGS))] + (
        [("features", n * FEATURE_BITS)] if features_out else [])
    width = sum(bits for _, bits in carried)
    packed = ", ".join(f"e_{name}" for name, _ in carried)
    unpacked = ", ".join(f"out_{name}" for name, _ in carried)
    ports = "\n".join(f"    output wire [{bits - 1}:0] out_{name}," for name, bits in carried)
    return f"""`timescale 1 ns / 1 ps
// fraudfpga: the feature engine ({MODULE}) in front of the forest firmware ({CORE}), whose
// thresholds are in the engine's integer domain (sim/engine_forest.py). Raw transactions in,
// score out, one op per clock; labels give no output.
module {TOP} (
    input  wire clk,
    input  wire rst,
    input  wire in_valid,
    input  wire in_label,
    input  wire [31:0] in_time,
    input  wire [{params.card_bits - 1}:0] in_card,
    input  wire [{params.terminal_bits - 1}:0] in_terminal,
    input  wire [23:0] in_cents,
    input  wire [{params.id_bits - 1}:0] in_id,
    output wire out_valid,
{ports}
    output wire [{forest.output_type.width - 1}:0] out_score,
    output wire [{32 * len(COUNTERS) - 1}:0] counters
);
    localparam integer FOREST_LATENCY = {forest_latency};
    wire e_valid; wire [{params.id_bits - 1}:0] e_id; wire [{len(FLAGS) - 1}:0] e_flags;
    wire [{n * FEATURE_BITS - 1}:0] e_features;
    {MODULE} engine (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_label(in_label), .in_time(in_time),
        .in_card(in_card), .in_terminal(in_terminal), .in_cents(in_cents), .in_id(in_id),
        .out_valid(e_valid), .out_id(e_id), .out_flags(e_flags), .out_features(e_features),
        .counters(counters));
    {CORE} forest (.clk(clk), .model_inp({{{inputs}}}), .model_out(out_score));
    reg [FOREST_LATENCY - 1:0] valid_pipe;
    reg [{width - 1}:0] carried [0:FOREST_LATENCY - 1];
    integer k;
    always @(posedge clk) begin
        valid_pipe <= rst ? {{FOREST_LATENCY{{1'b0}}}} : {{valid_pipe, e_valid}};
        carried[0] <= {{{packed}}};
        for (k = 1; k < FOREST_LATENCY; k = k + 1) carried[k] <= carried[k - 1];
    end
    assign out_valid = valid_pipe[FOREST_LATENCY - 1];
    assign {{{unpacked}}} = carried[FOREST_LATENCY - 1];
endmodule
"""


def write_engine_forest_rtl(folder: Path, params: EngineParameters, forest: FixedForest,
                            pipeline: ForestPipeline, features_out: bool = True) -> dict:
    """The engine, the forest core (thresholds already in the integer domain) and their top in
    `folder`; returns the top's metadata (the engine's, with the score and the total latency)."""
    folder = Path(folder)
    engine = write_engine_rtl(folder, params)
    core, forest_latency = core_verilog(forest, pipeline)
    (folder / FOREST_CORE_VERILOG).write_text(core)
    (folder / TOP_VERILOG).write_text(top_verilog(params, forest, forest_latency, features_out))
    metadata = {**engine, "top": TOP, "sources": [TOP_VERILOG, VERILOG, FOREST_CORE_VERILOG],
                "latency_cycles": engine["latency_cycles"] + forest_latency,
                "pipeline_stages": engine["latency_cycles"] + forest_latency,
                "engine_latency_cycles": engine["latency_cycles"],
                "forest_latency_cycles": forest_latency, "features_out": features_out,
                "score_type": str(forest.output_type),
                "forest": {"trees": len(forest.trees), "split_nodes": forest.nodes(),
                           "comparisons": len(forest.comparisons()),
                           "max_depth": forest.max_depth()}}
    metadata["ports"] = {**engine["ports"], "out_score": forest.output_type.width}
    write_json(folder / METADATA, metadata)
    return metadata
