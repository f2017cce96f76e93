"""Verilator's compiler prefix (`OBJCACHE` in verilated.mk): reuse Verilator's own runtime
objects across builds.

Every Verilator model compiles the same runtime (`verilated.cpp`, `verilated_vpi.cpp`,
`verilated_threads.cpp`) with the same flags: about 8 of a small design's 10 build seconds on
this project's machine, repeated for every top level of every run. This prefix runs every
other compile command unchanged; a runtime compile is looked up by the command (output name
left out), the compiler's version and the source's content, and on a miss compiled and stored.
The objects and make's dependency files are copied atomically, so parallel builds are safe.

Usage (set by `sim.runner.simulator_environment`): OBJCACHE="python -m fraudfpga.sim.objcache"
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from fraudfpga.compile_cache import cache_folder, copy_atomically

RUNTIME_SOURCES = ("verilated.cpp", "verilated_vpi.cpp", "verilated_threads.cpp")


def cache_root() -> Path:
    return cache_folder("verilator-runtime")


def key(command: list[str], output: str, source: Path) -> str:
    compiler = subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256(json.dumps([[c for c in command if c != output],
                                        compiler.splitlines()[:1]]).encode())
    digest.update(source.read_bytes())
    return digest.hexdigest()[:24]


def main(command: list[str]) -> int:
    source = Path(command[-1]) if command else Path()
    if source.name not in RUNTIME_SOURCES or "-o" not in command or not source.is_file():
        return subprocess.call(command)
    output = command[command.index("-o") + 1]
    made = [Path(output), Path(output).with_suffix(".d")]  # -MMD writes the .d beside the .o
    stored = cache_root() / key(command, output, source)
    if all((stored / p.name).is_file() for p in made):
        for p in made:
            copy_atomically(stored / p.name, p)
        return 0
    status = subprocess.call(command)
    if status == 0 and all(p.is_file() for p in made):
        stored.mkdir(parents=True, exist_ok=True)
        for p in made:
            copy_atomically(p, stored / p.name)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
