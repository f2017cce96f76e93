"""A tiny end-to-end run of every step through the command line."""

import json

import numpy as np
import pandas as pd
from conftest import cli

from fraudfpga.cli import main


def test_run_folder_holds_split_models_metrics_and_manifest(tiny_run):
    for name in ("data/train.parquet", "data/valid.parquet", "data/test.parquet",
                 "data/scaler.json", "models/qkeras_model.h5", "models/float_model.h5",
                 "models/references.joblib", "models/references.json", "models/summary.json", "models/test_scores.parquet",
                 "models/metrics.json", "hls/metrics.json", "manifest.json", "config.yaml", "hls/network.json", "hls/golden.npz",
                 "hls/bit_exactness.json", "hls/project/firmware/myproject.cpp",
                 "synth/vendor.json", "rtl/metadata.json", "rtl/fraud_mlp_top.v",
                 "sim/results.json", "sim/results.xml", "synth/yosys.json", "data/delay.parquet",
                 "hls/reason_codes.csv", "hls/explain.json", "hls/shap_importance.png"):
        assert (tiny_run / name).is_file(), name
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert set(manifest["steps"]) == {"data", "train", "references", "hls", "explain", "rtl",
                                      "sim", "synth_vendor", "synth_yosys", "pnr", "export", "serving",
                                      "baseline", "report", "forest", "forest_rtl", "forest_sim",
                                      "forest_synth_yosys", "forest_pnr", "forest_explain",
                                      "forest_serving", "fusion"}
    assert "models/qkeras_model.h5" in manifest["steps"]["train"]["outputs"]
    assert manifest["steps"]["train"]["parts"]["config"]["model"]["hidden"] == [4]
    assert not list(tiny_run.rglob(".*partial*"))


def test_every_model_beats_a_constant_score(tiny_run):
    metrics = json.loads((tiny_run / "models/metrics.json").read_text())
    metrics["models"]["firmware"] = json.loads((tiny_run / "hls/metrics.json").read_text())["firmware"]
    prevalence = metrics["split"]["test"]["fraud_rate"]
    for name in ("qkeras", "float", "random_forest", "xgboost", "firmware"):
        model = metrics["models"][name]
        # A constant score has AP = prevalence and AUC = 0.5.
        assert model["average_precision"] > 3 * prevalence, name
        assert model["auc_roc"] > 0.6, name
        assert model["card_precision_at_100"] is not None


def test_saved_qkeras_model_reloads_with_identical_scores(tiny_run):
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    data = PreparedData(tiny_run)
    model = load_model(tiny_run / "models/qkeras_model.h5")
    scores = pd.read_parquet(tiny_run / "models/test_scores.parquet")
    reloaded = model.predict(data.inputs("test"), batch_size=8192, verbose=0).ravel()
    np.testing.assert_array_equal(reloaded, scores["score_qkeras"].to_numpy().astype(np.float32))
    summary = json.loads((tiny_run / "models/summary.json").read_text())
    assert summary["models"]["qkeras"]["parameter_bits"] == (15 * 4 + 4 * 1) * 8 + (4 + 1) * 8


def test_second_run_is_skipped(tiny_run, capsys):
    before = (tiny_run / "manifest.json").read_text()
    assert cli("all", "--run", "tiny", "--projects-dir", str(tiny_run.parent)) == 0
    out = capsys.readouterr().out
    assert out.count("up to date") == 22 and "report/index.html" in out
    assert (tiny_run / "manifest.json").read_text() == before


def test_bad_csv_gives_a_clear_error_and_exit_code(tmp_path, capsys):
    csv = tmp_path / "tx.csv"
    csv.write_text("amount,label\n1.0,0\n2.0,7\n")
    code = main(["data", "--projects-dir", str(tmp_path / "p"), "--set", "data.source=csv",
                 "--set", f"data.path={csv}", "--set", "data.label_column=label",
                 "--set", "split.mode=fraction"])
    assert code == 2
    assert "tx.csv: label column 'label', row 2 (line 3): value '7' is not 0 or 1" in \
        capsys.readouterr().err


