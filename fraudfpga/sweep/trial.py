"""One trial of a sweep: an ordinary run folder (`trials/<id>/`) built up to the Yosys estimate,
and the design's full treatment when it is on the Pareto front.

A trial runs the flow's own steps (data, train, hls, rtl, synth_yosys). The data step is shared:
its outputs are linked from the sweep's `shared/` run and its manifest entry copied, so the
registry sees it current (same data keys, same code). A finished trial leaves `trial.json` with
a digest of its configuration; a trial asked again with the same configuration (a resumed
sweep, the same settings twice) returns it without work, one whose sweep settings changed
reruns the steps that read them, and one that was killed reruns only the steps that had not
finished.
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

SEARCH_STEPS = ("data", "train", "hls", "rtl", "synth_yosys")
VERIFY_STEPS = ("sim", "pnr")
TRIAL_FILE = "trial.json"
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


def more_seeds(run: RunFolder, count: int, log) -> list:
    """The QKeras model trained here for `count` more training seeds (seed + 1, ...) with the
    run's settings: the `Trained` results, for averaging over seeds."""
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.train import TrainingData, train_network

    if not count:
        return []
    split = TrainingData(PreparedData(run.root), run.config["train"]["refit"])
    return [train_network("qkeras", split, run.config, run.config["seed"] + offset, log)
            for offset in range(1, count + 1)]


@contextlib.contextmanager
def trial_log(run_dir: Path):
    """A trial's log (`trial.log`), appended to by its steps."""
    with open(run_dir / "trial.log", "a") as handle:
        def log(line: str) -> None:
            handle.write(line + "\n")
            handle.flush()

        yield log


def run_trial(trials_dir: str, shared_dir: str, trial: str, config: dict, seeds: int) -> dict:
    """Build the trial's design and measure its objectives; the result is also `trial.json`.
    A failure is written there with its cause, then raised (the engine records it)."""
    import fraudfpga.kerasenv  # noqa: F401  (TensorFlow's environment, before anything imports it)

    trials_dir, started = Path(trials_dir), time.perf_counter()
    result_file = trials_dir / trial / TRIAL_FILE
    digest = json_sha256({"config": config, "seeds": seeds})
    if result_file.is_file():
        done = json.loads(result_file.read_text())
        if done.get("status") == "done" and done.get("config_digest") == digest:
            return done | {"cached": True}
    (trials_dir / trial).mkdir(parents=True, exist_ok=True)
    with trial_log(trials_dir / trial) as log:
        try:
            run = open_trial(trials_dir, trial, config)
            share_data(run, RunFolder(Path(shared_dir), config))
            _run_steps(run, SEARCH_STEPS, log)
            summary = json.loads(run.path("models/summary.json").read_text())
            aps = [summary["training"]["qkeras"]["best_valid_ap"],
                   *(t.record["best_valid_ap"] for t in more_seeds(run, seeds - 1, log))]
            yosys = json.loads(run.path("synth/yosys.json").read_text())["resources"]
            rtl = json.loads(run.path("rtl/metadata.json").read_text())
            result = {
                "status": "done", "trial": trial, "config_digest": digest,
                "ap": sum(aps) / len(aps), "ap_seeds": aps,
                "lut": yosys["LUT"], "ff": yosys["FF"], "lut_ff": yosys["LUT"] + yosys["FF"],
                "carry": yosys["CARRY"], "dsp": yosys["DSP"],
                "cycles": rtl["latency_cycles"], "pipeline_stages": rtl["pipeline_stages"],
                "predicted_fmax_mhz": rtl["predicted"]["fmax_mhz"],
                "compression": summary["training"]["qkeras"].get("compression"),
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
    """The full treatment of a front design: cocotb on the whole test set against the hls4ml C
    simulation, place and route on the run's open family, test-set metrics (the firmware's, and
    the QKeras model's AP over `front_seeds` training seeds)."""
    import fraudfpga.kerasenv  # noqa: F401
    from sklearn.metrics import average_precision_score

    from fraudfpga.models.dataset import PreparedData

    run_dir = Path(trials_dir) / trial
    out = run_dir / VERIFY_FILE
    design = json.loads((run_dir / TRIAL_FILE).read_text())["config_digest"]
    if out.is_file():
        done = json.loads(out.read_text())
        if done.get("config_digest") == design and (done.get("place_and_route") or not place_and_route):
            return done
    started = time.perf_counter()
    with trial_log(run_dir) as log:
        run = open_trial(Path(trials_dir), trial, _config(run_dir))
        share_data(run, RunFolder(Path(shared_dir), run.config))
        # Every step the checks need, brought up to date (the flow skips what is current).
        _run_steps(run, SEARCH_STEPS + (VERIFY_STEPS if place_and_route else ("sim",)), log)
        yosys = json.loads(run.path("synth/yosys.json").read_text())["resources"]
        cycles = json.loads(run.path("rtl/metadata.json").read_text())["latency_cycles"]
        sim = json.loads(run.path("sim/results.json").read_text())
        firmware = json.loads(run.path("hls/metrics.json").read_text())
        labels = PreparedData(run.root).labels("test")
        metrics = json.loads(run.path("models/metrics.json").read_text())
        test_aps = [metrics["models"]["qkeras"]["average_precision"],
                    *(float(average_precision_score(labels, t.scores["test"]))
                      for t in more_seeds(run, front_seeds - 1, log))]
    result = {
        "trial": trial, "config_digest": design, "place_and_route": place_and_route,
        "lut": yosys["LUT"], "ff": yosys["FF"], "cycles": cycles,
        "vectors_checked": sim["vectors_checked"], "mismatches": sim["mismatch_count"],
        "axis_vectors_checked": sim.get("axis", {}).get("vectors_checked"),
        "axis_errors": sum(sim.get("axis", {}).get(k) or 0
                           for k in ("lost", "duplicated", "reordered", "mismatched")),
        "firmware_test_ap": firmware["firmware"]["average_precision"],
        "qkeras_test_ap_seeds": test_aps, "qkeras_test_ap_mean": sum(test_aps) / len(test_aps),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if place_and_route:
        pnr = json.loads(run.path("synth/pnr.json").read_text())
        result |= {"device": pnr["device"], "fmax_mhz": pnr["fmax_mhz"], "latency_ns": pnr["latency_ns"],
                   "logic_cells": pnr["logic_cells"], "flip_flops": pnr["flip_flops"]}
    write_json(out, result)
    return result


def _config(run_dir: Path) -> dict:
    from fraudfpga.config import read_yaml

    return read_yaml(run_dir / "config.yaml", "trial configuration")
