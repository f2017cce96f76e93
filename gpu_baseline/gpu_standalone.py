#!/usr/bin/env python3
"""Standalone GPU (or CPU) timing of the float twin and of the forest, for machines without
TensorFlow.

Needs only numpy plus one framework: PyTorch (eager, torch.compile, CUDA-graph replay) or JAX
(jax.jit, i.e. XLA, the compiler TensorFlow's jit_compile uses). It reads either the weights the
export step writes (`baseline/float_weights.npz`: kernel_i, bias_i, and check rows with the
Keras model's logits) or the forest the forest step writes (`forest/gpu_trees.npz`: the trees as
padded node arrays, and check rows with the training library's fraud probabilities), checks its
outputs against them, and times batch sizes 1 .. 65,536 with the same method as the baseline:
warm-up, then at least `--min-calls` calls and `--seconds`; p50/p99 per call;
"device_resident": the batch already on the device (call + synchronisation), "host_copy": host
batch in, host scores out.

The forest runs as tensor programs, the two strategies of hummingbird-ml (Nakandala et al.,
OSDI 2020), written here because nothing can be installed on the accelerator machine:
"tree traversal" (one gather per tree level for all trees and rows at once) and, for shallow
trees, "GEMM" (every comparison as one matrix product, the leaf reached as a second one).

    python gpu_standalone.py --weights float_weights.npz --framework torch --device cuda \\
        --out results.json
    python gpu_standalone.py --forest gpu_trees.npz --framework torch --device cuda \\
        --out forest.json

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
GEMM_MAX_ENTRIES = 2 ** 26  # the GEMM strategy's path tensor (trees x nodes x leaves) at most


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


def torch_calls(function, on_device, host: np.ndarray, sync) -> dict:
    """The two timed variants of a PyTorch function: the batch already on the device (call and
    synchronisation), and the host batch in, host scores out."""
    import torch

    def device_call():
        with torch.inference_mode():
            function(on_device)
        sync()

    def host_call():
        with torch.inference_mode():
            return function(torch.as_tensor(host, device=on_device.device)).cpu().numpy()

    return {"device_resident": device_call, "host_copy": host_call}


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
            result[mode] = torch_calls(function, on_device, host, sync)
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


class Forest:
    """A tree ensemble as padded node arrays (trees x nodes): a split sends a row to `left` when
    x[feature] < threshold (`strict`) or <= threshold; a leaf points to itself; the raw score is
    `init` + the sum of the leaves reached, and `sense` says how it becomes a fraud probability."""

    def __init__(self, path: str):
        data = np.load(path)
        self.feature, self.threshold = data["feature"], data["threshold"].astype(np.float32)
        self.left, self.right = data["left"], data["right"]
        self.value = data["value"].astype(np.float32)
        self.depth, self.strict = int(data["depth"]), bool(data["strict"])
        self.init, self.sense = float(data["init"]), str(data["sense"])
        self.check_inputs, self.check_scores = data["check_inputs"], data["check_scores"]
        self.trees, self.nodes = self.feature.shape
        offsets = (np.arange(self.trees) * self.nodes)[:, None]
        # flat node arrays: index = tree * nodes + node
        self.flat = {"feature": self.feature.ravel(), "threshold": self.threshold.ravel(),
                     "left": (self.left + offsets).ravel(), "right": (self.right + offsets).ravel(),
                     "value": self.value.ravel(), "root": offsets[:, 0]}

    def probability(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, np.float64)
        return 1.0 - raw if self.sense == "genuine probability" else 1.0 / (1.0 + np.exp(-raw))

    def gemm_arrays(self) -> dict | None:
        """hummingbird's GEMM form: A (inputs x trees*internal) selects each node's input, B its
        threshold, C (trees x internal x leaves) is +1 where a leaf's path goes left at a node and
        -1 where it goes right, D (trees x leaves) counts the left turns, E the leaf values; a
        row reaches leaf l of tree t exactly when (cmp @ C)[t, l] == D[t, l]."""
        internal = [np.flatnonzero(self.left[t] != np.arange(self.nodes)) for t in range(self.trees)]
        leaves = [np.flatnonzero(self.left[t] == np.arange(self.nodes)) for t in range(self.trees)]
        n_i, n_l = max(map(len, internal)), max(map(len, leaves))
        if self.trees * n_i * n_l > GEMM_MAX_ENTRIES:
            return None
        n_in = self.check_inputs.shape[1]
        a = np.zeros((n_in, self.trees, n_i), np.float32)
        b = np.full((self.trees, n_i), np.inf, np.float32)  # padding: always "left", unused
        c = np.zeros((self.trees, n_i, n_l), np.float32)
        d = np.full((self.trees, n_l), -1.0, np.float32)  # padding leaves: never reached
        e = np.zeros((self.trees, n_l), np.float32)
        for t in range(self.trees):
            slot = {node: i for i, node in enumerate(internal[t])}
            for i, node in enumerate(internal[t]):
                a[self.feature[t, node], t, i] = 1.0
                b[t, i] = self.threshold[t, node]
            for j, leaf in enumerate(leaves[t]):
                e[t, j] = self.value[t, leaf]
                d[t, j] = 0.0
            stack = [(0, [])]  # (node, [(internal slot, went left)])
            index = {leaf: j for j, leaf in enumerate(leaves[t])}
            while stack:
                node, path = stack.pop()
                if node in index:
                    for i, went_left in path:
                        c[t, i, index[node]] = 1.0 if went_left else -1.0
                    d[t, index[node]] = sum(1 for _, went_left in path if went_left)
                    continue
                stack.append((int(self.left[t, node]), path + [(slot[node], True)]))
                stack.append((int(self.right[t, node]), path + [(slot[node], False)]))
        return {"a": a.reshape(n_in, -1), "b": b.reshape(-1), "c": c, "d": d, "e": e,
                "internal": n_i}


def forest_programs(xp, take, forest: Forest, arrays: dict, gemm: dict | None):
    """The two strategies as functions of a batch, written once for numpy, PyTorch and JAX
    (`xp` the array namespace, `take` its take-along-axis, `arrays`/`gemm` on its device)."""

    def traversal(x):
        node = xp.broadcast_to(arrays["root"][None, :], (x.shape[0], forest.trees))
        for _ in range(forest.depth):
            go_left = (take(x, arrays["feature"][node]) < arrays["threshold"][node]
                       if forest.strict else
                       take(x, arrays["feature"][node]) <= arrays["threshold"][node])
            node = xp.where(go_left, arrays["left"][node], arrays["right"][node])
        return arrays["value"][node].sum(1) + forest.init

    programs = {"tree traversal": traversal}
    if gemm is not None:
        def matrices(x):
            compared = x @ gemm["a"]
            taken = ((compared < gemm["b"]) if forest.strict else (compared <= gemm["b"]))
            taken = taken.reshape(x.shape[0], forest.trees, gemm["internal"]) * 1.0
            reached = (xp.einsum("bti,til->btl", taken, gemm["c"]) == gemm["d"]) * 1.0
            return (reached * gemm["e"]).sum((1, 2)) + forest.init

        programs["GEMM"] = matrices
    return programs


def numpy_forest(forest: Forest, device: str):
    if device != "cpu":
        raise SystemExit("--framework numpy runs on --device cpu only")
    gemm = forest.gemm_arrays()
    programs = forest_programs(np, lambda x, i: np.take_along_axis(x, i, axis=1), forest,
                               forest.flat, gemm)

    def outputs(x):
        return {name: f(x) for name, f in programs.items()}

    def variants(host: np.ndarray):
        return {f"numpy, {name}": {"host_copy": (lambda f=f: f(host))}
                for name, f in programs.items()}

    return outputs, variants, {"numpy": np.__version__}, platform.processor() or "CPU"


def torch_forest(forest: Forest, device: str):
    import torch

    dev = torch.device(device)
    put = {k: torch.as_tensor(v.astype(np.int64) if v.dtype.kind in "iu" else v, device=dev)
           for k, v in forest.flat.items()}
    gemm = forest.gemm_arrays()
    gemm_put = None if gemm is None else {k: (torch.as_tensor(v, device=dev)
                                              if isinstance(v, np.ndarray) else v)
                                          for k, v in gemm.items()}
    programs = forest_programs(torch, lambda x, i: torch.take_along_dim(x, i, dim=1), forest, put,
                               gemm_put)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def outputs(x):
        with torch.inference_mode():
            return {name: f(torch.as_tensor(x, device=dev)).cpu().numpy()
                    for name, f in programs.items()}

    def variants(host: np.ndarray):
        on_device = torch.as_tensor(host, device=dev)
        result = {}
        for name, program in programs.items():
            for mode, function in (("eager", program),
                                   ("torch.compile", torch.compile(program, dynamic=False))):
                result[f"{mode}, {name}"] = torch_calls(function, on_device, host, sync)
        return result

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or "CPU")
    return outputs, variants, {"torch": torch.__version__, "cuda": torch.version.cuda}, name


def jax_forest(forest: Forest, device: str):
    import jax
    import jax.numpy as jnp

    target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    put = {k: jax.device_put(v.astype(np.int32) if v.dtype.kind in "iu" else v, target)
           for k, v in forest.flat.items()}
    gemm = forest.gemm_arrays()
    gemm_put = None if gemm is None else {k: (jax.device_put(v, target)
                                              if isinstance(v, np.ndarray) else v)
                                          for k, v in gemm.items()}
    programs = {name: jax.jit(f) for name, f in forest_programs(
        jnp, lambda x, i: jnp.take_along_axis(x, i, axis=1), forest, put, gemm_put).items()}

    def outputs(x):
        return {name: np.asarray(f(jax.device_put(x, target))) for name, f in programs.items()}

    def variants(host: np.ndarray):
        on_device = jax.device_put(host, target)
        return {f"jax.jit (XLA), {name}": {
            "device_resident": lambda f=f: f(on_device).block_until_ready(),
            "host_copy": lambda f=f: np.asarray(f(jax.device_put(host, target)))}
            for name, f in programs.items()}

    return outputs, variants, {"jax": jax.__version__}, str(target.device_kind)


FOREST_FRAMEWORKS = {"numpy": numpy_forest, "torch": torch_forest, "jax": jax_forest}
FRAMEWORKS = {"numpy": numpy_variants, "torch": torch_variants, "jax": jax_variants}


def checked_network(args):
    """The network's timing variants after its check against the Keras logits."""
    weights, check_x, check_logits = load_weights(args.weights)
    forward, variants, versions, device_name = FRAMEWORKS[args.framework](weights, args.device)
    difference = float(np.abs(forward(check_x.astype(np.float32)) - check_logits).max())
    return ("float twin", "the Keras logits", check_x, difference, variants, versions,
            device_name)


