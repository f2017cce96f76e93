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

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from fraudfpga.models.artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES
from fraudfpga.registry import Step, register
from fraudfpga.schema import register_check
from fraudfpga.runfolder import RunFolder, atomic_path, write_json

from .artifacts import (IMPORTED_CHECK, IMPORTED_CONIFER, IMPORTED_CONTRACT, IMPORTED_FIXED,
                        IMPORTED_HLS_CONFIG, IMPORTED_HLS_PROJECT,
                        IMPORTED_GOLDEN, IMPORTED_METRICS, IMPORTED_REFERENCE)
from .forest import SCORE_SENSES, FixedForest, score_type, sum_bound
from .forest_flow import emulation_matches_reference, golden_vectors, write_golden
from .imported_models import ImportError_, RawEnsemble, read_model
from .imported_networks import RawNetwork
from .input_contract import (InputContract, check_finite, fit_contract, raw_leaf_values,
                             thresholds_per_input, to_code_space)

GOLDEN_MODEL = "conifer C++ emulation (conifer.h, ap_fixed) of imported/conifer"
NETWORK_GOLDEN_MODEL = "hls4ml C simulation (g++, ap_types) of imported/hls_project"
GOLDEN_SHORT = {"forest": "conifer emulation", "network": "hls4ml C simulation"}  # for labels


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
    """Read the model file, match its inputs to the data's columns, and make its firmware with
    the generator of its kind (`BUILDERS`: a tree ensemble or a network)."""
    from fraudfpga.models.dataset import PreparedData

    settings = cfg["imported"]
    if not settings["model"]:
        raise ImportError_("imported.model: no model file named (set imported.model=PATH)")
    model = read_model(settings["model"])
    data = PreparedData(run.root)
    names = match_features(model, data.scaler.features)
    parts = ("train", "valid", "delay", "test") if "delay" in data.parts else ("train", "valid", "test")
    raw = {p: data.parts[p][names].to_numpy(np.float64) for p in parts}
    for p in parts:  # NaN and infinities refused naming the file, column and row
        check_finite(raw[p], names, f"{run.path(SPLIT_FILES[p])}")
    library = {p: model.library_output(raw[p]) for p in parts if p != "train"}
    BUILDERS[model.firmware](run, cfg, model, data, raw, library, names, progress)


def evaluate_against_library(data, firmware_scores: dict, library_scores: dict, cfg) -> dict:
    """Operating points, test metrics and AP of the firmware and of the library on the same
    split, and the test decisions that differ at the firmware's operating point."""
    from fraudfpga.models.metrics import average_precision, evaluate
    from fraudfpga.models.operating import operating_point

    labels = {p: data.labels(p) for p in library_scores}
    target_fpr, top_k = cfg["evaluation"]["target_fpr"], cfg["evaluation"]["top_k"]
    operating = operating_point(labels["valid"], firmware_scores["valid"], target_fpr,
                                firmware_scores.get("delay"))
    library_operating = operating_point(labels["valid"], library_scores["valid"], target_fpr,
                                        library_scores.get("delay"))
    day, card = data.column("test", "day"), data.column("test", "card")
    threshold = operating["threshold"]
    ap = {"firmware": average_precision(labels["test"], firmware_scores["test"]),
          "library": average_precision(labels["test"], library_scores["test"])}
    return {
        "firmware": evaluate(labels["test"], firmware_scores["test"], threshold, day, card, top_k),
        "library": evaluate(labels["test"], library_scores["test"],
                            library_operating["threshold"], day, card, top_k),
        "operating": {"imported_firmware": operating, "imported_library": library_operating},
        "flipped": int(np.sum((firmware_scores["test"] > threshold)
                              != (library_scores["test"] > threshold))),
        "average_precision": ap | {"change": ap["firmware"] - ap["library"]}}


