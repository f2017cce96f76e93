"""What nextpnr is doing, read from its log while it runs.

nextpnr writes its log as it goes (`--log`); a large design spends tens of minutes in the
placer or the router, so the driver reads the log's last lines every few seconds and reports
the phase (packing, analytic or electrostatic placement, annealing refinement, routing with
router1 or router2), the placer's or router's iteration, router2's overused wires or router1's
remaining arcs, and the time so far.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fraudfpga.progress import duration

PACKING, ANALYTIC, ANNEALING = "packing", "placing (analytic HeAP)", "placing (annealing refinement)"
STATIC = "placing (static, electrostatic)"
ROUTER1, ROUTER2, TIMING = "routing (router1)", "routing (router2)", "timing analysis"
PATTERNS = (  # (pattern, stage, details from the match)
    (re.compile(r"Info: Packing"), PACKING, lambda m: ""),
    (re.compile(r"initial placer iter (\d+)"), ANALYTIC, lambda m: f"initial iteration {m[1]}"),
    (re.compile(r"at iteration #(\d+), type \w+: wirelen solved"), ANALYTIC,
     lambda m: f"iteration {m[1]}"),
    (re.compile(r"Running Static placer"), STATIC, lambda m: ""),
    (re.compile(r"overlap: COMB=([\d.]+)%"), STATIC, lambda m: f"logic overlap {m[1]} %"),
    (re.compile(r"Info: iter=(\d+) steplen="), STATIC, lambda m: f"iteration {m[1]}"),
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


@dataclass
class Watched:
    returncode: int
    output: str
    seconds: float
    gave_up: str | None = None  # why the run was stopped early (a router1 projection)


ROUTER1_PROGRESS = re.compile(r"Info:\s+(\d+) \|\s+\d+\s+\d+ \|\s+\d+\s+\d+ \|\s+(\d+)\|")


class Router1Projection:
    """Whether router1 will finish within `budget` arc routings (its IterCnt, which does not
    depend on the machine's load): once it has done `after` routings, the arcs still to route
    and how fast they fell over the last `window` routings give the total. On the LFE5U-85F the
    default network finished after 161,183 routings and the forest after 153,945; a 29-input
    network needed 418,063 (50 min here; router2 routes it in a few)."""

    def __init__(self, budget: int, after: int = 40_000, window: int = 20_000):
        self.budget, self.after, self.window = budget, after, window

    def check(self, now: float, log_text: str) -> str | None:
        points = [(int(done), int(left)) for done, left in ROUTER1_PROGRESS.findall(log_text)]
        if not points or points[-1][0] < self.after or points[-1][1] == 0:
            return None
        done, left = points[-1]
        earlier = [p for p in points if done - p[0] >= self.window]
        if not earlier:
            return None
        before_done, before_left = earlier[-1]
        rate = (before_left - left) / (done - before_done)
        projected = done + (left / rate if rate > 0 else float("inf"))
        if projected <= self.budget:
            return None
        return (f"router1 had {left:,} arcs left after {done:,} arc routings, clearing "
                f"{max(rate, 0):.2f} per routing: about {projected:,.0f} routings in all, beyond "
                f"fpga.router1_budget = {self.budget:,}")


def run_watched(command: list[str], cwd: Path, log: Path, progress, label: str,
                every_s: float = 30.0, poll_s: float = 2.0,
                projection: Router1Projection | None = None) -> Watched:
    """Run nextpnr, reporting its stage from `log` whenever the stage changes and at least
    every `every_s` seconds; with `projection`, stop it once router1 will not finish in time."""
    started = time.perf_counter()
    gave_up = None
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        reader = _Reader(process)
        last_stage, last_time = None, started
        while process.poll() is None:
            time.sleep(poll_s)
            now = time.perf_counter()
            text = _tail(log)
            current = phase(text)
            if current and (current[0] != last_stage or now - last_time >= every_s):
                stage, details = current
                progress(f"[pnr] {label}: {stage}{': ' + details if details else ''}; "
                         f"{duration(now - started)} (log: {log})")
                last_stage, last_time = stage, now
            gave_up = projection.check(now, text) if projection else None
            if gave_up:
                process.kill()
                process.wait()
                break
        output = reader.finish()
    return Watched(process.returncode, output, time.perf_counter() - started, gave_up)


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
