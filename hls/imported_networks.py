"""Front ends for a team's own trained network (`imported.model`): a Keras or QKeras model
(`.keras`, `.h5`) or an ONNX network (`.onnx` without a tree ensemble), each returning a
`RawNetwork` beside the tree readers of `imported_models` (same registry, same refusals).

A float network is read as what the firmware computes: an optional input normalization
(Keras `Normalization`, or ONNX `Sub`/`Div`/`Mul` by constants before the first product), then
dense layers, each with or without a ReLU; the final sigmoid (or a two-class softmax, folded into
one logit) is kept as the model's output sense, not built on the chip: the firmware outputs the
logit, which orders transactions as the probability does. A QKeras model keeps its quantizers and
goes through the toolkit's own QKeras conversion. Anything else is refused naming the layer or
operator, and every reader is checked against the library's own predictions on the data.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .imported_models import ImportError_, Reader, _version, register

KERAS_LAYERS = "Dense (linear, relu; sigmoid or 2-class softmax last), Activation/ReLU, Dropout, " \
               "Normalization (first), InputLayer"
ONNX_OPERATORS = ("MatMul", "Gemm", "Add", "Relu", "Sigmoid", "Softmax", "Identity", "Flatten",
                  "Sub", "Div", "Mul")


@dataclass
class DenseWeights:
    weight: np.ndarray  # (n_in, n_out) float64
    bias: np.ndarray  # (n_out,)
    relu: bool


@dataclass
class RawNetwork:
    """What every network reader returns: `library_output(raw rows)` is the library's own output
    in `score_sense`; `logit(raw rows)` recomputes the network in float64 from the read weights."""

    path: Path
    kind: str
    library: str
    n_features: int
    layers: list[DenseWeights]
    mean: np.ndarray  # the model's own input normalization: (x - mean) / std (0 and 1 if none)
    std: np.ndarray
    score_sense: str  # "fraud probability" (final sigmoid/softmax) or "fraud margin"
    library_output: Callable[[np.ndarray], np.ndarray]
    qkeras_model: Any = None  # a QKeras model keeps its quantizers: converted as it is
    feature_names: list[str] | None = None
    input_dtype: type = np.float32
    firmware: ClassVar[str] = "network"  # which generator makes its firmware

    def logit(self, x: np.ndarray) -> np.ndarray:
        h = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        for layer in self.layers:
            h = h @ layer.weight + layer.bias
            if layer.relu:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def to_onnx(self):
        """The float network as an ONNX graph (normalization, MatMul/Add/Relu, sigmoid,
        probabilities of both classes) for ONNX Runtime, written from the read weights."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        if self.qkeras_model is not None:
            raise ImportError_(f"{self.path}: a QKeras model's quantizers have no ONNX form; "
                               "leave imported-onnxruntime out of serving.imported_backends")
        nodes, weights = [], [numpy_helper.from_array(self.mean.astype(np.float32), "mean"),
                              numpy_helper.from_array(self.std.astype(np.float32), "std")]
        nodes += [helper.make_node("Sub", ["x", "mean"], ["centred"]),
                  helper.make_node("Div", ["centred", "std"], ["h0"])]
        current = "h0"
        for k, layer in enumerate(self.layers, 1):
            weights += [numpy_helper.from_array(layer.weight.astype(np.float32), f"w{k}"),
                        numpy_helper.from_array(layer.bias.astype(np.float32), f"b{k}")]
            nodes += [helper.make_node("MatMul", [current, f"w{k}"], [f"m{k}"]),
                      helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"])]
            current = f"a{k}"
            if layer.relu:
                nodes.append(helper.make_node("Relu", [current], [f"r{k}"]))
                current = f"r{k}"
        weights.append(numpy_helper.from_array(np.array([1.0], np.float32), "one"))
        nodes += [helper.make_node("Sigmoid", [current], ["fraud"]),
                  helper.make_node("Sub", ["one", "fraud"], ["genuine"]),
                  helper.make_node("Concat", ["genuine", "fraud"], ["probabilities"], axis=1)]
        graph = helper.make_graph(
            nodes, "imported_network",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, self.n_features])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
            weights)
        model = helper.make_model(graph, producer_name="fraudfpga",
                                  opset_imports=[helper.make_opsetid("", 13)])
        onnx.checker.check_model(model)
        return model


def _sense(last: str, path: Path, where: str) -> str:
    if last in ("sigmoid", "softmax"):
        return "fraud probability"
    if last == "linear":
        return "fraud margin"
    raise ImportError_(f"{path}: {where} ends with activation {last!r}; the firmware takes a "
                       "network ending in a linear output, a sigmoid or a two-class softmax")


def _fold_softmax(layers: list[DenseWeights], path: Path) -> None:
    """A two-class softmax's fraud probability is the sigmoid of the difference of its logits."""
    last = layers[-1]
    if last.weight.shape[1] != 2:
        raise ImportError_(f"{path}: a softmax over {last.weight.shape[1]} classes; the firmware "
                           "scores binary models (one sigmoid output or a two-class softmax)")
    layers[-1] = DenseWeights(last.weight[:, 1:] - last.weight[:, :1],
                              last.bias[1:] - last.bias[:1], False)


