"""The step registry: what each step reads and writes, what makes it rerun, stale results,
prerequisites, and how the CLI, the Makefile and the README follow it."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

from fraudfpga.config import default_config, requested_settings
from fraudfpga.pipeline import steps_of
from fraudfpga.registry import STEPS, Checker, ConfigView, Step, register, run_step
from fraudfpga.runfolder import RunFolder, code_files

ROOT = Path(__file__).resolve().parents[1]


def ulb_csv(path: Path, rows: int = 3000, amount_override: dict | None = None) -> Path:
    """A small CSV with the ULB credit-card columns (Time, V1..V28, Amount, Class)."""
    rng = np.random.default_rng(0)
    label = (rng.random(rows) < 0.05).astype(int)
    v = rng.normal(size=(rows, 28)) + label[:, None] * 1.5
    amount = rng.gamma(2.0, 40.0, rows).round(2)
    for row, value in (amount_override or {}).items():
        amount[row] = value
    header = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]
    lines = [",".join(header)]
    for i in range(rows):
        lines.append(",".join([str(i * 30), *(f"{x:.5f}" for x in v[i]), repr(float(amount[i])),
                               str(label[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_settings(path: Path) -> list[str]:
    return ["data.source=ulb_csv", f"data.path={path}", "split.mode=fraction"]


def test_a_csv_run_keeps_its_data_source(tmp_path, capsys):
    """`make report RUN=thatrun` with no options once regenerated simulated data over a CSV
    run; now the run's own configuration is used, and a conflicting option is refused."""
    projects = str(tmp_path / "projects")
    csv = ulb_csv(tmp_path / "creditcard.csv")
    assert cli("data", "--run", "real", "--projects-dir", projects,
               settings=csv_settings(csv)) == 0
    summary = tmp_path / "projects/real/data/summary.json"
    before = summary.read_text()
    assert json.loads(before)["source"] == "ulb_csv" and len(json.loads(before)["features"]) == 29
    capsys.readouterr()
    assert cli("data", "--run", "real", "--projects-dir", projects, settings=[]) == 0
    assert "[data] up to date" in capsys.readouterr().out and summary.read_text() == before
    assert cli("data", "--run", "real", "--projects-dir", projects,
               settings=["data.source=simulator"]) == 2
    assert "data.source: 'ulb_csv' -> 'simulator'" in capsys.readouterr().err


