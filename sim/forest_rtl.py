"""Verilog of a decision forest (`hls/forest.json`), II = 1, bit-exact with conifer's emulation.

conifer's own VHDL backend pads every tree to a perfect tree of the ensemble's depth (2^(d+1)-1
nodes: 8,191 per tree at depth 12) and compares at every node. This generator follows the
shared-comparator form of TreeLUT (FPGA 2025): every distinct (input, threshold) comparison is
computed once, each tree chooses its leaf from those bits through a multiplexer tree that
follows the tree's own shape (leaves are constants, so synthesis folds most of it), and an adder
tree sums the leaf values. Pipeline registers sit after the comparators, after the leaf choice
(`forest.tree_stages` cuts through the trees by depth), and every `forest.adder_levels` levels of
the adder tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

from fraudfpga.hls.artifacts import FOREST_FIXED
from fraudfpga.hls.forest import LEAF, FixedForest
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import FOREST_FIRMWARE, Firmware
from .flow import register_verification
from .interfaces import axis_interface, axis_verilog, valid_interface

PREFIX = "fraud_forest"
CORE = f"{PREFIX}_core"
VALID_TOP = f"{PREFIX}_top"
AXIS_TOP = f"{PREFIX}_axis"


@dataclass(frozen=True)
class ForestPipeline:
    """Where the registers go: `tree_stages` register levels through the trees (1: the leaf
    values are registered once), one every `adder_levels` levels of the adder tree, and with
    `fanout_trees` > 0 a register stage that gives every group of that many trees its own copy
    of the comparison bits it uses (a comparison read by a hundred trees across the chip is
    otherwise one net whose routing dominates the clock period)."""
    tree_stages: int = 1
    adder_levels: int = 2
    fanout_trees: int = 0

    def __post_init__(self):
        if self.tree_stages < 1 or self.adder_levels < 1 or self.fanout_trees < 0:
            raise ValueError("forest.tree_stages and forest.adder_levels must be >= 1, "
                             "forest.fanout_trees >= 0")


FANOUT = f"{PREFIX}_fanout"
FANOUT_MODULE = f"""// A register stage of its own module, kept as a hierarchy level, so that synthesis does not
// merge the copies of the comparison bits that different tree groups read.
(* keep_hierarchy *)
module {FANOUT} #(parameter integer W = 1) (
    input  wire clk,
    input  wire [W-1:0] d,
    output reg  [W-1:0] q
);
    always @(posedge clk) q <= d;
endmodule
"""


def _signed_bits(low: int, high: int) -> int:
    """Bits of a two's complement number holding every value in [low, high]."""
    return max(1, max((-low - 1).bit_length() if low < 0 else 0, high.bit_length()) + 1)


def _at_most(u: str, threshold: int, width: int) -> str:
    """`input <= threshold` as logic on the input's offset-binary bits `u` (MSB first: u > T'
    when, at the first bit from the top where T' has a 0, u has a 1 and agrees with T' above).
    Written as `<=`, Yosys maps a constant comparison to a carry chain per comparator; as logic,
    abc shares the prefixes of one input's thresholds in LUTs: on ECP5 the 300-tree XGBoost
    import went from 7,749 carry cells to 898 and its LUT4s did not grow."""
    limit = threshold + (1 << (width - 1))  # T' = T in offset binary
    bit = [(limit >> (width - 1 - k)) & 1 for k in range(width)]  # MSB first
    name = [f"{u}[{width - 1 - k}]" for k in range(width)]
    terms = [" & ".join([name[j] if bit[j] else f"~{name[j]}" for j in range(k)] + [name[k]])
             for k in range(width) if not bit[k]]
    return "~(" + " | ".join(f"({t})" for t in terms) + ")" if terms else "1'b1"


def _literal(value: int, bits: int) -> str:
    """A `bits`-wide signed constant as its two's complement bit pattern."""
    return f"$signed({bits}'b{value & ((1 << bits) - 1):0{bits}b})"


