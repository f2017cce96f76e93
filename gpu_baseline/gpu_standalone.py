#!/usr/bin/env python3
"""Standalone GPU (or CPU) timing of the float twin, for machines without TensorFlow.

Needs only numpy plus one framework: PyTorch (eager, torch.compile, CUDA-graph replay) or JAX
(jax.jit, i.e. XLA, the compiler TensorFlow's jit_compile uses). It reads the weights the export
step writes (`baseline/float_weights.npz`: kernel_i, bias_i, and check rows with the Keras
model's logits), checks its outputs against them, and times batch sizes 1 .. 65,536 with the
same method as the baseline: warm-up, then at least `--min-calls` calls and `--seconds`; p50/p99
per call; "device_resident": the batch already on the device (call + synchronisation),
"host_copy": host batch in, host scores out.

    python gpu_standalone.py --weights float_weights.npz --framework torch --device cuda \\
        --out results.json

This file is copied to the accelerator machine on its own: it imports nothing of fraudfpga.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time

import numpy as np

BATCH_SIZES = [2 ** k for k in range(17)]
TOLERANCE = 1e-4


def load_weights(path: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    data = np.load(path)
    layers = sum(1 for key in data.files if key.startswith("kernel_"))
    weights = [(data[f"kernel_{i}"], data[f"bias_{i}"]) for i in range(layers)]
    return weights, data["check_inputs"], data["check_logits"]


def time_calls(call, warmup: int, min_calls: int, seconds: float, max_calls: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    times, started = [], time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - started < seconds
                                     and len(times) < max_calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def numpy_variants(weights, device: str):
    """The reference path: plain numpy on the CPU."""
    if device != "cpu":
        raise SystemExit("--framework numpy runs on --device cpu only")

    def forward(x):
        h = x
        for index, (kernel, bias) in enumerate(weights):
            h = h @ kernel + bias
            if index < len(weights) - 1:
                h = np.maximum(h, 0)
        return h[:, 0]

    def variants(host: np.ndarray):
        return {"numpy": {"host_copy": lambda: forward(host)}}

    return forward, variants, {"numpy": np.__version__}, platform.processor() or "CPU"


def torch_variants(weights, device: str):
    import torch

    dev = torch.device(device)
    params = [(torch.as_tensor(k, device=dev), torch.as_tensor(b, device=dev)) for k, b in weights]

    def model(x):
        h = x
        for index, (kernel, bias) in enumerate(params):
            h = torch.addmm(bias, h, kernel)
            if index < len(params) - 1:
                h = torch.relu(h)
        return h[:, 0]

    compiled = torch.compile(model, dynamic=False)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def forward(x):
        with torch.inference_mode():
            return model(torch.as_tensor(x, device=dev)).cpu().numpy()

    def variants(host: np.ndarray):
        on_device = torch.as_tensor(host, device=dev)
        result = {}
        for mode, function in (("eager", model), ("torch.compile", compiled)):
            def device_call(f=function):
                with torch.inference_mode():
                    f(on_device)
                sync()

            def host_call(f=function):
                with torch.inference_mode():
                    return f(torch.as_tensor(host, device=dev)).cpu().numpy()

            result[mode] = {"device_resident": device_call, "host_copy": host_call}
        if dev.type == "cuda":
            static_in = on_device.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(3):
                    model(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.inference_mode():
                static_out = model(static_in)
            pinned_in = torch.as_tensor(host).pin_memory()
            pinned_out = torch.empty(static_out.shape, dtype=static_out.dtype).pin_memory()

            def graph_device():
                graph.replay()
                sync()

            def graph_host():
                static_in.copy_(pinned_in, non_blocking=True)
                graph.replay()
                pinned_out.copy_(static_out, non_blocking=True)
                sync()
                return pinned_out.numpy()

            result["cuda_graph"] = {"device_resident": graph_device, "host_copy": graph_host}
        return result

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or "CPU")
    versions = {"torch": torch.__version__, "cuda": torch.version.cuda}
    return forward, variants, versions, name


def jax_variants(weights, device: str):
    import jax
    import jax.numpy as jnp

    target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    params = [(jax.device_put(k, target), jax.device_put(b, target)) for k, b in weights]

    @jax.jit
    def model(params, x):
        h = x
        for index, (kernel, bias) in enumerate(params):
            h = h @ kernel + bias
            if index < len(params) - 1:
                h = jnp.maximum(h, 0)
        return h[:, 0]

    def forward(x):
        return np.asarray(model(params, jax.device_put(x, target)))

    def variants(host: np.ndarray):
        on_device = jax.device_put(host, target)
        return {"jax.jit (XLA)": {
            "device_resident": lambda: model(params, on_device).block_until_ready(),
            "host_copy": lambda: np.asarray(model(params, jax.device_put(host, target)))}}

    return forward, variants, {"jax": jax.__version__}, str(target.device_kind)


FRAMEWORKS = {"numpy": numpy_variants, "torch": torch_variants, "jax": jax_variants}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--min-calls", type=int, default=50)
    args = parser.parse_args(argv)

    weights, check_x, check_logits = load_weights(args.weights)
    forward, variants, versions, device_name = FRAMEWORKS[args.framework](weights, args.device)
    difference = float(np.abs(forward(check_x.astype(np.float32)) - check_logits).max())
    if difference > TOLERANCE:
        print(f"error: {args.framework} on {args.device} differs from the Keras logits by "
              f"{difference:.3g} (> {TOLERANCE}); nothing timed", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    rows = []
    for batch in args.batch_sizes:
        host = np.ascontiguousarray(check_x[rng.integers(0, len(check_x), batch)], np.float32)
        for mode, calls in variants(host).items():
            for variant, call in calls.items():
                times = time_calls(call, 10, args.min_calls, args.seconds, 100_000)
                p50, p99 = np.percentile(times, [50, 99])
                rows.append({"mode": mode, "variant": variant, "batch_size": batch,
                             "calls": int(times.size), "p50_us": p50 * 1e6, "p99_us": p99 * 1e6,
                             "transactions_per_s": batch / p50})
        best = min((r for r in rows if r["batch_size"] == batch), key=lambda r: r["p50_us"])
        print(f"batch {batch:>6}: best p50 {best['p50_us']:.1f} us ({best['mode']}, "
              f"{best['variant']}), {best['transactions_per_s']:,.0f} tx/s", flush=True)
    batch1 = min((r for r in rows if r["batch_size"] == 1), key=lambda r: r["p50_us"], default=None)
    fastest = max(rows, key=lambda r: r["transactions_per_s"])
    result = {"framework": args.framework, "device": args.device, "device_name": device_name,
              "host": platform.node(), "python": platform.python_version(),
              "versions": versions, "date": datetime.date.today().isoformat(),
              "max_abs_difference_vs_keras": difference,
              "kind": f"measured on {device_name} ({args.device}) by gpu_standalone.py",
              "batch1_best": batch1, "throughput_best": fastest, "results": rows}
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
