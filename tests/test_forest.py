"""The forest firmware: conifer's C++ emulation equals the integer reference on random, edge and
threshold vectors; the forest RTL equals the emulation in cocotb (and a broken comparator is
caught); models the converter cannot take are refused by name."""

import json
import re

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from fraudfpga.hls import forest_csim
from fraudfpga.hls.flow import edge_vectors
from fraudfpga.hls.forest import (FixedForest, ForestConversionError, input_type, score_type,
                                  snap_thresholds, threshold_vectors)
from fraudfpga.hls.forest_models import check_model
from fraudfpga.sim.forest_rtl import ForestPipeline, generate_forest_rtl
from fraudfpga.sim.runner import build, simulate

IN = input_type(6, 3)
OUT = score_type(1.0, 12)


def grid_data(seed=0, rows=3000, features=5):
    rng = np.random.default_rng(seed)
    x = IN.to_float(IN.codes_from_float(rng.normal(size=(rows, features)) * 1.5))
    y = ((x[:, 0] + 0.7 * x[:, 2] - 0.5 * x[:, 4] + rng.normal(scale=0.5, size=rows)) > 1.5)
    return x, y.astype(int)


def converted(tmp_path, depth=5, trees=7, seed=0):
    x, y = grid_data(seed)
    model = RandomForestClassifier(n_estimators=trees, max_depth=depth, min_samples_leaf=3,
                                   random_state=seed).fit(x, y)
    project = tmp_path / "conifer"
    ensemble, out_type, sense = forest_csim.convert(model, IN, OUT.frac)
    assert out_type == OUT and sense == "genuine probability"
    forest_csim.write_project(ensemble, IN, OUT, project)
    forest = FixedForest.from_conifer(ensemble, IN, OUT, sense)
    forest_csim.build_library(project, forest, progress=lambda _: None)
    return model, forest, forest_csim.ConiferEmulation(project, forest)


def vectors(forest, count=300, seed=1):
    rng = np.random.default_rng(seed)
    uniform = rng.integers(IN.min_code, IN.max_code + 1, (count, forest.n_inputs))
    return np.concatenate([edge_vectors(forest), threshold_vectors(forest, seed), uniform])


@pytest.fixture(scope="module")
def small_forest(tmp_path_factory):
    return converted(tmp_path_factory.mktemp("forest"))


def test_emulation_equals_the_integer_reference_and_the_forest(small_forest):
    model, forest, emulation = small_forest
    codes = vectors(forest)
    golden = emulation.run(codes)
    np.testing.assert_array_equal(golden, forest.forward(codes))
    assert len(forest.comparisons()) * 3 <= len(codes)
    # conifer keeps class 0's probability / trees, each leaf truncated to the score type.
    genuine = model.predict_proba(IN.to_float(codes))[:, 0]
    difference = genuine - OUT.to_float(golden[:, 0])
    assert (difference >= -1e-12).all() and difference.max() <= len(forest.trees) * OUT.lsb
    assert np.corrcoef(forest.fraud_scores(golden), model.predict_proba(IN.to_float(codes))[:, 1])[0, 1] > 0.999