class _TreeWriter:
    """One tree as nested choices on the comparison bits of its group (`bits`: the group's
    register name, `local`: comparison -> bit), cut into stages by depth: a subtree rooted at a
    cut depth becomes a registered value of the stage before. Stage s reads the group's bits
    delayed by s cycles, so that every choice of one transaction uses that transaction's
    comparisons."""

    def __init__(self, tree: dict, local: dict, bits_name: str, value_bits: int,
                 depth_per_stage: int, name: str):
        self.tree, self.local, self.bits_name = tree, local, bits_name
        self.value_bits, self.depth_per_stage, self.name = value_bits, depth_per_stage, name
        self.registers: list[list[tuple[str, str]]] = []  # per stage: (register, expression)

    def bits(self, stage: int) -> str:
        return self.bits_name if stage == 0 else f"{self.bits_name}_d{stage}"

    def expression(self, node: int, depth: int, stage: int) -> str:
        tree = self.tree
        if tree["feature"][node] == LEAF:
            return _literal(tree["value"][node], self.value_bits)
        if depth and depth % self.depth_per_stage == 0 and stage > 0:
            register = f"{self.name}_n{node}"
            while len(self.registers) < stage:
                self.registers.append([])
            self.registers[stage - 1].append((register, self.expression(node, 0, stage - 1)))
            return register
        bit = self.local[(tree["feature"][node], tree["threshold"][node])]
        return (f"({self.bits(stage)}[{bit}] ? {self.expression(tree['left'][node], depth + 1, stage)} : "
                f"{self.expression(tree['right'][node], depth + 1, stage)})")


def _groups(forest: FixedForest, comparator: dict, fanout_trees: int) -> list[dict]:
    """Tree groups and the comparison bits each reads: {trees, name, used (global indices),
    local (comparison -> bit of the group's copy)}. Without fan-out, one group reads `c`."""
    if not fanout_trees:
        return [{"trees": list(range(len(forest.trees))), "name": "c", "used": None,
                 "local": comparator}]
    groups = []
    for start in range(0, len(forest.trees), fanout_trees):
        trees = list(range(start, min(start + fanout_trees, len(forest.trees))))
        used = sorted({comparator[(f, t)] for i in trees
                       for f, t in zip(forest.trees[i]["feature"], forest.trees[i]["threshold"])
                       if f != LEAF})
        index = {g: k for k, g in enumerate(used)}
        local = {pair: index[bit] for pair, bit in comparator.items() if bit in index}
        groups.append({"trees": trees, "name": f"g{len(groups)}_c", "used": used,
                       "local": local})
    return groups


