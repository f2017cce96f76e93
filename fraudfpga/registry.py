"""The step registry: every step of the flow declares what it reads and writes.

A step (in the style of FINN's build steps) has a name, the configuration keys it reads, its
input and output artifacts (paths in the run folder, owned as constants by the stage that
writes them), the code it runs and its body. Stages register their steps when imported
(`fraudfpga.flow` imports them all); users can register their own the same way.

A step's key covers exactly: the values of the keys it reads, the hashes of its inputs, the
source of its own code modules plus the shared core, and declared facts of the environment.
A step runs only when every input comes from a step that is itself current; otherwise it
names the step to run first. An optional input (a place-and-route result for the report) is
used only while its producer is current; otherwise the step is told it is stale.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import lookup
from .errors import PrerequisiteError
from .runfolder import RunFolder, code_fingerprint, json_sha256, package_versions

Progress = Callable[[str], None]


class ConfigView(Mapping):
    """The part of the configuration a step declared in `reads`; reading any other key is a
    programming error, so a step's key can never miss a setting it uses."""

    def __init__(self, config: dict, reads: tuple[str, ...], step: str, prefix: str = ""):
        self._config, self._reads, self._step, self._prefix = config, reads, step, prefix

    def _allowed(self, dotted: str) -> str | None:
        if any(dotted == r or dotted.startswith(r + ".") for r in self._reads):
            return "value"
        if any(r.startswith(dotted + ".") for r in self._reads):
            return "section"
        return None

    def __getitem__(self, key: str):
        dotted = self._prefix + key
        kind = self._allowed(dotted)
        if kind is None:
            raise KeyError(f"step '{self._step}' reads configuration key '{dotted}' but does not "
                           "declare it in its `reads`")
        value = self._config[key]
        if kind == "section":
            return ConfigView(value, self._reads, self._step, dotted + ".")
        return value

    def __iter__(self):
        return (k for k in self._config if self._allowed(self._prefix + k))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def to_dict(self) -> dict:
        return {k: (v.to_dict() if isinstance(v, ConfigView) else v) for k, v in self.items()}


@dataclass(frozen=True)
class Step:
    """One step of the flow.

    `body(run, cfg, progress)` writes the declared outputs (atomically) and returns any further
    outputs it wrote (paths relative to the run folder), or None. `cfg` is the ConfigView of
    `reads`. `more_inputs(run)` lists inputs named by another input (the Verilog files listed
    in rtl/metadata.json); `external_inputs(cfg)` files outside the run (a CSV);
    `neighbour_inputs(run)` files of other folders of the run's projects folder (the sweeps
    the report links); `environment()` facts outside the configuration that change the result (installed tools).
    """

    name: str
    command: str
    help: str
    reads: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    body: Callable[[RunFolder, ConfigView, Progress], list[str] | None]
    code: tuple[str, ...]
    optional_inputs: tuple[str, ...] = ()
    more_inputs: Callable[[RunFolder], list[str]] | None = None
    external_inputs: Callable[[ConfigView], list[str]] | None = None
    neighbour_inputs: Callable[[RunFolder], list[str]] | None = None
    environment: Callable[[], dict] | None = None
    in_all: bool = True
    family: str | None = None  # the firmware family the step serves (firmware.families)
    # Under `fraudfpga all`: a long step that measures nothing (place and route, synthesis,
    # reason codes) runs in a process of its own beside the next steps, so both cores work; a
    # step that measures time on this machine (serving, baseline) waits until no such process
    # runs, so nothing competes with it.
    background: bool = False
    exclusive: bool = False
    # A background step off the critical path (reason codes, the Yosys estimates) runs at this
    # CPU niceness, so that place and route, the longest step, keeps a core of its own.
    niceness: int = 0

    def builds(self, config: dict) -> bool:
        """Whether a run with `config` runs this step: a family's steps only when the run names
        the family."""
        return self.family is None or self.family in config["firmware"]["families"]


STEPS: dict[str, Step] = {}


def register(step: Step) -> Step:
    if step.name in STEPS and STEPS[step.name] is not step:
        raise ValueError(f"a step named {step.name!r} is already registered")
    owners = {out: s.name for s in STEPS.values() for out in s.outputs}
    for out in step.outputs:
        if out in owners and owners[out] != step.name:
            raise ValueError(f"step {step.name!r}: output {out} already belongs to step "
                             f"{owners[out]!r}")
    STEPS[step.name] = step
    return step


