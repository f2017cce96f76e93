"""The forest step: fit the forest firmware's model (`forest.model`: a scikit-learn random forest
or XGBoost's boosted trees) on the input grid, convert it with conifer, build conifer's C++
emulation (the golden model), write the golden vectors and check the emulation against the
independent integer reference (`FixedForest.forward`) and against the training library's own
scores.

The forest is fitted on the inputs as the firmware sees them (the scaled features rounded and
saturated to the input type), so every split threshold lies between two codes of the grid and
the firmware's comparisons reproduce the trained splits exactly. The protocol is the tree
references': a selection fit on the training days before the validation window gives the
alert rate at the target false-positive rate; with `train.refit` the forest is refitted on the
whole training period and its threshold alerts that share of the delay period.
"""

from __future__ import annotations

import time

import numpy as np

from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.registry import Step, register
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (FOREST_CONIFER, FOREST_EXACTNESS, FOREST_FIXED, FOREST_GOLDEN,
                        FOREST_GPU_TREES, FOREST_METRICS, FOREST_MODEL, FOREST_VALID_SCORES)
from .codec import FirmwareCodec
from .flow import compare, edge_vectors
from .forest import FixedForest, input_type, threshold_vectors
from .forest_models import forest_model

GOLDEN_MODEL = "conifer C++ emulation (conifer.h, ap_fixed) of forest/conifer"
GPU_TOLERANCE = 1e-4  # float32 sums of the leaves against the library's probabilities


def fit_forest(x: np.ndarray, y: np.ndarray, forest_cfg: dict, seed: int):
    return forest_model(forest_cfg["model"]).fit(x, y, forest_cfg, seed)


def forest_input_type(forest_cfg: dict):
    return input_type(forest_cfg["input_bits"], forest_cfg["input_integer"])


def describe(forest_cfg: dict) -> str:
    """The forest's settings as the progress line and the report name them."""
    return forest_model(forest_cfg["model"]).describe(forest_cfg)


def input_grid(data, cfg) -> tuple[dict, dict]:
    """The input codes of every part of the split, and the same inputs as values of the input
    type (what the forest is fitted on)."""
    t_in = forest_input_type(cfg["forest"])
    codec = FirmwareCodec(data.scaler, t_in, None)
    parts = ("train", "valid", "delay", "test") if cfg["train"]["refit"] else ("train", "valid", "test")
    codes = {part: codec.codes_from_scaled(data.inputs(part)) for part in parts}
    return codes, {part: t_in.to_float(c) for part, c in codes.items()}


def fit_selection_and_model(data, grid: dict, cfg, seed: int):
    """The selection forest (fitted on the training days before the validation window) and the
    deployed one (refitted on the whole training period with `train.refit`, else the same)."""
    labels = {part: data.labels(part) for part in ("train", "valid")}
    selection = fit_forest(grid["train"], labels["train"], cfg["forest"], seed)
    model = (fit_forest(np.concatenate([grid["train"], grid["valid"]]),
                        np.concatenate([labels["train"], labels["valid"]]), cfg["forest"], seed)
             if cfg["train"]["refit"] else selection)
    return selection, model


def seed_aps(data, cfg, seeds: list[int]) -> list[dict]:
    """For each training seed: the selection forest's validation AP (the forest's counterpart of
    a network's best validation AP; the firmware differs from it by leaf truncation only) and
    the deployed forest's test AP (its library on the input grid, as the firmware sees it)."""
    from fraudfpga.models.metrics import average_precision

    _, grid = input_grid(data, cfg)
    results = []
    for seed in seeds:
        selection, model = fit_selection_and_model(data, grid, cfg, seed)
        results.append({"seed": seed,
                        "valid_ap": average_precision(data.labels("valid"),
                                                      selection.predict_proba(grid["valid"])[:, 1]),
                        "test_ap": average_precision(data.labels("test"),
                                                     model.predict_proba(grid["test"])[:, 1])})
    return results


