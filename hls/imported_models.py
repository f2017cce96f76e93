"""Front ends for a team's own tree ensemble (`imported.model`): one reader per file kind, each
returning the same `RawEnsemble` (the trees as node arrays over the model's raw inputs), as
conifer's converters each return the same ensemble dictionary.

Readers: an XGBoost booster (JSON, UBJSON, or a pickled `XGBClassifier`/`Booster`), a
scikit-learn `RandomForestClassifier` / `ExtraTreesClassifier` / `GradientBoostingClassifier`
(joblib or pickle), a LightGBM model (its text format), an ONNX `TreeEnsembleClassifier` graph.
Each reads the trees itself (conifer has no converter for extra trees or LightGBM text, and its
XGBoost converter loses the split type and default direction), and keeps the library's own
prediction function so the firmware can be checked against it.

What the firmware cannot do is refused by name, never approximated: categorical splits, missing
values treated as zero (LightGBM `zero_as_missing`), linear leaves, more than two classes,
regression objectives, DART boosting. Missing values (NaN) are refused in the data by the input
contract, so a split's default direction never applies on the chip.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fraudfpga.errors import FlowError

LEAF = -2  # scikit-learn's and conifer's marker of a leaf's feature


class ImportError_(FlowError):
    """A model file the import cannot take; the message names the file and what is wrong."""


@dataclass
class RawTree:
    """One tree over raw input values. Node arrays: `feature` (LEAF for a leaf), `threshold`,
    `strict` (True: `x < threshold` goes left, else `x <= threshold`), `left`, `right`,
    `value` (the leaf's contribution to the sum; 0 at splits)."""

    feature: np.ndarray
    threshold: np.ndarray
    strict: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf node each row of `x` reaches."""
        rows = np.arange(x.shape[0])
        node = np.zeros(x.shape[0], dtype=np.int64)
        active = self.feature[node] != LEAF
        while active.any():
            at = node[active]
            value, threshold = x[rows[active], self.feature[at]], self.threshold[at]
            goes_left = np.where(self.strict[at], value < threshold, value <= threshold)
            node[active] = np.where(goes_left, self.left[at], self.right[at])
            active = self.feature[node] != LEAF
        return node


@dataclass
class RawEnsemble:
    """What every reader returns. The sum of `init` and one leaf value per tree is the model's
    output in `score_sense` ("fraud margin": the log-odds of fraud; "fraud probability")."""

    firmware: ClassVar[str] = "forest"  # which generator makes its firmware

    path: Path
    kind: str  # what the file was read as, for the progress line and the report
    library: str  # the library and version that made the predictions compared against
    n_features: int
    feature_names: list[str] | None
    trees: list[RawTree]
    init: float
    score_sense: str
    # rows of raw values -> the library's own output in score_sense (float64)
    library_output: Callable[[np.ndarray], np.ndarray]
    # the precision the library compares inputs in: float32 (XGBoost, scikit-learn, ONNX
    # Runtime) or float64 (LightGBM)
    input_dtype: type = np.float64
    # the model as an ONNX graph (TreeEnsembleClassifier, probabilities out) for ONNX Runtime
    to_onnx: Callable[[], Any] | None = None

    def raw_sum(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's output computed from the node arrays, in float64, with the inputs in
        the library's own precision: equals the library's output up to its summation rounding
        (checked on import)."""
        x = np.asarray(x, dtype=self.input_dtype)
        return self.init + sum(tree.value[tree.leaves(x)] for tree in self.trees)

    def split_count(self) -> int:
        return int(sum((tree.feature != LEAF).sum() for tree in self.trees))


@dataclass(frozen=True)
class Reader:
    name: str
    label: str
    # (path, first bytes) -> whether this reader takes the file; checked in registration order
    detects: Callable[[Path, bytes], bool]
    read: Callable[[Path], RawEnsemble]


READERS: dict[str, Reader] = {}


def register(reader: Reader, first: bool = False) -> Reader:
    """Add a reader; `first`: asked before the others (a narrower test on the same suffix)."""
    if first:
        others = dict(READERS)
        READERS.clear()
        READERS.update({reader.name: reader, **others})
    else:
        READERS[reader.name] = reader
    return reader


def read_model(path: Path):
    """The model in `path` (a `RawEnsemble`, or a `RawNetwork` of `imported_networks`), read by
    the first reader that takes the file."""
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: imported.model names no file")
    head = path.read_bytes()[:512]
    if not head:
        raise ImportError_(f"{path}: the file is empty")
    reader = next((r for r in READERS.values() if r.detects(path, head)), None)
    if reader is None:
        kinds = "; ".join(r.label for r in READERS.values())
        raise ImportError_(f"{path}: not a model file the import reads (by its name and first "
                           f"bytes); it reads: {kinds}")
    try:
        return reader.read(path)
    except ImportError_:
        raise
    except Exception as error:  # a library's own message for a damaged file, with the file named
        raise ImportError_(f"{path}: could not be read as {reader.label}: "
                           f"{type(error).__name__}: {str(error).strip()[:300]}") from None


def _version(package: str) -> str:
    return f"{package} {metadata.version(package)}"


def _tree(feature, threshold, strict, left, right, value) -> RawTree:
    feature = np.asarray(feature, dtype=np.int64)
    split = feature != LEAF
    return RawTree(feature, np.where(split, np.asarray(threshold, dtype=np.float64), 0.0),
                   np.broadcast_to(np.asarray(strict, dtype=bool), feature.shape).copy(),
                   np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64),
                   np.where(split, 0.0, np.asarray(value, dtype=np.float64)))


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


