"""Transaction to decision on the CPU: the streaming feature engine (compiled, one call per
transaction) in front of the forest in ONNX Runtime at batch 1, timed per transaction.

A run built with `data.features=streaming` holds features the engine computes. This step
replays the simulated history before the test period in one compiled call (the warm-up), then
every test
transaction in time order through the per-event engine (with each fraud label delivered
`data.feature_delay_days` after its transaction), turns its inputs into the forest's input
codes, scores it in ONNX Runtime and compares with the forest's threshold. Before any figure is
written it checks that the replayed inputs equal the data step's, and the decisions ONNX Runtime's
batch scores give. Per transaction it records three spans (engine, input preparation, model) with
`perf_counter_ns`, in one process and one thread.
"""

from __future__ import annotations

import json
import time

import numpy as np

from fraudfpga.errors import FlowError
from fraudfpga.hls.artifacts import FOREST_METRICS, FOREST_MODEL
from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.models.features import FEATURE_COLUMNS
from fraudfpga.progress import Stopwatch
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, write_json

from .artifacts import TRANSACTION_DECISION

ORDER = ("train", "valid", "delay", "test")


def _prepare_kernel():
    """The scaler and the forest's input quantization of one transaction, compiled: the same
    float64 arithmetic, float32 scaled value, round half to even and saturation as the data path
    (checked on every test transaction)."""
    import numba

    @numba.njit(cache=True)
    def prepare(codes, divisor, mean, scale, steps, lsb, low, high, out):
        for j in range(codes.size):
            scaled = np.float32((codes[j] / divisor[j] - mean[j]) / scale[j])
            code = min(max(np.rint(np.float64(scaled) * steps), low), high)
            out[j] = np.float32(code * lsb)

    return prepare


def _spans(ns: np.ndarray) -> dict:
    us = ns / 1e3
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean())}


