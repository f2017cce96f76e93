"""The imported family: a team's own trained tree ensemble (`imported.model`) through the same
verified path as the toolkit's forests.

The `imported` step reads the model file (`imported_models`: the kind is detected and said),
matches its inputs to the CSV's columns, fits the input contract (`input_contract`: an offset
and a power-of-two scale per input, chosen from the training rows and the model's own
thresholds), rewrites every split as a comparison of codes, converts that forest for conifer's
C++ emulation (the golden model) and checks it three ways:
- the emulation against the independent integer reference (`FixedForest.forward`), bit for bit;
- on every test row whose path through every tree is the same in codes as in raw values, the
  firmware's sum against the raw leaves' truncated sum, bit for bit, and against the library's
  own prediction within the truncation and the library's float rounding;
- on every test row: the rows whose path moved (a value within half a code of a threshold),
  the AP of the firmware and of the library, and the decisions that differ at the firmware's
  operating point.
The family's RTL step and every step after it are the forest's (`sim.forest_rtl`,
`sim.flow.register_verification`): the same contract (golden vectors, RTL, metadata).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.registry import Step, register
from fraudfpga.schema import register_check
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (IMPORTED_CHECK, IMPORTED_CONIFER, IMPORTED_CONTRACT, IMPORTED_FIXED,
                        IMPORTED_GOLDEN, IMPORTED_METRICS, IMPORTED_REFERENCE)
from .forest import SCORE_SENSES, FixedForest, score_type, sum_bound
from .forest_flow import emulation_matches_reference, golden_vectors, write_golden
from .imported_models import ImportError_, RawEnsemble, read_model
from .input_contract import fit_contract, raw_leaf_values, to_code_space

GOLDEN_MODEL = "conifer C++ emulation (conifer.h, ap_fixed) of imported/conifer"


def match_features(model: RawEnsemble, columns: list[str]) -> list[str]:
    """The CSV columns in the model's input order: by the model's feature names where it has
    them, else the configured column order (same count required)."""
    if model.feature_names:
        missing = [n for n in model.feature_names if n not in columns]
        if missing:
            raise ImportError_(f"{model.path}: the model's inputs {model.feature_names} are not "
                               f"all columns of the data {columns}: missing {missing}")
        return list(model.feature_names)
    if model.n_features != len(columns):
        raise ImportError_(f"{model.path}: the model takes {model.n_features} inputs and has no "
                           f"feature names; the data's feature columns are {len(columns)}: "
                           f"{columns} (set data.feature_columns to the model's inputs, in order)")
    return list(columns)


def library_tolerance(model: RawEnsemble, x: np.ndarray) -> np.ndarray:
    """How far the library's own output may lie from the exact float64 sum of its leaves, per
    row: float32 libraries round every partial sum (half an ulp of the largest, per addition),
    and a margin that ONNX Runtime hands back as a float32 probability loses the logit's
    precision near 0 and 1."""
    if model.input_dtype == np.float64:
        return np.full(len(x), 1e-9)
    path = np.abs(model.init) + np.abs(raw_leaf_values(model, x)).sum(axis=1)
    bound = (len(model.trees) + 1) * path * 2.0 ** -24
    if model.kind.startswith("ONNX") and model.score_sense == "fraud margin":
        bound += 2.0 ** -23 * (2 + np.exp(np.abs(model.raw_sum(x))))
    return bound


def import_model(run: RunFolder, cfg, progress=print) -> None:
    from fraudfpga.models.dataset import PreparedData
    from fraudfpga.models.metrics import average_precision, evaluate
    from fraudfpga.models.operating import operating_point

    from .forest_csim import ConiferEmulation, build_library, write_project

    settings = cfg["imported"]
    if not settings["model"]:
        raise ImportError_("imported.model: no model file named (set imported.model=PATH)")
    model = read_model(settings["model"])
    progress(f"[imported] {model.path}: {model.kind}, {len(model.trees)} trees, "
             f"{model.split_count():,} splits, output: {model.score_sense} ({model.library})")
    data = PreparedData(run.root)
    names = match_features(model, data.scaler.features)
    parts = ("train", "valid", "delay", "test") if "delay" in data.parts else ("train", "valid", "test")
    raw = {p: data.parts[p][names].to_numpy(np.float64) for p in parts}
    library = {p: model.library_output(raw[p]) for p in parts if p != "train"}
    check_reader(model, raw["test"], library["test"])
    contract = fit_contract(raw["train"], model, names, settings["input_bits"])
    codes = {p: contract.codes(raw[p], f"{run.path(SPLIT_FILES[p])}") for p in parts}
    code_space = to_code_space(model, contract)
    t_out = score_type(sum_bound(code_space.ensemble), settings["score_frac_bits"])
    forest = FixedForest.from_conifer(code_space.ensemble, contract.code_type, t_out,
                                      model.score_sense, str(model.path))
    project = run.path(IMPORTED_CONIFER)
    write_project(code_space.ensemble, contract.code_type, t_out, project)
    build_library(project, forest, progress)
    emulation = ConiferEmulation(project, forest)
    outputs = {p: emulation.run(codes[p]) for p in parts if p != "train"}

    golden, checks = golden_vectors(forest, emulation, codes["test"], outputs["test"], cfg)

    sense = SCORE_SENSES[model.score_sense]
    firmware_value = t_out.to_float(outputs["test"][:, 0])
    library_value = library["test"]
    moved, unmoved_exact = path_changes(model, forest, raw["test"], codes["test"], outputs["test"])
    difference = np.abs(firmware_value - library_value)
    bound = (len(forest.trees) + 1) * t_out.lsb + library_tolerance(model, raw["test"])
    beyond = int(np.sum((difference > bound) & ~moved))

    labels = {p: data.labels(p) for p in parts}
    scores = {p: forest.fraud_scores(out) for p, out in outputs.items()}
    library_scores = {p: sense.probability(values) for p, values in library.items()}
    target_fpr, top_k = cfg["evaluation"]["target_fpr"], cfg["evaluation"]["top_k"]
    operating = operating_point(labels["valid"], scores["valid"], target_fpr, scores.get("delay"))
    library_operating = operating_point(labels["valid"], library_scores["valid"], target_fpr,
                                        library_scores.get("delay"))
    day, card = data.column("test", "day"), data.column("test", "card")
    metrics = evaluate(labels["test"], scores["test"], operating["threshold"], day, card, top_k)
    library_metrics = evaluate(labels["test"], library_scores["test"],
                               library_operating["threshold"], day, card, top_k)
    flipped = int(np.sum((scores["test"] > operating["threshold"]) !=
                         (library_scores["test"] > operating["threshold"])))
    ap = {"firmware": average_precision(labels["test"], scores["test"]),
          "library": average_precision(labels["test"], library_scores["test"])}

    write_json(run.path(IMPORTED_CONTRACT), contract.to_dict() | {
        "model": str(model.path), "kind": model.kind,
        "thresholds": {"splits_decided_by_the_code_range": code_space.decided_by_range,
                       "collapsed_onto_one_code": code_space.collapsed},
        "saturated_test_rows": contract.saturated(raw["test"]),
        "missing_values": "refused: the host imputes NaN before scoring; the firmware has no "
                          "default direction"})
    write_reference(run.path(IMPORTED_REFERENCE))
    check = {
        "golden_model": GOLDEN_MODEL,
        "reference": "numpy integer reference of the code-space forest (imported/forest.json)",
        **checks,
        "firmware_vs_library": {
            "library": model.library, "compared": model.score_sense, "rows": int(len(difference)),
            "rows_whose_path_moved": int(moved.sum()),
            "why_paths_move": "a raw value within half a code of a threshold takes the other "
                              "branch of that split once quantized",
            "unmoved_rows_equal_to_truncated_raw_leaves": unmoved_exact,
            "max_difference": float(difference.max()),
            "max_difference_unmoved_rows": float(difference[~moved].max(initial=0.0)),
            "bound_unmoved_rows": float(bound.max()),
            "bound_why": "each leaf value and the initial score truncated to the score type (one "
                         "LSB each) plus the library's own float rounding",
            "unmoved_rows_beyond_bound": beyond},
        "average_precision": ap | {"change": ap["firmware"] - ap["library"]},
        "decisions_flipped_at_operating_point": flipped,
        "forest": {"trees": len(forest.trees), "split_nodes": forest.nodes(),
                   "max_depth": forest.max_depth(), "comparators": len(forest.comparisons()),
                   "input_type": str(forest.input_type), "score_type": str(t_out)},
    }
    write_json(run.path(IMPORTED_CHECK), check)
    forest.save(run.path(IMPORTED_FIXED))
    write_golden(run.path(IMPORTED_GOLDEN), golden)
    write_json(run.path(IMPORTED_METRICS), {
        "imported_firmware": metrics, "imported_library": library_metrics,
        "operating": {"imported_firmware": operating, "imported_library": library_operating},
        "model": {"path": str(model.path), "kind": model.kind, "library": model.library,
                  "features": names},
        "labels": {"imported_firmware": f"your model's firmware ({model.kind}, conifer "
                                        "emulation)",
                   "imported_library": f"your model ({model.library})"}})
    progress(f"[imported] input contract: {contract.bits}-bit codes; "
             f"{code_space.decided_by_range} splits decided by the code range, "
             f"{sum(code_space.collapsed.values())} thresholds collapsed onto another's code; "
             f"saturated test values: {contract.saturated(raw['test']) or 'none'}")
    progress(f"[imported] conifer emulation == integer reference: "
             f"{checks['test_set_vs_reference']['identical']:,}/"
             f"{checks['test_set_vs_reference']['vectors']:,} test, "
             f"{checks['random_vs_reference']['identical']:,}/"
             f"{checks['random_vs_reference']['vectors']:,} random, "
             f"edge and threshold vectors")
    progress(f"[imported] firmware vs {model.library}: {int(moved.sum())} of {len(moved):,} test "
             f"rows took another path; largest difference {difference.max():.3g} "
             f"({difference[~moved].max(initial=0.0):.3g} on the others, bound "
             f"{bound.max():.3g}); test AP {ap['firmware']:.4f} (library {ap['library']:.4f}, "
             f"change {ap['firmware'] - ap['library']:+.4f}); {flipped} decisions differ at the "
             f"operating point")
    if not emulation_matches_reference(checks):
        raise RuntimeError(f"conifer emulation and the integer reference disagree; see "
                           f"{run.path(IMPORTED_CHECK)}")
    if not unmoved_exact or beyond:
        raise RuntimeError(f"the firmware differs from {model.library} on rows whose path did not "
                           f"move ({beyond} beyond the bound); see {run.path(IMPORTED_CHECK)}")


def check_reader(model: RawEnsemble, x: np.ndarray, library_values: np.ndarray) -> None:
    """The node arrays read from the file reproduce the library's own output on the data
    (`library_values`: the library's output for the rows `x`)."""
    ours = model.raw_sum(x)
    difference = np.abs(ours - library_values)
    tolerance = library_tolerance(model, x)
    worst = int(np.argmax(difference - tolerance))
    if difference[worst] > tolerance[worst]:
        raise ImportError_(f"{model.path}: the trees read from the file give {ours[worst]:.9g} "
                           f"on test row {worst}, {model.library} gives "
                           f"{library_values[worst]:.9g}: the reader does not understand this "
                           "model (please report it)")


def path_changes(model: RawEnsemble, forest: FixedForest, x: np.ndarray, codes: np.ndarray,
                 outputs: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows where some tree reaches a different leaf value in codes than in raw values, and
    whether every other row's firmware output equals the sum of its raw leaves truncated as
    the firmware truncates them (bit for bit)."""
    scale = 2.0 ** forest.output_type.frac
    raw_codes = np.floor(raw_leaf_values(model, x) * scale).astype(np.int64)
    raw_codes[:, 0] += int(np.floor(model.init * scale))
    moved = (forest.tree_values(codes) != raw_codes).any(axis=1)
    expected = forest.output_type.overflow_codes(raw_codes.sum(axis=1))
    return moved, bool(np.array_equal(expected[~moved], outputs[~moved, 0]))


def write_reference(path) -> None:
    """The contract's reference function (pure Python), beside the contract."""
    source = resources.files("fraudfpga.hls").joinpath("input_contract_reference.py")
    with atomic_path(path) as tmp:
        shutil.copyfile(str(source), tmp)


def _check_model_file(config: dict) -> list[str]:
    path = config["imported"]["model"]
    if path and not Path(path).is_file():
        return [f"imported.model: {path}: imported.model names no file"]
    return []


register_check(_check_model_file)


def _model_file(cfg) -> list[str]:
    return [cfg["imported"]["model"]] if cfg["imported"]["model"] else []


register(Step(
    name="imported", command="forest",
    help="read your own trained tree ensemble (imported.model: XGBoost, LightGBM, scikit-learn, "
         "ONNX), fit its input contract, convert it for conifer's C++ emulation (the golden "
         "model) and check it against the library's own predictions",
    reads=("seed", "imported", "evaluation", "hls.random_vectors", "forest.edge_seed"),
    inputs=(*SPLIT_FILES.values(), SCALER, DATA_SUMMARY),
    outputs=(IMPORTED_FIXED, IMPORTED_GOLDEN, IMPORTED_CONTRACT, IMPORTED_REFERENCE,
             IMPORTED_CHECK, IMPORTED_METRICS),
    body=import_model, external_inputs=_model_file,
    code=("fraudfpga.hls.imported_flow", "fraudfpga.hls.imported_models",
          "fraudfpga.hls.input_contract", "fraudfpga.hls.forest", "fraudfpga.hls.forest_csim",
          "fraudfpga.hls.fixed", "fraudfpga.hls.flow", "fraudfpga.hls.forest_flow",
          "fraudfpga.hls.input_contract_reference",
          "fraudfpga.models"),
    family="imported"))