def ordered_steps() -> list[Step]:
    """Every step after the steps whose outputs it reads; otherwise in registration order."""
    owner = {out: s.name for s in STEPS.values() for out in s.outputs}
    needs = {s.name: {owner[p] for p in (*s.inputs, *s.optional_inputs) if p in owner} - {s.name}
             for s in STEPS.values()}
    ordered: list[Step] = []
    while len(ordered) < len(STEPS):
        done = {s.name for s in ordered}
        ready = [s for s in STEPS.values() if s.name not in done and needs[s.name] <= done]
        if not ready:
            raise ValueError(f"the steps {sorted(set(STEPS) - done)} depend on each other in a cycle")
        ordered.append(ready[0])
    return ordered


def producers(step: Step) -> set[str]:
    """The steps whose outputs `step` reads (inputs and optional inputs)."""
    owner = {out: s.name for s in STEPS.values() for out in s.outputs}
    return {owner[p] for p in (*step.inputs, *step.optional_inputs) if p in owner} - {step.name}


def commands() -> dict[str, list[Step]]:
    """CLI command / make target -> its steps, in the flow's order."""
    grouped: dict[str, list[Step]] = {}
    for step in ordered_steps():
        grouped.setdefault(step.command, []).append(step)
    return grouped


def _run_hint(run: RunFolder, step: Step) -> str:
    return (f"`fraudfpga {step.command} --run {run.root.name}` (make {step.command} "
            f"RUN={run.root.name})")


@dataclass
class State:
    current: bool
    reason: str = ""
    first: Step | None = None  # the step to run first (itself, or an earlier one it waits for)
    # Computed once the inputs are there: the key, what it covers, the optional inputs used
    # and those left out as stale.
    key: str = ""
    parts: dict = field(default_factory=dict)
    optional_used: list[str] = field(default_factory=list)
    optional_stale: dict[str, str] = field(default_factory=dict)


