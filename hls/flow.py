"""The firmware step (`make hls`) and the vendor part of `make synth`."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np

from fraudfpga.models.artifacts import (DATA_SUMMARY, FLOAT_MODEL, NETWORK_METRICS, QKERAS_MODEL,
                                        SCALER, SPLIT_FILES)
from fraudfpga.optional import figure, shown
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (BIT_EXACTNESS, CSIM_LIBRARY, EXPLAIN_PLOT, EXPLAIN_SUMMARY, FIRMWARE_METRICS,
                        FIRMWARE_SOURCES, GOLDEN, HLS4ML_CONFIG, NETWORK, PROJECT, REASON_CODES,
                        VENDOR, VENDOR_PROJECT)
from .codec import FirmwareCodec
from .convert import convert, firmware_config
from .csim import CSimulation, build_library
from .explain import explain_alerts
from .network import FixedNetwork, network_from_hls_model
from .vendor import VENDOR_TOOLS, find_vendor_tool, parse_vendor_reports, run_vendor_build


def edge_vectors(network: FixedNetwork) -> np.ndarray:
    """All-minimum, all-maximum, zero, +-1 LSB and alternating extreme input codes."""
    t, n = network.input_type, network.n_inputs
    rows = [np.full(n, t.min_code), np.full(n, t.max_code), np.zeros(n), np.full(n, 1),
            np.full(n, -1), np.full(n, t.min_code + 1), np.full(n, t.max_code - 1),
            np.where(np.arange(n) % 2, t.min_code, t.max_code),
            np.where(np.arange(n) % 2, t.max_code, t.min_code)]
    rows += [np.where(np.arange(n) == i, t.max_code, 0) for i in range(n)]
    rows += [np.where(np.arange(n) == i, t.min_code, 0) for i in range(n)]
    return np.asarray(rows, dtype=np.int64)


def random_vectors(network: FixedNetwork, count: int, seed: int) -> np.ndarray:
    """Uniform codes over the whole input range, then the edge vectors."""
    t = network.input_type
    rng = np.random.default_rng(seed)
    uniform = rng.integers(t.min_code, t.max_code + 1, size=(count, network.n_inputs))
    return np.concatenate([edge_vectors(network), uniform])


def compare(expected: np.ndarray, actual: np.ndarray, inputs: np.ndarray, limit: int = 10) -> dict:
    differ = np.flatnonzero((expected != actual).any(axis=1))
    return {"vectors": int(len(expected)), "identical": int(len(expected) - differ.size),
            "identical_fraction": float(1 - differ.size / max(len(expected), 1)),
            "mismatches": [{"index": int(i), "input": inputs[i].tolist(),
                            "expected": expected[i].tolist(), "actual": actual[i].tolist()}
                           for i in differ[:limit]]}


def compile_firmware(model, hls_cfg: dict, project, progress=print):
    """hls4ml project of a QKeras model, its fixed-point network and its compiled C simulation."""
    config = firmware_config(model, hls_cfg)
    shutil.rmtree(project, ignore_errors=True)
    hls_model = convert(model, config, hls_cfg, project)
    network = network_from_hls_model(hls_model)
    build_library(project, network, progress)
    return config, network, CSimulation(project, network)


def evaluate_firmware(data, output_codes: dict, codec: FirmwareCodec, qkeras_operating: dict,
                      eval_cfg: dict) -> tuple[dict, dict]:
    """Operating point (by the QKeras model's rule and alert rate) and test metrics of the
    firmware's logits."""
    from fraudfpga.models.metrics import evaluate
    from fraudfpga.models.operating import same_rule

    logits = {part: codec.logits(codes) for part, codes in output_codes.items()}
    operating = same_rule(qkeras_operating, data.labels("valid"), logits["valid"],
                          logits.get("delay"))
    metrics = evaluate(data.labels("test"), logits["test"], operating["threshold"],
                       data.column("test", "day"), data.column("test", "card"), eval_cfg["top_k"])
    return operating, metrics


def build_firmware(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import load_model

    hls_cfg, eval_cfg = cfg["hls"], cfg["evaluation"]
    model = load_model(run.path(QKERAS_MODEL))
    data = PreparedData(run.root)
    progress(f"[hls] hls4ml {hls_cfg['backend']} {hls_cfg['io_type']} {hls_cfg['strategy']} "
             f"RF={hls_cfg['reuse_factor']} part {hls_cfg['part']} clock {hls_cfg['clock_period_ns']} ns")
    config, network, csim = compile_firmware(model, hls_cfg, run.path(PROJECT), progress)
    write_json(run.path(HLS4ML_CONFIG), config)
    network.save(run.path(NETWORK))
    for layer in network.layers:
        progress(f"[hls] {layer.name}: {layer.weight_codes.shape[0]}x{layer.weight_codes.shape[1]} "
                 f"weights {layer.weight_type}, accum {layer.accum_type}, out {layer.output_type}")
    codec = FirmwareCodec(data.scaler, network.input_type, network.output_type)

    scaled = {part: data.inputs(part) for part in ("valid", "delay", "test")}
    codes = {part: codec.codes_from_scaled(x) for part, x in scaled.items()}
    started = time.perf_counter()
    golden = {part: csim.run(c) for part, c in codes.items()}
    seconds = time.perf_counter() - started
    rows = sum(len(c) for c in codes.values())
    progress(f"[hls] C simulation: {rows:,} transactions in {seconds:.2f} s "
             f"({rows / seconds:,.0f}/s, {csim.threads} threads)")

    random_in = random_vectors(network, hls_cfg["random_vectors"], cfg["seed"])
    random_out = csim.run(random_in)
    test_vs_reference = compare(network.forward(codes["test"]), golden["test"], codes["test"])
    random_vs_reference = compare(network.forward(random_in), random_out, random_in)

    qkeras_logit = model.predict(scaled["test"], batch_size=8192, verbose=0)[:, 0].astype(np.float64)
    firmware_logit = codec.logits(golden["test"])
    lsb_diff = np.abs(qkeras_logit - firmware_logit) / network.output_type.lsb

    trained = json.loads(run.path(NETWORK_METRICS).read_text())
    operating, firmware_metrics = evaluate_firmware(data, golden, codec,
                                                    trained["operating"]["qkeras"], eval_cfg)
    qkeras_metrics = trained["models"]["qkeras"]
    ap_change = (None if None in (firmware_metrics["average_precision"],
                                  qkeras_metrics["average_precision"])
                 else firmware_metrics["average_precision"] - qkeras_metrics["average_precision"])

    exactness = {
        "golden_model": "hls4ml C simulation (g++, ap_types) of hls/project",
        "reference": "numpy integer reference from the hls4ml precisions (hls/network.json)",
        "test_set_vs_reference": test_vs_reference,
        "random_vs_reference": random_vs_reference | {"seed": cfg["seed"],
                                                      "edge_vectors": len(edge_vectors(network))},
        "firmware_vs_qkeras": {
            "vectors": int(len(lsb_diff)),
            "identical_fraction": float(np.mean(lsb_diff == 0)),
            "max_difference_lsb": float(lsb_diff.max()),
            "output_lsb": network.output_type.lsb,
            "why_not_identical": f"ReLU outputs round with {hls_cfg['activation_rounding']} in the "
                                 "firmware, half to even (RND_CONV) in QKeras",
        },
        "average_precision_change_vs_qkeras": ap_change,
        "saturated_test_inputs": codec.saturated(scaled["test"]),
        "csim_throughput": {"transactions_per_s": rows / seconds, "threads": csim.threads,
                            "kind": "measured on this machine"},
    }
    write_json(run.path(BIT_EXACTNESS), exactness)
    with atomic_path(run.path(GOLDEN)) as tmp:
        with open(tmp, "wb") as handle:  # np.savez would append .npz to a bare path
            np.savez_compressed(handle, test_input_codes=codes["test"],
                                test_output_codes=golden["test"], random_input_codes=random_in,
                                random_output_codes=random_out)
    write_json(run.path(FIRMWARE_METRICS), {"firmware": firmware_metrics,
                                            "operating": operating})
    for name, result in (("test set", test_vs_reference), ("random", random_vs_reference)):
        progress(f"[hls] C simulation == numpy reference on {name}: "
                 f"{result['identical']:,}/{result['vectors']:,}")
    progress(f"[hls] firmware vs QKeras: {np.mean(lsb_diff == 0):.2%} identical, max "
             f"{lsb_diff.max():.0f} LSB; AP {figure(firmware_metrics, 'average_precision', '.4f')} "
             f"(QKeras {figure(qkeras_metrics, 'average_precision', '.4f')}, change "
             f"{shown(ap_change, '+.4f', 'AP undefined on this test set')})")
    saturated = exactness["saturated_test_inputs"]
    progress("[hls] test inputs saturated by the input type " + str(network.input_type) + ": "
             + (", ".join(f"{k} {v:,}" for k, v in saturated.items()) or "none"))
    if test_vs_reference["identical_fraction"] < 1 or random_vs_reference["identical_fraction"] < 1:
        raise RuntimeError(f"C simulation and numpy reference disagree; see "
                           f"{run.path(BIT_EXACTNESS)}")


def vendor_synthesis(run: RunFolder, cfg, progress=print) -> None:
    """C synthesis with the vendor tool when installed; otherwise say so and write no figure.
    The vendor tool works on its own copy of the project (`synth/vendor_project`)."""
    tool = find_vendor_tool()
    if tool is None:
        message = (f"no vendor HLS tool ({', '.join(VENDOR_TOOLS)}) on PATH: vendor synthesis "
                   "skipped, no vendor figures written (the open-source synthesis still runs)")
        progress(f"[synth] {message}")
        write_json(run.path(VENDOR), {"status": "not run", "reason": message})
        return
    from fraudfpga.models.network import load_model

    hls_cfg = cfg["hls"]
    config = json.loads(run.path(HLS4ML_CONFIG).read_text())
    project = run.path(VENDOR_PROJECT)
    shutil.rmtree(project, ignore_errors=True)
    hls_model = convert(load_model(run.path(QKERAS_MODEL)), config, hls_cfg, project)
    run_vendor_build(hls_model, hls_cfg["vendor"], progress)
    figures = parse_vendor_reports(project)
    write_json(run.path(VENDOR), {"status": "ok", "tool": tool, **figures})
    progress(f"[synth] {tool} {figures['tool_version']}: latency {figures['latency_cycles']} "
             f"cycles, II {figures['initiation_interval_cycles']}, clock "
             f"{figures['clock_ns']['estimated']} ns (estimated), {figures['resources']}")


FIRMWARE_READS = ("seed", "hls.backend", "hls.io_type", "hls.strategy", "hls.reuse_factor",
                  "hls.part", "hls.clock_period_ns", "hls.activation_rounding",
                  "hls.random_vectors", "evaluation")

register(Step(
    name="hls", command="hls",
    help="convert the QKeras model to HLS firmware with hls4ml; C simulation = golden model",
    reads=FIRMWARE_READS,
    inputs=(QKERAS_MODEL, NETWORK_METRICS, SPLIT_FILES["valid"], SPLIT_FILES["delay"],
            SPLIT_FILES["test"], SCALER, DATA_SUMMARY),
    outputs=(HLS4ML_CONFIG, NETWORK, BIT_EXACTNESS, GOLDEN, FIRMWARE_METRICS, *FIRMWARE_SOURCES,
             CSIM_LIBRARY),
    body=build_firmware, code=("fraudfpga.hls", "fraudfpga.models.network",
                               "fraudfpga.models.dataset", "fraudfpga.models.metrics",
                               "fraudfpga.models.operating")))

register(Step(
    name="explain", command="explain",
    help="SHAP reason codes of the firmware's alerts, with the C simulation as the model",
    reads=("seed", "explain"),
    inputs=(NETWORK, CSIM_LIBRARY, FIRMWARE_METRICS, FLOAT_MODEL, SPLIT_FILES["train"],
            SPLIT_FILES["valid"], SPLIT_FILES["test"], SCALER, DATA_SUMMARY),
    outputs=(REASON_CODES, EXPLAIN_SUMMARY, EXPLAIN_PLOT),
    body=explain_alerts, code=("fraudfpga.hls", "fraudfpga.models.network",
                               "fraudfpga.models.dataset"),
    background=True, niceness=10))

register(Step(
    name="synth_vendor", command="synth",
    help="vendor HLS C synthesis when vitis_hls / vivado_hls is installed (otherwise skipped, "
         "said so)",
    reads=("hls.backend", "hls.io_type", "hls.strategy", "hls.reuse_factor", "hls.part",
           "hls.clock_period_ns", "hls.vendor"),
    inputs=(HLS4ML_CONFIG, QKERAS_MODEL), outputs=(VENDOR,),
    body=vendor_synthesis, code=("fraudfpga.hls", "fraudfpga.models.network"),
    environment=lambda: {"vendor_tool": find_vendor_tool()}))
