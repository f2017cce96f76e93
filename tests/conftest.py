import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

# Two pytest-xdist workers and the flow's background steps share two cores: an OpenMP thread
# (XGBoost, scikit-learn) that waits sleeps instead of spinning on a core another process needs
# (read by libgomp when it loads, so before any test imports them; see fraudfpga/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

import fraudfpga.kerasenv  # noqa: F401  (TensorFlow's environment, before any test imports it)
import fraudfpga.pipeline  # noqa: F401, I001  (every step registered in the flow's order, before a test module imports one stage)

sys.path.insert(0, str(Path(__file__).parent))  # test modules share helpers (test_hls)

# A small configuration of the whole flow: 600 customers, 50 days, a 4-unit hidden layer (trained
# at a higher learning rate: place and route of the network is what a test run pays for).
TINY = [
    "data.simulator.n_customers=600", "data.simulator.n_terminals=1500",
    "data.simulator.n_days=50", "split.train_start=2018-04-25", "model.hidden=[4]",
    "train.epochs=6", "train.patience=6", "train.learning_rate=0.01", "references.trials=2",
    "references.forest_trees=30", "baseline.quick=true",
    "serving.loads=[1000, 100000]", "serving.seconds_per_load=0.05", "serving.batch1_calls=100",
    "rtl.axis_pattern_vectors=300", "rtl.axis_seeds=[1]", "forest.trees=12", "forest.max_depth=6",
]


def cli(*args, settings=TINY):
    from fraudfpga.cli import main

    return main([*args, *[a for s in settings for a in ("--set", s)]])


def shared_folder(tmp_path_factory, name: str) -> Path:
    """A folder every pytest-xdist worker of this test run sees (the run's common base
    temporary folder; the worker's own one without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


TINY_PROJECTS = "tiny_projects"
TINY_BUILD_TIMEOUT_S = 1800


def _tiny_build_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = shared_folder(tmp_path_factory, TINY_PROJECTS)
    return (folder, folder.with_name(TINY_PROJECTS + ".log"),
            folder.with_name(TINY_PROJECTS + ".status"))


@pytest.fixture(scope="session", autouse=True)
def tiny_run_started(request, tmp_path_factory):
    """The tiny run's build starts with the first test of a test run that has a test reading
    it, in a process of its own beside the workers. Many modules wait for it; started by the
    first test that needs it, it began at once in one suite run and 3 minutes late in two
    others (pytest-randomly's shuffle, then xdist's order by test count, decide which module
    goes first)."""
    if not request.config.stash.get(NEEDS_TINY, False):
        return
    folder, log, status = _tiny_build_files(tmp_path_factory)
    try:
        folder.with_name(TINY_PROJECTS + ".started").mkdir(parents=True)  # atomic: one starter
    except FileExistsError:
        return
    folder.mkdir()
    command = [sys.executable, "-m", "fraudfpga.cli", "all", "--run", "tiny", "--projects-dir",
               str(folder), *[a for s in TINY for a in ("--set", s)]]
    script = (f"{shlex.join(command)} > {shlex.quote(str(log))} 2>&1; "
              f"echo $? > {shlex.quote(str(status))}.partial && "
              f"mv {shlex.quote(str(status))}.partial {shlex.quote(str(status))}")
    subprocess.Popen(["sh", "-c", script])  # Ctrl-C reaches it: same process group


@pytest.fixture(scope="session")
def tiny_run(tiny_run_started, tmp_path_factory):
    """One run of every step (`fraudfpga all`) on the tiny configuration, built once per test
    run and shared by the xdist workers. Tests only read it; a test that changes a run works on
    `tiny_copy`."""
    folder, log, status = _tiny_build_files(tmp_path_factory)
    deadline = time.monotonic() + TINY_BUILD_TIMEOUT_S
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the tiny run's build did not finish in {TINY_BUILD_TIMEOUT_S} s; its "
                        f"log: {log}")
        time.sleep(1)
    code = int(status.read_text())
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        pytest.fail(f"the tiny run's build failed (exit status {code}); the end of {log}:\n{tail}")
    return folder / "tiny"


@pytest.fixture
def tiny_copy(tiny_run, tmp_path):
    """A private copy of the tiny run (the simulator build folders are left out: they hold
    absolute paths and are rebuilt on demand)."""
    target = tmp_path / "projects" / "tiny"
    shutil.copytree(tiny_run, target, ignore=shutil.ignore_patterns("build_*", "work_*"))
    return target


# Under `pytest -n N --dist loadscope` a module's tests run on one worker (its module-scoped
# fixtures are built once) and modules go to the workers in the order of their first test, as
# sorted here (`make test` passes `--no-loadscope-reorder`, so xdist keeps this order): first
# the modules that do not read the tiny run, then those that do (the tiny run's build, started
# with the session, runs beside the first ones). Within each, the long modules come first, in
# HEAVY's order (longest first: whole flows on CSVs, sweeps, place and route), then the others by
# their number of tests, most first. xdist's own order (by number of tests alone) put the
# one-test, two-minute `test_realdata_generic` last: on 2026-12-07 the suite's last two minutes
# ran it and `test_realdata` on one core each after everything else had finished.
HEAVY = ("test_realdata", "test_realdata_generic", "test_sweep", "test_timing")


NEEDS_TINY = pytest.StashKey[bool]()


def _reads_tiny(item) -> bool:
    return "tiny_run" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session):
    """The tests left after `-k`/`-m` deselection decide whether the tiny run is built."""
    session.config.stash[NEEDS_TINY] = any(_reads_tiny(i) for i in session.items)


def pytest_collection_modifyitems(config, items):
    tiny = {i.module.__name__ for i in items if _reads_tiny(i)}

    tests_in = Counter(i.module.__name__ for i in items)

    def rank(item):
        module = item.module.__name__
        heavy = HEAVY.index(module) if module in HEAVY else len(HEAVY)
        return module in tiny, heavy, -tests_in[module], module

    items.sort(key=rank)  # stable: pytest-randomly's order within each module stays