def test_after_a_failed_data_step_train_refuses(tiny_copy, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,label\n1.0,0\n2.0,7\n")
    projects = str(tiny_copy.parent)
    assert cli("data", "--run", "tiny", "--projects-dir", projects, "--reconfigure",
               settings=["data.source=csv", f"data.path={bad}", "data.label_column=label",
                         "split.mode=fraction"]) == 2
    assert "value '7' is not 0 or 1" in capsys.readouterr().err
    assert cli("train", "--run", "tiny", "--projects-dir", projects, settings=[]) == 2
    err = capsys.readouterr().err
    assert "step 'data', which has not run (or its last run failed)" in err
    assert "up to date" not in err


def test_one_wild_value_is_refused_with_column_row_and_value(tmp_path, capsys):
    csv = ulb_csv(tmp_path / "wild.csv", amount_override={17: 1e30})
    assert cli("data", "--run", "wild", "--projects-dir", str(tmp_path / "p"),
               settings=csv_settings(csv)) == 2
    err = capsys.readouterr().err
    assert "column 'Amount', row 18 (line 19): value 1e+30" in err
    assert "data.max_abs_scaled" in err


def test_a_large_but_plausible_value_does_not_flatten_the_scaler():
    import pandas as pd

    from fraudfpga.models.split import Scaler

    values = np.random.default_rng(0).normal(50, 10, 10_000)
    values[5] = 5_000  # one large amount: about 500 standard deviations
    scaler = Scaler.fit(pd.DataFrame({"amount": values}), ["amount"])
    assert scaler.scale[0] == pytest.approx(10, rel=0.05)
    assert scaler.mean[0] == pytest.approx(50, abs=0.5)


def test_missing_prerequisite_names_the_step_to_run(tmp_path, capsys):
    assert cli("sim", "--run", "fresh", "--projects-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "needs rtl/metadata.json from step 'rtl', which has not run" in err
    assert "run `fraudfpga data --run fresh` (make data RUN=fresh) first" in err
    assert "`make sim RUN=fresh`" in err and "Errno" not in err


def test_a_step_reruns_only_for_what_it_reads(tiny_copy):
    """Changing rtl.yosys_family makes only the Yosys steps (one per firmware) out of date; a
    step's code key covers its own stage, not the report."""
    run = RunFolder.open(tiny_copy.parent, "tiny", requested_settings(
        None, ["rtl.yosys_family=xc7"]), reconfigure=True, progress=lambda _: None)
    checker = Checker(run)
    stale = {name for name, step in STEPS.items()
             if step.in_all and step.builds(run.config) and not checker.state(step).current}
    assert stale == {"synth_yosys", "forest_synth_yosys", "report"}
    assert "configuration rtl.yosys_family" in checker.state(STEPS["synth_yosys"]).reason
    report = ROOT / "fraudfpga" / "report" / "__init__.py"
    assert report not in code_files(tuple(STEPS["train"].code))
    assert report in code_files(tuple(STEPS["report"].code))


def test_report_leaves_out_a_place_and_route_of_an_older_rtl(tiny_copy, capsys):
    """A P&R result of the previous RTL once gave '47.8 MHz, 146 ns' for the new design."""
    projects = str(tiny_copy.parent)
    summary = json.loads((tiny_copy / "report/summary.json").read_text())
    assert summary["stale_results_left_out"] == {} and summary["headline"]["fpga_timing"] == "pnr"
    stages = json.loads((tiny_copy / "rtl/metadata.json").read_text())["pipeline_stages"]
    assert cli("rtl", "--run", "tiny", "--projects-dir", projects, "--reconfigure",
               settings=[f"fpga.stages={stages + 1}"]) == 0
    capsys.readouterr()
    for command in ("sim", "synth", "report"):
        assert cli(command, "--run", "tiny", "--projects-dir", projects, settings=[]) == 0
    summary = json.loads((tiny_copy / "report/summary.json").read_text())
    why = summary["stale_results_left_out"]["synth/pnr.json"]
    assert "step 'pnr' is out of date" in why and "fraudfpga pnr --run tiny" in why
    assert summary["headline"]["fpga_timing"] == "not timed"
    markdown = (tiny_copy / "report/report.md").read_text()
    network = markdown.split("## FPGA implementation: the network firmware")[1].split("\n## ")[0]
    assert "Fmax after place and route" not in network and "synth/pnr.json (left out)" in network
    assert "left out synth/pnr.json" in capsys.readouterr().out


def test_a_step_cannot_read_a_key_it_did_not_declare():
    view = ConfigView({"rtl": {"simulator": "icarus", "vectors": 5}, "seed": 1},
                      ("rtl.simulator",), "demo")
    assert view["rtl"]["simulator"] == "icarus" and list(view["rtl"]) == ["simulator"]
    with pytest.raises(KeyError, match="step 'demo' reads configuration key 'rtl.vectors'"):
        view["rtl"]["vectors"]
    with pytest.raises(KeyError, match="'seed'"):
        view["seed"]


def test_a_user_step_runs_after_its_inputs_and_is_skipped_when_current(tiny_copy):
    calls = []

    def count_alerts(run, cfg, progress):
        calls.append(1)
        scores = json.loads(run.path("models/metrics.json").read_text())
        (run.path("extra")).mkdir(exist_ok=True)
        run.path("extra/alerts.json").write_text(json.dumps(
            {"tp": scores["models"]["qkeras"]["confusion_matrix"]["tp"],
             "top_k": cfg["evaluation"]["top_k"]}))

    step = Step(name="alerts_demo", command="alerts_demo", help="count alerts",
                reads=("evaluation.top_k",), inputs=("models/metrics.json",),
                outputs=("extra/alerts.json",), body=count_alerts, code=("fraudfpga.report",),
                in_all=False)
    register(step)
    try:
        run = RunFolder.open(tiny_copy.parent, "tiny", [])
        assert run_step(run, step, progress=lambda _: None)
        assert not run_step(run, step, progress=lambda _: None)
        assert run_step(run, step, force=True, progress=lambda _: None)
        assert len(calls) == 2
        entry = run.entry("alerts_demo")
        assert entry["parts"]["config"] == {"evaluation.top_k": 100}
        assert set(entry["outputs"]) == {"extra/alerts.json"}
    finally:
        STEPS.pop("alerts_demo")


def test_cli_makefile_and_readme_follow_the_registry():
    from fraudfpga.cli import build_parser

    commands = {s.command for s in STEPS.values()}
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert commands <= set(choices)
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z_-]+):", makefile, re.MULTILINE))
    assert commands <= targets
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| `?([a-z_]+)`? \| `make ([a-z_-]+)`", readme, re.MULTILINE)
    assert {(name, command) for name, command in table} == {(s.name, s.command)
                                                            for s in STEPS.values()}
    assert [s.name for s in steps_of("all", default_config())] == [
        "data", "train", "references", "hls", "explain", "synth_vendor", "forest", "forest_explain",
        "rtl", "sim",
        "synth_yosys", "pnr", "forest_rtl", "forest_sim", "forest_synth_yosys", "forest_pnr",
        "fusion", "export", "serving", "forest_serving", "baseline", "report"]
    imported = {"firmware": {"families": ["network", "imported"]}}
    assert [s.name for s in steps_of("all", imported) if s.family == "imported"] == [
        "imported", "imported_explain", "imported_rtl", "imported_sim", "imported_synth_yosys",
        "imported_pnr", "imported_serving"]
    network_only = {"firmware": {"families": ["network"]}}
    assert not {s.name for s in steps_of("all", network_only)} & {
        "forest", "forest_rtl", "forest_sim", "forest_synth_yosys", "forest_pnr", "forest_explain",
        "forest_serving", "fusion"}


