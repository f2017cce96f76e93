"""Serving under load: export, the dynamic batcher, saturation, the FPGA path, the standalone
GPU script on the CPU, and the report's verdict."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import cli

from fraudfpga.gpu_baseline.serving import (BatchPolicy, FpgaPath, highest_load_under,
                                            poisson_arrivals, serve_batched, serve_fpga,
                                            summarize)

INPUTS = np.zeros((100, 3), np.float32)


def test_export_reproduces_the_keras_outputs(tiny_run):
    import onnxruntime as ort

    check = json.loads((tiny_run / "baseline/export.json").read_text())
    assert check["onnx"]["max_abs_difference_vs_keras"] < 1e-4
    assert check["npz"]["max_abs_difference_vs_keras"] < 1e-4
    from fraudfpga.models.dataset import PreparedData

    x = PreparedData(tiny_run).inputs("test")
    session = ort.InferenceSession(str(tiny_run / "baseline/float_model.onnx"))
    onnx_scores = session.run(None, {session.get_inputs()[0].name: x})[0][:, 0]
    keras_scores = pd.read_parquet(tiny_run / "models/test_scores.parquet")["score_float"]
    np.testing.assert_allclose(onnx_scores, keras_scores, atol=1e-4)


def test_the_batcher_forms_batches_as_configured():
    calls = []
    policy = BatchPolicy(max_batch=4, max_queue_delay_s=1e-3, max_wait_s=1.0)
    # Ten requests at once: batches of 4, 4, 2 (the last one after waiting the queue delay).
    burst = serve_batched(np.zeros(10), lambda b: calls.append(len(b)), INPUTS, policy)
    assert calls == [4, 4, 2] and list(burst.batches) == [4, 4, 2]
    # Requests 10 ms apart: each waits the 1 ms queue delay alone, then is sent on its own.
    calls.clear()
    sparse = serve_batched(np.arange(5) * 0.01, lambda b: calls.append(len(b)), INPUTS, policy)
    assert calls == [1] * 5
    assert np.all(sparse.latency_s >= 1e-3) and np.all(sparse.latency_s < 2e-3)


def test_a_slow_backend_is_reported_saturated_with_its_drops():
    policy = BatchPolicy(max_batch=1, max_queue_delay_s=0.0, max_wait_s=0.01)
    arrivals = poisson_arrivals(5000, 0.1, seed=1)  # 5,000/s against about 1,000/s of service
    served = serve_batched(arrivals, lambda b: time.sleep(0.001), INPUTS, policy)
    level = summarize(served, 5000, arrivals.size, 0.1)
    assert level["saturated"] and level["dropped"] > 0 and "p99_us" not in level
    assert highest_load_under([level], 1e9) is None
    light = poisson_arrivals(100, 0.2, seed=2)
    ok = summarize(serve_batched(light, lambda b: None, INPUTS, policy), 100, light.size, 0.2)
    assert not ok["saturated"] and ok["p99_us"] < 1000
    assert highest_load_under([ok, level], 1000) == 100


def test_the_fpga_path_is_bounded_by_pipeline_and_link():
    path = FpgaPath(compute_s=140e-9, clock_hz=50e6, link_round_trip_s=2e-6,
                    link_bytes_per_s=25e9, bytes_per_transaction=15)
    assert path.rate_per_s == 50e6
    narrow = FpgaPath(140e-9, 50e6, 2e-6, 150e6, 15)  # a 150 MB/s link: 10 M transactions/s
    assert narrow.rate_per_s == pytest.approx(10e6)
    arrivals = np.array([0.0, 1e-9, 1e-3])
    served = serve_fpga(arrivals, narrow)
    # The second request waits for the first one's slot (100 ns), the third finds the path free.
    np.testing.assert_allclose(served.latency_s - narrow.end_to_end_s(), [0, 100e-9 - 1e-9, 0],
                               atol=1e-12)


def standalone(*args):
    """The script as it runs on the accelerator machine: its own process, a file path."""
    from fraudfpga.gpu_baseline import gpu_standalone

    return subprocess.run([sys.executable, gpu_standalone.__file__, *map(str, args)],
                          capture_output=True, text=True, check=False)


def test_the_standalone_gpu_script_runs_on_the_cpu(tiny_run, tmp_path):
    weights = tiny_run / "baseline/float_weights.npz"
    for framework in ("numpy", "jax"):
        out = tmp_path / f"{framework}.json"
        done = standalone("--weights", weights, "--framework", framework, "--device", "cpu",
                          "--out", out, "--batch-sizes", 1, 256, "--seconds", 0,
                          "--min-calls", 5)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(out.read_text())
        assert result["max_abs_difference"] < 1e-4 and result["model"] == "float twin"
        assert {r["batch_size"] for r in result["results"]} == {1, 256}
        assert result["batch1_best"]["p50_us"] > 0 and result["date"]
    from fraudfpga.report.cpu_gpu import gpu_platform_rows, gpu_results_section

    heading, text, header, rows = gpu_results_section(tmp_path)
    assert [r[2] for r in rows] == [result["date"]] * 2 and "not on this run's machine" in text[0]
    platform = gpu_platform_rows(tmp_path)  # the first screen's table gets one row per result
    assert len(platform) == 2 and all(result["date"] in r[1] for r in platform)
    assert all(r[4] == "not measured under load" and len(r) == 8 for r in platform)
    data = dict(np.load(weights))
    data["check_logits"] = data["check_logits"] + 1.0  # weights that do not match the logits
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **data)
    done = standalone("--weights", wrong, "--framework", "numpy", "--device", "cpu",
                      "--out", tmp_path / "x.json")
    assert done.returncode == 2 and "differs from the Keras logits" in done.stderr


def test_the_standalone_gpu_script_scores_the_forest_with_both_strategies(tiny_run, tmp_path):
    """hummingbird's tree traversal and GEMM on the forest's node arrays, checked against the
    training library's probabilities (numpy and JAX on the CPU here; PyTorch on the GPU)."""
    trees = tiny_run / "forest/gpu_trees.npz"
    for framework in ("numpy", "jax"):
        out = tmp_path / f"forest_{framework}.json"
        done = standalone("--forest", trees, "--framework", framework, "--device", "cpu",
                          "--out", out, "--batch-sizes", 1, 64, "--seconds", 0,
                          "--min-calls", 3)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(out.read_text())
        assert result["max_abs_difference"] < 1e-4
        assert result["model"].startswith("forest (") and "GEMM" in result["model"]
        assert {r["mode"].split(", ")[-1] for r in result["results"]} == {"tree traversal", "GEMM"}
    data = dict(np.load(trees))
    data["threshold"] = data["threshold"] + 0.5  # splits moved off the trained thresholds
    wrong = tmp_path / "wrong_trees.npz"
    np.savez(wrong, **data)
    done = standalone("--forest", wrong, "--framework", "numpy", "--device", "cpu",
                      "--out", tmp_path / "y.json")
    assert done.returncode == 2 and "differs from the training library's" in done.stderr


