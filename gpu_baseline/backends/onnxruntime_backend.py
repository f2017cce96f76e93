"""ONNX Runtime on the exported float twin: the CUDA execution provider when `onnxruntime-gpu`
is installed and sees a GPU, else the CPU provider."""

from __future__ import annotations

import numpy as np

from . import Backend, Session, module_missing, register


def _session(paths: dict, max_batch: int) -> Session:
    import onnxruntime as ort

    from ..benchmark import cpu_name

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in ort.get_available_providers()]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(paths["onnx"]), options, providers=providers)
    name = session.get_inputs()[0].name
    on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0][:, 0]

    return Session(predict, "GPU (CUDA execution provider)" if on_gpu else f"CPU ({cpu_name()})",
                   {"onnxruntime": ort.__version__, "provider": session.get_providers()[0]},
                   "GPU" if on_gpu else "CPU")


register(Backend("onnxruntime", "ONNX Runtime InferenceSession.run on the exported model",
                 lambda: module_missing("onnxruntime", "pip install onnxruntime, or "
                                                       "onnxruntime-gpu for CUDA"),
                 _session))
