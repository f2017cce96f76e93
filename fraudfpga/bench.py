"""`make bench`: speed and memory figures written as JSON.

Each benchmark runs in a fresh Python process so that its peak memory (ru_maxrss of that
process) is its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from .runfolder import package_versions, write_json

SIMULATE_FEATURIZE = """
import json, resource, time
from fraudfpga.models.simulator import SimulatorSettings, simulate
from fraudfpga.models.features import add_features
start = time.perf_counter()
tx = simulate(SimulatorSettings(), seed=0, progress=lambda _: None)
simulated = time.perf_counter()
tx = add_features(tx)
done = time.perf_counter()
print(json.dumps({
    "transactions": len(tx), "frauds": int(tx.TX_FRAUD.sum()),
    "simulate_seconds": round(simulated - start, 3),
    "features_seconds": round(done - simulated, 3),
    "seconds": round(done - start, 3),
    "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
}))
"""

def default_firmware(folder: Path):
    """hls4ml firmware and its compiled C simulation for the default architecture, with
    seeded random weights (weights do not change the speed). Used by the benchmarks."""
    from fraudfpga.config import default_config
    from fraudfpga.hls.convert import convert, firmware_config
    from fraudfpga.hls.csim import CSimulation, build_library
    from fraudfpga.hls.network import network_from_hls_model
    from fraudfpga.kerasenv import set_seeds
    from fraudfpga.models.network import build_qkeras_model

    config = default_config()
    set_seeds(0)
    model = build_qkeras_model(15, config["model"])
    hls_model = convert(model, firmware_config(model, config["hls"]), config["hls"], folder)
    network = network_from_hls_model(hls_model)
    build_library(folder, network, progress=lambda _: None)
    return config, network, CSimulation(folder, network)


CSIM_THROUGHPUT = """
import json, resource, tempfile, time
from pathlib import Path
from fraudfpga.bench import default_firmware
from fraudfpga.hls.flow import random_vectors
with tempfile.TemporaryDirectory() as tmp:
    _, network, csim = default_firmware(Path(tmp))
    codes = random_vectors(network, 300_000, seed=0)
    csim.run(codes[:1000])
    start = time.perf_counter()
    csim.run(codes)
    seconds = time.perf_counter() - start
