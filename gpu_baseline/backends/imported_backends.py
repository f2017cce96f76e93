"""Back ends that score a team's imported model (`imported.model`) as the team runs it today:
its own library (XGBoost, LightGBM, scikit-learn, Keras, or ONNX Runtime for an ONNX file) and
ONNX Runtime on the model converted to ONNX (a tree ensemble through onnxmltools or skl2onnx,
a network written from its read weights). Both take the raw values of the model's columns and
return its fraud probability."""

from __future__ import annotations

import numpy as np

from . import Backend, BackendUnavailable, Session, module_missing, register


def _read(paths: dict):
    from fraudfpga.hls.forest import SCORE_SENSES
    from fraudfpga.hls.imported_models import read_model

    model = read_model(paths["imported"])
    return model, SCORE_SENSES[model.score_sense].probability


def _library(paths: dict, max_batch: int) -> Session:
    from ..benchmark import cpu_name

    model, probability = _read(paths)
    return Session(lambda batch: probability(model.library_output(batch)), f"CPU ({cpu_name()})",
                   {"library": model.library, "model": model.kind}, "CPU")


def _onnxruntime(paths: dict, max_batch: int) -> Session:
    import onnxruntime as ort

    from ..benchmark import cpu_name

    model, _ = _read(paths)
    if getattr(model, "qkeras_model", None) is not None:
        raise BackendUnavailable(f"{model.path}: a QKeras model's quantizers have no ONNX form")
    graph = model.to_onnx()
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    name, output = session.get_inputs()[0].name, session.get_outputs()[-1].name

    def predict(batch: np.ndarray) -> np.ndarray:
        probabilities = session.run([output], {name: np.asarray(batch, np.float32)})[0]
        if isinstance(probabilities, list):  # ZipMap: one dict per row
            return np.array([row[max(row)] for row in probabilities])
        return np.asarray(probabilities)[:, 1]

    return Session(predict, f"CPU ({cpu_name()})",
                   {"onnxruntime": ort.__version__, "converter": graph.producer_name,
                    "converter_version": graph.producer_version,
                    "operators": sorted({node.op_type for node in graph.graph.node})}, "CPU")


register(Backend("imported-library", "your model in its own library (XGBoost, LightGBM, "
                                     "scikit-learn, Keras; ONNX Runtime for an ONNX file)",
                 lambda: None, _library, model="imported"))
register(Backend("imported-onnxruntime", "your model converted to ONNX (trees: onnxmltools "
                                         "or skl2onnx; networks: from the read weights), ONNX "
                                         "Runtime",
                 lambda: (module_missing("onnxmltools", "pip install onnxmltools")
                          or module_missing("skl2onnx", "pip install skl2onnx")),
                 _onnxruntime, model="imported"))
