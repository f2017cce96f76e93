"""The TensorFlow baseline: the trained networks' latency and throughput across batch sizes.

Each model is called as a `tf.function` and as an XLA-compiled `tf.function(jit_compile=True)`
on the GPU when TensorFlow sees one, otherwise on the CPU, and then every result says
"CPU fallback". Two variants per batch size: the batch already on the device (the call and a
device synchronisation are timed), and the batch on the host (copy to the device, the call and
the read-back of the scores are timed).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from fraudfpga import kerasenv  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)

FULL_BATCH_SIZES = [2 ** k for k in range(17)]  # 1 .. 65,536
QUICK_BATCH_SIZES = [1, 64, 4096]
CPU_FALLBACK = "CPU fallback"


def device_info() -> dict:
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    info = {"tensorflow": tf.__version__, "cuda_build": build.get("cuda_version"),
            "cudnn_build": build.get("cudnn_version"), "host": platform.node(),
            "host_cpu": cpu_name(), "host_cores": os.cpu_count()}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        info |= {"type": "GPU", "device": "/GPU:0", "name": details.get("device_name", gpus[0].name),
                 "compute_capability": details.get("compute_capability"),
                 "driver": _nvidia_driver(), "label": "GPU"}
    else:
        info |= {"type": "CPU", "device": "/CPU:0", "name": cpu_name(), "driver": None,
                 "label": CPU_FALLBACK,
                 "note": "no GPU visible to TensorFlow: every figure is a CPU fallback"}
    return info


def visible_device_name() -> str:
    """The first GPU's name as nvidia-smi lists it (the name TensorFlow reports for it), else
    the CPU's: what the baseline steps rerun for when it changes."""
    return _first_gpu("name") or cpu_name()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _nvidia_driver() -> str | None:
    return _first_gpu("driver_version")


def _first_gpu(field: str) -> str | None:
    """One nvidia-smi field of the first GPU; None without nvidia-smi or a GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def _time_calls(call, warmup: int, min_calls: int, min_seconds: float, max_calls: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    times, started = [], time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - started < min_seconds
                                     and len(times) < max_calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def benchmark_model(model, name: str, inputs: np.ndarray, batch_sizes: list[int], device: str,
                    settings: dict, progress=print) -> list[dict]:
    """Time `model` for every batch size, compile mode and data variant."""
    import tensorflow as tf

    rows = []
    functions = {"tf.function": tf.function(lambda x: model(x, training=False)),
                 "xla": tf.function(lambda x: model(x, training=False), jit_compile=True)}
    sync = tf.test.experimental.sync_devices
    for batch in batch_sizes:
        host = np.ascontiguousarray(np.resize(inputs, (batch, inputs.shape[1])).astype(np.float32))
        with tf.device(device):
            on_device = tf.identity(tf.constant(host))
        for compile_mode, function in functions.items():
            def device_call():
                with tf.device(device):
                    function(on_device)
                sync()

            def host_call():
                with tf.device(device):
                    result = function(tf.constant(host))
                return result.numpy()

            for variant, call in (("device_resident", device_call), ("host_copy", host_call)):
                try:
                    times = _time_calls(call, settings["warmup"], settings["min_calls"],
                                        settings["min_seconds"], settings["max_calls"])
                except Exception as error:  # an op XLA cannot compile: record, go on
                    rows.append({"model": name, "compile": compile_mode, "variant": variant,
                                 "batch_size": batch, "error": f"{type(error).__name__}: {error}"[:500]})
                    continue
                p50, p99 = np.percentile(times, [50, 99])
                rows.append({"model": name, "compile": compile_mode, "variant": variant,
                             "batch_size": batch, "calls": int(times.size),
                             "p50_latency_ms": p50 * 1e3, "p99_latency_ms": p99 * 1e3,
                             "mean_latency_ms": float(times.mean() * 1e3),
                             "transactions_per_s": batch / p50})
        done = [r for r in rows if r["batch_size"] == batch and "p50_latency_ms" in r]
        if done:
            best = min(done, key=lambda r: r["p50_latency_ms"])
            progress(f"[baseline] {name:<6} batch {batch:>6}: best p50 {best['p50_latency_ms']:.3f} ms "
                     f"({best['compile']}, {best['variant']}), {best['transactions_per_s']:,.0f} tx/s")
    return rows


def run_baseline(models: dict, inputs: np.ndarray, quick: bool, seconds_per_point: float,
                 progress=print) -> dict:
    info = device_info()
    settings = ({"warmup": 2, "min_calls": 5, "min_seconds": 0.0, "max_calls": 5} if quick else
                {"warmup": 10, "min_calls": 50, "min_seconds": seconds_per_point,
                 "max_calls": 2000})
    batch_sizes = QUICK_BATCH_SIZES if quick else FULL_BATCH_SIZES
    label = info["label"]
    progress(f"[baseline] TensorFlow {info['tensorflow']} on {info['name']} ({label})")
    rows = []
    for name, model in models.items():
        for row in benchmark_model(model, name, inputs, batch_sizes, info["device"], settings, progress):
            rows.append(row | {"device": label})
    return {
        "kind": f"measured on this machine ({label}: {info['name']})",
        "device": info,
        "settings": settings | {"batch_sizes": batch_sizes, "quick": quick,
                                "latency": "wall-clock time per call, seconds -> ms",
                                "device_resident": "batch already on the device; call + sync",
                                "host_copy": "host batch: copy to device + call + read-back"},
        "results": rows,
    }
