"""Open-source synthesis of the generated RTL with Yosys (`synth_xilinx`, UltraScale+).

The figures are Yosys estimates of an out-of-context synthesis (no I/O buffers), not
placed-and-routed vendor results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

from fraudfpga.errors import ToolFailed, ToolMissing, cause_line

CELL_GROUPS = {
    "LUT": re.compile(r"^LUT\d$"),
    "FF": re.compile(r"^FD[A-Z]*$"),
    "CARRY": re.compile(r"^CARRY\d$"),
    "DSP": re.compile(r"^DSP"),
    "BRAM": re.compile(r"^RAMB"),
    "LUTRAM": re.compile(r"^RAM\d"),
    "SRL": re.compile(r"^SRL"),
    "MUXF": re.compile(r"^MUXF"),
}


def yowasp_command(tool: str, system_name: str, install: str) -> list[str]:
    """A YoWASP tool from PyPI (installed with the package), else the system's native one."""
    scripts = Path(sysconfig.get_paths()["scripts"])
    for candidate in (scripts / f"yowasp-{tool}", shutil.which(f"yowasp-{tool}"),
                      shutil.which(system_name)):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    raise ToolMissing(f"{system_name} not found: `make setup` installs it from PyPI (pip install "
                      f"yowasp-{tool}), or {install}")


def yosys_command() -> list[str]:
    return yowasp_command("yosys", "yosys", "install Debian's package (apt-get install yosys)")


def yosys_version() -> str:
    done = subprocess.run([*yosys_command(), "-V"], capture_output=True, text=True)
    return done.stdout.strip()


def run_in_common_folder(command: list[str], args, rtl_dir: Path, out_dir: Path, what: str):
    """Run a tool in the common parent of the RTL and output folders, with relative paths.

    YoWASP tools (WebAssembly) see only their working directory. `args` is called with the
    relative (rtl, out) folders and returns the arguments.
    """
    base = Path(os.path.commonpath([rtl_dir, out_dir]))
    rtl, out = rtl_dir.relative_to(base), out_dir.relative_to(base)
    started = time.perf_counter()
    done = subprocess.run([*command, *args(rtl, out)], capture_output=True, text=True, cwd=base)
    if done.returncode != 0:
        raise ToolFailed(f"{what} failed: {cause_line(done.stderr + done.stdout)} (files: {out_dir})")
    return time.perf_counter() - started


def without_fsm_search(synth: str, until: str = "") -> str:
    """The script lines that run `synth` (a `synth_*` command with its options) with every wire
    marked `fsm_encoding "none"` after its first section: Yosys's `fsm_detect` then passes over
    the registers at once. The generated RTL holds no state machine (pipeline registers,
    comparators, adders); the default forest's synth_ecp5 took 63.5 s of CPU instead of 83.4 s,
    for the same cells. With `until`, the script stops before that section."""
    return (f"{synth} -run begin:coarse\n"
            'setattr -set fsm_encoding "none" w:*\n'
            f"{synth} -run coarse:{until}\n")


# synth_xilinx's `map_luts` section with Yosys's classic `abc` in place of `abc9` (the LUT
# costs, SRL, LUT and flip-flop mapping lines are the section's own). abc9 maps for delay
# through the carry chains as boxes; for an out-of-context resource estimate that costs 3.2
# times the CPU on the default network (85 s against 27 s alone, 14,105 against 14,028 LUTs)
# and 1.4 times on the default forest (80 s against 56 s, 15,893 against 16,066 LUTs + 921
# MUXF7/8), so the estimate maps with abc (docs/rtl.md, "Open-source synthesis").
CLASSIC_ABC_LUT_MAPPING = """opt_expr -mux_undef -noclkinv
abc -luts 2:2,3,6:5,10,20
clean
xilinx_srl -fixed -minlen 3
techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6
xilinx_dffopt
opt_lut_ins -tech xilinx
"""


def synth_xilinx_with_classic_abc(synth: str) -> str:
    """The script lines that run `synth` (synth_xilinx with its options) without the FSM search
    and with its LUT mapping by classic `abc`."""
    return (without_fsm_search(synth, until="map_luts") + CLASSIC_ABC_LUT_MAPPING
            + f"{synth} -run finalize:\n")


def _read_sources(rtl: Path, metadata: dict) -> str:
    return "read_verilog -sv " + " ".join(str(rtl / s) for s in metadata["sources"])


def synthesize(rtl_dir: Path, metadata: dict, out_dir: Path, family: str = "xcup",
               progress=print, top: str | None = None, blackbox: str | None = None) -> dict:
    """Run synth_xilinx on the design with `top` (default: the metadata's) as its top level;
    return resource counts and logic depth. With `blackbox`, that module is left out (a black
    box): the counts are then those of the logic around it, e.g. a wrapper alone."""
    rtl_dir, out_dir = Path(rtl_dir).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    top = top or metadata["top"]

    def args(rtl: Path, out: Path) -> list[str]:
        (out_dir / "synth.ys").write_text(
            f"{_read_sources(rtl, metadata)}\n"
            + (f"blackbox {blackbox}\n" if blackbox else "")
            + synth_xilinx_with_classic_abc(
                f"synth_xilinx -family {family} -top {top} -flatten -noiopad")
            + f"tee -o {out / 'yosys_stat.txt'} stat\n"
            f"tee -q -o {out / 'yosys_stat.json'} stat -json\n"
            f"tee -o {out / 'yosys_ltp.txt'} ltp -noff\n")
        return ["-q", "-l", str(out / "yosys.log"), "-s", str(out / "synth.ys")]

    command = yosys_command()
    progress(f"[synth] {Path(command[0]).name}: synth_xilinx -family {family} on {top}"
             + (f" ({blackbox} as a black box)" if blackbox else ""))
    seconds = run_in_common_folder(command, args, rtl_dir, out_dir, "Yosys")
    stat_json = out_dir / "yosys_stat.json"
    stat = json.loads(stat_json.read_text())
    # With kept hierarchy levels (the forest's fan-out registers) `design` holds the totals.
    module = stat.get("design") or stat["modules"].get(f"\\{top}") or next(iter(stat["modules"].values()))
    cells = module.get("num_cells_by_type", {})
    counts = {group: sum(n for cell, n in cells.items() if pattern.match(cell))
              for group, pattern in CELL_GROUPS.items()}
    ltp = (out_dir / "yosys_ltp.txt").read_text()
    depths = [int(d) for d in re.findall(r"length=(\d+)", ltp)]  # one per module
    return {
        "kind": "estimated by Yosys synthesis (out of context, not placed or routed)",
        "tool": "yosys", "tool_version": yosys_version(),
        "command": f"synth_xilinx -family {family} (LUTs mapped by abc, not abc9)",
        "family": family, "top": top, "black_box": blackbox,
        "resources": counts, "cells_by_type": cells,
        "logic_depth_cells": max(depths) if depths else None,
        "logic_depth_note": "longest path between flip-flops, counted in cells (LUTs and carry "
                            "cells), from Yosys `ltp -noff`",
        "seconds": round(seconds, 1),
    }
