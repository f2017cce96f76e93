"""Place and route on open FPGA families; each family is one module registered in `FAMILIES`."""

from . import ecp5, nexus  # noqa: F401  (register the families)
from .family import FAMILIES, Device, Family, constraint_mhz, family, place_and_route

__all__ = ["FAMILIES", "Device", "Family", "constraint_mhz", "family", "place_and_route"]
