"""The baseline step: the run's float twin and QKeras model timed in TensorFlow."""

from __future__ import annotations

from fraudfpga.runfolder import RunFolder, write_json

from .benchmark import run_baseline


def measure(run: RunFolder, progress=print):
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    data = PreparedData(run.path("data"))
    models = {"float": load_model(run.path("models/float_model.h5")),
              "qkeras": load_model(run.path("models/qkeras_model.h5"))}
    results = run_baseline(models, data.inputs("test"), run.config["baseline"]["quick"], progress)
    write_json(run.path("baseline/results.json"), results)
    return ["baseline/results.json"], {}