def test_the_emulation_is_compiled_once_per_types_and_reused_by_other_forests(tmp_path,
                                                                            monkeypatch):
    """The library reads its forest from JSON: a second forest of the same types reuses the
    first one's library (no compile) and still equals its own reference; other types compile."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiles = []
    compile_for_real = forest_csim._compile

    def counting(command):
        compiles.extend([command] if "-shared" in command else [])
        return compile_for_real(command)

    monkeypatch.setattr(forest_csim, "_compile", counting)
    _, first, _ = converted(tmp_path / "a", depth=4, trees=5, seed=0)
    _, second, emulation = converted(tmp_path / "b", depth=6, trees=9, seed=2)
    assert len(compiles) == 1 and second.trees != first.trees
    codes = vectors(second)
    np.testing.assert_array_equal(emulation.run(codes), second.forward(codes))
    wider = FixedForest(second.n_inputs, second.input_type, score_type(1.0, OUT.frac + 2),
                        second.trees, second.score_sense)
    forest_csim.build_library(tmp_path / "b" / "conifer", wider, progress=lambda _: None)
    assert len(compiles) == 2


def test_threshold_vectors_sit_at_every_threshold_and_one_step_either_side(small_forest):
    _, forest, _ = small_forest
    rows = threshold_vectors(forest, seed=3)
    for i, (feature, threshold) in enumerate(forest.comparisons()):
        expected = np.clip([threshold - 1, threshold, threshold + 1], IN.min_code, IN.max_code)
        np.testing.assert_array_equal(rows[3 * i:3 * i + 3, feature], expected)


def test_forest_rtl_equals_the_emulation_in_cocotb_and_a_wrong_comparator_is_caught(tmp_path, small_forest):
    _, forest, emulation = small_forest
    codes = vectors(forest, count=200)
    golden = emulation.run(codes)
    pipeline = ForestPipeline(tree_stages=2, adder_levels=1, fanout_trees=3)
    meta = generate_forest_rtl(forest, tmp_path / "rtl", pipeline, 100.0, 16,
                               progress=lambda _: None)
    assert "fraud_forest_fanout" in (tmp_path / "rtl" / "fraud_forest_core.v").read_text()
    assert meta["forest"]["comparators"] == len(forest.comparisons())
    build(tmp_path / "rtl", meta, "verilator", tmp_path / "build", progress=lambda _: None,
          vectors=len(codes))
    result = simulate(tmp_path / "rtl", meta, codes, golden, "verilator", tmp_path / "build",
                      tmp_path / "work", progress=lambda _: None)
    assert result["mismatch_count"] == 0 and result["testbench_failures"] == 0
    assert result["outputs"] == len(codes)
    assert result["latency_cycles_data"] == meta["latency_cycles"]
    assert result["initiation_interval_cycles"] == 1.0

    broken = FixedForest.from_conifer(json.loads(json.dumps(_ensemble(forest))), IN, OUT)
    feature, threshold = forest.comparisons()[0]
    for tree in broken.trees:
        tree["threshold"] = [t + 1 if (f, t) == (feature, threshold) else t
                             for f, t in zip(tree["feature"], tree["threshold"])]
    broken_meta = generate_forest_rtl(broken, tmp_path / "rtl_broken", ForestPipeline(), 100.0,
                                      16, progress=lambda _: None)
    build(tmp_path / "rtl_broken", broken_meta, "verilator", tmp_path / "build_broken",
          progress=lambda _: None, vectors=len(codes))
    caught = simulate(tmp_path / "rtl_broken", broken_meta, codes, golden, "verilator",
                      tmp_path / "build_broken", tmp_path / "work_broken", progress=lambda _: None)
    assert caught["mismatch_count"] > 0


def _ensemble(forest: FixedForest) -> dict:
    """conifer's dictionary form of an integer forest (codes back to values)."""
    return {"n_features": forest.n_inputs, "trees": [[{
        "feature": t["feature"], "threshold": [IN.to_float(c) + IN.lsb / 2 for c in t["threshold"]],
        "children_left": t["left"], "children_right": t["right"],
        "value": [OUT.to_float(v) for v in t["value"]]}] for t in forest.trees]}


def test_models_the_converter_cannot_take_are_refused_by_name(tmp_path):
    x, y = grid_data()
    with pytest.raises(ForestConversionError, match="GradientBoostingClassifier is not supported.*"
                                                    "XGBClassifier"):
        check_model(GradientBoostingClassifier(n_estimators=2).fit(x, y), "fraud forest")
    three = np.where(x[:, 1] > 1, 2, y)
    with pytest.raises(ForestConversionError, match="3 classes; the forest firmware scores binary"):
        check_model(RandomForestClassifier(n_estimators=2).fit(x, three))


def test_a_threshold_outside_the_input_type_names_tree_and_node(small_forest):
    _, forest, _ = small_forest
    ensemble = _ensemble(forest)
    tree = ensemble["trees"][3][0]
    node = next(i for i, f in enumerate(tree["feature"]) if f >= 0)
    tree["threshold"][node] = 9.5  # beyond fixed<6,3>'s largest value 3.875
    with pytest.raises(ForestConversionError, match=rf"tree 3 node {node}: threshold 9.5 .* "
                                                    "the split would move on the input grid"):
        FixedForest.from_conifer(ensemble, IN, OUT)