# --- XGBoost -------------------------------------------------------------------------------

def _xgboost_binary(path: Path, booster, kind: str) -> RawEnsemble:
    import xgboost

    model = json.loads(booster.save_raw("json").decode())["learner"]
    objective = model["objective"]["name"]
    params = model["learner_model_param"]
    classes = int(params.get("num_class", "0") or 0)
    if classes > 2:
        raise ImportError_(f"{path}: an XGBoost model of {classes} classes; the firmware scores "
                           "binary models (fraud / genuine)")
    if objective not in ("binary:logistic", "binary:logitraw"):
        what = "a regression" if objective.startswith(("reg:", "count:", "survival:")) else "an"
        raise ImportError_(f"{path}: {what} XGBoost model (objective {objective}); the firmware "
                           "scores binary fraud models (binary:logistic or binary:logitraw)")
    booster_kind = model["gradient_booster"]["name"]
    if booster_kind != "gbtree":
        raise ImportError_(f"{path}: XGBoost booster {booster_kind!r}; the import takes gbtree "
                           "(dart weights its trees at prediction, gblinear has none)")
    base = [float(v) for v in str(params["base_score"]).strip("[]").split(",")]
    init = _logit(base[0]) if objective == "binary:logistic" else base[0]
    trees = []
    for index, tree in enumerate(model["gradient_booster"]["model"]["trees"]):
        if int(tree["tree_param"].get("size_leaf_vector", "1") or 1) > 1:
            raise ImportError_(f"{path}: tree {index} has vector leaves (multi-output trees)")
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            node = next(i for i, t in enumerate(tree["split_type"]) if int(t) != 0)
            raise ImportError_(f"{path}: tree {index} node {node} splits on categories (feature "
                               f"{tree['split_indices'][node]}); the firmware compares numbers "
                               "only: one-hot encode the category, or leave it out")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        leaf = left == -1
        # XGBoost keeps thresholds and leaves in float32 (JSON writes their shortest decimal)
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
        trees.append(_tree(np.where(leaf, LEAF, tree["split_indices"]), conditions, True,
                           left, tree["right_children"], np.where(leaf, conditions, 0.0)))
    names = list(booster.feature_names) if booster.feature_names else None

    def output(x: np.ndarray) -> np.ndarray:
        return booster.inplace_predict(np.asarray(x, dtype=np.float32),
                                       predict_type="margin").astype(np.float64)

    def to_onnx():
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        unnamed = booster.copy()  # onnxmltools reads features as f0, f1, ...
        unnamed.feature_names = None
        return onnxmltools.convert_xgboost(unnamed, initial_types=[(
            "input", FloatTensorType([None, int(params["num_feature"])]))])

    return RawEnsemble(path, kind, _version("xgboost"), int(params["num_feature"]), names,
                       trees, init, "fraud margin", output, np.float32, to_onnx)


def _read_xgboost_file(path: Path) -> RawEnsemble:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(path))
    kind = "XGBoost booster (UBJSON)" if path.suffix.lower() == ".ubj" else "XGBoost booster (JSON)"
    return _xgboost_binary(path, booster, kind)


def _looks_like_xgboost_json(path: Path, head: bytes) -> bool:
    if path.suffix.lower() == ".ubj":
        return True
    return path.suffix.lower() == ".json" and b'"learner"' in path.read_bytes()[:4096]


register(Reader("xgboost", "an XGBoost booster saved as JSON or UBJSON (.json, .ubj)",
                _looks_like_xgboost_json, _read_xgboost_file))


