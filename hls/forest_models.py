"""The tree ensembles the forest firmware takes (`forest.model`), one entry each: how to fit it on
the input grid, which conifer converter reads it, what its firmware output means, the float value
that output approximates (and by how much it may differ), and how the serving back ends and
TreeSHAP take it. The rest of the flow (conversion, golden model, RTL, verification, P&R,
serving, quality, explanations) does not know which one it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .forest import FixedForest, ForestConversionError


@dataclass(frozen=True)
class ForestModel:
    name: str  # the value of forest.model
    label: str  # how the report names the model
    estimator: str  # the class name of the fitted model
    converter: str  # conifer's converter
    score_sense: str  # FixedForest.score_sense of its firmware
    fit: Callable[[np.ndarray, np.ndarray, dict, int], Any]  # (x, y, forest cfg, seed) -> model
    check: Callable[[Any, str], None]  # refuses a fitted model the firmware cannot take
    # (model, x) -> the float value the firmware's output approximates, and the largest
    # difference the firmware's arithmetic explains (with why)
    float_output: Callable[[Any, np.ndarray], np.ndarray]
    tolerance: Callable[[FixedForest], tuple[float, str]]
    # the largest rounding of the library's own float scores (float32 sums), for checks that
    # compare exact sums with them
    float_rounding: Callable[[FixedForest], float]
    to_onnx: Callable[[Any], Any]  # the model as an ONNX tree-ensemble graph (probabilities out)
    to_treelite: Callable[[Any], Any]  # the model as a Treelite model
    # what reason codes explain: TreeSHAP's model_output and the same score from the model
    # (the firmware's counterpart is `ScoreSense.fraud_linear` of its output)
    shap_output: str
    explained_scores: Callable[[Any, np.ndarray], np.ndarray]
    describe: Callable[[dict], str]  # the forest settings it reads, as the progress line says them


FOREST_MODELS: dict[str, ForestModel] = {}


def register(model: ForestModel) -> ForestModel:
    FOREST_MODELS[model.name] = model
    return model


def forest_model(name: str) -> ForestModel:
    return FOREST_MODELS[name]


def check_model(model, name: str = "forest") -> ForestModel:
    """The entry that takes `model`, or a refusal naming the model and what is supported."""
    kind = type(model).__name__
    entry = next((m for m in FOREST_MODELS.values() if m.estimator == kind), None)
    if entry is None:
        supported = ", ".join(f"{m.estimator} ({m.name})" for m in FOREST_MODELS.values())
        raise ForestConversionError(f"{name}: {kind} is not supported by the forest firmware; "
                                    f"supported (binary): {supported}")
    if getattr(model, "n_classes_", 2) != 2 or getattr(model, "n_outputs_", 1) != 1:
        raise ForestConversionError(f"{name}: {model.n_classes_} classes; the forest firmware "
                                    "scores binary models (fraud / genuine)")
    entry.check(model, name)
    return entry


def _no_check(model, name: str) -> None:
    pass


def _fit_random_forest(x, y, cfg: dict, seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=cfg["trees"], max_depth=cfg["max_depth"],
        min_samples_leaf=cfg["min_samples_leaf"], max_features=cfg["max_features"],
        random_state=seed, n_jobs=-1).fit(x, y)


def _skl2onnx(model):
    import skl2onnx

    return skl2onnx.to_onnx(model, np.zeros((1, model.n_features_in_), np.float32),
                            options={id(model): {"zipmap": False}}, target_opset=17)


def _treelite_sklearn(model):
    import treelite

    return treelite.sklearn.import_model(model)


register(ForestModel(
    name="random_forest", label="random forest", estimator="RandomForestClassifier",
    converter="sklearn", score_sense="genuine probability", fit=_fit_random_forest,
    check=_no_check,
    float_output=lambda model, x: model.predict_proba(x)[:, 0],
    tolerance=lambda forest: (len(forest.trees) * forest.output_type.lsb,
                              "each leaf value is truncated to the score type (at most one LSB "
                              "per tree)"),
    float_rounding=lambda forest: 0.0,  # scikit-learn averages in float64
    to_onnx=_skl2onnx, to_treelite=_treelite_sklearn, shap_output="probability",
    explained_scores=lambda model, x: model.predict_proba(x)[:, 1],
    describe=lambda cfg: (f"random forest, {cfg['trees']} trees, depth <= {cfg['max_depth']}, "
                          f"leaf >= {cfg['min_samples_leaf']}, max_features "
                          f"{cfg['max_features']}")))


def _fit_xgboost(x, y, cfg: dict, seed: int):
    import xgboost

    boosting = cfg["boosting"]
    return xgboost.XGBClassifier(
        n_estimators=cfg["trees"], max_depth=cfg["max_depth"], tree_method="hist",
        learning_rate=boosting["learning_rate"], min_child_weight=boosting["min_child_weight"],
        subsample=boosting["subsample"], colsample_bytree=boosting["colsample_bytree"],
        reg_lambda=boosting["reg_lambda"], scale_pos_weight=boosting["scale_pos_weight"],
        objective="binary:logistic", random_state=seed, n_jobs=-1).fit(x, y)


def _check_xgboost(model, name: str) -> None:
    objective = model.get_params().get("objective")
    if objective != "binary:logistic":
        raise ForestConversionError(f"{name}: XGBoost objective {objective!r}; the forest "
                                    "firmware takes binary:logistic")


def _float32_sum_rounding(forest: FixedForest) -> float:
    """XGBoost sums its margins in float32: each addition rounds by at most half an ulp of a
    partial sum, which the score type bounds."""
    return len(forest.trees) * float(forest.output_type.max_code * forest.output_type.lsb) * 2.0 ** -24


def _xgboost_tolerance(forest: FixedForest) -> tuple[float, str]:
    """Leaf values and the base score truncated (one LSB each), and XGBoost's own float32 sum."""
    return ((len(forest.trees) + 1) * forest.output_type.lsb + _float32_sum_rounding(forest),
            "each leaf value and the base score are truncated to the score type (one LSB each), "
            "and XGBoost sums its margins in float32 (half an ulp of a partial sum per tree)")


def _onnxmltools(model):
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    # onnxmltools' XGBoost converter picks its own opsets (it refuses opset 17)
    return onnxmltools.convert_xgboost(
        model, initial_types=[("input", FloatTensorType([None, model.n_features_in_]))])


def _treelite_xgboost(model):
    import treelite

    return treelite.frontend.from_xgboost(model.get_booster())


register(ForestModel(
    name="xgboost", label="boosted trees (XGBoost)", estimator="XGBClassifier",
    converter="xgboost", score_sense="fraud margin", fit=_fit_xgboost, check=_check_xgboost,
    float_output=lambda model, x: model.predict(x, output_margin=True).astype(np.float64),
    tolerance=_xgboost_tolerance, float_rounding=_float32_sum_rounding, to_onnx=_onnxmltools,
    to_treelite=_treelite_xgboost,
    # the margin (log-odds), TreeSHAP's own output for XGBoost: through the sigmoid every
    # feature interacts, and the permutation check of the firmware could not resolve the values
    shap_output="raw",
    explained_scores=lambda model, x: model.predict(x, output_margin=True).astype(np.float64),
    describe=lambda cfg: (f"XGBoost, {cfg['trees']} trees, depth <= {cfg['max_depth']}, "
                          f"learning rate {cfg['boosting']['learning_rate']:g}, min child weight "
                          f"{cfg['boosting']['min_child_weight']:g}")))
