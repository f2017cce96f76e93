"""A team's own tree ensemble through the imported family: each library's model file read and
checked against the library, the input contract's arithmetic, the whole path (golden model,
RTL, cocotb) for every kind, and a clear refusal of every file the import cannot take."""

import json
import math
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import cli
from realdata import IMPORT_RUN, import_step, write_ulb_like

from fraudfpga.hls.imported_models import ImportError_, read_model
from fraudfpga.hls.input_contract import (InputContract, fit_contract, thresholds_per_input,
                                          to_code_space)



def synthetic(rows=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    x[:, 2] = rng.integers(0, 4, rows)  # a small count: many rows sit on each threshold's side
    y = ((x[:, 0] + x[:, 1] * x[:, 3] + 0.5 * rng.normal(size=rows)) > 1.0).astype(int)
    return x, y


def make_models(folder: Path, x, y, columns=None) -> dict[str, Path]:
    """One small model of each kind, saved as its library saves it."""
    import lightgbm
    import onnxmltools
    import skl2onnx
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                                  RandomForestClassifier)

    frame = pd.DataFrame(x, columns=columns) if columns else x
    files = {}
    booster = xgboost.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1).fit(frame, y)
    booster.save_model(folder / "xgb.json")
    booster.get_booster().save_model(str(folder / "xgb.ubj"))
    joblib.dump(booster, folder / "xgb.joblib")
    files |= {k: folder / f for k, f in (("xgboost-json", "xgb.json"), ("xgboost-ubj", "xgb.ubj"),
                                          ("xgboost-pickle", "xgb.joblib"))}
    for name, cls in (("random-forest", RandomForestClassifier),
                      ("extra-trees", ExtraTreesClassifier),
                      ("gradient-boosting", GradientBoostingClassifier)):
        joblib.dump(cls(n_estimators=8, max_depth=4, random_state=0).fit(frame, y),
                    folder / f"{name}.joblib")
        files[name] = folder / f"{name}.joblib"
    gbm = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1, n_jobs=1).fit(frame, y)
    gbm.booster_.save_model(str(folder / "lightgbm.txt"))
    files["lightgbm"] = folder / "lightgbm.txt"
    forest = joblib.load(files["random-forest"])
    onnx_rf = skl2onnx.to_onnx(forest, np.asarray(x[:1], np.float32), target_opset=17,
                               options={id(forest): {"zipmap": False}})
    (folder / "rf.onnx").write_bytes(onnx_rf.SerializeToString())
    unnamed = xgboost.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1).fit(np.asarray(x), y)
    onnx_xgb = onnxmltools.convert_xgboost(  # onnxmltools takes no feature names (f0, f1, ...)
        unnamed, initial_types=[("input", FloatTensorType([None, x.shape[1]]))])
    (folder / "xgb.onnx").write_bytes(onnx_xgb.SerializeToString())
    files |= {"onnx-random-forest": folder / "rf.onnx", "onnx-xgboost": folder / "xgb.onnx"}
    return files


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    x, y = synthetic()
    return make_models(folder, x, y), x


KINDS = {"xgboost-json": "XGBoost booster (JSON)", "xgboost-ubj": "XGBoost booster (UBJSON)",
         "xgboost-pickle": "XGBoost XGBClassifier (pickled)",
         "random-forest": "scikit-learn RandomForestClassifier (pickled)",
         "extra-trees": "scikit-learn ExtraTreesClassifier (pickled)",
         "gradient-boosting": "scikit-learn GradientBoostingClassifier (pickled)",
         "lightgbm": "LightGBM model (text)", "onnx-random-forest": "ONNX TreeEnsembleClassifier",
         "onnx-xgboost": "ONNX TreeEnsembleClassifier"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_reader_reproduces_its_library(models, kind):
    files, x = models
    model = read_model(files[kind])
    assert model.kind == KINDS[kind]
    from fraudfpga.hls.imported_flow import library_tolerance

    difference = np.abs(model.raw_sum(x) - model.library_output(x))
    assert (difference <= library_tolerance(model, x)).all()
    # the trees matter: a wrong leaf would show (the check is not vacuous)
    model.trees[0].value[model.trees[0].feature == -2] += 0.25
    assert np.abs(model.raw_sum(x) - model.library_output(x)).max() > 0.2


def test_contract_arithmetic_is_the_stated_one_and_the_reference_agrees(models, tmp_path):
    """Codes by the vectorised contract, by the plain-Python reference written beside it (read
    back from its JSON, offsets from their hexadecimal form), and by the formula itself, on
    rows that include values exactly half a code from a step (ties go to the even code)."""
    files, x = models
    model = read_model(files["xgboost-json"])
    names = [f"c{i}" for i in range(x.shape[1])]
    contract = fit_contract(x, names, 10, thresholds_per_input(model))
    half = contract.offset + (np.arange(-4, 5)[:, None] + 0.5) * np.ldexp(1.0, -contract.shift)
    rows = np.concatenate([x[:300], half, [x.min(axis=0) - 100, x.max(axis=0) + 100]])
    codes = contract.codes(rows)
    assert ((codes % 2 == 0) | (np.abs(codes) == 2 ** 9) | (codes == 2 ** 9 - 1))[300:309].all()
    (tmp_path / "contract.json").write_text(json.dumps(contract.to_dict()))
    sys.path.insert(0, str(Path(__file__).parents[1] / "hls"))
    try:
        import input_contract_reference as reference
    finally:
        sys.path.pop(0)
    loaded = json.loads((tmp_path / "contract.json").read_text())
    assert InputContract.from_dict(loaded).offset.tolist() == contract.offset.tolist()
    by_reference = np.array([reference.codes(list(row), loaded) for row in rows])
    np.testing.assert_array_equal(by_reference, codes)
    row, i = rows[0], 3
    formula = round((row[i] - contract.offset[i]) * math.ldexp(1.0, int(contract.shift[i])))
    assert codes[0, i] == min(max(formula, -512), 511)
    assert codes.min() == -512 and codes.max() == 511  # saturated, never wrapped
    bad = rows[:3].copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"column 'c1' row 2 is nan"):
        contract.codes(bad)
    with pytest.raises(ValueError, match="impute"):
        reference.codes([float("nan")] * x.shape[1], loaded)


