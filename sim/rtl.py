"""RTL generation: the firmware's fixed-point network as pipelined Verilog through da4ml.

The network is read from `hls/network.json` (the hls4ml layer precisions and quantized
weights), traced with da4ml's functional API (constant matrix-vector products become
multiplier-free adder graphs), split into pipeline stages (II = 1) where the FPGA family's
delay model (`delay_model.py`) says, and written as Verilog with a top level that adds
`in_valid`/`out_valid`. Before writing, the traced logic is checked in
Python against the numpy fixed-point reference.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fraudfpga.errors import FlowError
from fraudfpga.hls.fixed import FixedType
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.runfolder import write_json

from .delay_model import (DelayModel, DesignPoint, balanced_point, choose_point, design_points,
                          pipeline, stage_path_vectors)
from .interfaces import AXIS_DEFAULT_ID_BITS, VALID_TOP, axis_interface, axis_verilog, valid_interface

CORE = "fraud_mlp"
WHAT = "the fixed-point fraud MLP (da4ml pipeline)"
CLOCK_ENABLE_SUFFIX = "_ce"
DA4ML_ROUNDING = ("TRN", "RND")
DA4ML_OVERFLOW = ("WRAP", "SAT")


def _kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (sign bit, integer bits without sign, fractional bits)."""
    return (1 if t.signed else 0), t.integer - (1 if t.signed else 0), t.frac


def _check_rtl_type(t: FixedType, where: str) -> None:
    if t.rounding not in DA4ML_ROUNDING or t.overflow not in DA4ML_OVERFLOW:
        raise ValueError(f"{where}: {t} cannot be generated as RTL; the RTL generator rounds only "
                         f"{'/'.join(DA4ML_ROUNDING)} and overflows {'/'.join(DA4ML_OVERFLOW)} "
                         "(set hls.activation_rounding to RND or TRN)")


def check_exact_accumulation(network: FixedNetwork) -> list[float]:
    """da4ml sums exactly; the firmware casts each product and partial sum to the accumulator.
    They agree only when the accumulator holds every product and partial sum exactly.

    Returns each layer's worst-case magnitude of `x @ w + b` (in real units)."""
    bound_in = max(abs(network.input_type.min_code), abs(network.input_type.max_code))
    frac_in = network.input_type.frac
    worst_values = []
    for layer in network.layers:
        acc = layer.accum_type
        product_frac = frac_in + layer.weight_type.frac
        if acc.frac < product_frac or acc.frac < layer.bias_type.frac:
            raise ValueError(f"{layer.name}: accumulator {acc} has fewer fractional bits than the "
                             f"products ({product_frac}); the RTL would not round the same way")
        scale = 1 << (acc.frac - product_frac)
        worst = (np.abs(layer.weight_codes).sum(axis=0) * bound_in * scale
                 + np.abs(layer.bias_codes) * (1 << (acc.frac - layer.bias_type.frac)))
        if worst.max() > acc.max_code:
            raise ValueError(f"{layer.name}: accumulator {acc} can overflow (worst case "
                             f"{int(worst.max())} codes); widen it in the hls4ml configuration")
        worst_values.append(float(worst.max()) * 2.0 ** -acc.frac)
        bound_in = max(abs(layer.output_type.min_code), abs(layer.output_type.max_code))
        frac_in = layer.output_type.frac
    return worst_values


def _half_lsb(t: FixedType) -> float:
    return 2.0 ** -(t.frac + 1) if t.rounding == "RND" else 0.0


def fusable_relu(layer, worst: float) -> bool:
    """Whether the ReLU's rounding and saturation can take the cheaper form of `_relu_saturate`
    with the same result: an unsigned saturating ReLU type after a truncating result type that
    keeps the rounding constant's bit and cannot overflow with it added."""
    relu_t, result = layer.relu_type, layer.result_type
    return (relu_t is not None and not relu_t.signed and relu_t.overflow == "SAT"
            and result.rounding == "TRN" and relu_t.frac + 1 <= result.frac
            and worst + _half_lsb(relu_t) <= result.max_code * 2.0 ** -result.frac)