def write_results(run: RunFolder, model, names: list[str], contract: InputContract,
                  contract_extra: dict, fixed, check: dict, golden: dict, evaluation: dict,
                  golden_model: str) -> None:
    """The files every imported firmware hands on: contract (+ its reference function), the
    fixed-point model (tagged with its generator), golden vectors, checks and metrics."""
    write_json(run.path(IMPORTED_CONTRACT), contract.to_dict() | {
        "model": str(model.path), "kind": model.kind, **contract_extra,
        "missing_values": "refused: the host imputes NaN before scoring; the firmware has no "
                          "default direction"})
    write_reference(run.path(IMPORTED_REFERENCE))
    write_json(run.path(IMPORTED_CHECK), {"golden_model": golden_model, **check})
    write_json(run.path(IMPORTED_FIXED), {"generator": model.firmware, **fixed.to_dict()})
    write_golden(run.path(IMPORTED_GOLDEN), golden)
    write_json(run.path(IMPORTED_METRICS), {
        "imported_firmware": evaluation["firmware"], "imported_library": evaluation["library"],
        "operating": evaluation["operating"],
        "model": {"path": str(model.path), "kind": model.kind, "library": model.library,
                  "features": names, "generator": model.firmware},
        "labels": {"imported_firmware": f"your model's firmware ({model.kind}, "
                                        f"{GOLDEN_SHORT[model.firmware]})",
                   "imported_library": f"your model ({model.library})"}})


def load_fixed(path):
    """The imported firmware's fixed-point model and the generator it is for."""
    from fraudfpga.hls.network import FixedNetwork

    data = json.loads(Path(path).read_text())
    kind = data.pop("generator")
    return kind, {"forest": FixedForest, "network": FixedNetwork}[kind].from_dict(data)


def import_trees(run: RunFolder, cfg, model: RawEnsemble, data, raw: dict, library: dict,
                 names: list[str], progress=print) -> None:
    from .forest_csim import ConiferEmulation, build_library, write_project

    settings = cfg["imported"]
    progress(f"[imported] {model.path}: {model.kind}, {len(model.trees)} trees, "
             f"{model.split_count():,} splits, output: {model.score_sense} ({model.library})")
    check_reader(model, raw["test"], library["test"])
    contract = fit_contract(raw["train"], names, settings["input_bits"],
                            thresholds_per_input(model))
    codes = {p: contract.codes(raw[p]) for p in raw}
    code_space = to_code_space(model, contract)
    t_out = score_type(sum_bound(code_space.ensemble), settings["score_frac_bits"])
    forest = FixedForest.from_conifer(code_space.ensemble, contract.code_type, t_out,
                                      model.score_sense, str(model.path))
    project = run.path(IMPORTED_CONIFER)
    write_project(code_space.ensemble, contract.code_type, t_out, project)
    build_library(project, forest, progress)
    emulation = ConiferEmulation(project, forest)
    outputs = {p: emulation.run(codes[p]) for p in library}

    golden, checks = golden_vectors(forest, emulation, codes["test"], outputs["test"], cfg)

    sense = SCORE_SENSES[model.score_sense]
    firmware_value = t_out.to_float(outputs["test"][:, 0])
    library_value = library["test"]
    moved, unmoved_exact = path_changes(model, forest, raw["test"], codes["test"], outputs["test"])
    difference = np.abs(firmware_value - library_value)
    bound = (len(forest.trees) + 1) * t_out.lsb + library_tolerance(model, raw["test"])
    beyond = int(np.sum((difference > bound) & ~moved))
    evaluation = evaluate_against_library(
        data, {p: forest.fraud_scores(out) for p, out in outputs.items()},
        {p: sense.probability(values) for p, values in library.items()}, cfg)
    ap, flipped = evaluation["average_precision"], evaluation["flipped"]
    check = {
        "reference": "numpy integer reference of the code-space forest (imported/firmware_model.json)",
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
        "average_precision": ap,
        "decisions_flipped_at_operating_point": flipped,
        "forest": {"trees": len(forest.trees), "split_nodes": forest.nodes(),
                   "max_depth": forest.max_depth(), "comparators": len(forest.comparisons()),
                   "input_type": str(forest.input_type), "score_type": str(t_out)},
    }
    write_results(run, model, names, contract, {
        "thresholds": {"splits_decided_by_the_code_range": code_space.decided_by_range,
                       "collapsed_onto_one_code": code_space.collapsed},
        "saturated_test_rows": contract.saturated(raw["test"])}, forest, check, golden,
        evaluation, GOLDEN_MODEL)
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
             f"change {ap['change']:+.4f}); {flipped} decisions differ at the "
             f"operating point")
    if not emulation_matches_reference(checks):
        raise RuntimeError(f"conifer emulation and the integer reference disagree; see "
                           f"{run.path(IMPORTED_CHECK)}")
    if not unmoved_exact or beyond:
        raise RuntimeError(f"the firmware differs from {model.library} on rows whose path did not "
                           f"move ({beyond} beyond the bound); see {run.path(IMPORTED_CHECK)}")


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def check_network_reader(model: RawNetwork, x: np.ndarray, library_values: np.ndarray
                         ) -> np.ndarray:
    """The weights read from the file reproduce the library's own output (float32 arithmetic in
    the library: a relative tolerance of 1e-4 on the logit, in the model's output sense).
    Returns the logit of the rows in float64 (a QKeras model's own: it is converted as it is,
    with its quantizers, and the firmware is checked against it)."""
    if model.qkeras_model is not None:
        return library_values
    logit = model.logit(x)
    if model.score_sense == "fraud probability":
        ours, tolerance = _sigmoid(logit), 1e-5 + 1e-4 * (1 + np.abs(logit)) * 0.25
    else:
        ours, tolerance = logit, 1e-4 * (1 + np.abs(logit))
    refuse_if_beyond(model, "layers", ours, library_values, tolerance)
    return logit