def checked_forest(args):
    """The forest's timing variants after every strategy's check against the training library's
    fraud probabilities."""
    forest = Forest(args.forest)
    outputs, variants, versions, device_name = FOREST_FRAMEWORKS[args.framework](forest,
                                                                                 args.device)
    check_x = np.ascontiguousarray(forest.check_inputs, np.float32)
    raw = outputs(check_x)
    difference = max(float(np.abs(forest.probability(r) - forest.check_scores).max())
                     for r in raw.values())
    label = f"forest ({forest.trees} trees, depth {forest.depth}; {', '.join(raw)})"
    return (label, "the training library's fraud probabilities", check_x, difference, variants,
            versions, device_name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--weights", help="the float twin's weights (baseline/float_weights.npz)")
    model.add_argument("--forest", help="the forest's node arrays (forest/gpu_trees.npz)")
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--min-calls", type=int, default=50)
    args = parser.parse_args(argv)

    model_label, checked_against, check_x, difference, variants, versions, device_name = (
        checked_forest(args) if args.forest else checked_network(args))
    if difference > TOLERANCE:
        print(f"error: {model_label}: {args.framework} on {args.device} differs from "
              f"{checked_against} by {difference:.3g} (> {TOLERANCE}); nothing timed",
              file=sys.stderr)
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
    result = {"model": model_label, "framework": args.framework, "device": args.device,
              "device_name": device_name, "host": platform.node(),
              "python": platform.python_version(), "versions": versions,
              "date": datetime.date.today().isoformat(),
              "checked_against": checked_against, "max_abs_difference": difference,
              "kind": f"measured on {device_name} ({args.device}) by gpu_standalone.py",
              "batch1_best": batch1, "throughput_best": fastest, "results": rows}
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