def test_book_split_on_csv_without_dates_is_refused(tmp_path, capsys):
    csv = tmp_path / "tx.csv"
    csv.write_text("amount,label\n" + "\n".join(f"{i},{i % 2}" for i in range(20)) + "\n")
    code = main(["data", "--projects-dir", str(tmp_path / "p"), "--set", "data.source=csv",
                 "--set", f"data.path={csv}", "--set", "data.label_column=label"])
    assert code == 2
    assert "split.mode=fraction" in capsys.readouterr().err


def test_firmware_is_bit_exact_and_close_to_qkeras(tiny_run):
    exact = json.loads((tiny_run / "hls/bit_exactness.json").read_text())
    assert exact["test_set_vs_reference"]["identical_fraction"] == 1.0
    assert exact["random_vs_reference"]["identical_fraction"] == 1.0
    assert exact["test_set_vs_reference"]["vectors"] == len(
        pd.read_parquet(tiny_run / "data/test.parquet"))
    assert exact["firmware_vs_qkeras"]["identical_fraction"] > 0.3
    assert abs(exact["average_precision_change_vs_qkeras"]) < 0.02
    golden = np.load(tiny_run / "hls/golden.npz")
    assert golden["test_input_codes"].shape[1] == 15


def test_without_vendor_tool_synth_says_so(tiny_run):
    vendor = json.loads((tiny_run / "synth/vendor.json").read_text())
    assert vendor["status"] == "not run" and "no vendor HLS tool" in vendor["reason"]
    assert "resources" not in vendor


def test_rtl_simulation_checked_every_vector(tiny_run):
    results = json.loads((tiny_run / "sim/results.json").read_text())
    metadata = json.loads((tiny_run / "rtl/metadata.json").read_text())
    test_rows = len(pd.read_parquet(tiny_run / "data/test.parquet"))
    assert results["vectors"]["test_set"] == test_rows
    assert results["vectors_checked"] == test_rows + results["vectors"]["random_and_edge"]
    assert results["mismatch_count"] == 0
    assert results["latency_cycles"] == metadata["latency_cycles"]
    assert results["initiation_interval_cycles"] == 1.0
    assert "<testsuite" in (tiny_run / "sim/results.xml").read_text()
    yosys = json.loads((tiny_run / "synth/yosys.json").read_text())
    assert yosys["resources"]["LUT"] > 0


def test_sim_options_and_a_failing_simulation(tiny_copy, capsys, monkeypatch):
    """--vectors limits the stream (and becomes the run's setting); a failing simulation
    exits 2 with the first mismatch and leaves no sim entry that looks current."""
    from fraudfpga.sim import flow

    projects = str(tiny_copy.parent)
    assert cli("sim", "--run", "tiny", "--projects-dir", projects, "--vectors", "50") == 0
    results = json.loads((tiny_copy / "sim/results.json").read_text())
    assert results["vectors"] == {"test_set": 50, "random_and_edge": 50}
    assert "rtl.vectors: 'all' -> 50" in capsys.readouterr().out
    real_simulate = flow.simulate

    def one_wrong_output(rtl_dir, metadata, inputs, expected, *args, **kwargs):
        expected = expected.copy()
        expected[3, 0] += 1
        return real_simulate(rtl_dir, metadata, inputs, expected, *args, **kwargs)

    monkeypatch.setattr(flow, "simulate", one_wrong_output)
    assert cli("sim", "--run", "tiny", "--projects-dir", projects, "--force") == 2
    err = capsys.readouterr().err
    assert "RTL simulation failed: 1 mismatches" in err and "'index': 3" in err
    assert "sim" not in json.loads((tiny_copy / "manifest.json").read_text())["steps"]
    assert cli("report", "--run", "tiny", "--projects-dir", projects) == 2
    assert "needs sim/results.json from step 'sim', which has not run" in capsys.readouterr().err


def test_a_changed_golden_model_is_never_used_as_current(tiny_copy, capsys):
    golden_path = tiny_copy / "hls/golden.npz"
    golden = dict(np.load(golden_path))
    golden["test_output_codes"][3, 0] += 1
    np.savez(golden_path, **golden)
    assert cli("sim", "--run", "tiny", "--projects-dir", str(tiny_copy.parent)) == 2
    err = capsys.readouterr().err
    assert "step 'hls', which is out of date: its output hls/golden.npz was changed" in err
    assert "fraudfpga hls --run tiny" in err
