"""Files the rtl, sim, open-synthesis and place-and-route steps write in the run folder."""

RTL_DIR = "rtl"
RTL_METADATA = "rtl/metadata.json"
TOP_VERILOG = "rtl/fraud_mlp_top.v"
AXIS_VERILOG = "rtl/fraud_mlp_axis.v"
SIM_RESULTS = "sim/results.json"
SIM_JUNIT = "sim/results.xml"
YOSYS = "synth/yosys.json"
PNR_DIR = "synth/pnr"
PNR = "synth/pnr.json"
TIMING_POINTS = "timing/points.json"
TIMING_CHOSEN = "timing/chosen.json"
TIMING_PLOT = "timing/latency_vs_fmax.png"
TIMING_TABLE = "timing/points.md"
INTERFACE_STUDY_DIR = "interfaces"
INTERFACE_STUDY = "synth/interfaces.json"


def rtl_sources(run) -> list[str]:
    """The Verilog files the rtl step wrote, as listed in its metadata."""
    import json

    metadata = json.loads(run.path(RTL_METADATA).read_text())
    return [f"{RTL_DIR}/{s}" for s in metadata["sources"]]
