"""The baseline step: the run's float twin and QKeras model timed in TensorFlow."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from fraudfpga.hls.artifacts import FOREST_MODEL, IMPORTED_CONTRACT
from fraudfpga.models.artifacts import (DATA_SUMMARY, FLOAT_MODEL, QKERAS_MODEL, SCALER,
                                        SPLIT_FILES)
from fraudfpga.registry import Step, register
from fraudfpga.schema import register_names_check
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import (BASELINE, EXPORT, FOREST_SERVING, IMPORTED_SERVING, ONNX_MODEL, SERVING,
                        WEIGHTS)
from .backends import known_backends

EXPORT_TOLERANCE = 1e-4  # largest |exported - Keras| logit difference accepted
BACKEND_TOLERANCE = 1e-4  # largest |back end - model| score difference accepted (float32 sums)
CHECK_ROWS = 2048  # test rows each checked back end scores before it is timed


def measure(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    from .benchmark import run_baseline

    data = PreparedData(run.root)
    models = {"float": load_model(run.path(FLOAT_MODEL)),
              "qkeras": load_model(run.path(QKERAS_MODEL))}
    results = run_baseline(models, data.inputs("test"), cfg["baseline"]["quick"],
                           cfg["baseline"]["seconds_per_point"], progress)
    write_json(run.path(BASELINE), results)


def _device() -> dict:
    """The machine facts a baseline measurement depends on, read without importing TensorFlow
    (about 5 s of CPU, paid by every process that checks whether these steps are current)."""
    from .benchmark import visible_device_name

    return {"device": visible_device_name(), "tensorflow": importlib.metadata.version("tensorflow")}


def export(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    from .export import export_float_model

    data = PreparedData(run.root)
    check = export_float_model(load_model(run.path(FLOAT_MODEL)), run.path(ONNX_MODEL),
                               run.path(WEIGHTS), data.inputs("test"))
    write_json(run.path(EXPORT), check | {"tolerance": EXPORT_TOLERANCE})
    for kind in ("onnx", "npz"):
        difference = check[kind]["max_abs_difference_vs_keras"]
        progress(f"[export] {kind}: largest |exported - Keras| logit difference {difference:.2e} "
                 f"on {check['rows_checked']:,} test rows")
        if difference > EXPORT_TOLERANCE:
            raise RuntimeError(f"the {kind} export of the float twin differs from the Keras model "
                               f"by {difference:.3g} (> {EXPORT_TOLERANCE:g}); see {run.path(EXPORT)}")


def serve_backends(names: list[str], paths: dict, inputs: np.ndarray, settings, progress,
                   out: Path, reference=None) -> None:
    """Each back end of `names` through the Poisson trace and the dynamic batcher; one results
    file (`out`) with the policy, the trace and every back end's levels. With `reference`
    (inputs -> the model's own scores), a back end whose scores differ from it by more than
    BACKEND_TOLERANCE on the first rows is refused before it is timed."""
    from .backends import BackendUnavailable, backend
    from .serving import (BatchPolicy, highest_load_under, poisson_arrivals, serve_batched,
                          summarize, time_batch1)

    policy = BatchPolicy(settings["max_batch"], settings["max_queue_delay_us"] * 1e-6,
                         settings["max_wait_ms"] * 1e-3)
    results, skipped = {}, {}
    for name in names:
        chosen = backend(name)
        why = chosen.missing()
        if why:
            progress(f"[serving] {name} skipped: {why}")
            skipped[name] = why
            continue
        try:
            session = chosen.load(paths, settings["max_batch"])
        except BackendUnavailable as why_not:
            progress(f"[serving] {name} skipped: {why_not}")
            skipped[name] = str(why_not)
            continue
        session.predict(inputs[:settings["max_batch"]])  # warm-up: compilation, allocation
        checked = None
        if reference is not None:
            rows = inputs[:CHECK_ROWS]
            checked = {"rows": int(len(rows)), "max_abs_difference": float(np.abs(
                np.asarray(session.predict(rows), np.float64) - reference(rows)).max())}
            if checked["max_abs_difference"] > BACKEND_TOLERANCE:
                raise RuntimeError(f"back end {name}: its scores differ from the model's own by "
                                   f"{checked['max_abs_difference']:.3g} on the first "
                                   f"{len(rows)} test rows (> {BACKEND_TOLERANCE:g})")
        batch1 = time_batch1(session.predict, inputs, settings["batch1_calls"])
        progress(f"[serving] {name} on {session.device}: batch-1 p50 {batch1['p50_us']:.1f} us, "
                 f"p99 {batch1['p99_us']:.1f} us")
        levels = []
        for index, load in enumerate(settings["loads"]):
            arrivals = poisson_arrivals(load, settings["seconds_per_load"], settings["seed"] + index)
            level = summarize(serve_batched(arrivals, session.predict, inputs, policy), load,
                              arrivals.size, settings["seconds_per_load"])
            levels.append(level)
            progress(f"[serving] {name} {load:>12,.0f} tx/s: " + (
                f"SATURATED (achieved {level['achieved_per_s']:,.0f} tx/s, {level['dropped']:,} "
                "dropped)" if level["saturated"] else
                f"p50 {level['p50_us']:.0f} us, p99 {level['p99_us']:.0f} us, p99.9 "
                f"{level['p999_us']:.0f} us, mean batch {level['mean_batch']:.1f}"))
            if level["saturated"]:
                break
        results[name] = {
            "description": chosen.description, "device": session.device, "kind": session.kind,
            "model": chosen.model, "check_against_model": checked,
            "label": "GPU" if session.kind == "GPU" else "CPU", "versions": session.versions,
            "batch1": batch1, "levels": levels,
            "highest_load_under_us": {str(t): highest_load_under(levels, t)
                                      for t in settings["latency_targets_us"]}}
    write_json(out, {
        "kind": "measured on this machine: real back-end calls on test transactions, timed; "
                "queueing and batching on a virtual clock",
        "policy": {"max_batch": settings["max_batch"],
                   "max_queue_delay_us": settings["max_queue_delay_us"],
                   "max_wait_ms": settings["max_wait_ms"]},
        "trace": {"process": "Poisson, open loop", "loads": settings["loads"],
                  "seconds_per_load": settings["seconds_per_load"], "seed": settings["seed"]},
        "latency_targets_us": settings["latency_targets_us"],
        "backends": results, "skipped": skipped})


def serve(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData

    settings = cfg["serving"]
    serve_backends(settings["backends"], {"keras": run.path(FLOAT_MODEL),
                                          "onnx": run.path(ONNX_MODEL)},
                   PreparedData(run.root).inputs("test"), settings, progress, run.path(SERVING))


def serve_forest(run: RunFolder, cfg, progress=print) -> None:
    """The forest firmware's model on the back ends a team would deploy, on the test inputs as
    the forest sees them (rounded to its input type); each back end's scores are checked against
    the model's own before it is timed."""
    import joblib

    from fraudfpga.hls.forest_flow import forest_input_type
    from fraudfpga.models.dataset import PreparedData

    t_in = forest_input_type(cfg["forest"])
    scaled = PreparedData(run.root).inputs("test")
    inputs = t_in.to_float(t_in.codes_from_float(scaled)).astype(np.float32)
    settings = cfg["serving"]
    model = joblib.load(run.path(FOREST_MODEL))
    serve_backends(settings["forest_backends"], {"forest": run.path(FOREST_MODEL)}, inputs,
                   settings, progress, run.path(FOREST_SERVING),
                   reference=lambda rows: model.predict_proba(rows)[:, 1].astype(np.float64))


def serve_imported(run: RunFolder, cfg, progress=print) -> None:
    """Your imported model on the back ends your team runs it on, on the raw test values of its
    columns; each back end's scores are checked against the library's own first."""
    import json

    from fraudfpga.hls.forest import SCORE_SENSES
    from fraudfpga.hls.imported_models import read_model
    from fraudfpga.models.dataset import PreparedData

    model = read_model(cfg["imported"]["model"])
    features = json.loads(run.path(IMPORTED_CONTRACT).read_text())["features"]
    inputs = PreparedData(run.root).parts["test"][features].to_numpy(np.float32)
    probability = SCORE_SENSES[model.score_sense].probability
    serve_backends(cfg["serving"]["imported_backends"], {"imported": cfg["imported"]["model"]},
                   inputs, cfg["serving"], progress, run.path(IMPORTED_SERVING),
                   reference=lambda rows: probability(model.library_output(rows)))


register_names_check("serving.backends", "back end", known_backends)
register_names_check("serving.forest_backends", "forest back end",
                     lambda: known_backends("forest"))
register_names_check("serving.imported_backends", "imported model's back end",
                     lambda: known_backends("imported"))

register(Step(
    name="export", command="export",
    help="export the float twin to ONNX and plain weights (npz), checked against Keras",
    reads=(), inputs=(FLOAT_MODEL, SPLIT_FILES["test"], SCALER, DATA_SUMMARY),
    outputs=(ONNX_MODEL, WEIGHTS, EXPORT), body=export,
    code=("fraudfpga.gpu_baseline.export", "fraudfpga.gpu_baseline.flow",
          "fraudfpga.models.network", "fraudfpga.models.dataset")))

register(Step(
    name="serving", command="serving",
    help="Poisson load through a dynamic batcher in front of each CPU/GPU back end: p50/p99, "
         "throughput, drops",
    reads=("serving",), inputs=(FLOAT_MODEL, ONNX_MODEL, SPLIT_FILES["test"], SCALER,
                                DATA_SUMMARY),
    outputs=(SERVING,), body=serve,
    code=("fraudfpga.gpu_baseline", "fraudfpga.models.network", "fraudfpga.models.dataset"),
    environment=_device, exclusive=True))

register(Step(
    name="forest_serving", command="serving",
    help="the forest firmware's model through the same Poisson load on its CPU/GPU back ends "
         "(ONNX Runtime's tree ensemble, a TL2cgen-compiled predictor)",
    reads=("serving", "forest.input_bits", "forest.input_integer"),
    inputs=(FOREST_MODEL, SPLIT_FILES["test"], SCALER, DATA_SUMMARY),
    outputs=(FOREST_SERVING,), body=serve_forest,
    code=("fraudfpga.gpu_baseline", "fraudfpga.models.dataset", "fraudfpga.hls.forest",
          "fraudfpga.hls.forest_models"),
    environment=_device, family="forest", exclusive=True))

register(Step(
    name="imported_serving", command="serving",
    help="your imported model through the same Poisson load on its own library and on ONNX "
         "Runtime's tree ensemble, each checked against the library's own scores first",
    reads=("serving", "imported.model"),
    inputs=(IMPORTED_CONTRACT, SPLIT_FILES["test"], DATA_SUMMARY), outputs=(IMPORTED_SERVING,),
    body=serve_imported,
    code=("fraudfpga.gpu_baseline", "fraudfpga.models.dataset", "fraudfpga.hls.forest",
          "fraudfpga.hls.imported_models"),
    external_inputs=lambda cfg: [cfg["imported"]["model"]] if cfg["imported"]["model"] else [],
    environment=_device, family="imported", exclusive=True))

register(Step(
    name="baseline", command="baseline",
    help="TensorFlow latency/throughput of the float and QKeras models across batch sizes (GPU "
         "when visible, else CPU fallback)",
    reads=("baseline",), inputs=(FLOAT_MODEL, QKERAS_MODEL, *SPLIT_FILES.values(), SCALER,
                                 DATA_SUMMARY),
    outputs=(BASELINE,), body=measure, code=("fraudfpga.gpu_baseline", "fraudfpga.models.network",
                                             "fraudfpga.models.dataset"),
    environment=_device, exclusive=True))