def measure(run: RunFolder, cfg, progress=print) -> None:
    import joblib

    from fraudfpga.hls.forest_flow import forest_input_type
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.streaming import StreamingEngine, simulated_history, to_model_units

    from .backends import BACKENDS
    from .benchmark import cpu_name

    data_cfg = cfg["data"]
    if data_cfg["features"] != "streaming" or data_cfg["source"] != "simulator":
        raise FlowError("transaction to decision needs a run whose features the streaming engine "
                        "computes: set data.features=streaming (the data and forest steps rerun)")
    data = PreparedData(run.root)
    test_frame = data.parts["test"]
    try:
        raw, test = simulated_history(data_cfg, test_frame["TRANSACTION_ID"].to_numpy())
    except ValueError as error:
        raise FlowError(str(error)) from None
    first = int(test[0])
    delay = data_cfg["feature_delay_days"]
    engine = StreamingEngine(int(raw["card"].max()) + 1, int(raw["terminal"].max()) + 1, delay,
                             data_cfg["streaming_extra_day"])
    started = time.perf_counter()
    engine.replay(*(raw[k][:first] for k in ("seconds", "card", "terminal", "cents", "fraud")))
    warm_seconds = time.perf_counter() - started
    day = raw["seconds"] // 86400
    pending = int(np.searchsorted(day[:first] + delay, day[first - 1], side="right")) if first \
        else 0  # the replay delivered every label due by the last warm-up day

    model = joblib.load(run.path(FOREST_MODEL))
    session = BACKENDS["onnxruntime-trees"].load({"forest": run.path(FOREST_MODEL)}, 1)
    threshold = json.loads(run.path(FOREST_METRICS).read_text())["operating"]["forest_firmware"][
        "threshold"]
    t_in = forest_input_type(cfg["forest"])
    if t_in.rounding != "RND_CONV" or t_in.overflow != "SAT":
        raise FlowError(f"forest input type {t_in}: the compiled input preparation rounds half "
                        "to even and saturates (RND_CONV, SAT)")
    divisor = 1.0 / to_model_units(np.ones(len(FEATURE_COLUMNS)))  # each input's integer steps per unit
    constants = (divisor, data.scaler.mean.astype(np.float64),
                 data.scaler.scale.astype(np.float64), float(2 ** t_in.frac), float(t_in.lsb),
                 float(t_in.min_code), float(t_in.max_code))
    compiled_prepare = _prepare_kernel()
    row = np.zeros((1, len(FEATURE_COLUMNS)), dtype=np.float32)

    def prepare(codes: np.ndarray) -> np.ndarray:
        compiled_prepare(codes, *constants, row[0])
        return row

    def reference_prepare(codes: np.ndarray) -> np.ndarray:  # the data path's own arithmetic
        scaled = ((to_model_units(codes) - data.scaler.mean) / data.scaler.scale).astype(np.float32)
        return t_in.to_float(t_in.codes_from_float(scaled)).astype(np.float32)

    spans = np.zeros((test.size, 3), dtype=np.int64)
    inputs = np.zeros((test.size, len(FEATURE_COLUMNS)), dtype=np.int64)
    scores = np.zeros(test.size)
    watch = Stopwatch("[decision] replaying the test period", progress)
    clock = time.perf_counter_ns
    for k, i in enumerate(test):
        while pending < i and day[pending] + delay <= day[i]:
            if raw["fraud"][pending]:
                engine.label(int(raw["terminal"][pending]), int(day[pending]))
            pending += 1
        if k:  # other transactions between two test rows (none when the test period is whole)
            for j in range(test[k - 1] + 1, i):
                engine.transaction(int(raw["seconds"][j]), int(raw["card"][j]),
                                   int(raw["terminal"][j]), int(raw["cents"][j]))
        t0 = clock()
        codes = engine.transaction(int(raw["seconds"][i]), int(raw["card"][i]),
                                   int(raw["terminal"][i]), int(raw["cents"][i]))
        t1 = clock()
        x = prepare(codes)
        t2 = clock()
        scores[k] = session.predict(x)[0]
        t3 = clock()
        spans[k] = (t1 - t0, t2 - t1, t3 - t2)
        inputs[k] = codes
        watch.update(k + 1, test.size, "transactions")

    expected = test_frame[FEATURE_COLUMNS].to_numpy(np.float64)
    differ = np.flatnonzero((to_model_units(inputs) != expected).any(axis=1))
    if differ.size:
        raise FlowError(f"the per-event replay's inputs differ from the data step's on "
                        f"{differ.size} test transactions (first: test row {int(differ[0])})")
    prepared = reference_prepare(inputs)
    same = all(np.array_equal(prepare(c)[0], prepared[k]) for k, c in enumerate(inputs))
    if not same:
        raise FlowError("the compiled input preparation differs from the data path's scaler and "
                        "input quantization")
    batch = model.predict_proba(prepared)[:, 1]
    flipped = int(np.sum((batch > threshold) != (scores > threshold)))
    total = spans.sum(axis=1)
    result = {
        "kind": "measured on this machine: one process, one thread, one transaction at a time in "
                "time order (perf_counter_ns around each span)",
        "machine": cpu_name(), "transactions": int(test.size),
        "warm_up": {"transactions": first, "seconds": round(warm_seconds, 2),
                    "what": "the simulated history before the test period, replayed by the "
                            "compiled engine"},
        "engine": _spans(spans[:, 0]), "input_preparation": _spans(spans[:, 1]),
        "model": _spans(spans[:, 2]), "transaction_to_decision": _spans(total),
        "transactions_per_s": float(test.size / (total.sum() / 1e9)),
        "engine_definition": "models/streaming.py (numba), data.streaming_extra_day="
                             f"{data_cfg['streaming_extra_day']}",
        "model_back_end": {"name": "onnxruntime-trees", **session.versions},
        "checks": {"inputs_equal_data_step": True, "prepared_inputs_equal_data_path": True,
                   "decisions_differing_from_scikit_learn_batch": flipped},
        "threshold": threshold,
    }
    write_json(run.path(TRANSACTION_DECISION), result)
    progress(f"[decision] {test.size:,} test transactions, one at a time: engine p50 "
             f"{result['engine']['p50_us']:.1f} us, model p50 {result['model']['p50_us']:.1f} us;"
             f" transaction -> decision p50 {result['transaction_to_decision']['p50_us']:.1f} us,"
             f" p99 {result['transaction_to_decision']['p99_us']:.1f} us "
             f"({result['transactions_per_s']:,.0f}/s); inputs equal the data step's; "
             f"{flipped} decisions differ from scikit-learn's batch scores")


register(Step(
    name="transaction_decision", command="decision",
    help="transaction to decision on the CPU: the compiled streaming feature engine, one call "
         "per transaction, in front of the forest in ONNX Runtime at batch 1 (needs "
         "data.features=streaming; not part of `all`)",
    reads=("data", "forest.input_bits", "forest.input_integer"),
    inputs=(*SPLIT_FILES.values(), SCALER, DATA_SUMMARY, FOREST_MODEL, FOREST_METRICS),
    outputs=(TRANSACTION_DECISION,), body=measure,
    code=("fraudfpga.gpu_baseline.transaction_decision", "fraudfpga.models.streaming",
          "fraudfpga.models.simulator", "fraudfpga.gpu_baseline.backends"),
    family="forest", in_all=False))