def test_score_type_holds_the_sum_of_every_tree():
    forest_type = score_type(1.0, 16)
    assert forest_type.max_code * forest_type.lsb >= 1.0
    assert str(forest_type) == "fixed<18,2,TRN,WRAP>"
    for bound in (2.0, 3.7, 9.0):  # enough integer bits, and no more
        wider = score_type(bound, 10)
        assert wider.max_code * wider.lsb >= bound and wider.min_code * wider.lsb <= -bound
        assert score_type(bound / 2, 10).integer == wider.integer - 1


@pytest.fixture(scope="module")
def boosted(tmp_path_factory):
    import xgboost

    x, y = grid_data(seed=2)
    model = xgboost.XGBClassifier(n_estimators=6, max_depth=3, learning_rate=0.5,
                                  tree_method="hist", random_state=0, n_jobs=1).fit(x, y)
    project = tmp_path_factory.mktemp("boosted") / "conifer"
    ensemble, out_type, sense = forest_csim.convert(model, IN, 10)
    forest_csim.write_project(ensemble, IN, out_type, project)
    forest = FixedForest.from_conifer(ensemble, IN, out_type, sense)
    forest_csim.build_library(project, forest, progress=lambda _: None)
    return model, forest, forest_csim.ConiferEmulation(project, forest)


def test_boosted_trees_emulation_equals_the_reference_and_xgboost_margins(boosted):
    """XGBoost's `x < t` splits, its base score and negative leaf margins: conifer's emulation
    equals the integer reference, and both equal XGBoost's own margins up to leaf truncation."""
    from fraudfpga.hls.forest_models import forest_model

    model, forest, emulation = boosted
    assert forest.score_sense == "fraud margin" and forest.output_type.integer > 2
    codes = vectors(forest)
    golden = emulation.run(codes)
    np.testing.assert_array_equal(golden, forest.forward(codes))
    margin = model.predict(IN.to_float(codes), output_margin=True).astype(np.float64)
    bound, _ = forest_model("xgboost").tolerance(forest)
    difference = np.abs(forest.output_type.to_float(golden[:, 0]) - margin)
    assert difference.max() <= bound and bound < 8 * forest.output_type.lsb
    assert (golden[:, 0] < 0).any() and (golden[:, 0] > 0).any()
    np.testing.assert_allclose(forest.fraud_scores(golden), model.predict_proba(IN.to_float(codes))[:, 1],
                               atol=bound)


def test_an_off_grid_strict_threshold_is_snapped_so_the_split_stays_where_it_was_trained():
    """conifer casts a threshold by truncation: `x < 0.3` on a grid of 1/8 would become
    `x < 0.25` and send code 2 (0.25) the other way; snapped to 0.375 it splits as trained."""
    ensemble = {"n_features": 1, "splitting_convention": "<", "init_predict": [0.0], "norm": 1,
                "trees": [[{"feature": [0, -2, -2], "threshold": [0.3, 0.0, 0.0],
                            "children_left": [1, -1, -1], "children_right": [2, -1, -1],
                            "value": [0.0, 1.0, -1.0]}]]}
    out = score_type(1.0, 8)
    grid = np.arange(IN.min_code, IN.max_code + 1)[:, None]
    trained = np.where(IN.to_float(grid[:, 0]) < 0.3, 1.0, -1.0)
    snapped = FixedForest.from_conifer(snap_thresholds(ensemble, IN), IN, out, "fraud margin")
    np.testing.assert_array_equal(out.to_float(snapped.forward(grid)[:, 0]), trained)
    cast = FixedForest.from_conifer(ensemble, IN, out, "fraud margin")
    moved = np.flatnonzero(out.to_float(cast.forward(grid)[:, 0]) != trained)
    np.testing.assert_array_equal(IN.to_float(grid[moved, 0]), [0.25])


