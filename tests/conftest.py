import shutil
import sys
from pathlib import Path

import pytest

import fraudfpga.kerasenv  # noqa: F401  (TensorFlow's environment, before any test imports it)
import fraudfpga.pipeline  # noqa: F401, I001  (every step registered in the flow's order, before a test module imports one stage)

sys.path.insert(0, str(Path(__file__).parent))  # test modules share helpers (test_hls)

# A small configuration of the whole flow: 600 customers, 50 days, a 16-unit hidden layer.
TINY = [
    "data.simulator.n_customers=600", "data.simulator.n_terminals=1500",
    "data.simulator.n_days=50", "split.train_start=2018-04-25", "model.hidden=[16]",
    "train.epochs=6", "train.patience=6", "references.trials=2", "references.forest_trees=30", "baseline.quick=true",
    "serving.loads=[1000, 100000]", "serving.seconds_per_load=0.05", "serving.batch1_calls=100",
    "rtl.axis_pattern_vectors=300", "rtl.axis_seeds=[1]", "forest.trees=12", "forest.max_depth=6",
]


def cli(*args, settings=TINY):
    from fraudfpga.cli import main

    return main([*args, *[a for s in settings for a in ("--set", s)]])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One run of every step (`fraudfpga all`) on the tiny configuration. Tests only read it;
    a test that changes a run works on `tiny_copy`."""
    projects = tmp_path_factory.mktemp("projects")
    assert cli("all", "--run", "tiny", "--projects-dir", str(projects)) == 0
    return projects / "tiny"


@pytest.fixture
def tiny_copy(tiny_run, tmp_path):
    """A private copy of the tiny run (the simulator build folders are left out: they hold
    absolute paths and are rebuilt on demand)."""
    target = tmp_path / "projects" / "tiny"
    shutil.copytree(tiny_run, target, ignore=shutil.ignore_patterns("build_*", "work_*"))
    return target
