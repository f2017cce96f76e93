"""Configuration: schema, merging, the run's kept configuration; the manifest and atomic
writes."""

import json
import multiprocessing
import os

import pytest
import yaml
from conftest import cli

from fraudfpga.config import ConfigError, load_config, requested_settings
from fraudfpga.runfolder import RunFolder, atomic_path
from fraudfpga.schema import documented_yaml


def test_defaults_user_yaml_and_overrides(tmp_path):
    user = tmp_path / "my.yaml"
    user.write_text("model:\n  hidden: [8]\ntrain:\n  epochs: 3\n")
    config = load_config(user, ["train.epochs=5", "data.simulator.n_days=30", "run=x",
                                "train.learning_rate=1e-3", "split.train_start=2018-07-01"])
    assert config["model"]["hidden"] == [8]
    assert config["train"]["epochs"] == 5
    assert config["train"]["learning_rate"] == 0.001
    assert config["split"]["train_start"] == "2018-07-01"
    assert config["data"]["simulator"]["n_days"] == 30
    assert config["run"] == "x"
    assert config["model"]["weight_bits"] == 8  # untouched defaults stay


def test_shipped_default_yaml_is_the_schema():
    from importlib import resources

    shipped = resources.files("fraudfpga").joinpath("default_config.yaml").read_text()
    assert shipped == documented_yaml(), "run: fraudfpga config --documented > fraudfpga/default_config.yaml"
    assert yaml.safe_load(shipped) == load_config(None)