def test_a_projects_folder_with_spaces_is_refused_before_the_build(tmp_path):
    from fraudfpga.errors import FlowError
    from fraudfpga.sim.runner import build

    with pytest.raises(FlowError, match="GNU Make, which cannot build in a folder whose path "
                                        "contains spaces"):
        build(tmp_path, {"sources": [], "top": "fraud_mlp_top"}, "verilator",
              tmp_path / "my runs" / "build")


def test_a_tool_failure_names_the_cause_line(tmp_path):
    from fraudfpga.errors import ToolFailed, cause_line
    from fraudfpga.sim.yosys import synthesize

    log = "make: entering\n%Error: top.v:3:1: syntax error, unexpected endmodule\nmake: *** [x] 2\n"
    assert cause_line(log) == "%Error: top.v:3:1: syntax error, unexpected endmodule"
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "top.v").write_text("module top(input a, output b);\n  assign b = ;\nendmodule\n")
    with pytest.raises(ToolFailed, match=r"Yosys failed: rtl/top\.v:2: ERROR: syntax error"):
        synthesize(rtl, {"sources": ["top.v"], "top": "top"}, tmp_path / "out", "xcup",
                   progress=lambda _: None)


def test_all_starts_a_background_step_as_soon_as_its_inputs_exist(monkeypatch):
    """Place and route starts right after the RTL, ahead of the steps listed before it."""
    from fraudfpga.cli import Background

    started = []
    background = Background(None)
    monkeypatch.setattr(background, "start", lambda step: started.append(step.name))
    pending = [STEPS[name] for name in ("sim", "synth_yosys", "pnr", "forest_rtl",
                                        "forest_pnr", "export", "serving")]
    background.start_ready(pending)  # rtl has run; forest_rtl has not
    assert started == ["synth_yosys", "pnr"]
    assert [s.name for s in pending] == ["sim", "forest_rtl", "forest_pnr", "export", "serving"]
    pending.remove(STEPS["forest_rtl"])
    background.start_ready(pending)
    assert started == ["synth_yosys", "pnr", "forest_pnr"]
