import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))  # test modules share helpers (test_hls)

# A small configuration of the whole flow: 600 customers, 50 days, a 16-unit hidden layer.
TINY = [
    "data.simulator.n_customers=600", "data.simulator.n_terminals=1500",
    "data.simulator.n_days=50", "split.train_start=2018-04-25", "model.hidden=[16]",
    "train.epochs=6", "train.patience=6", "gbdt.max_iter=50", "baseline.quick=true",
]


def cli(*args):
    from fraudfpga.cli import main

    return main([*args, *[a for s in TINY for a in ("--set", s)]])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One run of every step (`fraudfpga all`) on the tiny configuration."""
    projects = tmp_path_factory.mktemp("projects")
    assert cli("all", "--run", "tiny", "--projects-dir", str(projects)) == 0
    return projects / "tiny"
