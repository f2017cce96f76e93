"""`fraudfpga sweep SWEEP.yaml`: the trials run on Ray Tune, the front gets the full treatment.

Ray is local by default (sized to this machine's cores) or the cluster at `--address`; the
trials' run folders must then be on storage every node sees. Strategies: grid
(`tune.grid_search`), random (`tune.choice`, seeded) and optuna (Ray's `OptunaSearch` with the
three objectives: validation AP up, Yosys LUT+FF down, cycles down). The sweep folder
`fpga_projects/sweep-<name>/` holds the shared data run, the trials' run folders, Ray's
experiment (resumed when the same sweep is started again), `sweep.json` and the sweep page.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from fraudfpga.errors import FlowError
from fraudfpga.runfolder import RunFolder, write_json

from .pareto import OBJECTIVES, front
from .spec import SweepSpec, family_of, load_spec, trial_config, trial_id
from .trial import TRIAL_FILE, run_trial, verify_design

STATE = "sweep.json"
ADDRESS_TIMEOUT_S = 3.0


def check_address(address: str) -> None:
    """Fail in seconds, naming the address, when no Ray cluster answers there."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise FlowError(f"--address {address!r}: expected host:port of a Ray cluster's head "
                        "(the address `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as error:
        raise FlowError(f"--address {address}: no Ray cluster answers there ({error}); start one "
                        "with `ray start --head`, or leave --address out for a local Ray") from None


def connect(address: str | None) -> int:
    """Start or join Ray; returns the CPUs trials may use."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: Ray Tune prints nothing
    if address:
        check_address(address)
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False, object_store_memory=200 * 1024 ** 2)
    return int(ray.cluster_resources().get("CPU", 1))


def _design(spec: SweepSpec, indices: dict) -> dict:
    """The design of the values Ray picked: the family and the keys it reads (a grid picks
    among the distinct designs directly)."""
    if "design" in indices:
        return spec.designs()[indices["design"]]
    return spec.design({key: spec.space[key][indices[f"p{i}"]] for i, key in enumerate(spec.keys)})


def _run_design(spec: SweepSpec, base: dict, design: dict, trials_dir: str, shared_dir: str) -> dict:
    name = trial_id(design)
    return run_trial(trials_dir, shared_dir, name, trial_config(base, design, name), spec.seeds,
                     family_of(design))


def trainable(params: dict, spec: dict, base: dict, trials_dir: str, shared_dir: str) -> None:
    """The Ray Tune function: one trial's objectives."""
    from ray import tune

    sweep = SweepSpec(**spec)
    result = _run_design(sweep, base, _design(sweep, params), trials_dir, shared_dir)
    tune.report({k: result[k] for k in ("ap", "lut_ff", "lut", "ff", "cycles", "seconds")}
                | {"trial": result["trial"], "family": result["family"]})


def _param_space(spec: SweepSpec) -> dict:
    from ray import tune

    if spec.strategy == "grid":
        return {"design": tune.grid_search(list(range(len(spec.designs()))))}
    return {f"p{i}": tune.choice(list(range(len(values))))
            for i, values in enumerate(spec.space.values())}


def _search(spec: SweepSpec):
    if spec.strategy == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(metric=list(OBJECTIVES), mode=list(OBJECTIVES.values()), seed=spec.seed)
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=spec.seed)