def core_verilog(forest: FixedForest, pipeline: ForestPipeline) -> tuple[str, int]:
    """The forest pipeline module and its latency in cycles."""
    t_in = forest.input_type
    width, n_in = t_in.width, forest.n_inputs
    comparisons = forest.comparisons()
    comparator = {pair: i for i, pair in enumerate(comparisons)}
    values = [v for tree in forest.trees for f, v in zip(tree["feature"], tree["value"]) if f == LEAF]
    leaf_bits = _signed_bits(min(values), max(values))
    out_bits = forest.output_type.width
    depth = forest.max_depth()
    depth_per_stage = max(1, math.ceil(depth / pipeline.tree_stages))
    tree_stages = max(1, math.ceil(depth / depth_per_stage))

    lines = [f"module {CORE} (",
             "    input  wire clk,",
             f"    input  wire [{n_in * width - 1}:0] model_inp,",
             f"    output wire [{out_bits - 1}:0] model_out",
             ");",
             f"    // {len(comparisons)} distinct comparisons (input <= threshold) of "
             f"{forest.nodes()} split nodes in {len(forest.trees)} trees, depth {depth}",
             f"    reg [{len(comparisons) - 1}:0] c;",
             "    always @(posedge clk) begin"]
    for i, (feature, threshold) in enumerate(comparisons):
        lines.append(f"        c[{i}] <= {_at_most(f'u{feature}', threshold, width)};")
    lines.append("    end")
    offset_binary = [f"    wire [{width - 1}:0] u{f} = {{~model_inp[{f * width + width - 1}], "
                     f"model_inp[{f * width + width - 2}:{f * width}]}};" if width > 1 else
                     f"    wire [0:0] u{f} = ~model_inp[{f}];"
                     for f in sorted({f for f, _ in comparisons})]
    lines[lines.index("    always @(posedge clk) begin"):
          lines.index("    always @(posedge clk) begin")] = [
        "    // input i as offset binary (sign bit flipped): signed order = unsigned order",
        *offset_binary]

    groups = _groups(forest, comparator, pipeline.fanout_trees)
    for group in groups:
        if group["used"] is None:
            continue
        width_g = max(1, len(group["used"]))
        bits = ", ".join(f"c[{i}]" for i in reversed(group["used"])) or "1'b0"
        lines += [f"    wire [{width_g - 1}:0] {group['name']};",
                  f"    {FANOUT} #(.W({width_g})) {group['name']}_copy (.clk(clk), .d({{{bits}}}), "
                  f".q({group['name']}));"]

    # Leaf choice: registers inside the trees at every depth_per_stage levels, then the value.
    stage_registers: list[list[tuple[str, str]]] = [[] for _ in range(tree_stages)]
    leaves = []
    for group in groups:
        width_g = len(comparisons) if group["used"] is None else max(1, len(group["used"]))
        for stage in range(1, tree_stages):
            previous = group["name"] if stage == 1 else f"{group['name']}_d{stage - 1}"
            lines += [f"    reg [{width_g - 1}:0] {group['name']}_d{stage};",
                      f"    always @(posedge clk) {group['name']}_d{stage} <= {previous};"]
        for index in group["trees"]:
            writer = _TreeWriter(forest.trees[index], group["local"], group["name"], leaf_bits,
                                 depth_per_stage, f"t{index}")
            root = writer.expression(0, 0, tree_stages - 1)
            for stage, registers in enumerate(writer.registers):
                stage_registers[stage] += registers
            stage_registers[tree_stages - 1].append((f"t{index}_value", root))
            leaves.append(f"t{index}_value")
    for stage, registers in enumerate(stage_registers):
        lines.append(f"    // tree stage {stage + 1} of {tree_stages}")
        for register, _ in registers:
            lines.append(f"    reg signed [{leaf_bits - 1}:0] {register};")
        lines.append("    always @(posedge clk) begin")
        lines += [f"        {register} <= {expression};" for register, expression in registers]
        lines.append("    end")

    # Adder tree: exact sums (widths grow by one bit per level), a register every adder_levels.
    level, operands, bits, registered_levels = 0, leaves, leaf_bits, 0
    while len(operands) > 1:
        level += 1
        bits += 1
        register = level % pipeline.adder_levels == 0 or len(operands) <= 2
        kind = "reg" if register else "wire"
        summed = []
        for k in range(0, len(operands), 2):
            name = f"s{level}_{k // 2}"
            pair = operands[k:k + 2]
            expression = " + ".join(f"$signed({p})" for p in pair)
            lines.append(f"    {kind} signed [{bits - 1}:0] {name}"
                         + (";" if register else f" = {expression};"))
            if register:
                lines.append(f"    always @(posedge clk) {name} <= {expression};")
            summed.append(name)
        registered_levels += register
        operands = summed
    total = operands[0]
    if bits >= out_bits:
        lines.append(f"    assign model_out = {total}[{out_bits - 1}:0];  // the score type wraps")
    else:
        lines.append(f"    assign model_out = {{{{{out_bits - bits}{{{total}[{bits - 1}]}}}}, "
                     f"{total}}};")
    lines.append("endmodule")
    latency = 1 + (1 if pipeline.fanout_trees else 0) + tree_stages + registered_levels
    module = "\n".join(lines) + "\n"
    return (FANOUT_MODULE + "\n" + module if pipeline.fanout_trees else module), latency


def top_verilog(forest: FixedForest, latency: int, what: str) -> str:
    """The `valid` top level (templates/top.v) around the forest pipeline."""
    width = forest.input_type.width
    in_bits = forest.n_inputs * width
    out_bits = forest.output_type.width
    template = resources.files("fraudfpga.sim").joinpath("templates/top.v").read_text()
    return template.format(
        top=VALID_TOP, core=CORE, what=what, enable_port="", enable_guard="",
        enable_connection="", n_in=forest.n_inputs, input_type=forest.input_type,
        output_type=forest.output_type, in_msb=in_bits - 1, in_width_m1=width - 1,
        out_msb=out_bits - 1, latency=latency,
        valid_shift="in_valid" if latency == 1 else "{valid_pipe[LATENCY-2:0], in_valid}",
        core_in_msb=in_bits - 1, core_in="in_data", core_out_msb=out_bits - 1,
        out_assign="core_out")


