"""The baseline step: the run's float twin and QKeras model timed in TensorFlow."""

from __future__ import annotations

from fraudfpga.models.artifacts import (DATA_SUMMARY, FLOAT_MODEL, QKERAS_MODEL, SCALER,
                                        SPLIT_FILES)
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import BASELINE


def measure(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    from .benchmark import run_baseline

    data = PreparedData(run.root)
    models = {"float": load_model(run.path(FLOAT_MODEL)),
              "qkeras": load_model(run.path(QKERAS_MODEL))}
    results = run_baseline(models, data.inputs("test"), cfg["baseline"]["quick"], progress)
    write_json(run.path(BASELINE), results)


def _device() -> dict:
    from .benchmark import device_info

    device = device_info()
    return {"device": device["name"], "tensorflow": device["tensorflow"]}


register(Step(
    name="baseline", command="baseline",
    help="TensorFlow latency/throughput of the float and QKeras models across batch sizes (GPU "
         "when visible, else CPU fallback)",
    reads=("baseline",), inputs=(FLOAT_MODEL, QKERAS_MODEL, *SPLIT_FILES.values(), SCALER,
                                 DATA_SUMMARY),
    outputs=(BASELINE,), body=measure, code=("fraudfpga.gpu_baseline", "fraudfpga.models.network",
                                             "fraudfpga.models.dataset"),
    environment=_device))
