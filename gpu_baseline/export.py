"""Export of the float twin for the back ends outside TensorFlow: ONNX (tf2onnx, opset 17) for
ONNX Runtime, and the plain weights (`npz`: kernel_i, bias_i per dense layer, ReLU between) for
the standalone GPU script. Both are checked against the Keras model's outputs."""

from __future__ import annotations

import numpy as np

from fraudfpga.runfolder import atomic_path

OPSET = 17
CHECK_ROWS = 512  # rows shipped with the weights for the standalone script's own check


def dense_weights(model) -> dict[str, np.ndarray]:
    """kernel_0, bias_0, kernel_1, ... of the model's dense layers, in order."""
    arrays = {}
    dense = [layer for layer in model.layers if layer.weights]
    for index, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        arrays[f"kernel_{index}"] = kernel.astype(np.float32)
        arrays[f"bias_{index}"] = bias.astype(np.float32)
    return arrays


def numpy_forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The MLP from its exported weights: dense, ReLU between, a logit out."""
    layers = sum(1 for key in weights if key.startswith("kernel_"))
    h = np.asarray(x, np.float32)
    for index in range(layers):
        h = h @ weights[f"kernel_{index}"] + weights[f"bias_{index}"]
        if index < layers - 1:
            h = np.maximum(h, 0)
    return h[:, 0]


def export_float_model(model, onnx_path, weights_path, check_inputs: np.ndarray) -> dict:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    n_inputs = check_inputs.shape[1]
    spec = (tf.TensorSpec((None, n_inputs), tf.float32, name="features"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    with atomic_path(onnx_path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    weights = dense_weights(model)
    x = np.ascontiguousarray(check_inputs, dtype=np.float32)
    keras_out = model.predict(x, batch_size=8192, verbose=0)[:, 0]
    with atomic_path(weights_path) as tmp:
        with open(tmp, "wb") as handle:  # np.savez would append .npz to a bare path
            np.savez(handle, **weights, check_inputs=x[:CHECK_ROWS],
                     check_logits=keras_out[:CHECK_ROWS])

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0][:, 0]
    npz_out = numpy_forward(weights, x)
    return {"onnx": {"opset": OPSET, "tf2onnx": tf2onnx.__version__,
                     "max_abs_difference_vs_keras": float(np.abs(onnx_out - keras_out).max())},
            "npz": {"layers": len(weights) // 2, "check_rows": int(min(CHECK_ROWS, len(x))),
                    "max_abs_difference_vs_keras": float(np.abs(npz_out - keras_out).max())},
            "rows_checked": int(len(x))}


def export_forest_arrays(ensemble: dict, path, score_sense: str, depth: int,
                         check_inputs: np.ndarray, check_scores: np.ndarray) -> dict:
    """The converted forest (conifer's ensemble, thresholds on the input grid) as the padded node
    arrays `gpu_standalone.py --forest` reads, with check rows and the training library's fraud
    probabilities for them; checked here through the script's numpy programs."""
    from .gpu_standalone import Forest, numpy_forest

    trees = [tree for (tree,) in ensemble["trees"]]
    nodes = max(len(t["feature"]) for t in trees)
    arrays = {"feature": np.zeros((len(trees), nodes), np.int32),
              "threshold": np.zeros((len(trees), nodes), np.float32),
              "left": np.tile(np.arange(nodes, dtype=np.int32), (len(trees), 1)),
              "value": np.zeros((len(trees), nodes), np.float32)}
    arrays["right"] = arrays["left"].copy()
    for t, tree in enumerate(trees):
        split = np.asarray(tree["feature"]) >= 0
        n = len(split)
        arrays["feature"][t, :n] = np.where(split, tree["feature"], 0)
        arrays["threshold"][t, :n] = np.where(split, tree["threshold"], 0.0)
        arrays["left"][t, :n] = np.where(split, tree["children_left"], np.arange(n))
        arrays["right"][t, :n] = np.where(split, tree["children_right"], np.arange(n))
        arrays["value"][t, :n] = np.where(split, 0.0, tree["value"])
    rows = np.ascontiguousarray(check_inputs[:CHECK_ROWS], np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays, depth=depth,
                     strict=ensemble.get("splitting_convention", "<=") == "<",
                     init=float(ensemble.get("init_predict", [0.0])[0]), sense=score_sense,
                     check_inputs=rows,
                     check_scores=np.asarray(check_scores[:CHECK_ROWS], np.float64))
    forest = Forest(str(path))
    outputs, *_ = numpy_forest(forest, "cpu")
    return {"trees": len(trees), "nodes_per_tree": nodes, "check_rows": int(len(rows)),
            "max_abs_difference": {name: float(np.abs(forest.probability(raw)
                                                      - forest.check_scores).max())
                                   for name, raw in outputs(rows).items()}}
