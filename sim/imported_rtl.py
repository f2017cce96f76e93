"""The imported family's rtl step: the imported model's fixed-point form (a forest or a network,
tagged by the import step) through the generator of its kind, then the verification steps every
family shares."""

from __future__ import annotations

from fraudfpga.hls.artifacts import IMPORTED_FIXED
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder

from . import flow, forest_rtl
from .artifacts import IMPORTED_FIRMWARE

GENERATORS = {"forest": forest_rtl.write_rtl, "network": flow.write_network_rtl}


def generate(run: RunFolder, cfg, progress=print) -> list[str]:
    from fraudfpga.hls.imported_flow import load_fixed

    kind, fixed = load_fixed(run.path(IMPORTED_FIXED))
    return GENERATORS[kind](IMPORTED_FIRMWARE, IMPORTED_FIXED, fixed, run, cfg, progress)


register(Step(
    name=IMPORTED_FIRMWARE.step("rtl"), command="rtl",
    help="generate pipelined Verilog (II = 1) of your imported model's firmware: the forest "
         "generator for a tree ensemble, da4ml for a network",
    reads=tuple(dict.fromkeys(forest_rtl.FOREST_RTL_READS + flow.NETWORK_RTL_READS)),
    inputs=(IMPORTED_FIXED, IMPORTED_FIRMWARE.golden), outputs=(IMPORTED_FIRMWARE.rtl_metadata,),
    body=generate, code=(*flow.SIM_CODE, "fraudfpga.hls.forest", "fraudfpga.hls.imported_flow"),
    external_inputs=flow.delay_model_file, family=IMPORTED_FIRMWARE.name))
flow.register_verification(IMPORTED_FIRMWARE)
