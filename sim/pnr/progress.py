"""What nextpnr is doing, read from its log while it runs.

nextpnr writes its log as it goes (`--log`); a large design spends tens of minutes in the
placer or the router, so the driver reads the log's last lines every few seconds and reports
the phase (packing, analytic placement, annealing refinement, routing with router1 or router2),
the placer's or router's iteration, router2's overused wires or router1's remaining arcs, and
the time so far.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKING, ANALYTIC, ANNEALING = "packing", "placing (analytic HeAP)", "placing (annealing refinement)"
ROUTER1, ROUTER2, TIMING = "routing (router1)", "routing (router2)", "timing analysis"
PATTERNS = (  # (pattern, stage, details from the match)
    (re.compile(r"Info: Packing"), PACKING, lambda m: ""),
    (re.compile(r"initial placer iter (\d+)"), ANALYTIC, lambda m: f"initial iteration {m[1]}"),
    (re.compile(r"at iteration #(\d+), type \w+: wirelen solved"), ANALYTIC,
     lambda m: f"iteration {m[1]}"),
    (re.compile(r"Running simulated annealing placer"), ANNEALING, lambda m: ""),
    (re.compile(r"at iteration #(\d+): temp = [\d.]+, timing cost = \d+, wirelen = (\d+)"),
     ANNEALING, lambda m: f"iteration {m[1]}, wirelength {int(m[2]):,}"),
    (re.compile(r"Running router2"), ROUTER2, lambda m: ""),
    (re.compile(r"iter=(\d+) wires=\d+ overused=(\d+)"), ROUTER2,
     lambda m: f"iteration {m[1]}, {int(m[2]):,} overused wires"),
    (re.compile(r"Info: Routing\.\."), ROUTER1, lambda m: ""),
    (re.compile(r"Info:\s+(\d+) \|\s+\d+\s+\d+ \|\s+\d+\s+\d+ \|\s+(\d+)\|"), ROUTER1,
     lambda m: f"{int(m[1]):,} arc routings, {int(m[2]):,} arcs remaining"),
    (re.compile(r"Critical path report"), TIMING, lambda m: ""),
)


def phase(log_text: str) -> tuple[str, str] | None:
    """The last stage the log shows and its figures (iteration, overused wires, arcs)."""
    for line in reversed(log_text.splitlines()[-60:]):
        for pattern, stage, details in PATTERNS:
            match = pattern.search(line)
            if match:
                return stage, details(match)
    return None


def _tail(path: Path, size: int = 16384) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


@dataclass
class Watched:
    returncode: int
    output: str
    seconds: float


def run_watched(command: list[str], cwd: Path, log: Path, progress, label: str,
                every_s: float = 30.0, poll_s: float = 2.0) -> Watched:
    """Run nextpnr, reporting its stage from `log` whenever the stage changes and at least
    every `every_s` seconds."""
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        reader = _Reader(process)
        last_stage, last_time = None, started
        while process.poll() is None:
            time.sleep(poll_s)
            now = time.perf_counter()
            current = phase(_tail(log))
            if current and (current[0] != last_stage or now - last_time >= every_s):
                stage, details = current
                progress(f"[pnr] {label}: {stage}{': ' + details if details else ''}; "
                         f"{_elapsed(now - started)} (log: {log})")
                last_stage, last_time = stage, now
        output = reader.finish()
    return Watched(process.returncode, output, time.perf_counter() - started)


class _Reader:
    """Drains the tool's output in a thread so that a full pipe never blocks it."""

    def __init__(self, process: subprocess.Popen):
        import threading

        self.chunks: list[str] = []
        self.thread = threading.Thread(target=lambda: self.chunks.extend(process.stdout), daemon=True)
        self.thread.start()

    def finish(self) -> str:
        self.thread.join()
        return "".join(self.chunks)