# --- pickled models: scikit-learn forests and XGBoost's scikit-learn classes ------------------

def _sklearn_trees(estimators, value_of) -> list[RawTree]:
    trees = []
    for estimator in estimators:
        tree = estimator.tree_
        leaf = tree.children_left == -1
        trees.append(_tree(np.where(leaf, LEAF, tree.feature), tree.threshold, False,
                           tree.children_left, tree.children_right,
                           np.where(leaf, value_of(tree.value), 0.0)))
    return trees


def _sklearn_forest(path: Path, model, kind: str) -> RawEnsemble:
    if len(model.classes_) != 2:
        raise ImportError_(f"{path}: a {type(model).__name__} of {len(model.classes_)} classes "
                           f"({list(model.classes_)}); the firmware scores binary models")
    n_trees = len(model.estimators_)
    if type(model).__name__ == "GradientBoostingClassifier":
        if model.loss != "log_loss":
            raise ImportError_(f"{path}: GradientBoostingClassifier with loss {model.loss!r}; the "
                               "import takes log_loss")
        rate = model.learning_rate
        trees = _sklearn_trees(model.estimators_[:, 0], lambda v: v[:, 0, 0] * rate)
        init = float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
        sense = "fraud margin"

        def output(x):
            return model.decision_function(np.asarray(x, dtype=np.float32)).astype(np.float64)
    else:
        # a leaf holds the class fractions of its training rows; the forest averages them
        trees = _sklearn_trees(model.estimators_, lambda v: v[:, 0, 1] / v[:, 0].sum(axis=1)
                               / n_trees)
        init, sense = 0.0, "fraud probability"

        def output(x):
            return model.predict_proba(np.asarray(x, dtype=np.float32))[:, 1].astype(np.float64)
    names = [str(n) for n in model.feature_names_in_] if hasattr(model, "feature_names_in_") \
        else None

    def to_onnx():
        import skl2onnx

        return skl2onnx.to_onnx(model, np.zeros((1, model.n_features_in_), np.float32),
                                options={id(model): {"zipmap": False}}, target_opset=17)

    return RawEnsemble(path, kind, _version("scikit-learn"), int(model.n_features_in_), names,
                       trees, init, sense, output, np.float32, to_onnx)


SKLEARN_FORESTS = ("RandomForestClassifier", "ExtraTreesClassifier", "GradientBoostingClassifier")


def _read_pickle(path: Path) -> RawEnsemble:
    import joblib

    model = joblib.load(path)
    name = type(model).__name__
    if name in SKLEARN_FORESTS:
        return _sklearn_forest(path, model, f"scikit-learn {name} (pickled)")
    if name in ("XGBClassifier", "Booster") and type(model).__module__.startswith("xgboost"):
        booster = model.get_booster() if name == "XGBClassifier" else model
        return _xgboost_binary(path, booster, f"XGBoost {name} (pickled)")
    if name.endswith("Regressor"):
        raise ImportError_(f"{path}: a regression model ({type(model).__module__}.{name}); the "
                           "firmware scores binary fraud models (a classifier)")
    raise ImportError_(f"{path}: holds a {type(model).__module__}.{name}, not a model the import "
                       f"takes (pickled: {', '.join(SKLEARN_FORESTS)}, XGBClassifier)")


def _is_pickle(path: Path, head: bytes) -> bool:
    # pickle protocol 2+ starts with PROTO (0x80); joblib may compress (zlib 0x78, gzip 0x1f8b)
    return head[:1] == b"\x80" or path.suffix.lower() in (".joblib", ".pkl", ".pickle")


register(Reader("pickle", "a pickled scikit-learn forest or XGBClassifier (.joblib, .pkl)",
                _is_pickle, _read_pickle))


# --- LightGBM text ---------------------------------------------------------------------------

def _lightgbm_fields(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line)


