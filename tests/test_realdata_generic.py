"""The real-data path with a generic CSV (a label and a time column, no card column) through
every step of `make all`; a module of its own, so that it runs beside the ULB-schema run (one
worker each under pytest-xdist)."""

import json

from conftest import cli
from realdata import write_generic
from test_realdata import REAL_TINY, assert_cp_is_na_with_its_reason, assert_every_step_finished


def test_generic_csv_with_a_time_column_runs_every_step(tmp_path, capsys):
    csv = write_generic(tmp_path / "tx.csv")
    settings = ["data.source=csv", f"data.path={csv}", "data.label_column=is_fraud",
                "data.time_column=unix_time", *REAL_TINY]
    projects = tmp_path / "p"
    assert cli("all", "--run", "mine", "--projects-dir", str(projects), settings=settings) == 0
    run, out = projects / "mine", capsys.readouterr().out
    assert_every_step_finished(run)
    assert_cp_is_na_with_its_reason(run)
    data = json.loads((run / "data/summary.json").read_text())
    assert data["features"] == ["amount", "merchant_risk", "hour", "velocity_1h"]
    assert "[train] qkeras" in out and "CP@100 n/a (" in out