def train_forest_firmware(data, cfg, seed: int, project, progress=print) -> dict:
    """Fit, convert and emulate the forest of one training seed; the scores, operating point
    and metrics of its firmware (the emulation) and of the float model."""
    from fraudfpga.models.metrics import average_precision, evaluate
    from fraudfpga.models.operating import operating_point

    from .forest_csim import ConiferEmulation, build_library, convert, write_project

    t_in = forest_input_type(cfg["forest"])
    codes, grid = input_grid(data, cfg)
    parts = tuple(codes)
    labels = {part: data.labels(part) for part in ("train", "valid")}
    started = time.perf_counter()
    selection, model = fit_selection_and_model(data, grid, cfg, seed)
    fit_seconds = time.perf_counter() - started
    ensemble, t_out, sense = convert(model, t_in, cfg["forest"]["score_frac_bits"])
    write_project(ensemble, t_in, t_out, project)
    forest = FixedForest.from_conifer(ensemble, t_in, t_out, sense)
    build_library(project, forest, progress)
    emulation = ConiferEmulation(project, forest)
    started = time.perf_counter()
    outputs = {part: emulation.run(codes[part]) for part in parts if part != "train"}
    emulation_seconds = time.perf_counter() - started
    scores = {part: forest.fraud_scores(out) for part, out in outputs.items()}
    selection_valid = selection.predict_proba(grid["valid"])[:, 1]
    operating = operating_point(labels["valid"], selection_valid, cfg["evaluation"]["target_fpr"],
                                scores.get("delay"))
    test_labels, day, card = (data.labels("test"), data.column("test", "day"),
                              data.column("test", "card"))
    top_k = cfg["evaluation"]["top_k"]
    metrics = evaluate(test_labels, scores["test"], operating["threshold"], day, card, top_k)
    float_scores = {part: model.predict_proba(grid[part])[:, 1] for part in outputs}
    float_operating = operating_point(labels["valid"], selection_valid,
                                      cfg["evaluation"]["target_fpr"], float_scores.get("delay"))
    float_metrics = evaluate(test_labels, float_scores["test"], float_operating["threshold"], day,
                             card, top_k)
    return {"model": model, "ensemble": ensemble, "forest": forest, "emulation": emulation,
            "codes": codes,
            "selection_valid": selection_valid,
            "selection_valid_ap": average_precision(labels["valid"], selection_valid),
            "outputs": outputs, "scores": scores, "operating": operating, "metrics": metrics,
            "float_scores": float_scores, "float_metrics": float_metrics,
            "float_operating": float_operating,
            "seconds": {"fit": round(fit_seconds, 1), "emulation": round(emulation_seconds, 2)}}


def golden_vectors(forest: FixedForest, emulation, test_in: np.ndarray, test_out: np.ndarray,
                   cfg) -> tuple[dict, dict]:
    """The golden vectors of a forest firmware (the test set, then edge, threshold and random
    inputs, each with the emulation's outputs) and the emulation checked against the integer
    reference on both (the `*_vs_reference` entries of its bit-exactness file)."""
    rng = np.random.default_rng(cfg["seed"])
    t = forest.input_type
    random_in = np.concatenate([
        edge_vectors(forest), threshold_vectors(forest, cfg["forest"]["edge_seed"]),
        rng.integers(t.min_code, t.max_code + 1, (cfg["hls"]["random_vectors"], forest.n_inputs))])
    random_out = emulation.run(random_in)
    golden = {"test_input_codes": test_in, "test_output_codes": test_out,
              "random_input_codes": random_in, "random_output_codes": random_out}
    checks = {"test_set_vs_reference": compare(forest.forward(test_in), test_out, test_in),
              "random_vs_reference": compare(forest.forward(random_in), random_out, random_in) | {
                  "seed": cfg["seed"], "edge_vectors": len(edge_vectors(forest)),
                  "threshold_vectors": 3 * len(forest.comparisons())}}
    return golden, checks


def emulation_matches_reference(checks: dict) -> bool:
    return all(checks[k]["identical_fraction"] == 1 for k in ("test_set_vs_reference",
                                                                "random_vs_reference"))


def write_golden(path, golden: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **golden)