def test_splits_become_code_comparisons_that_keep_the_raw_decision(models):
    """Away from a threshold (more than half a code), every raw decision is kept; the splits
    the code range decides are removed and counted; thresholds sharing a code are counted."""
    files, x = models
    model = read_model(files["random-forest"])
    names = [f"c{i}" for i in range(x.shape[1])]
    contract = fit_contract(x, names, 6, thresholds_per_input(model))  # coarse: thresholds collapse
    space = to_code_space(model, contract)
    assert sum(space.collapsed.values()) > 0
    for tree, (coded,) in zip(model.trees, space.ensemble["trees"]):
        for f, t, strict in zip(tree.feature, tree.threshold, tree.strict):
            if f < 0:
                continue
            c = contract.split_code(int(f), float(t), bool(strict))
            step = math.ldexp(1.0, -int(contract.shift[f]))
            for value in (t - 0.51 * step, t + 0.51 * step):
                code = contract.codes(np.where(np.arange(x.shape[1]) == f, value, 0.0)[None])[0, f]
                assert (code <= c) == (value < t if strict else value <= t)
    narrow = fit_contract(x[:, :], names, 6, thresholds_per_input(model))
    narrow.offset[0] += 100 * math.ldexp(1.0, -int(narrow.shift[0]))  # input 0's splits off range
    assert to_code_space(model, narrow).decided_by_range > 0


@pytest.fixture(scope="module")
def import_data(tmp_path_factory):
    """A ULB-schema CSV (29 inputs), its data step, and one model of each kind trained outside
    the toolkit on its training rows (by column name, as a team would)."""
    folder = tmp_path_factory.mktemp("import")
    csv = write_ulb_like(folder / "tx.csv", rows=2500)
    assert cli("data", "--run", "base", "--projects-dir", str(folder / "p"),
               settings=[*IMPORT_RUN, f"data.path={csv}"]) == 0
    train = pd.read_parquet(folder / "p/base/data/train.parquet")
    columns = json.loads((folder / "p/base/data/summary.json").read_text())["features"]
    files = make_models(folder, train[columns].to_numpy(), train["label"].to_numpy(), columns)
    return folder, csv, files


def run_with(import_data, name, model, extra=()):
    return import_step(*import_data[:2], name, model, extra)