def _check_output(layers: list[DenseWeights], path: Path) -> None:
    if not layers:
        raise ImportError_(f"{path}: the network has no dense layer")
    if layers[-1].weight.shape[1] != 1:
        raise ImportError_(f"{path}: the network has {layers[-1].weight.shape[1]} outputs; the "
                           "firmware scores binary models (one output)")
    if layers[-1].relu:
        raise ImportError_(f"{path}: the last layer ends in a ReLU; expected a logit or a sigmoid")


# --- Keras / QKeras --------------------------------------------------------------------------

def _keras_version(path: Path) -> str:
    """'3' for a Keras 3 `.keras` archive, '2' for tf_keras files (HDF5 or its own archive)."""
    if not zipfile.is_zipfile(path):
        return "2"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "metadata.json" in names:
            version = json.loads(archive.read("metadata.json")).get("keras_version", "3")
            return str(version).split(".")[0]
    return "3"


def _load_keras(path: Path):
    if _keras_version(path) == "3":
        import keras

        return keras.saving.load_model(str(path), compile=False), _version("keras")
    import tf_keras
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict = {}
    _add_supported_quantized_objects(objects)
    return (tf_keras.models.load_model(str(path), custom_objects=objects, compile=False),
            _version("tf_keras"))


def _activation(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation)) if activation is not None else "linear"


def _read_keras(path: Path) -> RawNetwork:
    from fraudfpga import kerasenv  # noqa: F401  (TensorFlow prepared before it is imported)

    model, library = _load_keras(path)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ImportError_(f"{path}: a network of {len(model.inputs)} inputs and "
                           f"{len(model.outputs)} outputs; the firmware takes one input vector "
                           "and gives one score")
    n_features = int(model.inputs[0].shape[-1])
    kinds = [type(layer).__name__ for layer in model.layers]
    if any(k.startswith("Q") for k in kinds):
        return _qkeras(path, model, library, n_features)
    mean, std = np.zeros(n_features), np.ones(n_features)
    layers: list[DenseWeights] = []
    last = "linear"
    for position, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Normalization" and not layers and not getattr(layer, "invert", False):
            variance = np.asarray(layer.variance, dtype=np.float64).reshape(-1)
            mean = np.asarray(layer.mean, dtype=np.float64).reshape(-1) * np.ones(n_features)
            std = np.maximum(np.sqrt(variance), 1e-7) * np.ones(n_features)  # Keras' epsilon
            continue
        activation = _activation(layer) if kind == "Dense" else (
            "relu" if kind == "ReLU" else _activation(layer) if kind == "Activation" else None)
        if kind == "ReLU" and (layer.get_config().get("max_value") is not None
                               or layer.get_config().get("negative_slope")):
            activation = None
        if activation is None or (kind != "Dense" and not layers):
            raise ImportError_(f"{path}: layer {layer.name!r} ({kind}) is not supported; "
                               f"supported: {KERAS_LAYERS}")
        if kind == "Dense":
            if last != "linear":
                raise ImportError_(f"{path}: layer {layer.name!r} follows a {last} activation; "
                                   "sigmoid and softmax are taken only as the last layer")
            values = layer.get_weights()
            bias = values[1] if len(values) > 1 else np.zeros(values[0].shape[1])
            layers.append(DenseWeights(np.asarray(values[0], np.float64),
                                       np.asarray(bias, np.float64), False))
        if activation == "relu":
            if layers[-1].relu:
                continue  # a second ReLU changes nothing
            layers[-1].relu = True
        elif activation in ("sigmoid", "softmax", "linear"):
            if activation != "linear":
                if last != "linear" or layers[-1].relu:
                    raise ImportError_(f"{path}: layer {layer.name!r}: {activation} after another "
                                       "activation is not supported")
                last = activation
        else:
            raise ImportError_(f"{path}: layer {layer.name!r} ({kind}) has activation "
                               f"{activation!r}; supported: relu, linear, sigmoid/softmax last")
    if last == "softmax":
        _fold_softmax(layers, path)
    _check_output(layers, path)
    sense = _sense(last, path, "the network")

    def output(x):
        y = np.asarray(model(np.asarray(x, np.float32), training=False), dtype=np.float64)
        return y[:, 1] if last == "softmax" else y[:, 0]

    return RawNetwork(path, f"Keras network ({path.suffix})", library, n_features, layers,
                      mean, std, sense, _batched(output))


def _qkeras(path: Path, model, library: str, n_features: int) -> RawNetwork:
    """A QKeras model through the toolkit's own QKeras conversion (its quantizers kept)."""
    from .convert import check_supported

    try:
        check_supported(model)
    except ValueError as error:
        raise ImportError_(f"{path}: {error}") from None
    last = model.layers[-1]
    final = _activation(last) if type(last).__name__ != "QActivation" else "linear"
    sense = _sense(final, path, "the QKeras model")

    def output(x):
        return np.asarray(model(np.asarray(x, np.float32), training=False),
                          dtype=np.float64)[:, 0]

    return RawNetwork(path, f"QKeras network ({path.suffix})", f"{library}, "
                      f"{_version('qkeras')}", n_features, [], np.zeros(n_features),
                      np.ones(n_features), sense, _batched(output), qkeras_model=model)