def _read_lightgbm(path: Path) -> RawEnsemble:
    text = path.read_text(errors="replace")
    if "end of trees" not in text:
        raise ImportError_(f"{path}: a LightGBM model file without its 'end of trees' line "
                           "(truncated?)")
    header, *blocks = re.split(r"\n(?=Tree=\d+\n)", text.split("end of trees")[0])
    params = _lightgbm_fields(header)
    objective = params.get("objective", "").split()
    if int(params.get("num_class", "1")) != 1 or int(params.get("num_tree_per_iteration", "1")) != 1:
        raise ImportError_(f"{path}: a LightGBM model of {params.get('num_class')} classes; the "
                           "firmware scores binary models")
    if not objective or objective[0] not in ("binary", "cross_entropy"):
        what = "a regression" if objective and objective[0] in (
            "regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape",
            "gamma", "tweedie") else "a"
        raise ImportError_(f"{path}: {what} LightGBM model (objective "
                           f"{' '.join(objective) or 'missing'}); the firmware scores binary "
                           "fraud models (objective binary)")
    sigmoid = next((float(p.split(":")[1]) for p in objective if p.startswith("sigmoid:")), 1.0)
    if sigmoid != 1.0:
        raise ImportError_(f"{path}: LightGBM sigmoid:{sigmoid:g}; the import takes sigmoid:1 "
                           "(the margin is then the log-odds)")
    average = "average_output" in header.splitlines()
    n_features = int(params["max_feature_idx"]) + 1
    names = params["feature_names"].split() if "feature_names" in params else None
    trees = []
    for block in blocks:
        fields = _lightgbm_fields(block)
        index = int(fields["Tree"])
        if int(fields.get("num_cat", "0")) > 0:
            raise ImportError_(f"{path}: tree {index} splits on categories "
                               f"({fields['num_cat']} categorical splits); the firmware compares "
                               "numbers only: one-hot encode the category, or leave it out")
        if int(fields.get("is_linear", "0")):
            raise ImportError_(f"{path}: tree {index} has linear leaves (linear_tree); the "
                               "firmware adds constants")
        leaf_values = np.array(fields["leaf_value"].split(), dtype=np.float64)
        if average:
            leaf_values = leaf_values / len(blocks)
        if int(fields["num_leaves"]) == 1:
            trees.append(_tree([LEAF], [0.0], False, [-1], [-1], leaf_values[:1]))
            continue
        decision = np.array(fields["decision_type"].split(), dtype=np.int64)
        if (decision & 1).any():
            node = int(np.flatnonzero(decision & 1)[0])
            raise ImportError_(f"{path}: tree {index} node {node} splits on categories")
        zero_missing = ((decision >> 2) & 3) == 1
        if zero_missing.any():
            node = int(np.flatnonzero(zero_missing)[0])
            raise ImportError_(f"{path}: tree {index} node {node} treats zero as missing "
                               "(zero_as_missing): a zero would follow the default direction, "
                               "not the threshold; retrain with zero_as_missing=false")
        splits = len(decision)
        # internal nodes 0..splits-1, then the leaves; LightGBM writes a leaf child as ~leaf
        child = lambda c: np.where(c >= 0, c, splits + ~c)  # noqa: E731
        left = child(np.array(fields["left_child"].split(), dtype=np.int64))
        right = child(np.array(fields["right_child"].split(), dtype=np.int64))
        feature = np.concatenate([np.array(fields["split_feature"].split(), dtype=np.int64),
                                  np.full(len(leaf_values), LEAF)])
        threshold = np.concatenate([np.array(fields["threshold"].split(), dtype=np.float64),
                                    np.zeros(len(leaf_values))])
        value = np.concatenate([np.zeros(splits), leaf_values])
        trees.append(_tree(feature, threshold, False, np.concatenate([left, -np.ones(len(
            leaf_values), np.int64)]), np.concatenate([right, -np.ones(len(leaf_values),
                                                                        np.int64)]), value))

    @cache
    def booster():
        import lightgbm

        return lightgbm.Booster(model_file=str(path))

    def output(x):
        return booster().predict(np.asarray(x, dtype=np.float64), raw_score=True).astype(np.float64)

    def to_onnx():
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        return onnxmltools.convert_lightgbm(booster(), initial_types=[(
            "input", FloatTensorType([None, n_features]))], zipmap=False)

    return RawEnsemble(path, "LightGBM model (text)", _lightgbm_version(), n_features, names,
                       trees, 0.0, "fraud margin", output, np.float64, to_onnx)


def _lightgbm_version() -> str:
    try:
        return _version("lightgbm")
    except metadata.PackageNotFoundError:
        return "lightgbm (not installed: the library's own predictions are not available)"


register(Reader("lightgbm", "a LightGBM model in its text format (save_model)",
                lambda path, head: head.startswith(b"tree\n") or b"\nversion=v" in head[:64],
                _read_lightgbm))


# --- ONNX TreeEnsembleClassifier -------------------------------------------------------------