class Checker:
    """Whether steps are current, with file hashes and answers cached for one command."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.entries = run.manifest()["steps"]  # read once per check
        self._states: dict[str, State] = {}

    def producer(self, path: str) -> Step | None:
        """The step that writes `path` (declared, or listed as written in the manifest)."""
        for step in STEPS.values():
            if path in step.outputs:
                return step
        return next((STEPS[name] for name, entry in self.entries.items()
                     if name in STEPS and path in entry.get("outputs", {})), None)

    def inputs(self, step: Step) -> list[str]:
        names = list(step.inputs)
        if step.more_inputs and all(self.run.path(p).is_file() for p in step.inputs):
            names += step.more_inputs(self.run)
        return names

    def key(self, step: Step, optional_used: list[str]) -> tuple[str, dict]:
        run = self.run
        view = ConfigView(run.config, step.reads, step.name)
        external = step.external_inputs(view) if step.external_inputs else []
        external += step.neighbour_inputs(run) if step.neighbour_inputs else []
        parts = {
            "config": {r: lookup(run.config, r) for r in step.reads},
            "inputs": {p: run.hashes(run.path(p)) for p in self.inputs(step)},
            "optional_inputs": {p: run.hashes(run.path(p)) for p in optional_used},
            "external_inputs": {str(Path(p).resolve()): run.hashes(Path(p)) for p in external},
            "code": code_fingerprint(tuple(step.code)),
            "environment": step.environment() if step.environment else {},
        }
        return json_sha256(parts), parts

    def usable_optional(self, step: Step) -> tuple[list[str], dict[str, str]]:
        """Optional inputs present and current, and the stale ones with the reason."""
        used, stale = [], {}
        for path in step.optional_inputs:
            if not self.run.path(path).is_file():
                continue
            maker = self.producer(path)
            state = self.state(maker) if maker else State(True)
            if state.current:
                used.append(path)
            else:
                stale[path] = (f"stale: step '{maker.name}' {state.reason}; rerun "
                               f"{_run_hint(self.run, maker)}")
        return used, stale

    def blocking(self, step: Step) -> tuple[str, Step | None, State] | None:
        """The first input of `step` that is missing or comes from a step not current."""
        for path in step.inputs:
            maker = self.producer(path)
            if maker is None:
                if not self.run.path(path).is_file():
                    return path, None, State(False, "is missing")
                continue
            state = self.state(maker)
            if not state.current:
                return path, maker, state
        return None

    def missing_prerequisite(self, step: Step) -> str | None:
        """Why `step` cannot run yet, naming the step to run first."""
        block = self.blocking(step)
        if block is None:
            return None
        path, maker, state = block
        if maker is None:
            return f"its input {path} is missing"
        first = state.first or maker
        return (f"it needs {path} from step '{maker.name}', which {state.reason}: run "
                f"{_run_hint(self.run, first)} first, or `make {step.command} "
                f"RUN={self.run.root.name}`, which runs every step it needs")

    def state(self, step: Step) -> State:
        if step.name in self._states:
            return self._states[step.name]
        self._states[step.name] = State(False, "is being checked (a cycle of steps)")
        state = self._state(step)
        self._states[step.name] = state
        return state

    def _state(self, step: Step) -> State:
        run = self.run
        entry = self.entries.get(step.name)
        own = "has not run (or its last run failed)" if entry is None else "is out of date"
        block = self.blocking(step)
        if block:
            _, maker, state = block
            if maker is None:
                return State(False, f"{own}: {state.reason}")
            first = state.first or maker
            first_reason = state.reason if first is maker else self.state(first).reason
            return State(False, f"{own} and waits for step '{first.name}', which {first_reason}",
                         first)
        used, stale = self.usable_optional(step)
        key, parts = self.key(step, used)
        computed = {"key": key, "parts": parts, "optional_used": used, "optional_stale": stale}
        if entry is None:
            return State(False, own, step, **computed)
        if entry.get("key") != key:
            return State(False, f"is out of date: {_what_changed(entry, parts)}", step, **computed)
        for name, digest in entry.get("outputs", {}).items():
            path = run.path(name)
            if not path.is_file() or run.hashes(path) != digest:
                return State(False, f"is out of date: its output {name} was changed or removed",
                             step, **computed)
        return State(True, "is up to date", **computed)


def _what_changed(entry: dict, parts: dict) -> str:
    recorded = entry.get("parts", {})
    changed = [f"configuration {k}" for k, v in parts["config"].items()
               if recorded.get("config", {}).get(k, object()) != v]
    for group, label in (("inputs", "input"), ("optional_inputs", "input"),
                         ("external_inputs", "input file")):
        old, new = recorded.get(group, {}), parts[group]
        changed += [f"{label} {k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if recorded.get("code") != parts["code"]:
        changed.append("its code")
    if recorded.get("environment") != parts["environment"]:
        changed.append("the installed tools")
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return "changed since it ran: " + (shown or "its key")


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of the child processes it has waited for:
    with 2 cores, what a step costs the steps beside it, not only its own wall time."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (
        resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_step(run: RunFolder, step: Step, force: bool = False, progress: Progress = print) -> bool:
    """Run `step` unless it is current; returns True when it ran."""
    checker = Checker(run)
    blocked = checker.missing_prerequisite(step)
    if blocked:
        raise PrerequisiteError(f"step '{step.name}' cannot run: {blocked}")
    state = checker.state(step)
    if state.current and not force:
        progress(f"[{step.name}] up to date in {run.root} (inputs, configuration and code "
                 "unchanged)")
        return False
    view = ConfigView(run.config, step.reads, step.name)
    started, cpu_before = dt.datetime.now(), cpu_seconds()
    run.forget(step.name)  # a step that fails leaves no entry that looks current
    run.optional_inputs, run.stale_inputs = state.optional_used, state.optional_stale
    try:
        extra = step.body(run, view, progress) or []
    finally:
        run.optional_inputs, run.stale_inputs = [], {}
    outputs = list(dict.fromkeys([*step.outputs, *extra]))
    missing = [p for p in outputs if not run.path(p).is_file()]
    if missing:
        raise RuntimeError(f"step '{step.name}' did not write its output(s) {', '.join(missing)}")
    run.record(step.name, {
        "key": state.key, "parts": state.parts,
        "outputs": {name: run.hashes(run.path(name)) for name in outputs},
        "stale_inputs_ignored": state.optional_stale,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_seconds": round(cpu_seconds() - cpu_before, 1),
        "versions": package_versions(),
        "command": " ".join(sys.argv),
    })
    return True
