"""A team's own network through the imported family: Keras 3 (`.keras`), tf_keras (`.h5`),
QKeras and ONNX files read and checked against their library; the float network's types chosen
from the data, the C simulation bit for bit against the integer reference, RTL and cocotb; the
ONNX graph the serving step scores; and a refusal naming the layer or operator the firmware
cannot take."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import cli
from realdata import IMPORT_RUN, import_step, write_ulb_like

from fraudfpga.hls.imported_models import ImportError_, read_model


def keras3_network(x, y, softmax=False):
    import fraudfpga.kerasenv  # noqa: F401
    import keras

    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    head = ([keras.layers.Dense(2, activation="softmax")] if softmax
            else [keras.layers.Dense(1), keras.layers.Activation("sigmoid")])
    model = keras.Sequential([keras.Input((x.shape[1],)), norm,
                              keras.layers.Dense(12, activation="relu"), keras.layers.Dropout(0.1),
                              keras.layers.Dense(6), keras.layers.ReLU(), *head])
    model.compile("adam", "sparse_categorical_crossentropy" if softmax else "binary_crossentropy")
    model.fit(x, y, epochs=3, batch_size=128, verbose=0)
    return model


def tf_keras_network(x, y):
    from fraudfpga.kerasenv import keras

    k = keras()
    model = k.Sequential([k.layers.Input((x.shape[1],)), k.layers.Dense(8, activation="relu"),
                          k.layers.Dense(1)])  # a logit out: the score is a margin
    model.compile("adam", k.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x / x.std(axis=0), y, epochs=2, batch_size=128, verbose=0)
    return model


def onnx_network(x, seed=0):
    """A graph as exporters write it: Sub/Div normalization, Gemm (transB), Relu, Sigmoid."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n = x.shape[1]
    tensors = {"mean": x.mean(axis=0), "std": x.std(axis=0), "w1": rng.normal(size=(10, n)) / 3,
               "b1": rng.normal(size=10) / 4, "w2": rng.normal(size=(1, 10)) / 2,
               "b2": np.array([-1.0])}
    nodes = [helper.make_node("Sub", ["x", "mean"], ["c"], name="centre"),
             helper.make_node("Div", ["c", "std"], ["z"], name="scale"),
             helper.make_node("Gemm", ["z", "w1", "b1"], ["h"], transB=1, name="hidden"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logit"], transB=1, name="out"),
             helper.make_node("Sigmoid", ["logit"], ["p"], name="sigmoid")]
    graph = helper.make_graph(
        nodes, "team", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in tensors.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def import_data(tmp_path_factory):
    """A ULB-schema CSV (29 inputs), its data step, and one network of each kind trained (or
    written) outside the toolkit on its training rows."""
    from fraudfpga.kerasenv import keras
    from fraudfpga.models.network import build_qkeras_model

    folder = tmp_path_factory.mktemp("import_network")
    csv = write_ulb_like(folder / "tx.csv", rows=2500)
    assert cli("data", "--run", "base", "--projects-dir", str(folder / "p"),
               settings=[*IMPORT_RUN, f"data.path={csv}"]) == 0
    train = pd.read_parquet(folder / "p/base/data/train.parquet")
    columns = json.loads((folder / "p/base/data/summary.json").read_text())["features"]
    x, y = train[columns].to_numpy(np.float32), train["label"].to_numpy()
    files = {"keras": folder / "net.keras", "keras-softmax": folder / "softmax.keras",
             "tf-keras-h5": folder / "net.h5", "onnx": folder / "net.onnx",
             "qkeras": folder / "q.h5"}
    keras3_network(x, y).save(files["keras"])
    keras3_network(x, y, softmax=True).save(files["keras-softmax"])
    tf_keras_network(x, y).save(files["tf-keras-h5"])
    files["onnx"].write_bytes(onnx_network(x).SerializeToString())
    qkeras = build_qkeras_model(x.shape[1], {"hidden": [8], "weight_bits": 6,
                                             "weight_integer": 0, "bias_bits": 8,
                                             "bias_integer": 3, "activation_bits": 8,
                                             "activation_integer": 3, "input_bits": 10,
                                             "input_integer": 6})
    qkeras.compile(keras().optimizers.Adam(1e-2), keras().losses.BinaryCrossentropy(from_logits=True))
    qkeras.fit(x, y, epochs=1, batch_size=256, verbose=0)
    qkeras.save(files["qkeras"])
    return folder, csv, files, x


KINDS = {"keras": ("Keras network (.keras)", "fraud probability"),
         "keras-softmax": ("Keras network (.keras)", "fraud probability"),
         "tf-keras-h5": ("Keras network (.h5)", "fraud margin"),
         "onnx": ("ONNX network", "fraud probability"),
         "qkeras": ("QKeras network (.h5)", "fraud margin")}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_network_reader_reproduces_its_library(import_data, kind):
    from fraudfpga.hls.imported_flow import check_network_reader

    _, _, files, x = import_data
    model = read_model(files[kind])
    assert (model.kind, model.score_sense) == KINDS[kind] and model.n_features == 29
    check_network_reader(model, x, model.library_output(x))
    if model.qkeras_model is None:  # the weights matter: a changed one is caught
        model.layers[0].weight[0, 0] += 0.5
        with pytest.raises(ImportError_, match="the reader does not understand this model"):
            check_network_reader(model, x, model.library_output(x))


def test_the_onnx_graph_served_is_the_network_read(import_data):
    import onnxruntime

    _, _, files, x = import_data
    for kind in ("keras", "tf-keras-h5", "onnx"):
        model = read_model(files[kind])
        session = onnxruntime.InferenceSession(model.to_onnx().SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        served = session.run(None, {"x": x})[0][:, 1]
        library = model.library_output(x)
        expected = library if model.score_sense == "fraud probability" else 1 / (1 + np.exp(-library))
        assert np.allclose(served, expected, atol=1e-5), kind


def test_folding_the_contract_into_the_first_layer_changes_nothing_before_rounding(import_data):
    from fraudfpga.hls.imported_network import fold_contract, input_fraction
    from fraudfpga.hls.input_contract import fit_contract

    _, _, files, x = import_data
    model = read_model(files["keras"])
    contract = fit_contract(x.astype(np.float64), [f"c{i}" for i in range(29)], 12)
    frac = input_fraction(contract, model.std)
    codes = contract.codes(x)
    values = codes * 2.0 ** -frac  # what the firmware's input type reads
    folded = fold_contract(model, contract, frac)
    h = values
    for layer in folded:
        h = h @ layer.weight + layer.bias
        h = np.maximum(h, 0) if layer.relu else h
    decoded = contract.offset + codes * np.ldexp(1.0, -contract.shift)  # the codes' raw values
    assert np.allclose(h[:, 0], model.logit(decoded), atol=1e-9)


def run_with(import_data, name, model, extra=()):
    return import_step(*import_data[:2], name, model, extra)


@pytest.mark.parametrize("kind", ["keras", "qkeras", "onnx"])
def test_each_network_kind_through_golden_rtl_and_cocotb(import_data, kind, capsys):
    _, _, files, _ = import_data
    code, run = run_with(import_data, kind, files[kind])
    out = capsys.readouterr().out
    assert code == 0, out
    assert KINDS[kind][0] in out
    check = json.loads((run / "imported/bit_exactness.json").read_text())
    assert check["golden_model"].startswith("hls4ml C simulation")
    assert check["test_set_vs_reference"]["identical_fraction"] == 1.0
    assert check["random_vs_reference"]["identical_fraction"] == 1.0
    assert abs(check["average_precision"]["change"]) < 0.02
    if kind != "qkeras":  # rounded to the chosen types: close to the float network
        assert check["firmware_vs_library"]["p99_difference"] < 0.1
    fixed = json.loads((run / "imported/firmware_model.json").read_text())
    assert fixed["generator"] == "network"
    from fraudfpga.report.imported import MODEL_ROWS

    metrics, contract = (json.loads((run / f"imported/{name}.json").read_text())
                         for name in ("metrics", "input_contract"))
    rows = dict((r[0], r[1]) for r in MODEL_ROWS[metrics["model"]["generator"]](
        metrics, check, contract))
    assert "dense layers 29x" in rows["model file"]
    assert f"read as {fixed['input_type']}" in rows["input contract"]
    for step in ("imported_rtl", "imported_sim"):
        assert cli("step", step, "--run", kind, "--projects-dir", str(run.parent),
                   settings=[]) == 0
    sim = json.loads((run / "imported/sim/results.json").read_text())
    assert sim["mismatch_count"] == 0 and sim["testbench_failures"] == 0
    assert sim["vectors_checked"] == 300 and sim["golden_model"].startswith("hls4ml C simulation")
    axis = sim["axis"]
    assert axis["lost"] == axis["duplicated"] == axis["reordered"] == axis["mismatched"] == 0
    if kind == "keras":  # explained from the firmware, checked against Keras's own values
        assert cli("step", "imported_explain", "--run", kind, "--projects-dir", str(run.parent),
                   settings=[]) == 0
        explain = json.loads((run / "imported/explain.json").read_text())
        assert explain["additivity"]["ok"] and explain["alerts"] > 0
        assert explain["check_against_library"]["correlation"] > 0.95
        reasons = pd.read_csv(run / "imported/reason_codes.csv")
        assert len(reasons) == explain["alerts"] and set(reasons["reason_1"]) <= set(
            json.loads((run / "imported/input_contract.json").read_text())["features"])
    if kind == "qkeras":  # served by QKeras itself; ONNX Runtime skipped, with the reason
        assert cli("step", "imported_serving", "--run", kind, "--projects-dir", str(run.parent),
                   "--reconfigure", settings=["serving.loads=[1000]",
                                              "serving.seconds_per_load=0.02",
                                              "serving.batch1_calls=20"]) == 0
        serving = json.loads((run / "imported/serving.json").read_text())
        assert list(serving["backends"]) == ["imported-library"]
        assert "quantizers have no ONNX form" in serving["skipped"]["imported-onnxruntime"]
    if kind == "keras":  # served as the team runs it: Keras itself and ONNX Runtime
        assert cli("step", "imported_serving", "--run", kind, "--projects-dir", str(run.parent),
                   "--reconfigure", settings=["serving.loads=[1000]",
                                              "serving.seconds_per_load=0.02",
                                              "serving.batch1_calls=20"]) == 0
        serving = json.loads((run / "imported/serving.json").read_text())
        assert set(serving["backends"]) == {"imported-library", "imported-onnxruntime"}
        assert "MatMul" in serving["backends"]["imported-onnxruntime"]["versions"]["operators"]


def test_networks_the_firmware_cannot_take_are_refused_by_layer_or_operator(import_data, capsys,
                                                                           tmp_path):
    import onnx

    import fraudfpga.kerasenv  # noqa: F401
    import keras

    _, _, files, x = import_data
    leaky = keras.Sequential([keras.Input((29,)), keras.layers.Dense(4),
                              keras.layers.LeakyReLU(name="leaky"), keras.layers.Dense(1)])
    leaky.save(tmp_path / "leaky.keras")
    three = keras.Sequential([keras.Input((29,)), keras.layers.Dense(3, activation="softmax")])
    three.save(tmp_path / "three.keras")
    tanh = onnx_network(x)
    tanh.graph.node[3].op_type = "Tanh"
    onnx.save(tanh, tmp_path / "tanh.onnx")
    expected = {"leaky.keras": "layer 'leaky' (LeakyReLU) is not supported",
                "three.keras": "a softmax over 3 classes",
                "tanh.onnx": "operator Tanh (node 'relu') is not supported"}
    for name, message in expected.items():
        with pytest.raises(ImportError_, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_model(tmp_path / name)
    code, _ = run_with(import_data, "leaky", tmp_path / "leaky.keras")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(tmp_path / "leaky.keras") in err and "LeakyReLU" in err
