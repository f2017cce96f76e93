"""Files the rtl, sim, open-synthesis and place-and-route steps write in the run folder."""

import json
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Firmware:
    """The contract one firmware family's producer hands every later step: golden vectors
    (`golden`: test-set and random/edge input codes with the golden model's output codes), the
    RTL with its metadata (tops, ports, formats, latency), and where the verification, synthesis
    and place-and-route results of that RTL go. The steps after the producer read only these
    files, whichever converter made the firmware."""
    name: str
    label: str
    golden: str
    folder: str  # prefix of the paths below ("" for the network: its paths predate forests)
    step_prefix: str
    producer: tuple[str, ...]  # the steps after `data` that make the contract, in order

    def path(self, relative: str) -> str:
        return f"{self.folder}/{relative}" if self.folder else relative

    def step(self, base: str) -> str:
        return self.step_prefix + base

    @property
    def rtl_dir(self) -> str:
        return self.path(RTL_DIR)

    @property
    def rtl_metadata(self) -> str:
        return self.path(RTL_METADATA)

    @property
    def sim_dir(self) -> str:
        return self.path("sim")

    @property
    def sim_results(self) -> str:
        return self.path(SIM_RESULTS)

    @property
    def sim_junit(self) -> str:
        return self.path(SIM_JUNIT)

    @property
    def yosys(self) -> str:
        return self.path(YOSYS)

    @property
    def pnr(self) -> str:
        return self.path(PNR)

    @property
    def pnr_dir(self) -> str:
        return self.path(PNR_DIR)

    def rtl_sources(self, run) -> list[str]:
        """The Verilog files the family's rtl step wrote, as listed in its metadata."""
        metadata = json.loads(run.path(self.rtl_metadata).read_text())
        return [f"{self.rtl_dir}/{s}" for s in metadata["sources"]]


NETWORK_FIRMWARE = Firmware("network", "network firmware (hls4ml + da4ml)", "hls/golden.npz", "",
                            "", producer=("train", "hls", "rtl"))
FOREST_FIRMWARE = Firmware("forest", "forest firmware (conifer + forest RTL)",
                           "forest/golden.npz", "forest", "forest_",
                           producer=("forest", "forest_rtl"))
IMPORTED_FIRMWARE = Firmware("imported", "imported model's firmware (conifer + forest RTL)",
                             "imported/golden.npz", "imported", "imported_",
                             producer=("imported", "imported_rtl"))
FIRMWARES = {f.name: f for f in (NETWORK_FIRMWARE, FOREST_FIRMWARE, IMPORTED_FIRMWARE)}

ENGINE_DIR = "engine"  # the feature engine's RTL, its build and its cocotb replay
ENGINE_RESULTS = "engine/results.json"
ENGINE_FOREST_DIR = "engine/forest"  # the engine in front of the forest firmware: RTL, build, replay
ENGINE_FOREST_RESULTS = "engine/forest_results.json"
ENGINE_PNR_DIR = "engine/pnr"  # the engine + forest placed and routed
ENGINE_PNR = "engine/pnr.json"
