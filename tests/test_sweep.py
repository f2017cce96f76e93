"""Sweeps: the sweep file is checked before any trial, the Pareto front of a hand-made table,
an address that does not answer, pruning removes adders, and a 3-trial sweep on tiny data
through local Ray that resumes after being killed."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fraudfpga.errors import FlowError
from fraudfpga.schema import ConfigError, lookup
from fraudfpga.sweep.engine import check_address
from fraudfpga.sweep.pareto import dominates, front
from fraudfpga.sweep.spec import load_spec, trial_id

from conftest import cli
from realdata import write_generic

TINY_SWEEP = Path(__file__).parent / "fixtures" / "sweep_tiny.yaml"


def spec_file(tmp_path, **changes):
    spec = yaml.safe_load(TINY_SWEEP.read_text())
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("changes, pattern", [
    ({"space": {"model.widht_bits": [4]}}, r"space: unknown configuration key 'model.widht_bits'"),
    ({"space": {"model.weight_bits": [4, 1]}}, r"model.weight_bits: 1 is out of range"),
    ({"space": {"model.hidden": [[8], [8, 0]]}}, r"model.hidden: \[8, 0\] is out of range"),
    ({"space": {"train.prune_sparsity": [0.5, 0.97]}}, r"train.prune_sparsity: 0.97 is out of range"),
    ({"space": {"train.prune_sparsity": [-0.1]}}, r"train.prune_sparsity: -0.1 is out of range"),
    ({"space": {"data.seed": [1, 2]}}, r"'data.seed' cannot be searched"),
    ({"space": {"model.input_bits": [4]}}, r"model.input_integer: 4 must be <= model.input_bits - 1"),
    ({"settings": {"references.models": ["xgboost"]}}, r"'references.models' is set by the sweep"),
    ({"strategy": "bayes"}, r"strategy: 'bayes' is not one of grid, random, optuna"),
    ({"trials": 0}, r"trials: 0 must be an integer >= 1"),
    ({"budget": 3}, r"unknown sweep key 'budget'"),
    ({"space": None}, r"space: missing"),
    ({"space": {"family": ["network", "tree"]}}, r"family: 'tree' is not a firmware family"),
    ({"space": {"forest.max_depth": [4, 6]}},
     r"'forest.max_depth' is read by no searched family's steps \(network\)"),
    ({"space": {"family": ["forest"], "model.hidden": [[4], [8]]}},
     r"'model.hidden' is read by no searched family's steps \(forest\)"),
])
def test_bad_sweep_files_are_refused_before_any_trial(tmp_path, changes, pattern):
    path = spec_file(tmp_path, **changes)
    with pytest.raises(ConfigError, match=pattern):
        load_spec(path, tmp_path / "projects")
    assert cli("sweep", str(path), "--projects-dir", str(tmp_path / "projects"), settings=[]) == 2
    assert not (tmp_path / "projects").exists()


def test_an_address_that_does_not_answer_fails_in_seconds(tmp_path, capsys):
    started = time.perf_counter()
    with pytest.raises(FlowError, match=r"--address 127.0.0.1:9: no Ray cluster answers there"):
        check_address("127.0.0.1:9")
    with pytest.raises(FlowError, match="expected host:port"):
        check_address("nowhere")
    assert cli("sweep", str(TINY_SWEEP), "--projects-dir", str(tmp_path), "--address",
               "127.0.0.1:9", settings=[]) == 2
    assert "127.0.0.1:9" in capsys.readouterr().err
    assert time.perf_counter() - started < 30


def test_pareto_front_of_a_hand_made_table():
    rows = [
        {"name": "a", "ap": 0.70, "lut_ff": 9000, "cycles": 7},   # best AP
        {"name": "b", "ap": 0.69, "lut_ff": 3000, "cycles": 5},   # smaller and faster
        {"name": "c", "ap": 0.68, "lut_ff": 3500, "cycles": 5},   # dominated by b
        {"name": "d", "ap": 0.60, "lut_ff": 800, "cycles": 6},    # smallest
        {"name": "e", "ap": 0.60, "lut_ff": 800, "cycles": 6},    # identical to d: both kept
        {"name": "f", "ap": 0.65, "lut_ff": 9000, "cycles": 4},   # fastest
        {"name": "g", "ap": 0.65, "lut_ff": 9500, "cycles": 4},   # dominated by f
    ]
    assert [r["name"] for r in front(rows)] == ["a", "b", "d", "e", "f"]
    assert dominates(rows[1], rows[2]) and not dominates(rows[2], rows[1])
    assert not dominates(rows[3], rows[4])


def test_trial_ids_follow_the_settings():
    assert trial_id({"a": [8], "b": 4}) == trial_id({"b": 4, "a": [8]})
    assert trial_id({"a": [8], "b": 4}) != trial_id({"a": [8], "b": 6})


def test_a_design_keeps_the_keys_its_family_reads(tmp_path):
    """A forest trial drops the network's keys and a network trial the forest's (the steps'
    declared reads decide); keys both read (place and route's) stay in both."""
    path = spec_file(tmp_path, space={"family": ["network", "forest"], "model.hidden": [[4], [8]],
                                      "forest.max_depth": [4, 6], "fpga.seed": [1, 2]})
    spec, base = load_spec(path, tmp_path / "projects")
    sample = {"model.hidden": [8], "forest.max_depth": 6, "fpga.seed": 2}
    assert spec.design(sample | {"family": "forest"}) == {"family": "forest",
                                                          "forest.max_depth": 6, "fpga.seed": 2}
    assert spec.design(sample | {"family": "network"}) == {"family": "network",
                                                           "model.hidden": [8], "fpga.seed": 2}
    assert trial_id(spec.design(sample | {"family": "forest"})) == trial_id(
        spec.design(sample | {"family": "forest", "model.hidden": [4]}))
    assert len(spec.grid()) == 16 and len(spec.designs()) == 4 + 4  # network 2x2, forest 2x2
    assert spec.base_design(base, "forest") == {"family": "forest", "forest.max_depth": 4,
                                                "fpga.seed": base["fpga"]["seed"]}


def test_pruning_zeroes_weights_and_removes_adders(tmp_path):
    """The same tiny network pruned: its kernels are exactly sparse after strip_pruning, and
    da4ml builds fewer adders (Yosys counts fewer LUTs) than for the unpruned twin."""
    from fraudfpga.sim.rtl import PipelineChoice, generate_rtl
    from fraudfpga.sim.yosys import synthesize
    from test_hls import converted

    from fraudfpga.kerasenv import keras
    from fraudfpga.models import compression
    from fraudfpga.models.network import build_qkeras_model
    from fraudfpga.hls.flow import random_vectors
    from fraudfpga.config import default_config

    cfg = default_config()["model"] | {"hidden": [12], "weight_bits": 6}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 15)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 3] > 1).astype("float32")
    luts = {}
    for sparsity in (0.0, 0.7):
        keras().utils.set_random_seed(0)
        model = build_qkeras_model(15, cfg)
        if sparsity:
            model, step = compression.with_pruning(model, sparsity, 3, 3000 // 256 + 1)
        model.compile(optimizer="adam", loss=keras().losses.BinaryCrossentropy(from_logits=True))
        model.fit(x, y, epochs=3, batch_size=256, verbose=0, callbacks=[step] if sparsity else [])
        if sparsity:
            model = compression.strip_pruning(model)
            zeros = compression.kernel_sparsity(model)
            assert all(abs(z - sparsity) < 0.05 for z in zeros.values()), zeros
        _, network = converted(model, tmp_path / f"fw{sparsity}")
        codes = random_vectors(network, 50, seed=1)
        meta = generate_rtl(network, tmp_path / f"rtl{sparsity}", PipelineChoice("ecp5", "latency"),
                            codes, progress=lambda _: None)
        luts[sparsity] = synthesize(tmp_path / f"rtl{sparsity}", meta, tmp_path / f"syn{sparsity}",
                                    progress=lambda _: None)["resources"]["LUT"]
    assert luts[0.7] < 0.6 * luts[0.0], luts


def test_an_interrupted_ray_tune_run_counts_as_unfinished():
    """Ray Tune returns from `fit()` on Ctrl-C: the trial it stopped has no report, the ones
    not started are missing. Only reports and failures count as finished."""
    from types import SimpleNamespace as Result

    from fraudfpga.sweep.engine import _finished

    reported = Result(error=None, metrics={"ap": 0.3, "trial": "t1"})
    failed = Result(error=RuntimeError("boom"), metrics={})
    stopped = Result(error=None, metrics={"trial_id": "x", "config": {}})
    assert _finished([reported, failed, stopped]) == 2
    assert _finished([reported]) == 1  # of 3 asked for: the sweep stops as interrupted


def _sweep_process(spec: Path, projects: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fraudfpga.cli", "sweep", str(spec),
                             "--projects-dir", str(projects)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_three_trials_on_local_ray_resume_after_a_kill(tmp_path):
    """On card-less data (a generic CSV with a time column): CP@k is n/a, nothing else changes."""
    csv = write_generic(tmp_path / "tx.csv", rows=6000)
    settings = yaml.safe_load(TINY_SWEEP.read_text())["settings"]
    settings = {k: v for k, v in settings.items() if not k.startswith("data.simulator")
                and not k.startswith("split.")}
    settings |= {"data.source": "csv", "data.path": str(csv), "data.label_column": "is_fraud",
                 "data.time_column": "unix_time", "split.mode": "fraction"}
    spec = spec_file(tmp_path, place_and_route=False, settings=settings)
    projects = tmp_path / "projects"
    trials = projects / "sweep-tiny" / "trials"
    first = _sweep_process(spec, projects)
    deadline = time.time() + 600
    done = []
    while time.time() < deadline and first.poll() is None:
        done = [p for p in trials.glob("*/trial.json") if json.loads(p.read_text())["status"] == "done"]
        if done:
            break
        time.sleep(2)
    assert done, "no trial finished"
    os.kill(first.pid, signal.SIGINT)  # as Ctrl-C would
    try:
        assert first.wait(timeout=180) == 130, first.stdout.read()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    kept = {p: p.stat().st_mtime for p in done}

    second = _sweep_process(spec, projects)
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert "resuming" in output
    for path, mtime in kept.items():
        assert path.stat().st_mtime == mtime  # a finished trial is not redone
    state = json.loads((projects / "sweep-tiny" / "sweep.json").read_text())
    rows = state["trials"]  # 4 grid points, 3 designs; each family's base design is one of them
    assert len(rows) == 3 and all(r["status"] == "done" for r in rows)
    assert sorted(r["family"] for r in rows) == ["forest", "network", "network"]
    assert sum(r["reference"] for r in rows) == 2
    forest = next(r for r in rows if r["family"] == "forest")
    assert forest["settings"] == {"family": "forest", "forest.max_depth": 4}
    assert re.search(r"\[sweep\] \d/3 t\w+ \((network|forest)\): AP \d\.\d{4}, [\d,]+ LUT\+FF", output)
    on_front = [r for r in state["trials"] if r["on_front"]]
    assert on_front and all(r["verified"]["mismatches"] == 0 for r in on_front)
    verified = [r["verified"] for r in rows if r.get("verified")]
    assert {v["family"] for v in verified} == {r["family"] for r in rows if r.get("verified")}
    assert all(len(v["model_test_ap_seeds"]) == 2 for v in verified)
    test_rows = len(pd.read_parquet(projects / "sweep-tiny" / "shared" / "data" / "test.parquet"))
    # the whole test set, plus the random and edge vectors
    assert all(r["verified"]["vectors_checked"] > test_rows for r in on_front)
    page = (projects / "sweep-tiny" / "index.html").read_text()
    assert "ap_vs_lut_ff.png" in page and all(r["trial"] in page for r in state["trials"])
    for name in ("ap_vs_lut_ff.png", "ap_vs_cycles.png"):
        assert (projects / "sweep-tiny" / name).stat().st_size > 5000
    best = on_front[0]["trial"]
    assert cli("sweep-promote", str(spec), "--trial", best, "--run", "chosen",
               "--projects-dir", str(projects), settings=[]) == 0
    promoted = yaml.safe_load((projects / "chosen" / "config.yaml").read_text())
    settings = next(r["settings"] for r in state["trials"] if r["trial"] == best)
    for key, value in settings.items():
        if key != "family":
            assert lookup(promoted, key) == value
    assert promoted["references"]["models"] == ["random_forest", "xgboost"]  # restored


def test_the_report_links_a_sweep_on_its_data(tiny_copy):
    """A finished sweep beside the run, on the same data, shows in the run's report with its
    front and a link to its page; the report reruns when the sweep changes."""
    run_config = yaml.safe_load((tiny_copy / "config.yaml").read_text())
    sweep = tiny_copy.parent / "sweep-handmade"
    (sweep / "shared").mkdir(parents=True)
    (sweep / "shared" / "config.yaml").write_text(yaml.safe_dump(
        {"data": run_config["data"], "split": run_config["split"]}))
    row = {"trial": "t0123456789", "settings": {"model.hidden": [8]}, "status": "done",
           "ap": 0.61, "lut": 900, "ff": 120, "lut_ff": 1020, "cycles": 4, "on_front": True,
           "reference": False, "verified": {"model_test_ap_mean": 0.55, "fmax_mhz": 120.0,
                                            "latency_ns": 33.3, "vectors_checked": 4613,
                                            "mismatches": 0}}
    state = {"spec": {"name": "handmade", "strategy": "grid", "space": {"model.hidden": [[8]]},
                      "seeds": 1, "front_seeds": 3},
             "seconds": 90.0, "address": "local", "cpus": 2, "trials": [row]}
    (sweep / "sweep.json").write_text(json.dumps(state))
    projects = str(tiny_copy.parent)
    assert cli("report", "--run", "tiny", "--projects-dir", projects) == 0
    page = (tiny_copy / "report" / "index.html").read_text()
    assert "Design-space sweep &#x27;handmade&#x27;" in page or "Design-space sweep 'handmade'" in page
    assert '<a href="../../sweep-handmade/index.html">sweep page</a>' in page
    assert "t0123456789" in page and "120.0 MHz, 33.3 ns" in page
    row["ap"] = 0.62
    (sweep / "sweep.json").write_text(json.dumps(state))
    assert cli("report", "--run", "tiny", "--projects-dir", projects) == 0
    assert "0.6200" in (tiny_copy / "report" / "report.md").read_text()  # not "up to date"


def test_a_failing_trial_is_recorded_with_its_cause(tmp_path):
    from fraudfpga.config import default_config
    from fraudfpga.sweep.trial import run_trial

    config = default_config() | {"run": "t1"}
    with pytest.raises(RuntimeError, match="shared data step has not run"):
        run_trial(str(tmp_path / "trials"), str(tmp_path / "shared"), "t1", config, 1)
    record = json.loads((tmp_path / "trials" / "t1" / "trial.json").read_text())
    assert record["status"] == "failed" and "shared data step has not run" in record["cause"]
