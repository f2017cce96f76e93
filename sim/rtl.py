"""RTL generation: the firmware's fixed-point network as pipelined Verilog through da4ml.

The network is read from `hls/network.json` (the hls4ml layer precisions and quantized
weights), traced with da4ml's functional API (constant matrix-vector products become
multiplier-free adder graphs), split into pipeline stages (II = 1) and written as Verilog with
a top level that adds `in_valid`/`out_valid`. Before writing, the traced logic is checked in
Python against the numpy fixed-point reference.
"""

from __future__ import annotations

import json
import math
import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from fraudfpga.hls.fixed import FixedType
from fraudfpga.hls.network import FixedNetwork
from fraudfpga.runfolder import write_json

CORE = "fraud_mlp"
TOP = "fraud_mlp_top"
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


def check_exact_accumulation(network: FixedNetwork) -> None:
    """da4ml sums exactly; the firmware casts each product and partial sum to the accumulator.
    They agree only when the accumulator holds every product and partial sum exactly."""
    bound_in = max(abs(network.input_type.min_code), abs(network.input_type.max_code))
    frac_in = network.input_type.frac
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
        bound_in = max(abs(layer.output_type.min_code), abs(layer.output_type.max_code))
        frac_in = layer.output_type.frac


def trace_network(network: FixedNetwork):
    """The da4ml combinational logic of the network (inputs: the firmware's input codes)."""
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace
    from da4ml.trace.ops import quantize, relu

    check_exact_accumulation(network)
    inputs = FixedVariableArrayInput(network.n_inputs, hwconf=HWConfig(1, -1, -1))
    # The RTL receives input codes: the input type's own rounding never applies in hardware.
    x = quantize(inputs, *_kif(network.input_type))
    for layer in network.layers:
        _check_rtl_type(layer.result_type, f"{layer.name} result")
        weights = layer.weight_codes * 2.0 ** -layer.weight_type.frac
        bias = layer.bias_codes * 2.0 ** -layer.bias_type.frac
        x = x @ weights + bias
        t = layer.result_type
        x = quantize(x, *_kif(t), overflow_mode=t.overflow, round_mode=t.rounding)
        if layer.relu_type is not None:
            t = layer.relu_type
            _check_rtl_type(t, f"{layer.relu_name} result")
            x = quantize(relu(x), *_kif(t), overflow_mode=t.overflow, round_mode=t.rounding)
    return comb_trace(inputs, x)


def adder_levels_per_stage(clock_period_ns: float, adder_level_ns: float) -> int:
    """Pipeline depth from the target clock: how many adder levels fit in one period.

    `adder_level_ns` is an estimate of one carry-chain adder plus routing on the target family;
    Yosys/nextpnr or the vendor tool say whether the clock is met.
    """
    return max(1, math.floor(clock_period_ns / adder_level_ns))


def _widths(comb) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    from da4ml.types import minimal_kif

    return ([tuple(int(v) for v in minimal_kif(q)) for q in comb.inp_qint],
            [tuple(int(v) for v in minimal_kif(q)) for q in comb.out_qint])


def _top_verilog(network: FixedNetwork, comb, latency: int) -> str:
    in_kifs, out_kifs = _widths(comb)
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
    return template.format(
        top=TOP, core=CORE, n_in=network.n_inputs, input_type=network.input_type,
        output_type=result, in_msb=network.n_inputs * width - 1, in_width_m1=width - 1,
        out_msb=result.width - 1, latency=latency, valid_shift=valid_shift,
        core_in_msb=offset - 1, core_in=core_in, core_out_msb=core_bits - 1, out_assign=out_assign)


def generate_rtl(network: FixedNetwork, out_dir: Path, clock_period_ns: float,
                 adder_level_ns: float, part: str, check_vectors: np.ndarray,
                 progress=print) -> dict:
    """Write the Verilog into `out_dir` and return its metadata (also `metadata.json`)."""
    from da4ml.codegen import RTLModel

    comb = trace_network(network)
    # Check the traced logic in Python before any Verilog is written.
    expected = network.output_type.to_float(network.forward(check_vectors))
    traced = comb.predict(network.input_type.to_float(check_vectors))
    if not np.array_equal(np.asarray(traced, dtype=np.float64).reshape(expected.shape), expected):
        raise RuntimeError("the da4ml trace differs from the fixed-point reference")
    levels = adder_levels_per_stage(clock_period_ns, adder_level_ns)
    out_dir = Path(out_dir)
    work = out_dir / "da4ml"
    shutil.rmtree(work, ignore_errors=True)
    model = RTLModel(comb, CORE, work, latency_cutoff=levels, clock_period=clock_period_ns,
                     part_name=part, print_latency=False)
    model.write()
    da4ml_meta = json.loads((work / "metadata.json").read_text())
    stages = int(da4ml_meta["latency"])
    latency = stages + 1  # input register, one register per stage boundary, output register
    sources = sorted((work / "src").glob(f"{CORE}*.v"))
    sources = [s for s in sources if s.name != f"{CORE}_wrapper.v"]
    # lookup_table.v reads a placeholder memory file and is only needed for table lookups.
    sources += sorted(p for p in (work / "src" / "static").glob("*.v") if p.name != "lookup_table.v")
    top_file = out_dir / f"{TOP}.v"
    top_file.write_text(_top_verilog(network, comb, latency))
    in_kifs, out_kifs = _widths(comb)
    metadata = {
        "top": TOP,
        "core": CORE,
        "generator": "da4ml RTLModel (verilog), fraudfpga top level",
        "sources": [str(p.relative_to(out_dir)) for p in [top_file, *sources]],
        "ports": {
            "clk": 1, "rst": 1, "in_valid": 1, "out_valid": 1,
            "in_data": network.n_inputs * network.input_type.width,
            "out_data": network.output_type.width,
        },
        "n_inputs": network.n_inputs,
        "input_type": str(network.input_type),
        "input_packing": "input i in bits [i*W+W-1 : i*W], two's complement codes",
        "output_type": str(network.output_type),
        "latency_cycles": latency,
        "initiation_interval_cycles": 1,
        "pipeline_stages": stages,
        "adder_levels_per_stage": levels,
        "adder_levels_total": int(max(comb.latency)),
        "clock_period_ns": clock_period_ns,
        "part": part,
        "adder_level_ns_estimate": adder_level_ns,
        "da4ml_estimates": {"lut_cost": da4ml_meta.get("cost"), "register_bits": da4ml_meta.get("reg_bits"),
                            "kind": "estimated by da4ml's cost model"},
        "core_port_formats": {"inputs": in_kifs, "outputs": out_kifs},
    }
    write_json(out_dir / "metadata.json", metadata)
    progress(f"[rtl] {stages} pipeline stages ({levels} adder levels per stage for "
             f"{clock_period_ns} ns), latency {latency} cycles, II 1; {len(metadata['sources'])} "
             f"Verilog files in {out_dir}")
    return metadata
