"""`fraudfpga publish`: a run's figures into the documentation, from its result files.

The documentation's figures of a run are never typed by hand: this writes
`docs/results/<run>-run.md` from the run's report (its first section, "The answer", with the
verdict and the table of every model on every platform), the step times in its manifest and
the machine it ran on, and copies the report's first-screen screenshot to
`docs/images/first_screen.png` (the picture the README shows). It refuses a run whose report
is not current, so the documentation never shows a stale result as current.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
from pathlib import Path

from .errors import FlowError
from .progress import duration
from .runfolder import RunFolder, atomic_path

SCREENSHOT = "report/first_screen.png"
REPORT = "report/report.md"


def machine() -> str:
    from .gpu_baseline.benchmark import cpu_name

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu_name()}, {os.cpu_count()} cores, {memory:.0f} GiB ({platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}; the report says which "
            "figures come from a GPU)")


def answer_section(report_md: str, where: Path) -> str:
    """The report's first section ("## The answer" up to the next heading)."""
    parts = report_md.split("\n## The answer\n", 1)
    if len(parts) != 2:
        raise FlowError(f"{where}: no '## The answer' section; rerun `fraudfpga report`")
    return parts[1].split("\n## ", 1)[0].strip()


def step_times(manifest: dict) -> list[tuple[str, float, str, str, float | None]]:
    """(step, seconds, started, finished, CPU seconds or None where not recorded) of every step,
    in the order they started."""
    rows = []
    for name, entry in manifest["steps"].items():
        if "started" in entry and "finished" in entry:
            start = dt.datetime.fromisoformat(entry["started"])
            end = dt.datetime.fromisoformat(entry["finished"])
            rows.append((name, (end - start).total_seconds(), entry["started"], entry["finished"],
                         entry.get("cpu_seconds")))
    return sorted(rows, key=lambda row: row[2])


def render(run_name: str, answer: str, times: list[tuple[str, float, str, str, float | None]],
           machine_text: str, has_screenshot: bool) -> str:
    span = (dt.datetime.fromisoformat(max(t[3] for t in times))
            - dt.datetime.fromisoformat(min(t[2] for t in times))).total_seconds() if times else 0
    lines = [
        f"# The `{run_name}` run",
        "",
        f"Written by `fraudfpga publish --run {run_name}` from the run folder "
        f"`fpga_projects/{run_name}/` (its report, `report/report.md`, and its manifest); do not "
        "edit by hand. Machine: " + machine_text + ".",
        "",
        "## The answer (the report's first screen)",
        "",
    ]
    if has_screenshot:
        lines += ["![The first screen of the report](../images/first_screen.png)", ""]
    lines += [answer, "", "## Step times", "",
              f"The steps' own start and finish times in the manifest; background steps ran "
              f"beside the others, so the times overlap. First start to last finish: "
              f"{duration(span)} (set-up not included). CPU: user + system seconds of the "
              f"step's process and the tools it ran{cpu_total(times)}.", "",
              "| step | time | CPU | started | finished |", "|---|---|---|---|---|"]
    lines += [f"| `{name}` | {duration(seconds)} | "
              f"{'not recorded' if cpu is None else duration(cpu)} | {start} | {end} |"
              for name, seconds, start, end, cpu in times]
    return "\n".join(lines) + "\n"


def cpu_total(times) -> str:
    recorded = [row[4] for row in times if row[4] is not None]
    return f"; all steps together {duration(sum(recorded))}" if recorded else ""


def publish(run: RunFolder, docs: Path, progress=print) -> Path:
    from .registry import STEPS, Checker

    state = Checker(run).state(STEPS["report"])
    if not state.current:
        raise FlowError(f"the report of run '{run.root.name}' {state.reason}; run `fraudfpga "
                        f"report --run {run.root.name}` first")
    if not docs.is_dir():
        raise FlowError(f"{docs}: no documentation folder there (expected the project's docs/)")
    answer = answer_section(run.path(REPORT).read_text(), run.path(REPORT))
    screenshot = run.path(SCREENSHOT)
    if screenshot.is_file():
        (docs / "images").mkdir(exist_ok=True)
        with atomic_path(docs / "images" / "first_screen.png") as tmp:
            shutil.copyfile(screenshot, tmp)
    else:
        progress(f"[publish] {screenshot} is missing (Chromium not installed?): the page has no "
                 "picture, and docs/images/first_screen.png is left as it was")
    page = docs / "results" / f"{run.root.name}-run.md"
    page.parent.mkdir(exist_ok=True)
    text = render(run.root.name, answer, step_times(run.manifest()), machine(),
                  screenshot.is_file())
    with atomic_path(page) as tmp:
        Path(tmp).write_text(text)
    progress(f"[publish] {page}" + (f" and {docs / 'images' / 'first_screen.png'}"
                                    if screenshot.is_file() else ""))
    return page