def _relu_saturate(x, t: FixedType):
    """ReLU, truncation to `t`'s fractional bits and saturation at its maximum, with one short
    carry chain instead of two full-width ones: the rounding constant is already in the bias
    (round(relu(v)) = trunc(relu(v + h)) for h half an LSB), and "above the maximum" is
    decided on the bits above the integer field alone (their value minus one is negative only
    when they are all zero) rather than by subtracting the maximum from the whole word."""
    from da4ml.trace import FixedVariableArray
    from da4ml.trace.ops import quantize

    k, i, f = _kif(t)
    high = 2.0 ** i - 2.0 ** -f
    out = []
    for v in x._vars.ravel():  # noqa: SLF001  (da4ml has no per-element map)
        v = v.relu(f=f, round_mode="TRN")
        if v.high <= high:
            out.append(v)
            continue
        above = quantize(v, 0, int(v.kif[1]), -i) * 2.0 ** -i  # the integer v // 2**i
        out.append((above - 1).msb_mux(quantize(v, k, i, f), high))
    return FixedVariableArray(np.array(out).reshape(x._vars.shape), x.solver_options,  # noqa: SLF001
                              hwconf=x.hwconf)


def trace_network(network: FixedNetwork, cheaper_relu: bool = True):
    """The da4ml combinational logic of the network (inputs: the firmware's input codes).

    With `cheaper_relu`, a ReLU layer that allows it rounds through its bias and saturates with
    an OR of the high bits (`_relu_saturate`); otherwise the firmware's casts are traced as
    written (a rounding add and a comparison, each a carry chain)."""
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace
    from da4ml.trace.ops import quantize, relu

    worst = check_exact_accumulation(network)
    inputs = FixedVariableArrayInput(network.n_inputs, hwconf=HWConfig(1, -1, -1))
    # The RTL receives input codes: the input type's own rounding never applies in hardware.
    x = quantize(inputs, *_kif(network.input_type))
    for layer, bound in zip(network.layers, worst):
        _check_rtl_type(layer.result_type, f"{layer.name} result")
        fused = cheaper_relu and fusable_relu(layer, bound)
        weights = layer.weight_codes * 2.0 ** -layer.weight_type.frac
        bias = layer.bias_codes * 2.0 ** -layer.bias_type.frac
        if fused:
            bias = bias + _half_lsb(layer.relu_type)
        x = x @ weights + bias
        t = layer.result_type
        x = quantize(x, *_kif(t), overflow_mode=t.overflow, round_mode=t.rounding)
        if layer.relu_type is not None:
            t = layer.relu_type
            _check_rtl_type(t, f"{layer.relu_name} result")
            x = (_relu_saturate(x, t) if fused else
                 quantize(relu(x), *_kif(t), overflow_mode=t.overflow, round_mode=t.rounding))
    return comb_trace(inputs, x)


def _widths(comb) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    from da4ml.types import minimal_kif

    return ([tuple(int(v) for v in minimal_kif(q)) for q in comb.inp_qint],
            [tuple(int(v) for v in minimal_kif(q)) for q in comb.out_qint])


def top_verilog(network: FixedNetwork, core_formats, latency: int,
                clock_enable: bool = False) -> str:
    """The `valid` top level around the core whose port formats are `core_formats` (inputs,
    outputs; `_widths`); with `clock_enable`, a `ce` input holds the whole pipeline (the core
    must then be `clock_enabled_core`'s), for comparing with credit-based admission."""
    in_kifs, out_kifs = core_formats
    width = network.input_type.width
    slices, offset = [], 0
    for index, kif in enumerate(in_kifs):
        bits = sum(kif)
        if bits == 0:
            continue
        if bits != width or kif[2] != network.input_type.frac:
            raise ValueError(f"da4ml input {index} has format {kif}, expected {network.input_type}")
        slices.append(f"in_data[{index * width + width - 1}:{index * width}]")
        offset += bits
    core_in = "{" + ", ".join(reversed(slices)) + "}"
    if len(out_kifs) != 1:
        raise ValueError("the RTL top level supports networks with one output (the logit)")
    k, i, f = out_kifs[0]
    result = network.output_type
    core_bits = k + i + f
    shift = result.frac - f
    extend = result.width - core_bits - shift
    if shift < 0 or extend < 0:
        raise ValueError(f"da4ml output format {(k, i, f)} does not fit {result}")
    fill = f"{{{extend}{{core_out[{core_bits - 1}]}}}}" if k else f"{{{extend}{{1'b0}}}}"
    parts = ([fill] if extend else []) + ["core_out"] + ([f"{{{shift}{{1'b0}}}}"] if shift else [])
    out_assign = "{" + ", ".join(parts) + "}"
    valid_shift = "in_valid" if latency == 1 else "{valid_pipe[LATENCY-2:0], in_valid}"
    template = resources.files("fraudfpga.sim").joinpath("templates/top.v").read_text()
    suffix = CLOCK_ENABLE_SUFFIX if clock_enable else ""
    return template.format(
        top=VALID_TOP + suffix, core=CORE + suffix, what=WHAT,
        enable_port=("    input  wire                 ce,        // clock enable: low holds the "
                     "pipeline\n" if clock_enable else ""),
        enable_guard="if (ce) " if clock_enable else "",
        enable_connection=".ce(ce), " if clock_enable else "",
        n_in=network.n_inputs, input_type=network.input_type,
        output_type=result, in_msb=network.n_inputs * width - 1, in_width_m1=width - 1,
        out_msb=result.width - 1, latency=latency, valid_shift=valid_shift,
        core_in_msb=offset - 1, core_in=core_in, core_out_msb=core_bits - 1, out_assign=out_assign)