def test_the_report_verdict_names_the_fastest_backend(tiny_run):
    backends = {**json.loads((tiny_run / "baseline/serving.json").read_text())["backends"],
                **json.loads((tiny_run / "forest/serving.json").read_text())["backends"]}
    fastest = min(backends, key=lambda n: backends[n]["batch1"]["p50_us"])
    report = (tiny_run / "report/report.md").read_text()
    assert f"the fastest CPU/GPU back end measured is {fastest} (" in report
    summary = json.loads((tiny_run / "report/summary.json").read_text())["headline"]
    assert summary["fastest_backend"] == fastest
    assert summary["latency_ratio_fastest_backend_over_fpga_end_to_end"] > 0
    assert (tiny_run / "report/decision.png").stat().st_size > 5000


def test_unknown_and_missing_backends(tiny_copy, capsys, monkeypatch):
    from fraudfpga.gpu_baseline import backends

    assert cli("serving", "--run", "tiny", "--projects-dir", str(tiny_copy.parent),
               "--reconfigure", settings=["serving.backends=[tensorrt]"]) == 2
    assert "unknown back end 'tensorrt'; available: onnxruntime" in capsys.readouterr().err
    missing = backends.Backend("absent", "a back end whose package is missing",
                               lambda: "its package is not installed (pip install absent)",
                               lambda paths, max_batch: None)
    monkeypatch.setitem(backends.BACKENDS, "absent", missing)
    assert cli("serving", "--run", "tiny", "--projects-dir", str(tiny_copy.parent),
               "--reconfigure", settings=["serving.backends=[absent, onnxruntime]",
                                          "serving.loads=[1000]", "serving.seconds_per_load=0.02",
                                          "serving.batch1_calls=20"]) == 0
    serving = json.loads((tiny_copy / "baseline/serving.json").read_text())
    assert serving["skipped"] == {"absent": "its package is not installed (pip install absent)"}
    assert list(serving["backends"]) == ["onnxruntime"]
