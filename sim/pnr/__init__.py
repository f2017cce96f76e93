"""Place and route on open FPGA families; each family is one module registered in `FAMILIES`."""

from . import ecp5, nexus  # noqa: F401  (register the families)
from .family import (FAMILIES, Device, Family, HarnessNetlist, NextpnrOptions, constraint_mhz,
                     family, in_parallel, nextpnr_options, place_and_route, synthesize_in_harness)

__all__ = ["FAMILIES", "Device", "Family", "HarnessNetlist", "NextpnrOptions", "constraint_mhz",
           "family", "in_parallel", "nextpnr_options", "place_and_route", "synthesize_in_harness"]