print(json.dumps({"transactions": len(codes), "threads": csim.threads,
                  "seconds": round(seconds, 3),
                  "transactions_per_s": round(len(codes) / seconds),
                  "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))
"""

RTL_SIM_THROUGHPUT = """
import json, resource, tempfile
from pathlib import Path
from fraudfpga.bench import default_firmware
from fraudfpga.hls.flow import random_vectors
from fraudfpga.sim.rtl import PipelineChoice, generate_rtl
from fraudfpga.sim.runner import build, simulate
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    config, network, csim = default_firmware(tmp / "hls")
    codes = random_vectors(network, 59_660, seed=0)  # rows of the default test period (seed 0)
    golden = csim.run(codes)
    meta = generate_rtl(network, tmp / "rtl", PipelineChoice.from_config(config["fpga"]),
                        codes[:1000], progress=lambda _: None)
    build_seconds = build(tmp / "rtl", meta, "verilator", tmp / "build", progress=lambda _: None)
    result = simulate(tmp / "rtl", meta, codes, golden, "verilator", tmp / "build", tmp / "work",
                      progress=lambda _: None)
print(json.dumps({"vectors": result["outputs"], "mismatches": result["mismatch_count"],
                  "latency_cycles": result["latency_cycles_data"],
                  "vectors_per_s": round(result["vectors_per_second"]),
                  "stream_seconds": round(result["stream_seconds"], 3),
                  "build_seconds": round(build_seconds, 1),
                  "simulator_version": result["simulator_version"],
                  "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))
"""

SERVING_LOAD = """
import json, resource, tempfile, time
from pathlib import Path
import numpy as np
from fraudfpga.config import default_config
from fraudfpga.kerasenv import set_seeds
from fraudfpga.models.network import build_float_model
from fraudfpga.gpu_baseline.backends import backend
from fraudfpga.gpu_baseline.export import export_float_model
from fraudfpga.gpu_baseline.serving import (BatchPolicy, poisson_arrivals, serve_batched,
                                            summarize, time_batch1)
config = default_config()
settings = config["serving"]
set_seeds(0)
model = build_float_model(15, config["model"])  # random weights: they do not change the speed
inputs = np.random.default_rng(0).normal(size=(59_660, 15)).astype(np.float32)
folder = Path(tempfile.mkdtemp())
export_float_model(model, folder / "m.onnx", folder / "w.npz", inputs[:1000])
model.save(folder / "m.h5", save_format="h5")
paths = {"keras": folder / "m.h5", "onnx": folder / "m.onnx"}
policy = BatchPolicy(settings["max_batch"], settings["max_queue_delay_us"] * 1e-6,
                     settings["max_wait_ms"] * 1e-3)
start = time.perf_counter()
saturation = {}
for name in settings["backends"]:
    session = backend(name).load(paths, settings["max_batch"])
    saturation[name] = None
    for index, load in enumerate(settings["loads"]):
        arrivals = poisson_arrivals(load, settings["seconds_per_load"], index)
        level = summarize(serve_batched(arrivals, session.predict, inputs, policy), load,
                          arrivals.size, settings["seconds_per_load"])
        if level["saturated"]:
            saturation[name] = load
            break
seconds = time.perf_counter() - start
import onnxruntime as ort
bare = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
name_in = bare.get_inputs()[0].name
times = []
for i in range(5000):
    row = np.ascontiguousarray(inputs[i][None, :])
    t0 = time.perf_counter(); bare.run(None, {name_in: row}); times.append(time.perf_counter() - t0)
bare_p50 = float(np.percentile(times[500:], 50) * 1e6)
harness = time_batch1(backend("onnxruntime").load(paths, 1).predict, inputs, 5000)["p50_us"]
print(json.dumps({"seconds": round(seconds, 1), "first_saturated_load": saturation,
                  "onnxruntime_bare_batch1_p50_us": round(bare_p50, 2),
                  "onnxruntime_harness_batch1_p50_us": round(harness, 2),
                  "harness_over_bare": round(harness / bare_p50, 3),
                  "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}))
"""

SWEEP_DEFAULT = """
import json, shutil, time
from pathlib import Path
from fraudfpga.sweep.engine import run_sweep
projects = Path("fpga_projects/bench/sweep_projects")
shutil.rmtree(projects, ignore_errors=True)  # from scratch: no trial may come from a cache
start = time.perf_counter()
state = run_sweep(Path("sweeps/default.yaml"), projects, progress=lambda _: None)
seconds = time.perf_counter() - start
trials = [r for r in state["trials"] if not r["reference"]]
done = [r for r in trials if r.get("status") == "done"]
print(json.dumps({"seconds": round(seconds, 1), "trials": len(trials), "failed": len(trials) - len(done),
                  "trials_per_hour": round(len(trials) / seconds * 3600, 1),
                  "on_front": sum(r["on_front"] for r in state["trials"]),
                  "mean_trial_seconds": round(sum(r["seconds"] for r in done) / max(len(done), 1), 1),
                  "max_trial_peak_memory_gb": max(r["peak_rss_gb"] for r in done)}))
"""

BENCHMARKS = {
    "simulate_featurize": {
        "what": "simulate + featurise the default data (5,000 customers, 10,000 terminals, "
                "183 days)",
        "code": SIMULATE_FEATURIZE,
        "targets": {"seconds": 120, "peak_memory_gb": 4.0},
    },
    "csim_throughput": {
        "what": "hls4ml C simulation of the default 15-32-16-1 firmware, batched through the "
                "compiled library (input-code checks and conversions included)",
        "code": CSIM_THROUGHPUT,
        "targets": {"transactions_per_s": 100_000},
        "higher_is_better": True,
    },
    "rtl_sim_throughput": {
        "what": "cocotb + Verilator streaming 59,660 vectors through the default-size RTL, "
                "every output compared with the C simulation (Verilator build excluded)",
        "code": RTL_SIM_THROUGHPUT,
        "targets": {"vectors_per_s": 10_000},
        "higher_is_better": True,
    },
    "serving_load": {
        "what": "the default serving sweep (Poisson loads 1e3 .. 1e7 tx/s, dynamic batcher) of "
                "every default back end on a default-size float model, and the ONNX Runtime "
                "back end's batch-1 p50 against a bare InferenceSession.run loop",
        "code": SERVING_LOAD,
        "targets": {"seconds": 300, "harness_over_bare": 2.0},
    },
    "sweep_default": {
        "what": "`make sweep`'s default sweep from scratch (32 Optuna trials over the network "
                "and the forest on a local Ray, the front verified and placed and routed); about "
                "an hour on 2 cores",
        "code": SWEEP_DEFAULT,
        "targets": {"seconds": 3600, "max_trial_peak_memory_gb": 2.0},
    },
}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "platform": platform.platform()}


def run_benchmarks(out: Path, only: list[str]) -> int:
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    results, failed = {}, []
    for name, bench in BENCHMARKS.items():
        if only and name not in only:
            continue
        print(f"[bench] {name}: {bench['what']}", flush=True)
        done = subprocess.run([sys.executable, "-c", bench["code"]], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"benchmark {name} failed:\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        better = (lambda v, t: v >= t) if bench.get("higher_is_better") else (lambda v, t: v <= t)
        met = {key: better(figures[key], limit) for key, limit in bench["targets"].items()}
        results[name] = {"what": bench["what"], "kind": "measured on this machine",
                         "date": dt.datetime.now().isoformat(timespec="seconds"),
                         **figures, "targets": bench["targets"], "targets_met": met}
        print(f"[bench] {name}: " + ", ".join(f"{k}={figures[k]}" for k in bench["targets"])
              + f" (targets {bench['targets']}, met: {all(met.values())})", flush=True)
        if not all(met.values()):
            failed.append(name)
    if only and out.is_file():  # keep the other benchmarks' last figures
        results = json.loads(out.read_text()).get("benchmarks", {}) | results
    write_json(out, {"date": dt.datetime.now().isoformat(timespec="seconds"),
                     "machine": machine(), "versions": package_versions(),
                     "benchmarks": results})
    print(f"[bench] results written to {out}")
    return 1 if failed else 0