def generate_forest_rtl(forest: FixedForest, out_dir: Path, pipeline: ForestPipeline,
                        target_mhz: float, id_bits: int, progress=print,
                        fw: Firmware = FOREST_FIRMWARE, source: str = FOREST_FIXED) -> dict:
    """The forest's Verilog (pipeline, `valid` top, AXI4-Stream top) and its metadata, in the
    contract every later step reads (the network's rtl step writes the same keys); `fw` and
    `source` name the family and the forest file it was generated from."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    core, latency = core_verilog(forest, pipeline)
    what = (f"a decision forest of {len(forest.trees)} trees (conifer conversion, shared "
            f"comparators), generated from {source}")
    valid = valid_interface(forest, latency, VALID_TOP)
    axis = axis_interface(forest, latency, id_bits, AXIS_TOP, VALID_TOP)
    files = {f"{CORE}.v": core, valid.file: top_verilog(forest, latency, what),
             axis.file: axis_verilog(forest, axis, what)}
    for name, text in files.items():
        (out_dir / name).write_text(text)
    comparisons = len(forest.comparisons())
    metadata = {
        "top": VALID_TOP, "core": CORE, "golden_model": f"conifer C++ emulation ({fw.golden})",
        "generator": "fraudfpga forest generator: shared comparators, multiplexer trees, "
                     "adder tree (TreeLUT's form)",
        "sources": [axis.file, valid.file, f"{CORE}.v"],
        "ports": {"clk": 1, "rst": 1, "in_valid": 1, "out_valid": 1,
                  "in_data": valid.inputs["in_data"], "out_data": valid.outputs["out_data"]},
        "n_inputs": forest.n_inputs,
        "input_type": str(forest.input_type),
        "input_packing": "input i in bits [i*W+W-1 : i*W], two's complement codes",
        "output_type": str(forest.output_type),
        "latency_cycles": latency,
        "initiation_interval_cycles": 1,
        "interfaces": {i.name: i.as_dict() for i in (valid, axis)},
        "pipeline_stages": latency,
        "pipeline": {"tree_stages": pipeline.tree_stages, "adder_levels": pipeline.adder_levels,
                     "fanout_trees": pipeline.fanout_trees},
        "forest": {"trees": len(forest.trees), "split_nodes": forest.nodes(),
                   "max_depth": forest.max_depth(), "comparators": comparisons},
        "predicted": {"fmax_mhz": target_mhz, "latency_ns": round(latency * 1e3 / target_mhz, 1),
                      "kind": "no delay model for the forest RTL: forest.target_mhz, the clock "
                              "asked of place and route"},
    }
    write_json(out_dir / "metadata.json", metadata)
    progress(f"[rtl] {fw.name}: {len(forest.trees)} trees, {forest.nodes():,} split nodes, "
             f"{comparisons} comparators; latency {latency} cycles, II 1; "
             f"{len(files)} Verilog files in {out_dir}")
    return metadata


def generate(fw: Firmware, source: str, run: RunFolder, cfg, progress=print) -> list[str]:
    return write_rtl(fw, source, FixedForest.load(run.path(source)), run, cfg, progress)


def write_rtl(fw: Firmware, source: str, forest: FixedForest, run: RunFolder, cfg,
              progress=print) -> list[str]:
    """The family's rtl step body for a forest read from `source`."""
    import shutil

    forest_cfg = cfg["forest"]
    out = run.path(fw.rtl_dir)
    shutil.rmtree(out, ignore_errors=True)
    generate_forest_rtl(forest, out, ForestPipeline(forest_cfg["tree_stages"],
                                                    forest_cfg["adder_levels"],
                                                    forest_cfg["fanout_trees"]),
                        forest_cfg["target_mhz"], cfg["rtl"]["axis_id_bits"], progress, fw,
                        source)
    return fw.rtl_sources(run)


FOREST_RTL_READS = ("forest.tree_stages", "forest.adder_levels", "forest.fanout_trees",
                    "forest.target_mhz", "rtl.axis_id_bits")
FOREST_RTL_CODE = ("fraudfpga.sim.forest_rtl", "fraudfpga.sim.interfaces",
                   "fraudfpga.sim.artifacts", "fraudfpga.hls.forest", "fraudfpga.hls.fixed")


register(Step(
    name=FOREST_FIRMWARE.step("rtl"), command="rtl",
    help="generate pipelined Verilog (II = 1) of the forest firmware: shared comparators, "
         "multiplexer trees, adder tree",
    reads=FOREST_RTL_READS, inputs=(FOREST_FIXED, FOREST_FIRMWARE.golden),
    outputs=(FOREST_FIRMWARE.rtl_metadata,), body=partial(generate, FOREST_FIRMWARE, FOREST_FIXED),
    code=FOREST_RTL_CODE, family=FOREST_FIRMWARE.name))
register_verification(FOREST_FIRMWARE)
