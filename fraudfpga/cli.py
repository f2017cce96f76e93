"""The `fraudfpga` command: one subcommand per step (from the step registry), `all`,
`config`, `steps` and `bench`."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from .errors import FlowError

# Options of one step that change the run's configuration when given (an explicit request).
STEP_OPTIONS = {"sim": ("rtl.simulator", "rtl.vectors", "rtl.random_vectors"),
                "baseline": ("baseline.quick",)}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file merged over the run's configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one key, e.g. --set train.epochs=5")
    parser.add_argument("--run", default="default",
                        help="run name: a folder under --projects-dir (letters, digits, . _ -)")
    parser.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"),
                        help="where run folders live (default: fpga_projects)")
    parser.add_argument("--reconfigure", action="store_true",
                        help="change an existing run's configuration to the given --set/--config "
                             "values (the steps that read them rerun)")
    parser.add_argument("--force", action="store_true", help="redo the step even if up to date")


def build_parser() -> argparse.ArgumentParser:
    from .pipeline import steps_of
    from .registry import STEPS, commands

    parser = argparse.ArgumentParser(
        prog="fraudfpga",
        description="FPGA/GPU co-design flow for real-time fraud scoring. Each step writes "
                    "into fpga_projects/<run>/ and is skipped when what it reads is unchanged.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, steps in commands().items():
        text = "; ".join(s.help for s in steps)
        step = sub.add_parser(command, help=text, description=text)
        _common(step)
        if command == "baseline":
            step.add_argument("--quick", action="store_true",
                              help="few batch sizes and calls (sets baseline.quick for this run)")
        if command == "sim":
            step.add_argument("--sim", choices=["verilator", "icarus"],
                              help="simulator (sets rtl.simulator for this run)")
            step.add_argument("--vectors", help="how many test-set vectors, and how many random "
                                                "and edge vectors, to stream: all or a number "
                                                "(sets rtl.vectors, rtl.random_vectors)")
    flow = sub.add_parser("all", help="run every step in order", description="Run " + " -> ".join(
        s.name for s in steps_of("all")) + " (steps outside `all` run only when named).")
    _common(flow)
    config = sub.add_parser("config", help="print the run's effective configuration as YAML")
    _common(config)
    config.add_argument("--documented", action="store_true",
                        help="print the documented default configuration instead")
    sub.add_parser("steps", help="list the registered steps: what each reads and writes")
    one = sub.add_parser("step", help="run one registered step by name (as `all` runs its "
                                      "background steps)")
    one.add_argument("name", choices=sorted(STEPS))
    _common(one)
    refit = sub.add_parser("delay-model", help="refit the FPGA family's delay model from the run's "
                                               "`make timing` points (writes sim/delay_models/)")
    refit.add_argument("--run", default="default")
    refit.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"))
    publish = sub.add_parser("publish", help="write a run's figures into the documentation "
                                             "(docs/results/<run>-run.md, the report's first "
                                             "screen as docs/images/first_screen.png)")
    publish.add_argument("--run", default="default")
    publish.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"))
    publish.add_argument("--docs", type=Path, default=Path("docs"),
                         help="the documentation folder (default: docs)")
    sweep = sub.add_parser("sweep", help="search the firmware families' settings on Ray Tune "
                                         "(network: quantization, widths, depth, pruning, "
                                         "distillation; forest: trees, depth, input and leaf "
                                         "bits); verify the Pareto front")
    sweep.add_argument("spec", type=Path, help="the sweep file (see sweeps/default.yaml)")
    sweep.add_argument("--address", help="host:port of an existing Ray cluster (default: a local "
                                         "Ray sized to this machine)")
    sweep.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"))
    promote = sub.add_parser("sweep-promote", help="make a run of one trial of a finished sweep")
    promote.add_argument("spec", type=Path)
    promote.add_argument("--trial", required=True, help="the trial's id (the sweep page's first column)")
    promote.add_argument("--run", required=True, help="name of the new run")
    promote.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"))
    bench = sub.add_parser("bench", help="run the benchmarks and write JSON")
    bench.add_argument("--out", type=Path, default=Path("fpga_projects/bench/bench.json"))
    bench.add_argument("--only", action="append", default=[],
                       help="run only this benchmark (repeatable)")
    return parser


def _step_overrides(args) -> list[str]:
    overrides = []
    if getattr(args, "sim", None):
        overrides.append(f"rtl.simulator={args.sim}")
    if getattr(args, "quick", False):
        overrides.append("baseline.quick=true")
    if getattr(args, "vectors", None):
        overrides += [f"rtl.vectors={args.vectors}", f"rtl.random_vectors={args.vectors}"]
    return overrides


def print_steps() -> None:
    from .pipeline import steps_of
    from .registry import STEPS

    in_all = {s.name for s in steps_of("all")}
    for step in STEPS.values():
        where = "" if step.name in in_all else " (not in `all`)"
        print(f"{step.name:<13} make {step.command:<9} {step.help}{where}\n"
              f"{'':<13} reads: {', '.join(step.reads) or '-'}\n"
              f"{'':<13} inputs: {', '.join(step.inputs + step.optional_inputs) or '-'}\n"
              f"{'':<13} outputs: {', '.join(step.outputs)}")


def refit_delay_model(run_root: Path) -> int:
    import hashlib
    import json
    import platform

    from .sim.artifacts import TIMING_POINTS
    from .sim.delay_model import refit

    points = run_root / TIMING_POINTS
    if not points.exists():
        raise FlowError(f"{points}: no timing points; run `make timing` (RUN={run_root.name}) first")
    family = json.loads(points.read_text())["family"]
    network = run_root / "hls" / "network.json"
    design = f"{run_root.name} network {hashlib.sha256(network.read_bytes()).hexdigest()[:12]}"
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    model, quality, out = refit(points, family, design, machine)
    print(f"{family} delay model: {model.as_dict()} (ns); {quality['runs']} runs, rms error "
          f"{quality['rms_error_ns']} ns, max {quality['max_abs_error_ns']} ns; written to {out}")
    return 0


class Background:
    """Steps of `fraudfpga all` that run in a process of their own (`fraudfpga step NAME`):
    started when their inputs are current, waited for before a step that reads their outputs,
    before a step that measures time, and at the end. A failed one stops the command."""

    def __init__(self, args):
        self.args, self.running = args, {}

    def names(self) -> set[str]:
        return set(self.running)

    def start(self, step) -> None:
        import subprocess

        command = [sys.executable, "-m", "fraudfpga.cli", "step", step.name, "--run",
                   self.args.run, "--projects-dir", str(self.args.projects_dir)]
        if self.args.force:
            command.append("--force")
        print(f"[{step.name}] started in the background (`fraudfpga step {step.name}`); the next "
              "steps go on beside it", flush=True)
        # Beside other steps, an OpenMP thread that waits (XGBoost in the reference search)
        # sleeps instead of spinning on the core they need: with the tiny run's references
        # beside two busy processes, 10.2 s of CPU instead of 26.8 s (2026-12-07, this machine).
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env=env, preexec_fn=(lambda: os.nice(step.niceness))
                                   if step.niceness else None)
        relay = threading.Thread(target=lambda: [print(line, end="", flush=True)
                                                 for line in process.stdout], daemon=True)
        relay.start()
        self.running[step.name] = (process, relay)

    def start_ready(self, pending: list) -> None:
        """Start, ahead of their turn, the background steps of `pending` whose inputs are all
        made (no producer still pending or running): place and route starts as soon as its RTL
        exists, not after the steps listed before it."""
        from .registry import producers

        for step in [s for s in pending if s.background]:
            waiting = {s.name for s in pending} | self.names()
            if not producers(step) & waiting:
                pending.remove(step)
                self.start(step)

    def wait_for(self, names) -> None:
        for name in sorted(set(names) & set(self.running)):
            process, relay = self.running.pop(name)
            code = process.wait()
            relay.join()
            if code != 0:
                self.wait_for(self.names())
                raise FlowError(f"step '{name}' failed (exit status {code}); its error is "
                                "above")


def run_command(args) -> int:
    from .config import requested_settings
    from .pipeline import print_metrics, steps_of
    from .registry import STEPS, producers, run_step
    from .runfolder import RunFolder, code_fingerprint

    if args.command == "steps":
        print_steps()
        return 0
    if args.command == "bench":
        from .bench import run_benchmarks

        return run_benchmarks(args.out, args.only)
    if args.command == "delay-model":
        return refit_delay_model(args.projects_dir / args.run)
    if args.command == "sweep":
        from .sweep.engine import run_sweep

        run_sweep(args.spec, args.projects_dir, args.address)
        return 0
    if args.command == "sweep-promote":
        from .sweep.engine import promote

        promote(args.spec, args.projects_dir, args.trial, args.run)
        return 0
    if args.command == "publish":
        from .publish import publish

        if not (args.projects_dir / args.run / "manifest.json").is_file():
            raise FlowError(f"{args.projects_dir / args.run}: no run there; run `fraudfpga all "
                            f"--run {args.run}` first")
        publish(RunFolder.open(args.projects_dir, args.run, []), args.docs)
        return 0
    if args.command == "config" and args.documented:
        from .schema import documented_yaml

        print(documented_yaml(), end="")
        return 0
    requested = requested_settings(args.config, args.overrides + _step_overrides(args))
    run = RunFolder.open(args.projects_dir, args.run, requested, args.reconfigure,
                         allowed_changes=STEP_OPTIONS.get(args.command, ()))
    if args.command == "config":
        import yaml

        print(yaml.safe_dump(run.config, sort_keys=False), end="")
        return 0
    if args.command == "step":
        run_step(run, STEPS[args.name], force=args.force)
        return 0
    ran_models = False
    steps = steps_of(args.command, run.config)
    for step in steps:  # fingerprint the code this process loaded, before any step runs
        code_fingerprint(tuple(step.code))
    background = Background(args) if args.command == "all" else None
    pending = list(steps)
    while pending:
        step = pending.pop(0)
        if background is None:
            run_step(run, step, force=args.force)
        elif step.background:
            background.wait_for(producers(step))
            background.start(step)
        else:
            background.wait_for(background.names() if step.exclusive else producers(step))
            run_step(run, step, force=args.force)
            background.start_ready(pending)
        ran_models |= step.name in ("train", "references", "hls", "forest")
    if background is not None:
        background.wait_for(background.names())
    if ran_models:
        print_metrics(run)
    if args.command in ("report", "all"):
        from .report import print_summary

        print_summary(run)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_command(args)
    except (FlowError, ValueError, OSError, RuntimeError) as error:
        if os.environ.get("FRAUDFPGA_TRACEBACK"):
            raise
        print(f"fraudfpga {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fraudfpga {args.command}: interrupted; files already complete are kept, "
              "the interrupted step reruns next time", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