def import_network(run: RunFolder, cfg, model: RawNetwork, data, raw: dict, library: dict,
                   names: list[str], progress=print) -> None:
    from .imported_network import float_firmware, network_golden, qkeras_firmware

    settings, hls_cfg = cfg["imported"], cfg["hls"]
    shape = " -> ".join(str(n) for n in [model.n_features, *(l.weight.shape[1] for l in model.layers)])
    progress(f"[imported] {model.path}: {model.kind}, "
             + (f"layers {shape}" if model.layers else "its quantizers kept")
             + f", output: {model.score_sense} ({model.library})")
    library_logit = check_network_reader(model, raw["test"], library["test"])
    project = run.path(IMPORTED_HLS_PROJECT)
    if model.qkeras_model is not None:
        contract, config, network, csim = qkeras_firmware(model, names, hls_cfg, project, progress)
    else:
        contract, config, network, csim = float_firmware(model, raw["train"], names, settings,
                                                         hls_cfg, project, progress)
    for layer in network.layers:
        progress(f"[imported] {layer.name}: {layer.weight_codes.shape[0]}x"
                 f"{layer.weight_codes.shape[1]} weights {layer.weight_type}, accum "
                 f"{layer.accum_type}, out {layer.output_type}")
    codes = {p: contract.codes(raw[p]) for p in library}
    outputs = {p: csim.run(c) for p, c in codes.items()}
    golden, checks = network_golden(network, csim, codes["test"], outputs["test"], cfg)
    as_probability = model.score_sense == "fraud probability"
    library_scores = {p: v if as_probability else _sigmoid(v) for p, v in library.items()}
    evaluation = evaluate_against_library(
        data, {p: network.fraud_scores(out) for p, out in outputs.items()}, library_scores, cfg)
    difference = np.abs(network.output_type.to_float(outputs["test"][:, 0]) - library_logit)
    saturated = contract.beyond_range(raw["test"]).any(axis=1)
    ap, flipped = evaluation["average_precision"], evaluation["flipped"]
    check = {
        "reference": "numpy integer reference from the hls4ml precisions "
                     "(imported/firmware_model.json)",
        **checks,
        "firmware_vs_library": {
            "library": model.library, "compared": "fraud logit", "rows": int(len(difference)),
            "max_difference": float(difference.max()),
            "max_difference_rows_not_saturated": float(difference[~saturated].max(initial=0.0)),
            "rows_with_a_saturated_input": int(saturated.sum()),
            "p99_difference": float(np.quantile(difference, 0.99)),
            "output_lsb": network.output_type.lsb,
            "why_not_identical": ("weights, biases and activations rounded to the types chosen "
                                  "from the data (no bound: what it costs is measured)"
                                  if model.layers else "QKeras rounds activations half to even, "
                                  f"the firmware with {hls_cfg['activation_rounding']}")},
        "average_precision": ap,
        "decisions_flipped_at_operating_point": flipped,
        "network": {"layers": [{"name": l.name, "shape": list(l.weight_codes.shape),
                                "weight_type": str(l.weight_type), "accum_type": str(l.accum_type),
                                "output_type": str(l.output_type)} for l in network.layers],
                    "input_type": str(network.input_type),
                    "output_type": str(network.output_type)},
    }
    write_json(run.path(IMPORTED_HLS_CONFIG), config)
    write_results(run, model, names, contract, {
        "firmware_input_type": str(network.input_type),
        "firmware_input": "the firmware reads each code as a value of its input type; the "
                          "contract's offset and scale are folded into the first layer",
        "saturated_test_rows": contract.saturated(raw["test"])}, network, check, golden,
        evaluation, NETWORK_GOLDEN_MODEL)
    progress(f"[imported] input contract: {contract.bits}-bit codes, firmware input type "
             f"{network.input_type}; saturated test values: "
             f"{contract.saturated(raw['test']) or 'none'}")
    progress(f"[imported] C simulation == integer reference: "
             f"{checks['test_set_vs_reference']['identical']:,}/"
             f"{checks['test_set_vs_reference']['vectors']:,} test, "
             f"{checks['random_vs_reference']['identical']:,}/"
             f"{checks['random_vs_reference']['vectors']:,} random and edge vectors")
    progress(f"[imported] firmware vs {model.library}: largest logit difference "
             f"{difference.max():.3g} ({difference[~saturated].max(initial=0.0):.3g} on the "
             f"{int((~saturated).sum()):,} rows with no saturated input; 99 % within "
             f"{np.quantile(difference, 0.99):.3g}); test AP "
             f"{ap['firmware']:.4f} (library {ap['library']:.4f}, change {ap['change']:+.4f}); "
             f"{flipped} decisions differ at the operating point")
    if not emulation_matches_reference(checks):
        raise RuntimeError(f"C simulation and the integer reference disagree; see "
                           f"{run.path(IMPORTED_CHECK)}")