def _read_onnx(path: Path) -> RawEnsemble:
    import onnx
    from onnx import helper

    graph = onnx.load(str(path)).graph
    others = sorted({n.op_type for n in graph.node} - {"TreeEnsembleClassifier", "ZipMap",
                                                        "Identity", "Cast"})
    ensembles = [n for n in graph.node if n.op_type == "TreeEnsembleClassifier"]
    if others or len(ensembles) != 1:
        found = ", ".join(others) or "no TreeEnsembleClassifier"
        raise ImportError_(f"{path}: the import takes an ONNX graph of one TreeEnsembleClassifier "
                           f"(with ZipMap, Identity, Cast around it); this graph has {found}")
    node = ensembles[0]
    a = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
    labels = list(a.get("classlabels_int64s", [])) or list(a.get("classlabels_strings", []))
    if len(labels) != 2:
        raise ImportError_(f"{path}: a TreeEnsembleClassifier of {len(labels)} classes; the "
                           "firmware scores binary models")
    post = a.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else post
    modes = [m.decode() if isinstance(m, bytes) else m for m in a["nodes_modes"]]
    unsupported = sorted(set(modes) - {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                       "LEAF"})
    if unsupported:
        raise ImportError_(f"{path}: node mode(s) {', '.join(unsupported)}; the firmware compares "
                           "with <, <=, >, >=")
    class_ids = np.asarray(a["class_ids"])
    weights = np.asarray(a["class_weights"], dtype=np.float64)
    base = list(a.get("base_values", [0.0, 0.0])) or [0.0, 0.0]
    ids = set(class_ids.tolist())
    if ids == {0, 1} and post == "NONE":
        sense, keep, init = "fraud probability", class_ids == 1, float(base[-1])
    elif ids == {0} and post == "NONE":  # ONNX Runtime's binary case: the weights are class 1's
        sense, keep, init = "fraud probability", class_ids == 0, float(base[0])
    elif len(ids) == 1 and post == "LOGISTIC":
        sense, keep, init = "fraud margin", np.ones(len(class_ids), bool), float(base[0])
    else:
        raise ImportError_(f"{path}: class weights for classes {sorted(ids)} "
                           f"with post_transform {post}; the import takes probabilities "
                           "(both classes, NONE) or one margin (LOGISTIC)")
    tree_ids, node_ids = np.asarray(a["nodes_treeids"]), np.asarray(a["nodes_nodeids"])
    trees = []
    for tree_id in np.unique(tree_ids):
        mine = np.flatnonzero(tree_ids == tree_id)
        position = {int(node_ids[i]): k for k, i in enumerate(mine)}
        feature, threshold, strict, left, right = [], [], [], [], []
        for i in mine:
            mode = modes[i]
            true_, false_ = (position[int(a["nodes_truenodeids"][i])],
                             position[int(a["nodes_falsenodeids"][i])]) if mode != "LEAF" else (-1, -1)
            if mode in ("BRANCH_GTE", "BRANCH_GT"):  # x >= t is true <=> x < t is false
                true_, false_ = false_, true_
            feature.append(LEAF if mode == "LEAF" else int(a["nodes_featureids"][i]))
            threshold.append(float(a["nodes_values"][i]))
            strict.append(mode in ("BRANCH_LT", "BRANCH_GTE"))
            left.append(true_)
            right.append(false_)
        value = np.zeros(len(mine))
        for w in np.flatnonzero((np.asarray(a["class_treeids"]) == tree_id) & keep):
            value[position[int(a["class_nodeids"][w])]] += weights[w]
        trees.append(_tree(feature, threshold, strict, left, right, value))
    n_features = int(graph.input[0].type.tensor_type.shape.dim[1].dim_value or
                     1 + max(int(f) for f in a["nodes_featureids"]))

    @cache
    def session():
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def output(x):
        result = session().run(None, {session().get_inputs()[0].name: np.asarray(x, np.float32)})
        probabilities = result[-1]
        if isinstance(probabilities, list):  # ZipMap: one dict per row
            probabilities = np.array([[row[k] for k in sorted(row)] for row in probabilities])
        p = np.asarray(probabilities, dtype=np.float64)[:, 1]
        return p if sense == "fraud probability" else np.log(p) - np.log1p(-p)

    return RawEnsemble(path, "ONNX TreeEnsembleClassifier", _version("onnxruntime"), n_features,
                       None, trees, init, sense, output, np.float32, lambda: onnx.load(str(path)))


def _is_onnx(path: Path, head: bytes) -> bool:
    return path.suffix.lower() == ".onnx"


register(Reader("onnx", "an ONNX graph of one TreeEnsembleClassifier (.onnx)", _is_onnx,
                _read_onnx))


from . import imported_networks  # noqa: E402,F401  (registers the network readers)
