"""Configuration merging and the run folder's manifest and atomic writes."""

import json

import pytest

from fraudfpga.config import ConfigError, load_config
from fraudfpga.runfolder import RunFolder, atomic_path
from fraudfpga.steps import run_step


def test_defaults_user_yaml_and_overrides(tmp_path):
    user = tmp_path / "my.yaml"
    user.write_text("model:\n  hidden: [8]\ntrain:\n  epochs: 3\n")
    config = load_config(user, ["train.epochs=5", "data.simulator.n_days=30", "run=x"])
    assert config["model"]["hidden"] == [8]
    assert config["train"]["epochs"] == 5
    assert config["data"]["simulator"]["n_days"] == 30
    assert config["run"] == "x"
    assert config["model"]["weight_bits"] == 8  # untouched defaults stay


@pytest.mark.parametrize("override, pattern", [
    ("train.epochz=3", "unknown configuration key 'train.epochz'"),
    ("train=3", "'train' must be a mapping"),
    ("nonsense", "expected section.key=value"),
])
def test_bad_overrides_are_named(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_bad_config_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  mode: book\n  trian_days: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown configuration key 'split\.trian_days'"):
        load_config(bad)


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out" / "result.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_step_is_skipped_when_current_and_redone_when_changed(tmp_path):
    config = load_config(None)
    run = RunFolder(tmp_path / "run", config)
    calls = []

    def body(run):
        calls.append(1)
        run.path("out.txt").write_text(str(run.config["seed"]))
        return ["out.txt"], {}

    assert run_step(run, "demo", ("seed",), [], body, progress=lambda _: None)
    assert not run_step(run, "demo", ("seed",), [], body, progress=lambda _: None)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    step = manifest["steps"]["demo"]
    assert step["outputs"].keys() == {"out.txt"} and "tensorflow" in step["versions"]
    run.path("out.txt").write_text("tampered")          # a damaged output is redone
    assert run_step(run, "demo", ("seed",), [], body, progress=lambda _: None)
    run.config["seed"] = 1                              # a changed configuration is redone
    assert run_step(RunFolder(tmp_path / "run", run.config), "demo", ("seed",), [], body,
                    progress=lambda _: None)
    assert len(calls) == 3
