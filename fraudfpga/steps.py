"""The named steps of the flow. Each reads and writes artifacts in the run folder and is
skipped when its configuration and inputs have not changed since its last complete run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

from .config import section
from .runfolder import RunFolder, atomic_path, write_json

PROJECTS_DIR = Path("fpga_projects")
PNR = "synth/nextpnr_ecp5.json"


def open_run(config: dict, projects_dir: Path | None = None) -> RunFolder:
    return RunFolder((projects_dir or PROJECTS_DIR) / config["run"], config)


def run_step(run: RunFolder, name: str, config_sections: tuple[str, ...], inputs: list[str],
             body: Callable[[RunFolder], tuple[list[str], dict]], force: bool = False,
             progress=print, environment: dict | None = None) -> bool:
    """Run `body` unless the step is current; returns True when it ran.

    `body` writes its files (atomically) and returns (outputs, extra manifest fields).
    `environment` holds facts outside the configuration that change the result (which tools
    are installed); they are part of the step's key.
    """
    config_part = section(run.config, *config_sections)
    if environment:
        config_part["environment"] = environment
    key, input_hashes = run.step_key(config_part, inputs)
    if not force and run.is_current(name, key):
        progress(f"[{name}] up to date in {run.root} (inputs and configuration unchanged)")
        return False
    started = dt.datetime.now()
    outputs, extra = body(run)
    run.record(name, key, config_part, input_hashes, outputs, started, extra)
    return True


def step_data(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.models.dataset import SPLIT_PARTS, load_frame, split_frame
    from fraudfpga.models.split import Scaler

    def body(run: RunFolder):
        frame = load_frame(run.config, progress)
        split = split_frame(frame, run.config)
        features = frame.attrs["feature_columns"]
        scaler = Scaler.fit(split.train, features)
        outputs = []
        for name in SPLIT_PARTS:
            target = run.path(f"data/{name}.parquet")
            with atomic_path(target) as tmp:
                getattr(split, name).to_parquet(tmp, index=False)
            outputs.append(f"data/{name}.parquet")
        write_json(run.path("data/scaler.json"), scaler.to_dict())
        summary = {"source": run.config["data"]["source"], "rows": int(len(frame)),
                   "frauds": int(frame["label"].sum()), "features": features,
                   "split": split.summary()}
        write_json(run.path("data/summary.json"), summary)
        for name, part in summary["split"].items():
            progress(f"[data] {name:<5} {part['rows']:>8,} rows, {part['frauds']:>5,} frauds "
                     f"({part['fraud_rate']:.2%})")
        return outputs + ["data/scaler.json", "data/summary.json"], {}

    inputs = [run.config["data"]["path"]] if run.config["data"]["path"] else []
    config_part_names = ("seed", "data", "split")
    # An input file outside the run folder is hashed through its absolute path.
    inputs = [str(Path(p).resolve()) for p in inputs]
    return run_step(run, "data", config_part_names, inputs, body, force, progress)


def step_train(run: RunFolder, force: bool = False, progress=print) -> bool:
    import joblib
    import numpy as np
    import pandas as pd

    from fraudfpga.kerasenv import set_seeds
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.network import build_float_model, build_qkeras_model, model_summary
    from fraudfpga.models.train import (fit_gbdt, fit_network, model_metrics, score_gbdt,
                                        score_network)

    def body(run: RunFolder):
        data = PreparedData(run.path("data"))
        cfg = run.config
        train_x, train_y = data.inputs("train"), data.labels("train")
        valid_x, valid_y = data.inputs("valid"), data.labels("valid")
        test_x, test_y = data.inputs("test"), data.labels("test")
        day, card = data.column("test", "day"), data.column("test", "card")
        n_inputs = train_x.shape[1]

        builders = {"qkeras": build_qkeras_model, "float": build_float_model}
        networks, training, metrics, scores = {}, {}, {}, {}
        for name, build in builders.items():
            set_seeds(cfg["seed"])  # the initial weights depend on it
            model = networks[name] = build(n_inputs, cfg["model"])
            progress(f"[train] {name}: {model.count_params()} parameters, "
                     f"{len(train_y):,} training rows")
            training[name] = fit_network(model, train_x, train_y, valid_x, valid_y, cfg["train"],
                                         cfg["seed"], name, progress)
            valid_score, scores[name] = score_network(model, valid_x), score_network(model, test_x)
            metrics[name] = model_metrics(valid_y, valid_score, test_y, scores[name], day, card,
                                          cfg["evaluation"])
            path = run.path(f"models/{name}_model.h5")
            with atomic_path(path) as tmp:
                model.save(tmp, save_format="h5")
        progress("[train] gbdt: HistGradientBoosting")
        gbdt = fit_gbdt(train_x, train_y, cfg["gbdt"], cfg["seed"])
        scores["gbdt"] = score_gbdt(gbdt, test_x)
        metrics["gbdt"] = model_metrics(valid_y, score_gbdt(gbdt, valid_x), test_y, scores["gbdt"],
                                        day, card, cfg["evaluation"])
        with atomic_path(run.path("models/gbdt.joblib")) as tmp:
            joblib.dump(gbdt, tmp)

        summaries = {"qkeras": model_summary(networks["qkeras"], cfg["model"]),
                     "float": model_summary(networks["float"], None)}
        write_json(run.path("models/summary.json"), {"models": summaries, "training": training})
        score_frame = pd.DataFrame({"label": test_y, **{f"score_{k}": v for k, v in scores.items()}})
        for column in ("day", "card", "TRANSACTION_ID"):
            values = data.column("test", column)
            if values is not None:
                score_frame[column] = values
        with atomic_path(run.path("models/test_scores.parquet")) as tmp:
            score_frame.to_parquet(tmp, index=False)
        write_json(run.path("models/metrics.json"), {
            "split": json.loads(run.path("data/summary.json").read_text())["split"],
            "operating_point": f"threshold at {cfg['evaluation']['target_fpr']:.2%} false-positive "
                               "rate on the validation window",
            "scores": "networks: logit; gbdt: probability",
            "models": metrics,
        })
        outputs = ["models/qkeras_model.h5", "models/float_model.h5", "models/gbdt.joblib",
                   "models/summary.json", "models/test_scores.parquet", "models/metrics.json"]
        return outputs, {}

    inputs = ["data/train.parquet", "data/valid.parquet", "data/test.parquet", "data/scaler.json"]
    ran = run_step(run, "train", ("seed", "model", "train", "gbdt", "evaluation"), inputs, body,
                   force, progress)
    merge_metrics(run)
    return ran


def merge_metrics(run: RunFolder) -> dict:
    """`metrics.json`: the models' metrics, plus the firmware's when it was built from the
    current QKeras model. Each step writes its own part; this file is derived from them."""
    from .runfolder import file_sha256

    merged = json.loads(run.path("models/metrics.json").read_text())
    firmware = run.path("hls/metrics.json")
    if firmware.is_file():
        part = json.loads(firmware.read_text())
        if part["model_sha256"] == file_sha256(run.path("models/qkeras_model.h5")):
            merged["models"]["firmware"] = part["firmware"]
            merged["firmware_scores"] = "firmware: logit from the hls4ml C simulation"
    write_json(run.path("metrics.json"), merged)
    return merged


def print_metrics(run: RunFolder, progress=print) -> None:
    from fraudfpga.models.metrics import format_table

    metrics = json.loads(run.path("metrics.json").read_text())["models"]
    progress(f"\nTest-set metrics ({run.path('metrics.json')})\n"
             + format_table(metrics, run.config["evaluation"]["top_k"]))
    ap = {k: v["average_precision"] for k, v in metrics.items()}
    progress(f"QKeras AP - float AP = {ap['qkeras'] - ap['float']:+.4f}; "
             f"QKeras AP / GBDT AP = {ap['qkeras'] / ap['gbdt']:.3f}")


def step_hls(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.hls.flow import build_firmware

    inputs = ["models/qkeras_model.h5", "models/metrics.json", "data/valid.parquet",
              "data/test.parquet", "data/scaler.json"]
    ran = run_step(run, "hls", ("seed", "hls", "evaluation"), inputs,
                   lambda run: build_firmware(run, progress), force, progress)
    merge_metrics(run)
    return ran


def step_synth(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.hls.flow import vendor_synthesis
    from fraudfpga.hls.vendor import find_vendor_tool

    from fraudfpga.sim.flow import open_synthesis

    inputs = ["hls/hls4ml_config.json", "models/qkeras_model.h5"]
    vendor = run_step(run, "synth_vendor", ("hls",), inputs,
                      lambda run: vendor_synthesis(run, progress), force, progress,
                      environment={"vendor_tool": find_vendor_tool()})
    yosys = run_step(run, "synth_yosys", ("rtl",), _rtl_files(run),
                     lambda run: open_synthesis(run, progress), force, progress)
    return vendor or yosys


def _rtl_files(run: RunFolder) -> list[str]:
    metadata = json.loads(run.path("rtl/metadata.json").read_text())
    return ["rtl/metadata.json", *(f"rtl/{s}" for s in metadata["sources"])]


def step_rtl(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.sim.flow import generate

    return run_step(run, "rtl", ("hls", "rtl"), ["hls/network.json", "hls/golden.npz"],
                    lambda run: generate(run, progress), force, progress)


def step_sim(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.sim.flow import verify

    return run_step(run, "sim", ("rtl",), [*_rtl_files(run), "hls/golden.npz"],
                    lambda run: verify(run, progress), force, progress)


def step_baseline(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.gpu_baseline.benchmark import device_info
    from fraudfpga.gpu_baseline.flow import measure

    device = device_info()
    return run_step(run, "baseline", ("baseline",),
                    ["models/float_model.h5", "models/qkeras_model.h5", "data/test.parquet"],
                    lambda run: measure(run, progress), force, progress,
                    environment={"device": device["name"], "tensorflow": device["tensorflow"]})


def step_report(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.report import build_report

    inputs = ["metrics.json", "models/test_scores.parquet", "hls/golden.npz",
              "hls/bit_exactness.json", "rtl/metadata.json", "sim/results.json",
              "synth/yosys.json", "synth/vendor.json", "baseline/results.json"]
    if run.path(PNR).is_file():  # the optional place-and-route step has run
        inputs.append(PNR)
    ran = run_step(run, "report", ("hls", "report"), inputs,
                   lambda run: build_report(run, progress), force, progress)
    summary = json.loads(run.path("report/summary.json").read_text())
    progress(f"[report] {run.path('report/index.html')}")
    for line in summary["summary"]:
        progress("  " + line.replace("**", ""))
    return ran


def step_pnr(run: RunFolder, force: bool = False, progress=print) -> bool:
    from fraudfpga.sim.flow import ecp5_place_and_route

    return run_step(run, "pnr", ("pnr",), _rtl_files(run),
                    lambda run: ecp5_place_and_route(run, progress), force, progress)


STEPS = {"data": step_data, "train": step_train, "hls": step_hls, "rtl": step_rtl,
         "sim": step_sim, "synth": step_synth, "baseline": step_baseline, "report": step_report}
OPTIONAL_STEPS = {"pnr": step_pnr}  # run by name only, not by `all`