class Progress:
    """One line per finished trial: its objectives, the best AP so far, done/left, time per
    trial (a Ray Tune callback)."""

    def __init__(self, total: int, progress):
        from ray import tune

        outer = self

        class Callback(tune.Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                outer.finished(trial.last_result or {}, None)

            def on_trial_error(self, iteration, trials, trial, **info):
                outer.finished(trial.last_result or {}, trial)

        self.callback = Callback()
        self.total, self.progress = total, progress
        self.done, self.best, self.started = 0, None, time.perf_counter()

    def finished(self, result: dict, errored) -> None:
        self.done += 1
        per_trial = (time.perf_counter() - self.started) / self.done
        if errored is not None:
            text = f"trial failed ({errored.error_file or 'see its trial.log'})"
        else:
            self.best = max(self.best or 0.0, result["ap"])
            text = (f"{result['trial']} ({result['family']}): AP {result['ap']:.4f}, "
                    f"{result['lut_ff']:,} LUT+FF, "
                    f"{result['cycles']} cycles ({result['seconds']:.0f} s)")
        best = f"best AP so far {self.best:.4f}" if self.best is not None else "no AP yet"
        self.progress(f"[sweep] {self.done}/{self.total} {text}; {best}; "
                      f"{max(self.total - self.done, 0)} left, {per_trial:.0f} s per trial")


def _tuner(spec: SweepSpec, base: dict, root: Path, cpus: int, progress):
    from ray import tune

    experiment = f"{spec.name}-{spec.digest()}"
    storage = (root / "ray").resolve()
    function = tune.with_resources(
        tune.with_parameters(trainable, spec=spec.as_dict(), base=base,
                             trials_dir=str((root / "trials").resolve()),
                             shared_dir=str((root / "shared").resolve())),
        {"cpu": 1})
    tracker = Progress(_total(spec), progress)
    run_config = tune.RunConfig(name=experiment, storage_path=str(storage), verbose=0,
                                callbacks=[tracker.callback],
                                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False))
    path = storage / experiment
    if tune.Tuner.can_restore(path):
        progress(f"[sweep] resuming {path} (finished trials are kept; unfinished and failed "
                 "ones run again)")
        return tune.Tuner.restore(str(path), function, resume_unfinished=True, resume_errored=True,
                                  param_space=_param_space(spec))
    return tune.Tuner(function, param_space=_param_space(spec), run_config=run_config,
                      tune_config=tune.TuneConfig(search_alg=_search(spec),
                                                  num_samples=1 if spec.strategy == "grid" else spec.trials,
                                                  max_concurrent_trials=cpus))


def _total(spec: SweepSpec) -> int:
    return len(spec.designs()) if spec.strategy == "grid" else spec.trials


def _finished(results) -> int:
    """Trials that reported their objectives or failed. Ray Tune returns normally from `fit()`
    on Ctrl-C, marking the running trials terminated (without a report) and leaving the rest
    pending or not yet created, so an interrupted sweep shows as fewer finished trials."""
    return sum(1 for r in results if r.error is not None or "ap" in (r.metrics or {}))


def _table(spec: SweepSpec, results, root: Path) -> list[dict]:
    """Every trial Ray ran: its settings, status and objectives (from its trial.json)."""
    rows = {}
    for result in results:
        settings = _design(spec, result.config)
        name = trial_id(settings)
        record = root / "trials" / name / TRIAL_FILE
        data = json.loads(record.read_text()) if record.is_file() else {
            "status": "failed", "cause": str(result.error or "no result")}
        rows[name] = {"trial": name, "settings": settings, "family": family_of(settings), **data}
    return list(rows.values())


