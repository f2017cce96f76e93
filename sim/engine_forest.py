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
    depth = 1 << (metadata["latency_cycles"] + 2 - 1).bit_length()
    (folder / AXIS_VERILOG).write_text(axis_verilog(params, metadata, depth))
    metadata["axis"] = {"top": AXIS_TOP, "depth": depth,
                        **axis_layout(params, forest.output_type.width, features_out)}
    metadata["sources"].append(AXIS_VERILOG)
    write_json(folder / METADATA, metadata)
    return metadata


AXIS_TOP = "fraud_engine_axis"
AXIS_VERILOG = f"{AXIS_TOP}.v"


def axis_layout(params: EngineParameters, score_bits: int, features_out: bool) -> dict:
    """Bit fields of the AXI4-Stream top's s_axis_tdata (an op) and m_axis_tdata (a result),
    LSB first, each bus a whole number of bytes."""
    s_fields = [("label", 1), ("time", 32), ("card", params.card_bits),
                ("terminal", params.terminal_bits), ("cents", 24)]
    m_fields = [("score", score_bits), ("flags", len(FLAGS))] + (
        [("features", len(FEATURE_COLUMNS) * FEATURE_BITS)] if features_out else [])

    def place(fields):
        out, offset = {}, 0
        for name, bits in fields:
            out[name] = [offset, bits]
            offset += bits
        return out, -(-offset // 8) * 8
    s, s_bits = place(s_fields)
    m, m_bits = place(m_fields)
    return {"s_axis_tdata": s, "s_bits": s_bits, "m_axis_tdata": m, "m_bits": m_bits}


def axis_verilog(params: EngineParameters, metadata: dict, depth: int) -> str:
    """The AXI4-Stream top around the engine + forest: ops in on s_axis (one beat each, the
    transaction id in s_axis_tuser), results out on m_axis in order with their id. The pipeline
    cannot stall, so admission is by credits, as for the network's AXI4-Stream top: a beat is
    accepted while fewer than DEPTH transactions are admitted and not delivered, and the result
    FIFO holds DEPTH. Labels take no credit (they give no result)."""
    layout = axis_layout(params, int(metadata["ports"]["out_score"]), metadata["features_out"])
    s, m = layout["s_axis_tdata"], layout["m_axis_tdata"]
    id_bits = params.id_bits
    m_used = sum(bits for _, bits in m.values())
    carried = ["core_flags", "core_score"] if not metadata["features_out"] else \
        ["core_features", "core_flags", "core_score"]

    def field(name):
        offset, bits = s[name]
        return f"s_axis_tdata[{offset + bits - 1}:{offset}]"
    features_wire = (f"    wire [{len(FEATURE_COLUMNS) * FEATURE_BITS - 1}:0] core_features;\n"
                     if metadata["features_out"] else "")
    features_port = ", .out_features(core_features)" if metadata["features_out"] else ""
    return f"""`timescale 1 ns / 1 ps
// fraudfpga AXI4-Stream top of the feature engine in front of the forest ({TOP}).
// s_axis: one op per beat, {layout['s_bits']} bits: {', '.join(f'{k} [{o + b - 1}:{o}]' for k, (o, b) in s.items())}
//   (label = 1: a fraud label for the transaction at time and terminal; its tuser is ignored);
//   s_axis_tuser: the transaction's id, returned with its result.
// m_axis: one result per transaction, in order, {layout['m_bits']} bits: {', '.join(f'{k} [{o + b - 1}:{o}]' for k, (o, b) in m.items())};
//   m_axis_tuser: the id; m_axis_tlast is high on every beat.
// Credit-based admission (the pipeline cannot stall): a beat is accepted while fewer than DEPTH
// transactions are admitted and not yet delivered; the result FIFO has DEPTH entries, so a result
// can always be stored whatever m_axis_tready does. One op per clock needs DEPTH >= LATENCY + 2.
// Reset (aresetn low): the ops in flight and the results waiting are dropped; the card and
// terminal state is not cleared (an op dropped after its write has counted).
module {AXIS_TOP} #(
    parameter integer DEPTH = {depth}
) (
    input  wire aclk,
    input  wire aresetn,
    input  wire s_axis_tvalid,
    output reg  s_axis_tready,
    input  wire [{layout['s_bits'] - 1}:0] s_axis_tdata,
    input  wire [{id_bits - 1}:0] s_axis_tuser,
    output reg  m_axis_tvalid,
    input  wire m_axis_tready,
    output wire [{layout['m_bits'] - 1}:0] m_axis_tdata,
    output wire [{id_bits - 1}:0] m_axis_tuser,
    output wire m_axis_tlast,
    output wire [{32 * len(COUNTERS) - 1}:0] counters
);
    localparam integer PTR_BITS = $clog2(DEPTH);
    localparam integer RESULT_BITS = {id_bits + m_used};
    wire rst = !aresetn;
    wire accept = s_axis_tvalid && s_axis_tready;
    wire is_label = s_axis_tdata[0];
    wire deliver = m_axis_tvalid && m_axis_tready;
    wire core_valid;
    reg  [PTR_BITS:0] in_use, stored;
    wire [PTR_BITS:0] in_use_next = in_use + {{{{PTR_BITS{{1'b0}}}}, accept && !is_label}}
                                    - {{{{PTR_BITS{{1'b0}}}}, deliver}};
    wire [PTR_BITS:0] stored_next = stored + {{{{PTR_BITS{{1'b0}}}}, core_valid}}
                                    - {{{{PTR_BITS{{1'b0}}}}, deliver}};
    always @(posedge aclk) begin
        if (rst) begin
            in_use <= 0; stored <= 0; s_axis_tready <= 1'b0; m_axis_tvalid <= 1'b0;
        end else begin
            in_use <= in_use_next; stored <= stored_next;
            s_axis_tready <= in_use_next < DEPTH;
            m_axis_tvalid <= stored_next != 0;
        end
    end
    function [PTR_BITS-1:0] advance(input [PTR_BITS-1:0] pointer);
        advance = (pointer == DEPTH - 1) ? {{PTR_BITS{{1'b0}}}} : pointer + 1'b1;
    endfunction
    wire [{id_bits - 1}:0] core_id; wire [{len(FLAGS) - 1}:0] core_flags;
    wire [{metadata['ports']['out_score'] - 1}:0] core_score;
{features_wire}    reg [RESULT_BITS-1:0] results [0:DEPTH-1];
    reg [PTR_BITS-1:0] write, read;
    always @(posedge aclk) begin
        if (core_valid) results[write] <= {{core_id, {", ".join(carried)}}};
        if (rst) begin
            write <= 0; read <= 0;
        end else begin
            if (core_valid) write <= advance(write);
            if (deliver) read <= advance(read);
        end
    end
    wire [RESULT_BITS-1:0] head = results[read];
    assign m_axis_tuser = head[RESULT_BITS-1 -: {id_bits}];
    assign m_axis_tdata = {{{{{layout['m_bits'] - m_used}{{1'b0}}}}, head[{m_used - 1}:0]}};
    assign m_axis_tlast = 1'b1;
    {TOP} core (
        .clk(aclk), .rst(rst), .in_valid(accept), .in_label(is_label),
        .in_time({field('time')}), .in_card({field('card')}),
        .in_terminal({field('terminal')}), .in_cents({field('cents')}), .in_id(s_axis_tuser),
        .out_valid(core_valid), .out_id(core_id), .out_flags(core_flags){features_port},
        .out_score(core_score), .counters(counters));
endmodule
"""
