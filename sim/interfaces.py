"""The top levels the rtl step writes around the da4ml pipeline, and what a tool needs to know
of each: its module, clock and reset, its ports with their directions, its latency.

- `valid`: `in_valid`/`in_data` -> `out_valid`/`out_data`, no backpressure (templates/top.v).
- `axis`: AXI4-Stream slave for transactions and master for scores, with backpressure, built
  around the `valid` top (templates/axis_top.v); what an FPGA engineer integrates.

Every tool (cocotb, Yosys, the place-and-route harness) takes an `Interface` rather than
knowing port names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources

from fraudfpga.hls.fixed import FixedType

VALID_TOP = "fraud_mlp_top"
AXIS_TOP = "fraud_mlp_axis"
AXIS_CE_TOP = "fraud_mlp_axis_ce"
CE_VALID_TOP = "fraud_mlp_top_ce"  # the valid top with a clock enable (rtl.clock_enabled_core)
AXIS_DEFAULT_ID_BITS = 16


@dataclass(frozen=True)
class Interface:
    """One top level: module, clock, reset, ports ({name: bits}) and latency in cycles."""
    name: str
    top: str
    file: str
    clock: str
    reset: str
    reset_active_low: bool
    inputs: dict[str, int]
    outputs: dict[str, int]
    latency_cycles: int
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Interface":
        return cls(**data)


def byte_multiple(bits: int) -> int:
    """AXI4-Stream TDATA is a whole number of bytes (IP integrator and the DMA engines need it)."""
    return -(-bits // 8) * 8


def valid_interface(network, latency: int, top: str = VALID_TOP) -> Interface:
    """`network`: any firmware with n_inputs, input_type and output_type (a network, a forest)."""
    return Interface(
        name="valid", top=top, file=f"{top}.v", clock="clk", reset="rst",
        reset_active_low=False,
        inputs={"in_valid": 1, "in_data": network.n_inputs * network.input_type.width},
        outputs={"out_valid": 1, "out_data": network.output_type.width},
        latency_cycles=latency)


def axis_depth(latency: int) -> int:
    """Credits (= output FIFO entries) for one transaction per clock: the `latency`
    transactions in the pipeline, the one in the FIFO's output register, and the one admitted
    in the same cycle (s_axis_tready is a register)."""
    return latency + 2


def axis_interface(network, latency: int, id_bits: int = AXIS_DEFAULT_ID_BITS,
                   top: str = AXIS_TOP, valid_top: str = VALID_TOP) -> Interface:
    in_bits = network.n_inputs * network.input_type.width
    out_type: FixedType = network.output_type
    depth = axis_depth(latency)
    return Interface(
        name="axis", top=top, file=f"{top}.v", clock="aclk", reset="aresetn",
        reset_active_low=True,
        inputs={"s_axis_tvalid": 1, "s_axis_tdata": byte_multiple(in_bits),
                "s_axis_tuser": id_bits, "s_axis_tlast": 1, "m_axis_tready": 1},
        outputs={"s_axis_tready": 1, "m_axis_tvalid": 1, "m_axis_tdata": byte_multiple(out_type.width),
                 "m_axis_tuser": id_bits, "m_axis_tlast": 1},
        latency_cycles=latency + 1,
        details={"depth": depth, "id_bits": id_bits, "core_latency_cycles": latency,
                 "valid_top": valid_top,
                 "wrapper_latency_cycles": 1, "transaction_bits": in_bits,
                 "score_bits": out_type.width,
                 "score_extension": "sign" if out_type.signed else "zero",
                 "backpressure": "credit-based admission, output FIFO of DEPTH entries",
                 "reset": "synchronous, active low; transactions in flight are dropped"})


def axis_ce_interface(network, latency: int, id_bits: int = AXIS_DEFAULT_ID_BITS) -> Interface:
    """The clock-enable alternative (`make interface-study` only): same ports, no FIFO, no added
    latency; ce holds every pipeline register while the output waits."""
    base = axis_interface(network, latency, id_bits)
    return Interface(**{**base.as_dict(), "name": "axis_ce", "top": AXIS_CE_TOP,
                        "file": f"{AXIS_CE_TOP}.v", "latency_cycles": latency,
                        "details": {**base.details, "depth": None, "wrapper_latency_cycles": 0,
                                    "backpressure": "clock enable through the whole pipeline"}})


def axis_verilog(network, iface: Interface, what: str = "the fixed-point fraud MLP") -> str:
    """The Verilog of an AXI4-Stream top (`axis` or `axis_ce`) around the `valid` top of
    `what`."""
    out_type: FixedType = network.output_type
    details = iface.details
    out_bits, m_bits = details["score_bits"], iface.outputs["m_axis_tdata"]
    pad = m_bits - out_bits
    fill = (f"{{{pad}{{result[{out_bits - 1}]}}}}" if out_type.signed else f"{{{pad}{{1'b0}}}}")
    m_assign = f"{{{fill}, result}}" if pad else "result"
    clock_enable = iface.name == "axis_ce"
    template = resources.files("fraudfpga.sim").joinpath(
        "templates/axis_ce_top.v" if clock_enable else "templates/axis_top.v").read_text()
    return template.format(
        top=iface.top,
        valid_top=CE_VALID_TOP if clock_enable else details.get("valid_top", VALID_TOP),
        what=what,
        depth=details["depth"], out_bits_m1=out_bits - 1,
        n_in=network.n_inputs, input_type=network.input_type, in_width_m1=network.input_type.width - 1,
        s_msb=iface.inputs["s_axis_tdata"] - 1, id_msb=details["id_bits"] - 1,
        id_bits=details["id_bits"], output_type=out_type, extension=details["score_extension"],
        m_width=m_bits, m_msb=m_bits - 1, latency=details["core_latency_cycles"],
        out_bits=out_bits, m_assign=m_assign, in_msb=details["transaction_bits"] - 1)


def interfaces(metadata: dict) -> dict[str, Interface]:
    return {name: Interface.from_dict(d) for name, d in metadata["interfaces"].items()}


def interface(metadata: dict, name: str) -> Interface:
    known = metadata.get("interfaces", {})
    if name not in known:
        raise ValueError(f"rtl.interface: {name!r} is not among this RTL's top levels "
                         f"({', '.join(known) or 'none; rerun `make rtl`'})")
    return Interface.from_dict(known[name])