BUILDERS = {"forest": import_trees, "network": import_network}


def check_reader(model: RawEnsemble, x: np.ndarray, library_values: np.ndarray) -> None:
    """The node arrays read from the file reproduce the library's own output on the data
    (`library_values`: the library's output for the rows `x`)."""
    refuse_if_beyond(model, "trees", model.raw_sum(x), library_values,
                     library_tolerance(model, x))


def refuse_if_beyond(model, what: str, ours: np.ndarray, library_values: np.ndarray,
                     tolerance: np.ndarray) -> None:
    """Refuse the file when the model as read (`what`: its trees or layers) gives other outputs
    than the library beyond `tolerance` on some row, naming the worst row."""
    difference = np.abs(ours - library_values)
    worst = int(np.argmax(difference - tolerance))
    if difference[worst] > tolerance[worst]:
        raise ImportError_(f"{model.path}: the {what} read from the file give {ours[worst]:.9g} "
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
    help="read your own trained model (imported.model: an XGBoost, LightGBM, scikit-learn or "
         "ONNX tree ensemble; a Keras/QKeras or ONNX network), fit its input contract, make its "
         "golden model (conifer's C++ emulation, or hls4ml's C simulation) and check it against "
         "the library's own predictions",
    reads=("seed", "imported", "evaluation", "hls.random_vectors", "forest.edge_seed",
           "hls.backend", "hls.io_type", "hls.strategy", "hls.reuse_factor", "hls.part",
           "hls.clock_period_ns", "hls.activation_rounding"),
    inputs=(*SPLIT_FILES.values(), SCALER, DATA_SUMMARY),
    outputs=(IMPORTED_FIXED, IMPORTED_GOLDEN, IMPORTED_CONTRACT, IMPORTED_REFERENCE,
             IMPORTED_CHECK, IMPORTED_METRICS),
    body=import_model, external_inputs=_model_file,
    code=("fraudfpga.hls.imported_flow", "fraudfpga.hls.imported_models",
          "fraudfpga.hls.imported_networks", "fraudfpga.hls.imported_network",
          "fraudfpga.hls.input_contract", "fraudfpga.hls.input_contract_reference",
          "fraudfpga.hls.forest", "fraudfpga.hls.forest_csim", "fraudfpga.hls.forest_flow",
          "fraudfpga.hls.fixed", "fraudfpga.hls.flow", "fraudfpga.hls.network",
          "fraudfpga.hls.convert", "fraudfpga.hls.csim", "fraudfpga.hls.templates",
          "fraudfpga.models"),
    family="imported"))
