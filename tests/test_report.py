"""The TensorFlow baseline in quick mode, the FPGA figures, and the report of a small run."""

import json
import re

import numpy as np
import pytest

from fraudfpga.report.fpga_figures import fpga_figures
from fraudfpga.gpu_baseline.benchmark import CPU_FALLBACK, QUICK_BATCH_SIZES, run_baseline
from fraudfpga.kerasenv import set_seeds
from fraudfpga.models.network import build_float_model


def test_quick_baseline_writes_every_setting():
    set_seeds(0)
    model = build_float_model(15, {"hidden": [8]})
    inputs = np.random.default_rng(0).normal(size=(100, 15)).astype(np.float32)
    results = run_baseline({"float": model}, inputs, quick=True, seconds_per_point=0.2,
                           progress=lambda _: None)
    rows = results["results"]
    combos = {(r["compile"], r["variant"], r["batch_size"]) for r in rows}
    assert combos == {(c, v, b) for c in ("tf.function", "xla") for v in ("device_resident", "host_copy")
                      for b in QUICK_BATCH_SIZES}
    for row in rows:
        assert row["calls"] == 5 and 0 < row["p50_latency_ms"] <= row["p99_latency_ms"]
        assert row["transactions_per_s"] == pytest.approx(row["batch_size"] / row["p50_latency_ms"] * 1e3)
    device = results["device"]
    assert device["tensorflow"] and device["name"]
    import tensorflow as tf

    expected = "GPU" if tf.config.list_physical_devices("GPU") else CPU_FALLBACK
    assert device["label"] == expected and all(r["device"] == expected for r in rows)
    assert (CPU_FALLBACK in results["kind"]) == (expected == CPU_FALLBACK)


def test_device_info_labels_a_gpu_as_gpu(monkeypatch):
    """The GPU branch, with TensorFlow made to report one: no "CPU fallback" label."""
    import tensorflow as tf

    from fraudfpga.gpu_baseline.benchmark import device_info

    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "NVIDIA H100 80GB HBM3",
                                        "compute_capability": (9, 0)})
    info = device_info()
    assert info["type"] == "GPU" and info["label"] == "GPU" and info["device"] == "/GPU:0"
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["compute_capability"] == (9, 0)
    assert "note" not in info


