"""The real-data path end to end: card-less CSVs (the ULB schema, and a generic CSV with a time
column) through every step of `make all`, then `make quality`; figures the data cannot give
(CP@k without card ids) say n/a with the reason everywhere they are shown."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import cli
from realdata import write_ulb_like

from fraudfpga.models.metrics import evaluate, format_table
from fraudfpga.optional import NOT_AVAILABLE
from fraudfpga.pipeline import steps_of

# The tiny network and few vectors: every step runs, none for long.
REAL_TINY = [
    "split.mode=fraction", "model.hidden=[6]", "train.epochs=8", "train.patience=8",
    "train.learning_rate=0.01", "references.trials=1", "references.forest_trees=10",
    "baseline.quick=true", "serving.loads=[1000]", "serving.seconds_per_load=0.05",
    "serving.batch1_calls=50", "rtl.axis_pattern_vectors=100", "rtl.axis_seeds=[1]",
    "hls.random_vectors=200", "rtl.random_vectors=100", "explain.background=10",
    "forest.trees=8", "forest.max_depth=5",
]
NO_CARD = "the data have no card id column"


@pytest.fixture(scope="module")
def ulb_run(tmp_path_factory):
    projects = tmp_path_factory.mktemp("ulb")
    csv = write_ulb_like(projects / "creditcard_like.csv")
    model = team_model(csv, projects / "team_xgboost.json")
    # The toolkit's forest on a card-less CSV runs in test_realdata_generic; here the 29-input
    # forest generator runs on the team's model, and a 4-unit network keeps its P&R short.
    settings = ["data.source=ulb_csv", f"data.path={csv}", *REAL_TINY, "model.hidden=[4]",
                f"imported.model={model}", "firmware.families=[network,imported]"]
    assert cli("all", "--run", "ulb", "--projects-dir", str(projects), settings=settings) == 0
    return projects / "ulb"


def team_model(csv, path):
    """A team's own XGBoost model, trained outside the toolkit on the CSV's first 60 % of rows
    (the fraction split's training rows), by column name."""
    import xgboost

    frame = pd.read_csv(csv)
    train = frame.iloc[:int(0.6 * len(frame))]
    columns = [c for c in frame.columns if c not in ("Time", "Class")]
    xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(
        train[columns], train["Class"]).save_model(path)
    return path


def assert_every_step_finished(run):
    manifest = json.loads((run / "manifest.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert set(manifest["steps"]) == {s.name for s in steps_of("all", config)}


def assert_cp_is_na_with_its_reason(run):
    metrics = json.loads((run / "models/metrics.json").read_text())
    for name, m in metrics["models"].items():
        assert m["card_precision_at_100"] is None, name
        assert NO_CARD in m[NOT_AVAILABLE]["card_precision_at_100"], name
        assert m["average_precision"] > 0.1, name
    report = (run / "report/report.md").read_text()
    assert "| n/a |" in report and f"n/a CP@100: {NO_CARD}" in report
    html = (run / "report/index.html").read_text()
    assert NO_CARD in html
    summary = json.loads((run / "report/summary.json").read_text())
    assert summary["headline"]["rtl_mismatches"] == 0


def test_ulb_schema_csv_runs_every_step_to_the_report(ulb_run, capsys):
    assert_every_step_finished(ulb_run)
    assert_cp_is_na_with_its_reason(ulb_run)
    data = json.loads((ulb_run / "data/summary.json").read_text())
    assert len(data["features"]) == 29 and "Time" not in data["features"]
    golden = np.load(ulb_run / "hls/golden.npz")
    assert golden["test_input_codes"].shape[1] == 29
    # The metrics table the CLI prints: CP@100 as n/a, the reason under the table.
    assert cli("train", "--run", "ulb", "--projects-dir", str(ulb_run.parent), settings=[]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and f"n/a CP@100: {NO_CARD}" in out
    # The team's own model went the whole way, and the report sets it beside the toolkit's.
    report = (ulb_run / "report/report.md").read_text()
    assert "## Your model (imported)" in report and "team_xgboost.json" in report
    assert "your model (xgboost" in report and "(trained by the toolkit)" in report
    pnr = json.loads((ulb_run / "imported/synth/pnr.json").read_text())
    assert pnr["fmax_mhz"] > 0 and "placed and routed on" in report
    serving = json.loads((ulb_run / "imported/serving.json").read_text())
    assert set(serving["backends"]) == {"imported-library", "imported-onnxruntime"}
    assert all(b["check_against_model"]["max_abs_difference"] < 1e-4
               for b in serving["backends"].values())
    assert "your model on imported-onnxruntime" in report
    answer = report.split("## The answer", 1)[1].split("\n## ", 1)[0]
    assert "**Your model** (team_xgboost.json, XGBoost booster (JSON))" in answer
    assert "| your model's firmware (XGBoost booster (JSON), conifer emulation) | FPGA" in answer
    assert "| your model (xgboost" in answer and "imported-onnxruntime" in answer


def test_quality_on_a_card_less_run_resamples_transactions(ulb_run, tmp_path):
    import shutil

    projects = tmp_path / "projects"
    shutil.copytree(ulb_run, projects / "ulb", ignore=shutil.ignore_patterns("build_*", "work_*"))
    assert cli("quality", "--run", "ulb", "--projects-dir", str(projects), "--reconfigure",
               settings=["quality.seeds=2", "quality.bootstrap=100"]) == 0
    quality = json.loads((projects / "ulb/quality/summary.json").read_text())
    assert quality["resampling_unit"] == "transactions"
    assert NO_CARD in quality[NOT_AVAILABLE]["card_precision"]
    assert all("card_precision" not in m for m in quality["models"].values())
    assert "card_precision" not in quality["firmware_minus_strongest"]
    table = (projects / "ulb/quality/table.md").read_text()
    assert f"CP@100: n/a, {NO_CARD}" in table and "| n/a |" in table
    assert cli("report", "--run", "ulb", "--projects-dir", str(projects), settings=[]) == 0
    report = (projects / "ulb/report/report.md").read_text()
    assert "Model quality over training seeds (make quality)" in report
    assert "resamples of the test period's transactions" in report


def test_metrics_without_cards_or_with_one_class_say_why():
    label = np.array([0, 0, 1, 0, 1, 0])
    score = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.4])
    no_card = evaluate(label, score, 0.5, day=np.zeros(6), card=None, top_k=2)
    assert no_card["card_precision_at_2"] is None
    assert no_card[NOT_AVAILABLE] == {"card_precision_at_2": NO_CARD + "; CP@k ranks cards per day"}
    assert no_card["average_precision"] == 1.0
    genuine_only = evaluate(np.zeros(6, int), score, 0.5, np.zeros(6), np.arange(6), 2)
    for key in ("auc_roc", "average_precision", "card_precision_at_2", "recall"):
        assert genuine_only[key] is None
        assert "only genuine transactions" in genuine_only[NOT_AVAILABLE][key]
    table = format_table({"a": no_card, "b": genuine_only}, top_k=2)
    assert table.count("n/a") >= 6 and "n/a CP@2: the test set holds only genuine" in table
    with_cards = evaluate(label, score, 0.5, np.zeros(6), np.arange(6), 2)
    assert NOT_AVAILABLE not in with_cards and with_cards["card_precision_at_2"] == 1.0


def test_a_csv_card_column_without_dates_names_the_missing_dates():
    label = np.array([0, 1, 0, 1])
    metrics = evaluate(label, np.array([0.1, 0.9, 0.2, 0.8]), 0.5, day=None,
                       card=np.array([1, 2, 3, 4]))
    assert metrics[NOT_AVAILABLE]["card_precision_at_100"].startswith("the data have no date column")


def test_test_scores_keep_no_card_column_when_the_data_has_none(ulb_run):
    scores = pd.read_parquet(ulb_run / "models/test_scores.parquet")
    assert "card" not in scores.columns and len(scores) == 750