def _batched(output: Callable, rows: int = 65536) -> Callable:
    def run(x):
        x = np.asarray(x)
        return np.concatenate([output(x[i:i + rows]) for i in range(0, len(x), rows)]) \
            if len(x) else np.zeros(0)
    return run


register(Reader("keras", "a Keras or QKeras network (.keras, .h5)",
                lambda path, head: path.suffix.lower() in (".keras", ".h5", ".hdf5"),
                _read_keras))


# --- ONNX network ----------------------------------------------------------------------------

def _read_onnx_network(path: Path) -> RawNetwork:
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(path)).graph
    constants = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
    if len(graph.input) - sum(i.name in constants for i in graph.input) != 1:
        raise ImportError_(f"{path}: the ONNX graph has several data inputs; the firmware takes "
                           "one input vector")
    source = next(i for i in graph.input if i.name not in constants)
    n_features = int(source.type.tensor_type.shape.dim[-1].dim_value)
    mean, std = np.zeros(n_features), np.ones(n_features)
    layers: list[DenseWeights] = []
    current, last = source.name, "linear"

    def constant(node, name):
        if name not in constants:
            raise ImportError_(f"{path}: operator {node.op_type} (node {node.name!r}) has a "
                               "computed second operand; the import takes constants there")
        return constants[name]

    for node in graph.node:
        op = node.op_type
        if op == "Constant":
            continue
        if op not in ONNX_OPERATORS:
            raise ImportError_(f"{path}: operator {op} (node {node.name!r}) is not supported; "
                               f"supported: {', '.join(ONNX_OPERATORS)}")
        data = [n for n in node.input if n not in constants]
        if data != [current]:
            raise ImportError_(f"{path}: node {node.name!r} ({op}) does not continue the chain "
                               "of layers; the import takes a sequential network")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if op in ("Identity", "Flatten"):
            pass
        elif op in ("Sub", "Div", "Mul") and not layers:
            value = constant(node, node.input[1]) * np.ones(n_features)
            if op == "Sub":
                mean = mean + value * std
            elif op == "Div":
                std = std * value
            else:
                std = std / value
        elif op in ("MatMul", "Gemm"):
            if last != "linear":
                raise ImportError_(f"{path}: node {node.name!r} follows a {last}; sigmoid and "
                                   "softmax are taken only at the end")
            weight = constant(node, node.input[1])
            if op == "Gemm":
                if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or \
                        attrs.get("beta", 1.0) != 1.0:
                    raise ImportError_(f"{path}: Gemm node {node.name!r} with transA, alpha or "
                                       "beta; the import takes y = x W (+ b)")
                weight = weight.T if attrs.get("transB", 0) else weight
            bias = constant(node, node.input[2]) if len(node.input) > 2 else \
                np.zeros(weight.shape[1])
            layers.append(DenseWeights(weight, bias * np.ones(weight.shape[1]), False))
        elif op == "Add" and layers and not layers[-1].relu:
            layers[-1].bias = layers[-1].bias + constant(node, node.input[1])
        elif op == "Relu" and layers:
            layers[-1].relu = True
        elif op in ("Sigmoid", "Softmax") and layers and last == "linear":
            last = op.lower()
        else:
            raise ImportError_(f"{path}: operator {op} (node {node.name!r}) at this place is not "
                               "supported: the import takes [Sub/Div/Mul] (MatMul|Gemm [Add] "
                               "[Relu])* [Sigmoid|Softmax]")
        current = node.output[0]
    if last == "softmax":
        _fold_softmax(layers, path)
    _check_output(layers, path)
    sense = _sense(last, path, "the ONNX graph")
    output_name = graph.output[0].name
    if output_name != current:
        raise ImportError_(f"{path}: the graph's output {output_name!r} is not the end of its "
                           "chain of layers")

    @cache
    def session():
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def output(x):
        y = session().run([output_name], {source.name: np.asarray(x, np.float32)})[0]
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        return y[:, 1] if last == "softmax" else y[:, 0]

    return RawNetwork(path, "ONNX network", _version("onnxruntime"), n_features, layers, mean,
                      std, sense, output)


def _is_onnx_network(path: Path, head: bytes) -> bool:
    if path.suffix.lower() != ".onnx":
        return False
    try:
        import onnx

        graph = onnx.load(str(path)).graph
    except Exception:  # a damaged file: the tree reader's refusal names it
        return False
    return not any(n.op_type.startswith("TreeEnsemble") for n in graph.node)


register(Reader("onnx-network", "an ONNX network (MatMul/Gemm, Add, Relu, Sigmoid) (.onnx)",
                _is_onnx_network, _read_onnx_network), first=True)