def test_the_baseline_steps_machine_facts_need_no_tensorflow_import(monkeypatch):
    """Whether the baseline steps are current is checked by every `report` and `status`: their
    machine facts come from the package metadata and nvidia-smi, the same values TensorFlow
    gives, without its import."""
    import ast
    import subprocess
    import sys

    check = ("import sys; from fraudfpga.gpu_baseline.flow import _device; facts = _device(); "
             "assert 'tensorflow' not in sys.modules, 'imported'; print(facts)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import tensorflow as tf

    from fraudfpga.gpu_baseline import benchmark, flow

    facts = flow._device()
    assert facts == ast.literal_eval(done.stdout)
    assert facts["tensorflow"] == tf.__version__
    if not tf.config.list_physical_devices("GPU"):
        assert facts["device"] == benchmark.device_info()["name"]
    monkeypatch.setattr(benchmark.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(benchmark.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout="NVIDIA H100 80GB HBM3\nNVIDIA H100 80GB HBM3\n"))
    assert flow._device()["device"] == "NVIDIA H100 80GB HBM3"


SIM = {"latency_cycles": 8, "initiation_interval_cycles": 1.0, "simulator": "verilator"}
YOSYS = {"resources": {"LUT": 10_000, "FF": 4_000, "DSP": 0}}
PNR = {"fmax_mhz": 80.0, "device": "LIFCL-40-9BG400C", "family_title": "Lattice CrossLink-NX",
       "seed": 1, "utilization": {"OXIDE_COMB": {"used": 3_000, "available": 32_256},
                                  "OXIDE_FF": {"used": 1_000, "available": 32_256}}}
U250 = "xcu250-figd2104-2L-e"


def test_without_timing_the_fpga_figures_say_not_timed():
    figures = fpga_figures(SIM, YOSYS, {"status": "not run"}, None, U250, 4.0, 0.7)
    assert figures["latency_ns"] == 32.0 and figures["clock_mhz"] == 250.0
    assert figures["timing"] == "not timed" and "not timed" in figures["clock_source"]
    assert "uncalibrated" in figures["clock_source"]
    assert figures["instances_on_part"] == int(1_728_000 * 0.7 / 10_000)  # LUT-limited: 120
    assert figures["limiting_resource"] == "LUT"
    assert figures["card_throughput_tx_s"] == 120 * 250e6
    assert "not timed" in figures["card_throughput_kind"]


def test_a_place_and_route_result_is_the_headline_over_the_target_clock():
    figures = fpga_figures(SIM, YOSYS, {"status": "not run"}, PNR, U250, 4.0, 0.7)
    assert figures["timing"] == "pnr" and figures["clock_mhz"] == 80.0
    assert figures["latency_ns"] == 100.0  # 8 cycles at 80 MHz, not 32 ns at 250 MHz
    assert "LIFCL-40-9BG400C" in figures["clock_source"] and figures["timed_on"] == "LIFCL-40-9BG400C"
    assert figures["instances_on_device"] == int(32_256 * 0.7 / 3_000)
    # The U250 estimate stays, at the hls4ml clock, labelled not timed.
    assert figures["part_clock_mhz"] == 250.0 and "not timed" in figures["part_clock_kind"]


def test_fpga_figures_prefer_the_vendor_clock_and_handle_unknown_parts():
    vendor = {"status": "ok", "tool": "vitis_hls", "tool_version": "2023.2",
              "clock_ns": {"estimated": 3.2}, "resources": {"LUT": 20_000, "FF": 10_000, "DSP": 100}}
    figures = fpga_figures(SIM, YOSYS, vendor, PNR, U250, 4.0, 0.5)
    assert figures["clock_ns"] == 3.2 and "vendor report" in figures["clock_source"]
    assert figures["latency_ns"] == pytest.approx(25.6)
    assert figures["instances_on_part"] == int(1_728_000 * 0.5 / 20_000)
    unknown = fpga_figures(SIM, YOSYS, {"status": "not run"}, None, "xc7z020", 4.0, 0.7)
    assert unknown["instances_on_part"] is None and "no capacity" in unknown["instances_kind"]


def test_report_renders_offline_with_every_plot(tiny_run):
    report = tiny_run / "report"
    for name in ("latency_vs_batch.png", "throughput_vs_batch.png", "roc.png", "precision_recall.png"):
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
    page = (report / "index.html").read_text()
    markdown = (report / "report.md").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched from a CDN
    for text in (page, markdown):
        headings = ["The answer", "Serving under load: the decision", "Model quality",
                    "FPGA implementation: the network firmware", "Forest firmware",
                    "CPU/GPU details", "Verification: the network firmware", "Reason codes",
                    "Provenance"]
        where = [text.index(h) for h in headings]
        assert where == sorted(where), "the evidence follows the answer in the issue's order"
        for img in ("latency_vs_batch.png", "roc.png", "precision_recall.png"):
            assert img in text
        assert "measured in simulation" in text and "estimate" in text
    baseline = json.loads((tiny_run / "baseline/results.json").read_text())
    label = baseline["device"]["label"]
    assert label in page and label in markdown
    assert ("CPU fallback" in page) == (baseline["device"]["type"] == "CPU")
    assert "test period 2018-05-09 to 2018-05-15" in markdown  # book mode: dates, not "week"
    summary = json.loads((report / "summary.json").read_text())
    fpga, headline = summary["fpga"], summary["headline"]
    pnr = json.loads((tiny_run / "synth/pnr.json").read_text())
    assert headline["fpga_timing"] == "pnr" and headline["fpga_timed_on"] == pnr["device"]
    assert fpga["latency_ns"] == pytest.approx(fpga["latency_cycles"] * 1e3 / pnr["fmax_mhz"], abs=0.01)
    assert f"Fmax after place and route on Lattice ECP5 {pnr['device']}" in markdown
    assert headline["rtl_mismatches"] == 0
    assert headline["baseline_best_batch1_p50_ms"] > 0
    # The deliverable is the AXI4-Stream top: its measured latency, its P&R, its own section.
    sim = json.loads((tiny_run / "sim/results.json").read_text())
    assert pnr["top"] == "fraud_mlp_axis" and pnr["latency_cycles"] == sim["axis"]["latency_cycles"]
    assert fpga["interface"] == "axis" and fpga["latency_cycles"] == sim["latency_cycles"] + 1
    assert "AXI4-Stream top level" in markdown
    lost = f"{sim['axis']['lost']} / {sim['axis']['duplicated']} / {sim['axis']['reordered']} over"
    assert lost == "0 / 0 / 0 over" and lost in markdown
    wrapper = json.loads((tiny_run / "synth/yosys.json").read_text())["wrapper"]
    assert f"{wrapper['lut_share_of_core']:.2%} of the core's" in markdown