def clock_enabled_core(verilog: str) -> str:
    """da4ml's pipeline module (`fraud_mlp.v`: every stage register in one clocked block) with a
    clock enable on every register, as `fraud_mlp_ce`."""
    edits = [(f"module {CORE} (", f"module {CORE}{CLOCK_ENABLE_SUFFIX} ("),
             ("    input clk,\n", "    input clk,\n    input ce,\n"),
             ("always @(posedge clk) begin", "always @(posedge clk) if (ce) begin")]
    for old, new in edits:
        if verilog.count(old) != 1:
            raise RuntimeError(f"da4ml's {CORE}.v no longer has exactly one {old.strip()!r}; the "
                               "clock-enable variant cannot be derived from it")
        verilog = verilog.replace(old, new)
    if verilog.count("posedge") != 1:
        raise RuntimeError(f"da4ml's {CORE}.v has registers outside its one clocked block")
    return verilog


@dataclass(frozen=True)
class PipelineChoice:
    """How the rtl step picks its stage cuts: the family's delay model and an objective, or an
    explicit number of stages (`stages` > 0)."""
    family: str
    objective: str = "latency"
    min_fmax_mhz: float = 100.0
    stages: int = 0

    @classmethod
    def from_config(cls, fpga_cfg) -> "PipelineChoice":
        return cls(fpga_cfg["family"], fpga_cfg["objective"], fpga_cfg["min_fmax_mhz"],
                   fpga_cfg["stages"])


def _point(comb, model: DelayModel, choice: PipelineChoice) -> tuple[DesignPoint, list[DesignPoint]]:
    points = design_points(comb, model)
    if not choice.stages:
        return choose_point(points, choice.objective, choice.min_fmax_mhz), points
    finest = points[-1].stages
    if choice.stages > finest:
        raise FlowError(f"fpga.stages = {choice.stages}: this network has at most {finest} "
                        "pipeline stages (one operation per stage)")
    return balanced_point(comb, model, choice.stages), points