def test_boosted_trees_rtl_equals_the_emulation_in_cocotb(tmp_path, boosted):
    """Signed leaf margins and the base score folded into the first tree, through the RTL."""
    _, forest, emulation = boosted
    codes = vectors(forest, count=200)
    golden = emulation.run(codes)
    meta = generate_forest_rtl(forest, tmp_path / "rtl", ForestPipeline(tree_stages=2), 100.0, 16,
                               progress=lambda _: None)
    build(tmp_path / "rtl", meta, "verilator", tmp_path / "build", progress=lambda _: None,
          vectors=len(codes))
    result = simulate(tmp_path / "rtl", meta, codes, golden, "verilator", tmp_path / "build",
                      tmp_path / "work", progress=lambda _: None)
    assert result["mismatch_count"] == 0 and result["outputs"] == len(codes)
    assert result["initiation_interval_cycles"] == 1.0


def test_boosted_trees_reason_codes_explain_the_margin_and_match_the_firmware(boosted):
    """TreeSHAP on XGBoost's margin adds up (within XGBoost's own float32 rounding) and agrees
    with the permutation values of the firmware's margin; on the probability it would not be
    the firmware's explained function."""
    from fraudfpga.hls.explain import shap_values
    from fraudfpga.hls.forest_explain import tree_shap
    from fraudfpga.hls.forest_models import check_model

    model, forest, _ = boosted
    entry = check_model(model)
    assert entry.shap_output == "raw"
    rng = np.random.default_rng(4)
    background = rng.integers(IN.min_code, IN.max_code + 1, (30, forest.n_inputs))
    rows = vectors(forest, count=40)[-6:]
    values, expected = tree_shap(model, IN.to_float(rows), IN.to_float(background), "raw")
    margin = entry.explained_scores(model, IN.to_float(rows))
    assert np.abs(values.sum(axis=1) - (margin - expected)).max() <= 1e-6 + entry.float_rounding(forest)

    def firmware(codes):
        return forest.sense.fraud_linear(forest.output_type.to_float(
            forest.forward(np.rint(codes).astype(np.int64))[:, 0]))

    permuted, _, _ = shap_values(firmware, rows, background, 10, 0)
    assert np.corrcoef(values.ravel(), permuted.ravel())[0, 1] > 0.99


def test_tree_shap_in_calls_reports_its_alerts_and_equals_one_call():
    """The alerts go through TreeSHAP ROWS_PER_CALL at a time, with progress lines (one long call
    draws shap's own bar); the values are one call's, the fraud class's for a scikit-learn forest."""
    import shap

    from fraudfpga.hls.explain import ROWS_PER_CALL
    from fraudfpga.hls.forest_explain import tree_shap
    from fraudfpga.progress import Stopwatch

    x, y = grid_data()
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(x, y)
    rows, background = x[:2 * ROWS_PER_CALL + 7], x[-30:]
    lines = []
    values, expected = tree_shap(model, rows, background, "probability",
                                 Stopwatch("[explain] forest (TreeSHAP)", lines.append, quiet_s=0))
    whole = shap.TreeExplainer(model, data=background, feature_perturbation="interventional",
                               model_output="probability")
    np.testing.assert_allclose(values, np.asarray(whole.shap_values(rows))[..., 1], atol=1e-12)
    assert expected == pytest.approx(float(np.atleast_1d(whole.expected_value)[1]))
    assert lines[-1].startswith(f"[explain] forest (TreeSHAP): {len(rows)}/{len(rows)} alerts")


@pytest.mark.parametrize("width", [1, 2, 5, 8])
def test_a_comparison_written_as_logic_is_at_most_for_every_input_and_threshold(width):
    """The RTL writes `input <= threshold` as logic on the offset-binary bits (no carry chain);
    evaluated here for every signed input and threshold of the width."""
    from fraudfpga.sim.forest_rtl import _at_most

    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    for threshold in range(low, high + 1):
        expression = _at_most("u", threshold, width)
        python = re.sub(r"~u\[(\d+)\]", r"(1 - bit(\1))", expression)
        python = re.sub(r"u\[(\d+)\]", r"bit(\1)", python).replace("~(", "1 - (")
        python = python.replace("1'b1", "1")
        for x in range(low, high + 1):
            offset = x + (1 << (width - 1))

            def bit(i, offset=offset):
                return (offset >> i) & 1
            assert eval(python, {"bit": bit}) == int(x <= threshold), (threshold, x, expression)