@pytest.mark.parametrize("kind", ["xgboost-json", "lightgbm", "random-forest", "onnx-xgboost"])
def test_each_kind_through_golden_rtl_and_cocotb(import_data, kind, capsys):
    _, _, files = import_data
    code, run = run_with(import_data, kind, files[kind])
    out = capsys.readouterr().out
    assert code == 0, out
    assert KINDS[kind] in out  # the kind is said
    check = json.loads((run / "imported/bit_exactness.json").read_text())
    assert check["test_set_vs_reference"]["identical_fraction"] == 1.0
    assert check["firmware_vs_library"]["unmoved_rows_equal_to_truncated_raw_leaves"]
    assert check["firmware_vs_library"]["unmoved_rows_beyond_bound"] == 0
    assert abs(check["average_precision"]["change"]) < 0.02
    contract = json.loads((run / "imported/input_contract.json").read_text())
    assert contract["features"][:2] == ["V1", "V2"] and contract["bits"] == 12
    assert (run / "imported/input_contract_reference.py").is_file()
    for step in ("imported_rtl", "imported_sim"):
        assert cli("step", step, "--run", kind, "--projects-dir", str(run.parent),
                   settings=[]) == 0
    sim = json.loads((run / "imported/sim/results.json").read_text())
    assert sim["mismatch_count"] == 0 and sim["testbench_failures"] == 0
    assert sim["vectors"]["test_set"] == 200 and sim["vectors_checked"] == 300
    axis = sim["axis"]
    assert axis["vectors_checked"] > 300 and axis["testbench_failures"] == 0
    assert axis["lost"] == axis["duplicated"] == axis["reordered"] == axis["mismatched"] == 0
    if kind == "xgboost-json":  # reasons from the firmware, checked against XGBoost's own
        assert cli("step", "imported_explain", "--run", kind, "--projects-dir", str(run.parent),
                   settings=[]) == 0
        explain = json.loads((run / "imported/explain.json").read_text())
        assert explain["additivity"]["ok"] and explain["alerts"] > 0
        assert explain["check_against_library"]["correlation"] > 0.9


def refused(import_data, capsys, name, model, extra=()):
    code, _ = run_with(import_data, name, model, extra)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    return err


def test_feature_names_that_are_not_columns_are_refused_naming_both(import_data, capsys, tmp_path):
    import xgboost

    x, y = synthetic()
    xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(
        pd.DataFrame(x, columns=["a", "b", "c", "d", "e"]), y).save_model(tmp_path / "m.json")
    err = refused(import_data, capsys, "names", tmp_path / "m.json")
    assert str(tmp_path / "m.json") in err and "['a', 'b', 'c', 'd', 'e']" in err
    assert "'V1'" in err and "missing ['a'" in err


def test_models_the_firmware_cannot_take_are_refused_by_name(import_data, capsys, tmp_path):
    import lightgbm
    import xgboost
    from sklearn.ensemble import RandomForestRegressor

    x, y = synthetic()
    y3 = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1)
    xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y3).save_model(tmp_path / "multi.json")
    xgboost.XGBRegressor(n_estimators=3, max_depth=2).fit(x, x[:, 0]).save_model(tmp_path / "reg.json")
    joblib.dump(RandomForestRegressor(n_estimators=2).fit(x, x[:, 0]), tmp_path / "reg.joblib")
    frame = pd.DataFrame(x, columns=list("abcde")).assign(c=lambda f: f["c"].astype("category"))
    by_category = y | (x[:, 2] == 2)  # the category decides: LightGBM splits on it
    lightgbm.LGBMClassifier(n_estimators=3, verbose=-1, min_child_samples=5).fit(
        frame, by_category, categorical_feature=["c"]).booster_.save_model(str(tmp_path / "cat.txt"))
    assert "num_cat=1" in (tmp_path / "cat.txt").read_text()
    expected = {"multi.json": "3 classes", "reg.json": "a regression XGBoost model",
                "reg.joblib": "a regression model", "cat.txt": "splits on categories"}
    for name, message in expected.items():
        with pytest.raises(ImportError_, match=message):
            read_model(tmp_path / name)
    err = refused(import_data, capsys, "multi", tmp_path / "multi.json")
    assert str(tmp_path / "multi.json") in err and "3 classes" in err


def test_damaged_and_foreign_files_are_refused_naming_the_file(import_data, capsys, tmp_path):
    _, _, files = import_data
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(files["xgboost-json"].read_bytes()[:3000])
    cut_lightgbm = tmp_path / "cut.txt"
    cut_lightgbm.write_text(files["lightgbm"].read_text()[:1500])
    picture = tmp_path / "model.onnx"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    joblib.dump({"weights": [1, 2, 3]}, tmp_path / "dict.joblib")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.json").write_text("")
    expected = {truncated: "could not be read as an XGBoost booster",
                cut_lightgbm: "without its 'end of trees' line",
                picture: "could not be read as an ONNX graph",
                tmp_path / "dict.joblib": "holds a builtins.dict, not a model",
                tmp_path / "notes.csv": "not a model file the import reads",
                tmp_path / "empty.json": "the file is empty",
                tmp_path / "absent.json": "names no file"}
    for path, message in expected.items():
        err = refused(import_data, capsys, "damaged", path)
        assert str(path) in err and message in err, err
    err = refused(import_data, capsys, "damaged", files["lightgbm"],
                  ["firmware.families=[network]"])
    assert "imported.model and firmware.families go together" in err
