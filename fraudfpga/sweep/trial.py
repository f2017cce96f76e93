"""One trial of a sweep: an ordinary run folder (`trials/<id>/`) built up to the Yosys estimate,
and the design's full treatment when it is on the Pareto front.

A trial runs the flow's own steps for its firmware family (data, the family's producer steps,
its Yosys step; `families.py`). The data step is shared: its outputs are linked from the
sweep's `shared/` run and its manifest entry copied, so the registry sees it current (same data
keys, same code). A finished trial leaves `trial.json` with a digest of its configuration; a
trial asked again with the same configuration (a resumed sweep, the same design twice) returns
it without work, one whose sweep settings changed reruns the steps that read them, and one that
was killed reruns only the steps that had not finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import time
import traceback
from pathlib import Path

from fraudfpga.runfolder import RunFolder, json_sha256, write_json

from .spec import DEFAULT_FAMILY

TRIAL_FILE = "trial.json"
TRIAL_LOCK = ".trial.lock"
VERIFY_FILE = "verify.json"


def _run_steps(run: RunFolder, names: tuple[str, ...], log) -> None:
    from fraudfpga.pipeline import STEPS
    from fraudfpga.registry import run_step

    for name in names:
        run_step(run, STEPS[name], progress=log)


def open_trial(trials_dir: Path, trial: str, config: dict) -> RunFolder:
    requested = [("the sweep", {k: v for k, v in config.items() if k != "run"})]
    return RunFolder.open(trials_dir, trial, requested, reconfigure=True, progress=lambda _: None)


def share_data(run: RunFolder, shared: RunFolder) -> None:
    """Link the shared data step's outputs into the trial and copy its manifest entry (again
    when the shared step has run since, e.g. after a code change)."""
    from fraudfpga.pipeline import STEPS

    entry = shared.entry("data")
    if entry is None:
        raise RuntimeError(f"the sweep's shared data step has not run ({shared.root})")
    if run.entry("data") == entry:
        return
    for name in STEPS["data"].outputs:
        target = run.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(shared.path(name), target)
        except OSError:  # another file system
            shutil.copy2(shared.path(name), target)
    run.record("data", entry)


def _node() -> str | None:
    """The Ray node the trial ran on (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _peak_rss_gb() -> float:
    """Peak resident memory of this worker process (an upper bound of the trial's own)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


@contextlib.contextmanager
def trial_lock(run_dir: Path):
    """One process at a time builds a trial folder: two of the sweep's samples can be one design
    (a key its family does not read, or the same values drawn twice), and the second then finds
    the first's result."""
    import fcntl

    with open(run_dir / TRIAL_LOCK, "w") as handle:  # not the run folder's own `.lock`
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def trial_log(run_dir: Path):
    """A trial's log (`trial.log`), appended to by its steps."""
    with open(run_dir / "trial.log", "a") as handle:
        def log(line: str) -> None:
            handle.write(line + "\n")
            handle.flush()

        yield log


def run_trial(trials_dir: str, shared_dir: str, trial: str, config: dict, seeds: int,
              family: str = DEFAULT_FAMILY) -> dict:
    """Build the trial's design (of firmware family `family`) and measure its objectives; the
    result is also `trial.json`. A failure is written there with its cause, then raised (the
    engine records it)."""
    import fraudfpga.kerasenv  # noqa: F401  (TensorFlow's environment, before anything imports it)

    trials_dir = Path(trials_dir)
    result_file = trials_dir / trial / TRIAL_FILE
    digest = json_sha256({"config": config, "seeds": seeds, "family": family})
    (trials_dir / trial).mkdir(parents=True, exist_ok=True)
    with trial_lock(trials_dir / trial):
        if result_file.is_file():
            done = json.loads(result_file.read_text())
            if done.get("status") == "done" and done.get("config_digest") == digest:
                return done | {"cached": True}
        return _build_trial(trials_dir, Path(shared_dir), trial, config, seeds, family, digest)


def _build_trial(trials_dir: Path, shared_dir: Path, trial: str, config: dict, seeds: int,
                 family: str, digest: str) -> dict:
    from .families import FAMILIES

    started, result_file = time.perf_counter(), trials_dir / trial / TRIAL_FILE
    with trial_log(trials_dir / trial) as log:
        try:
            run = open_trial(trials_dir, trial, config)
            share_data(run, RunFolder(shared_dir, config))
            searched = FAMILIES[family]
            _run_steps(run, searched.search_steps, log)
            aps = searched.valid_aps(run, seeds, log)
            if None in aps:
                raise ValueError("the validation window holds one class: AP is undefined, so the "
                                 "sweep has no objective (widen it: split.valid_days or "
                                 "split.valid_fraction)")
            yosys = json.loads(run.path(searched.firmware.yosys).read_text())["resources"]
            rtl = json.loads(run.path(searched.firmware.rtl_metadata).read_text())
            result = {
                "status": "done", "trial": trial, "family": family, "config_digest": digest,
                "ap": sum(aps) / len(aps), "ap_seeds": aps,
                "lut": yosys["LUT"], "ff": yosys["FF"], "lut_ff": yosys["LUT"] + yosys["FF"],
                "carry": yosys["CARRY"], "dsp": yosys["DSP"],
                "cycles": rtl["latency_cycles"], "pipeline_stages": rtl["pipeline_stages"],
                "predicted_fmax_mhz": rtl["predicted"]["fmax_mhz"],
                "seconds": round(time.perf_counter() - started, 1),
                "peak_rss_gb": round(_peak_rss_gb(), 3), "node": _node(),
            }
        except Exception as error:  # recorded for the sweep's table, then raised to Ray
            write_json(result_file, {"status": "failed", "trial": trial,
                                     "cause": f"{type(error).__name__}: {error}",
                                     "traceback": traceback.format_exc(limit=6),
                                     "seconds": round(time.perf_counter() - started, 1)})
            raise
    write_json(result_file, result)
    return result


def verify_design(trials_dir: str, shared_dir: str, trial: str, front_seeds: int,
                  place_and_route: bool) -> dict:
    """The full treatment of a front design: cocotb on the whole test set against its golden
    model, place and route on the run's open family, test-set metrics (the firmware's, and its
    model's AP over `front_seeds` training seeds)."""
    import fraudfpga.kerasenv  # noqa: F401

    from .families import FAMILIES

    run_dir = Path(trials_dir) / trial
    out = run_dir / VERIFY_FILE
    record = json.loads((run_dir / TRIAL_FILE).read_text())
    design, searched = record["config_digest"], FAMILIES[record.get("family", DEFAULT_FAMILY)]
    if out.is_file():
        done = json.loads(out.read_text())
        if done.get("config_digest") == design and (done.get("place_and_route") or not place_and_route):
            return done
    started = time.perf_counter()
    fw = searched.firmware
    with trial_log(run_dir) as log:
        run = open_trial(Path(trials_dir), trial, _config(run_dir))
        share_data(run, RunFolder(Path(shared_dir), run.config))
        # Every step the checks need, brought up to date (the flow skips what is current).
        _run_steps(run, searched.search_steps + searched.verify_steps(place_and_route), log)
        yosys = json.loads(run.path(fw.yosys).read_text())["resources"]
        cycles = json.loads(run.path(fw.rtl_metadata).read_text())["latency_cycles"]
        sim = json.loads(run.path(fw.sim_results).read_text())
        test_aps = searched.test_aps(run, front_seeds, log)
    result = {
        "trial": trial, "family": searched.name, "config_digest": design,
        "place_and_route": place_and_route,
        "lut": yosys["LUT"], "ff": yosys["FF"], "cycles": cycles,
        "vectors_checked": sim["vectors_checked"], "mismatches": sim["mismatch_count"],
        "axis_vectors_checked": sim.get("axis", {}).get("vectors_checked"),
        "axis_errors": sum(sim.get("axis", {}).get(k) or 0
                           for k in ("lost", "duplicated", "reordered", "mismatched")),
        "firmware_test_ap": searched.firmware_test_ap(run),
        "model": searched.model_label,
        "model_test_ap_seeds": test_aps,
        "model_test_ap_mean": (sum(test_aps) / len(test_aps) if None not in test_aps else None),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if place_and_route:
        pnr = json.loads(run.path(fw.pnr).read_text())
        result |= {"device": pnr["device"], "fmax_mhz": pnr["fmax_mhz"], "latency_ns": pnr["latency_ns"],
                   "logic_cells": pnr["logic_cells"], "flip_flops": pnr["flip_flops"]}
    write_json(out, result)
    return result


def _config(run_dir: Path) -> dict:
    from fraudfpga.config import read_yaml

    return read_yaml(run_dir / "config.yaml", "trial configuration")