@pytest.mark.parametrize("override, pattern", [
    ("train.epochz=3", "unknown configuration key 'train.epochz'"),
    ("train=3", "'train' must be a mapping"),
    ("nonsense", "expected section.key=value"),
    ("train.epochs=abc", r"train.epochs: 'abc' is not an integer"),
    ("model.hidden=16", r"model.hidden: 16 is not a list of integers"),
    ("train.epochs=0", r"train.epochs: 0 is out of range; allowed: >= 1"),
    ("model.weight_bits=0", r"model.weight_bits: 0 is out of range; allowed: >= 2"),
    ("rtl.simulator=modelsim", r"rtl.simulator: 'modelsim' is not one of 'verilator', 'icarus'"),
    ("model.hidden=[8, 0]", r"model.hidden: \[8, 0\] is out of range"),
    ("model.input_integer=8", r"model.input_integer: 8 must be <= model.input_bits - 1 = 7"),
    ("split.valid_days=7", r"split.valid_days: 7 must be less than split.train_days = 7"),
    ("data.source=csv", r"data.path: data.source=csv needs the CSV file's path"),
    ("hls.clock_period_ns=fast", r"hls.clock_period_ns: 'fast' is not a number"),
    ("quality.seeds=1", r"quality.seeds: 1 is out of range; allowed: >= 2"),
    ("references.trials=0", r"references.trials: 0 is out of range"),
    ("split.delay_days=0", r"train.refit: .* split.delay_days = 0 leaves none"),
    ("rtl.interface=avalon", r"rtl.interface: 'avalon' is not one of 'axis', 'valid'"),
    ("rtl.axis_id_bits=4", r"rtl.axis_id_bits: 4 is out of range"),
    ("rtl.axis_duty_cycles=[0.5, 0]", r"rtl.axis_duty_cycles: \[0.5, 0\] is out of range"),
    ("rtl.axis_duty_cycles=[1.5]", r"rtl.axis_duty_cycles: \[1.5\] is out of range"),
])
def test_bad_settings_are_named(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


@pytest.mark.parametrize("override", ["train.epochs=abc", "model.hidden=16", "train.epochs=0",
                                      "model.weight_bits=0", "rtl.simulator=modelsim",
                                      "references.models=[lightgbm]"])
def test_bad_settings_stop_the_command_before_any_step(override, tmp_path, capsys):
    assert cli("train", "--projects-dir", str(tmp_path), settings=[override]) == 2
    err = capsys.readouterr().err
    assert override.split("=")[0] in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run folder, no data, no training


@pytest.mark.parametrize("name", ["a b", "x$y", "../x", "..", "a/b"])
def test_run_names_are_plain_folder_names(name, tmp_path, capsys):
    projects = tmp_path / "projects"
    assert cli("data", "--run", name, "--projects-dir", str(projects), settings=[]) == 2
    assert "not a valid run name; use letters, digits" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_yaml_errors_are_one_line_with_file_and_line(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text("train:\n  epochs: !!python/object/apply:os.system ['true']\n")
    assert cli("config", "--config", str(evil), "--projects-dir", str(tmp_path), settings=[]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "evil.yaml, line 2" in err and "python/object" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  epochs: [1, 2\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml, line \d"):
        requested_settings(broken)
    with pytest.raises(ConfigError, match="is a directory"):
        requested_settings(tmp_path)


def test_data_path_that_is_a_directory_or_missing(tmp_path, capsys):
    for path, message in ((tmp_path, "is a directory, expected a CSV file"),
                          (tmp_path / "none.csv", "file not found")):
        assert cli("data", "--projects-dir", str(tmp_path / "p"), settings=[
            "data.source=ulb_csv", f"data.path={path}", "split.mode=fraction"]) == 2
        assert message in capsys.readouterr().err


def test_the_run_keeps_its_configuration(tmp_path, capsys):
    projects = tmp_path / "projects"
    run = RunFolder.open(projects, "r", requested_settings(None, ["train.epochs=3"]))
    saved = yaml.safe_load((projects / "r/config.yaml").read_text())
    assert saved["train"]["epochs"] == 3
    again = RunFolder.open(projects, "r", [])  # no options: the run's own configuration
    assert again.config == run.config
    with pytest.raises(ConfigError, match=r"train.epochs: 3 -> 5.*--reconfigure"):
        RunFolder.open(projects, "r", requested_settings(None, ["train.epochs=5"]))
    changed = RunFolder.open(projects, "r", requested_settings(None, ["train.epochs=5"]),
                             reconfigure=True, progress=print)
    assert changed.config["train"]["epochs"] == 5
    assert "train.epochs: 3 -> 5" in capsys.readouterr().out
    assert yaml.safe_load((projects / "r/config.yaml").read_text())["train"]["epochs"] == 5


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out" / "result.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def _record_steps(root, prefix, count):
    run = RunFolder(root, {})
    for index in range(count):
        run.record(f"{prefix}{index}", {"key": str(index)})


def test_concurrent_records_keep_every_step(tmp_path):
    """Two run-folder objects (`make -j`: sim and baseline) and two processes recording at the
    same time lose no entry."""
    first, second = RunFolder(tmp_path, {}), RunFolder(tmp_path, {})
    first.manifest(), second.manifest()  # both read the manifest before either writes
    first.record("sim", {"key": "a"})
    second.record("baseline", {"key": "b"})
    assert set(json.loads((tmp_path / "manifest.json").read_text())["steps"]) == {"sim", "baseline"}
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_steps, args=(tmp_path, p, 25)) for p in "xy"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    steps = json.loads((tmp_path / "manifest.json").read_text())["steps"]
    assert len(steps) == 2 + 50


def test_tensorflow_is_imported_without_its_cpp_notices():
    """Importing TensorFlow writes C++ notices to standard error before its log level applies
    ("I0000 ... oneDNN custom operations are on"); a process of the toolkit shows none."""
    import subprocess
    import sys

    code = "import {}; import tensorflow as tf; print(tf.constant(3).numpy())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    plain = subprocess.run([sys.executable, "-c", code.format("os")], capture_output=True,
                           text=True, env=env, check=True)
    assert "I0000" in plain.stderr  # what the toolkit hides, seen without it
    quiet = subprocess.run([sys.executable, "-c", code.format("fraudfpga")], capture_output=True,
                           text=True, env=env, check=True)
    assert quiet.stdout == "3\n" and quiet.stderr == ""