def _outcome(ref) -> dict:
    """A Ray task's result, or its failure with the cause (one design's failure is recorded,
    the sweep goes on)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        return {"status": "failed", "cause": f"{type(error.cause).__name__}: {error.cause}"}


def run_sweep(spec_path: Path, projects_dir: Path, address: str | None = None,
              progress=print) -> dict:
    from fraudfpga.pipeline import STEPS
    from fraudfpga.registry import run_step

    spec, base = load_spec(spec_path, projects_dir)
    root = projects_dir / f"sweep-{spec.name}"
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shared = RunFolder.open(root, "shared", [("the sweep", {k: v for k, v in base.items() if k != "run"})],
                            reconfigure=True, progress=progress)
    run_step(shared, STEPS["data"], progress=progress)
    cpus = connect(address)
    import ray

    try:
        progress(f"[sweep] {spec.name}: {spec.strategy}, "
                 f"{_total(spec)} trials on Ray "
                 f"({address or 'local'}, {cpus} CPUs); run folders in {root / 'trials'}")
        results = _tuner(spec, base, root, cpus, progress).fit()
        if _finished(results) < _total(spec):
            raise KeyboardInterrupt  # Ray Tune stopped on Ctrl-C and saved the experiment
        rows = _table(spec, results, root)
        trials_dir, shared_dir = str((root / "trials").resolve()), str((root / "shared").resolve())
        references = {trial_id(d): d for d in (spec.base_design(base, f) for f in spec.families)}
        task = ray.remote(num_cpus=1)(_run_design)
        missing = {name: d for name, d in references.items() if name not in {r["trial"] for r in rows}}
        for design in missing.values():
            progress(f"[sweep] the base design ({design}) as a reference trial")
        outcomes = [_outcome(ref) for ref in [task.remote(spec, base, d, trials_dir, shared_dir)
                                              for d in missing.values()]]
        rows += [{"trial": name, "settings": d, "family": family_of(d), **data}
                 for (name, d), data in zip(missing.items(), outcomes)]
        done = [r for r in rows if r.get("status") == "done"]
        on_front = front(done)
        for row in rows:
            row["on_front"] = any(row is f for f in on_front)
            row["reference"] = row["trial"] in references
        progress(f"[sweep] {len(done)} of {len(rows)} trials done; {len(on_front)} on the front; "
                 "verifying them (cocotb on the whole test set"
                 + (", place and route" if spec.place_and_route else "")
                 + f", {spec.front_seeds}-seed test AP)")
        verify = ray.remote(num_cpus=1)(verify_design)
        to_verify = [r for r in rows if r["on_front"] or (r["reference"] and r.get("status") == "done")]
        checks = [_outcome(ref) for ref in [
            verify.remote(trials_dir, shared_dir, r["trial"], spec.front_seeds,
                          r["on_front"] and spec.place_and_route)
            for r in to_verify]]
        for row, check in zip(to_verify, checks):
            row["verified"] = check
    finally:
        ray.shutdown()
    state = {"spec": spec.as_dict(), "digest": spec.digest(), "address": address or "local",
             "cpus": cpus, "seconds": round(time.perf_counter() - started, 1),
             "objectives": OBJECTIVES, "trials": rows}
    write_json(root / STATE, state)
    from .page import write_page

    page = write_page(root, state)
    progress(f"[sweep] {root / STATE}; page {page}")
    return state


def promote(spec_path: Path, projects_dir: Path, trial: str, run_name: str, progress=print) -> Path:
    """Make a run of one trial's design: the sweep's base configuration and settings with the
    trial's values, the flow's own choices restored (tree references, `rtl.interface`)."""
    from .spec import FAMILY, base_config, nested, starting_config

    spec, _ = load_spec(spec_path, projects_dir)
    state_file = projects_dir / f"sweep-{spec.name}" / STATE
    if not state_file.is_file():
        raise FlowError(f"{state_file}: the sweep has not finished; run `fraudfpga sweep {spec_path}`")
    rows = {r["trial"]: r for r in json.loads(state_file.read_text())["trials"]}
    if trial not in rows:
        raise FlowError(f"--trial {trial}: not a trial of sweep {spec.name!r} ({state_file})")
    if (projects_dir / run_name).exists():
        raise FlowError(f"--run {run_name}: {projects_dir / run_name} exists; pick a new run name")
    start = starting_config(spec, projects_dir)
    keep = {"references": start["references"], "rtl": {"interface": start["rtl"]["interface"]}}
    config = base_config(spec, projects_dir)
    keys = {k: v for k, v in rows[trial]["settings"].items() if k != FAMILY}
    requested = [("the sweep's base", {k: v for k, v in config.items() if k != "run"}),
                 ("the flow's own choices", keep),
                 (f"trial {trial}", nested(keys))]
    run = RunFolder.open(projects_dir, run_name, requested, progress=progress)
    progress(f"[sweep] run '{run_name}' made from trial {trial} ({rows[trial]['settings']}); build "
             f"it with `make all RUN={run_name}`")
    return run.root
