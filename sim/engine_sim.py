"""The feature engine's RTL through cocotb: build once, replay an op stream, compare with the
software reference (`engine_reference`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .engine_reference import Expected, Ops, expected_outputs
from .engine_rtl import EngineParameters, write_engine_rtl
from .runner import build, run_testbench

ENGINE_TESTBENCH = "fraudfpga.sim.engine_testbench"
ENGINE_AXIS_TESTBENCH = "fraudfpga.sim.engine_axis_testbench"


def build_engine(folder: Path, params: EngineParameters, sim: str, progress=print,
                 write=None, ops: int | None = None) -> dict:
    """The engine's RTL in `folder`/rtl (written by `write(rtl_folder)`, default the engine
    alone), built for `sim` in `folder`/build (reused while the Verilog is unchanged) for
    replaying `ops` ops (unknown: many); returns its metadata."""
    folder = Path(folder)
    metadata = (write or (lambda rtl: write_engine_rtl(rtl, params)))(folder / "rtl")
    build(folder / "rtl", metadata, sim, folder / "build", progress, vectors=ops)
    return metadata


def replay(folder: Path, metadata: dict, ops: Ops, sim: str, name: str,
           idle_probability: float = 0.0, seed: int = 0,
           expected: Expected | None = None, scores: np.ndarray | None = None,
           progress=print) -> dict:
    """`ops` through the built engine (or engine + model) in `folder`/`name`: its results (see
    engine_testbench), checked against `expected` (default: the reference's outputs for `ops`)
    and, for a top with a model, each transaction's score code against `scores`."""
    folder = Path(folder)
    work = folder / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for data_file in metadata["data_files"]:  # $readmemh reads relative to the simulation
        shutil.copy(folder / "rtl" / data_file, work / data_file)
    params = EngineParameters(**metadata["parameters"])
    expected = expected or expected_outputs(ops, params)
    np.savez(work / "ops.npz", label=ops.label, time=ops.time, card=ops.card,
             terminal=ops.terminal, cents=ops.cents)
    np.savez(work / "expected.npz", features=expected.features, flags=expected.flags,
             counters=json.dumps(expected.counters),
             **({} if scores is None else {"scores": np.asarray(scores, dtype=np.int64)}))
    progress(f"[engine] {sim}: {len(ops):,} ops ({ops.transactions:,} transactions, "
             f"{len(ops) - ops.transactions:,} fraud labels)"
             + (f", idle clocks with probability {idle_probability}" if idle_probability else ""))
    return run_testbench(metadata["top"], ENGINE_TESTBENCH, sim, folder / "build", work,
                         {"metadata": metadata, "ops": str((work / "ops.npz").resolve()),
                          "expected": str((work / "expected.npz").resolve()),
                          "idle_probability": idle_probability, "seed": seed})


def replay_axis(folder: Path, metadata: dict, ops: Ops, sim: str, name: str,
                expected: Expected, scores: np.ndarray, input_pause: float = 0.0,
                ready_pause: float = 0.0, seed: int = 0, progress=print) -> dict:
    """`ops` through the engine + model's AXI4-Stream top (built in `folder`/build_axis), with
    tready low and input gaps at the given probabilities: its results (engine_axis_testbench)."""
    folder = Path(folder)
    top = metadata["axis"]["top"]
    build(folder / "rtl", metadata, sim, folder / "build_axis", progress, top=top, vectors=len(ops))
    work = folder / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for data_file in metadata["data_files"]:
        shutil.copy(folder / "rtl" / data_file, work / data_file)
    np.savez(work / "ops.npz", label=ops.label, time=ops.time, card=ops.card,
             terminal=ops.terminal, cents=ops.cents)
    np.savez(work / "expected.npz", features=expected.features, flags=expected.flags,
             counters=json.dumps(expected.counters), scores=np.asarray(scores, dtype=np.int64))
    progress(f"[engine] {sim}: {len(ops):,} ops through the AXI4-Stream top (tready low with "
             f"probability {ready_pause}, input gaps with {input_pause})")
    return run_testbench(top, ENGINE_AXIS_TESTBENCH, sim, folder / "build_axis", work,
                         {"metadata": metadata, "ops": str((work / "ops.npz").resolve()),
                          "expected": str((work / "expected.npz").resolve()),
                          "input_pause": input_pause, "ready_pause": ready_pause, "seed": seed})