def generate_rtl(network: FixedNetwork, out_dir: Path, choice: PipelineChoice,
                 check_vectors: np.ndarray, progress=print, model: DelayModel | None = None,
                 id_bits: int = AXIS_DEFAULT_ID_BITS, source: str = "hls/network.json",
                 golden: str = "hls/golden.npz") -> dict:
    """Write the Verilog into `out_dir` and return its metadata (also `metadata.json`).

    The stage cuts come from the delay model of `choice.family` (timing-driven pipelining):
    every depth is balanced and the objective picks one, unless `choice.stages` fixes it.
    Both top levels are written (`interfaces.py`): `valid` and `axis` around it, whose
    transaction identifier has `id_bits` bits. The metadata's `top`, `ports` and
    `latency_cycles` are those of the `valid` top; `interfaces` has both. `source` and `golden`
    name the files the network and its golden vectors came from.
    """
    from da4ml.codegen import RTLModel

    comb = trace_network(network)
    # Check the traced logic in Python before any Verilog is written.
    expected = network.output_type.to_float(network.forward(check_vectors))
    traced = comb.predict(network.input_type.to_float(check_vectors))
    if not np.array_equal(np.asarray(traced, dtype=np.float64).reshape(expected.shape), expected):
        raise RuntimeError("the da4ml trace differs from the fixed-point reference")
    model = model or DelayModel.load(choice.family)
    point, points = _point(comb, model, choice)
    pipe = pipeline(comb, model, point)
    out_dir = Path(out_dir)
    work = out_dir / "da4ml"
    shutil.rmtree(work, ignore_errors=True)
    RTLModel(pipe, CORE, work, clock_period=round(point.predicted_period_ns, 3),
             part_name=choice.family, print_latency=False).write()
    da4ml_meta = json.loads((work / "metadata.json").read_text())
    stages = int(da4ml_meta["latency"])
    if stages != point.stages:
        raise RuntimeError(f"da4ml cut {stages} stages where the delay model placed {point.stages}")
    latency = stages + 1  # one register per stage boundary and the output register
    sources = sorted((work / "src").glob(f"{CORE}*.v"))
    sources = [s for s in sources if s.name != f"{CORE}_wrapper.v"]
    # lookup_table.v reads a placeholder memory file and is only needed for table lookups.
    sources += sorted(p for p in (work / "src" / "static").glob("*.v") if p.name != "lookup_table.v")
    valid = valid_interface(network, latency)
    axis = axis_interface(network, latency, id_bits)
    top_file, axis_file = out_dir / valid.file, out_dir / axis.file
    top_file.write_text(top_verilog(network, _widths(comb), latency))
    axis_file.write_text(axis_verilog(network, axis, f"{WHAT}, generated from {source}"))
    in_kifs, out_kifs = _widths(comb)
    out_bits = network.output_type.width
    estimate = "estimated by the delay model of the FPGA family (not timed)"
    metadata = {
        "top": VALID_TOP,
        "core": CORE,
        "golden_model": f"hls4ml C simulation ({golden})",
        "generator": "da4ml RTLModel (verilog), fraudfpga top level, stage cuts from the "
                     f"{choice.family} delay model",
        "sources": [str(p.relative_to(out_dir)) for p in [axis_file, top_file, *sources]],
        "ports": {
            "clk": 1, "rst": 1, "in_valid": 1, "out_valid": 1,
            "in_data": network.n_inputs * network.input_type.width,
            "out_data": out_bits,
        },
        "n_inputs": network.n_inputs,
        "input_type": str(network.input_type),
        "input_packing": "input i in bits [i*W+W-1 : i*W], two's complement codes",
        "output_type": str(network.output_type),
        "latency_cycles": latency,
        "initiation_interval_cycles": 1,
        "interfaces": {i.name: i.as_dict() for i in (valid, axis)},
        "pipeline_stages": stages,
        "family": choice.family,
        "objective": "fpga.stages" if choice.stages else choice.objective,
        "delay_model": model.as_dict(),
        "predicted": {"period_ns": round(point.predicted_period_ns, 3),
                      "fmax_mhz": round(point.predicted_fmax_mhz, 1),
                      "latency_ns": round(point.predicted_latency_ns, 1), "kind": estimate},
        "design_points": [{"stages": p.stages, "cycles": p.cycles,
                           "predicted_fmax_mhz": round(p.predicted_fmax_mhz, 1),
                           "predicted_latency_ns": round(p.predicted_latency_ns, 1)} for p in points],
        "path_vectors": stage_path_vectors(pipe, out_bits),
        "path_vector_fields": ["carry-chain ops", "carry bits", "LUT ops"],
        "da4ml_estimates": {"lut_cost": da4ml_meta.get("cost"), "register_bits": da4ml_meta.get("reg_bits"),
                            "kind": "estimated by da4ml's cost model"},
        "core_port_formats": {"inputs": in_kifs, "outputs": out_kifs},
    }
    write_json(out_dir / "metadata.json", metadata)
    progress(f"[rtl] {stages} pipeline stages ({metadata['objective']}, {choice.family} delay "
             f"model: {point.predicted_fmax_mhz:.0f} MHz, {point.predicted_latency_ns:.0f} ns "
             f"predicted), latency {latency} cycles, II 1; {len(metadata['sources'])} Verilog "
             f"files in {out_dir}")
    return metadata