def build_forest(run: RunFolder, cfg, progress=print) -> None:
    import joblib
    import pandas as pd

    from fraudfpga.gpu_baseline.export import export_forest_arrays
    from fraudfpga.models.dataset import PreparedData

    forest_cfg = cfg["forest"]
    data = PreparedData(run.root)
    progress(f"[forest] {describe(forest_cfg)}, fitted on the input grid of "
             f"{forest_input_type(forest_cfg)}")
    fitted = train_forest_firmware(data, cfg, cfg["seed"], run.path(FOREST_CONIFER), progress)
    forest, emulation = fitted["forest"], fitted["emulation"]
    t = forest.input_type
    test_in, test_out = fitted["codes"]["test"], fitted["outputs"]["test"]
    golden, checks = golden_vectors(forest, emulation, test_in, test_out, cfg)
    entry = forest_model(forest_cfg["model"])
    float_output = entry.float_output(fitted["model"], t.to_float(test_in))
    difference = np.abs(forest.output_type.to_float(test_out[:, 0]) - float_output)
    bound, why = entry.tolerance(forest)
    exactness = {
        "golden_model": GOLDEN_MODEL,
        "reference": "numpy integer reference from the conifer conversion (forest/forest.json)",
        **checks,
        "firmware_vs_float": {
            "model": entry.label, "compared": forest.score_sense,
            "vectors": int(len(difference)),
            "max_difference": float(difference.max()), "bound": bound, "why": why},
        "average_precision_change_vs_float": (
            fitted["metrics"]["average_precision"] - fitted["float_metrics"]["average_precision"]
            if fitted["metrics"]["average_precision"] is not None else None),
        "saturated_test_inputs": FirmwareCodec(data.scaler, t, forest.output_type).saturated(
            data.inputs("test")),
        "forest": {"trees": len(forest.trees), "split_nodes": forest.nodes(),
                   "max_depth": forest.max_depth(), "comparators": len(forest.comparisons())},
        "seconds": fitted["seconds"],
    }
    exactness["gpu_trees"] = export_forest_arrays(
        fitted["ensemble"], run.path(FOREST_GPU_TREES), forest.score_sense, forest.max_depth(),
        t.to_float(test_in), fitted["float_scores"]["test"])
    write_json(run.path(FOREST_EXACTNESS), exactness)
    with atomic_path(run.path(FOREST_MODEL)) as tmp:
        joblib.dump(fitted["model"], tmp)
    forest.save(run.path(FOREST_FIXED))
    write_golden(run.path(FOREST_GOLDEN), golden)
    with atomic_path(run.path(FOREST_VALID_SCORES)) as tmp:  # fitted without this window
        pd.DataFrame({"label": data.labels("valid"), "forest": fitted["selection_valid"]}).to_parquet(
            tmp, index=False)
    write_json(run.path(FOREST_METRICS), {
        "forest_firmware": fitted["metrics"], "forest_float": fitted["float_metrics"],
        "selection": {"valid_average_precision": fitted["selection_valid_ap"],
                      "what": "the forest fitted on the training days before the validation "
                              "window, scored on that window (its library, on the input grid)"},
        "operating": {"forest_firmware": fitted["operating"],
                      "forest_float": fitted["float_operating"]},
        "model": {"name": forest_cfg["model"], "label": entry.label,
                  "settings": describe(forest_cfg)},
        "labels": {"forest_firmware": "forest firmware (conifer emulation)",
                   "forest_float": f"{entry.label} (float)"},
        "scores": f"forest firmware: the fraud probability from the emulation's "
                  f"{forest.score_sense}"})
    for name, result in (("test set", checks["test_set_vs_reference"]),
                         ("random, edge and threshold", checks["random_vs_reference"])):
        progress(f"[forest] conifer emulation == integer reference on {name} vectors: "
                 f"{result['identical']:,}/{result['vectors']:,}")
    m = fitted["metrics"]
    progress(f"[forest] {forest.nodes():,} split nodes, {len(forest.comparisons())} distinct "
             f"comparisons, depth {forest.max_depth()}; firmware test AP "
             f"{m['average_precision'] if m['average_precision'] is None else round(m['average_precision'], 4)}"
             f" ({entry.label} {fitted['float_metrics']['average_precision']:.4f}); largest "
             f"|firmware - float| {difference.max():.2e} (bound {exactness['firmware_vs_float']['bound']:.2e})")
    if not emulation_matches_reference(checks):
        raise RuntimeError(f"conifer emulation and the integer reference disagree; see "
                           f"{run.path(FOREST_EXACTNESS)}")
    gpu_difference = max(exactness["gpu_trees"]["max_abs_difference"].values())
    if gpu_difference > GPU_TOLERANCE:
        raise RuntimeError(f"the forest's node arrays ({run.path(FOREST_GPU_TREES)}) differ from "
                           f"the {entry.label} by {gpu_difference:.3g} (> {GPU_TOLERANCE})")
    if difference.max() > bound + 1e-12:
        raise RuntimeError(f"the forest firmware differs from the {entry.label} by "
                           f"{difference.max():.3g}, more than leaf truncation explains; see "
                           f"{run.path(FOREST_EXACTNESS)}")


register(Step(
    name="forest", command="forest",
    help="fit the forest firmware's tree ensemble on the input grid, convert it with conifer, "
         "build conifer's C++ emulation (its golden model) and the golden vectors",
    reads=("seed", "forest", "train.refit", "evaluation", "hls.random_vectors"),
    inputs=(*SPLIT_FILES.values(), SCALER, DATA_SUMMARY),
    outputs=(FOREST_MODEL, FOREST_FIXED, FOREST_GOLDEN, FOREST_EXACTNESS, FOREST_METRICS,
             FOREST_VALID_SCORES, FOREST_GPU_TREES),
    body=build_forest, code=("fraudfpga.hls.forest_flow", "fraudfpga.hls.forest", "fraudfpga.hls.flow",
                             "fraudfpga.hls.forest_csim", "fraudfpga.hls.forest_models", "fraudfpga.hls.codec",
                             "fraudfpga.hls.fixed", "fraudfpga.models",
                             "fraudfpga.gpu_baseline.export", "fraudfpga.gpu_baseline.gpu_standalone"),
    family="forest"))
