"""Back ends that score the forest firmware's model (a scikit-learn random forest or XGBoost's
boosted trees) as a team would deploy it on a CPU or GPU: ONNX Runtime's tree-ensemble operator
(the model converted by skl2onnx or onnxmltools) and a compiled predictor (Treelite's model
compiled to C by TL2cgen and gcc). `hls.forest_models` says how each model is converted."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import Backend, Session, module_missing, register


def _onnxruntime(paths: dict, max_batch: int) -> Session:
    import joblib
    import onnxruntime as ort

    from fraudfpga.hls.forest_models import check_model

    from ..benchmark import cpu_name

    model = joblib.load(paths["forest"])
    onx = check_model(model).to_onnx(model)
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in ort.get_available_providers()]
    session = ort.InferenceSession(onx.SerializeToString(), providers=providers)
    name = session.get_inputs()[0].name
    on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {name: batch})[0][:, 1]

    return Session(predict, "GPU (CUDA execution provider)" if on_gpu else f"CPU ({cpu_name()})",
                   {"onnxruntime": ort.__version__, "converter": onx.producer_name,
                    "converter_version": onx.producer_version,
                    "operator": "TreeEnsembleClassifier"}, "GPU" if on_gpu else "CPU")


def _compiled(paths: dict, max_batch: int) -> Session:
    import joblib
    import tl2cgen
    import treelite

    from fraudfpga.hls.forest_models import check_model

    from ..benchmark import cpu_name

    model = joblib.load(paths["forest"])
    library = Path(tempfile.mkdtemp(prefix="fraudfpga_tl2cgen_")) / "forest.so"
    tl2cgen.export_lib(check_model(model).to_treelite(model), toolchain="gcc",
                       libpath=str(library), params={"parallel_comp": 8}, verbose=False)
    predictor = tl2cgen.Predictor(str(library), nthread=1)

    def predict(batch: np.ndarray) -> np.ndarray:
        out = np.asarray(predictor.predict(tl2cgen.DMatrix(batch)))
        return out.reshape(len(batch), -1)[:, -1]

    return Session(predict, f"CPU ({cpu_name()})",
                   {"treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__,
                    "compiler": "gcc"}, "CPU")


register(Backend("onnxruntime-trees", "ONNX Runtime's TreeEnsembleClassifier on the forest "
                                      "(skl2onnx or onnxmltools)",
                 lambda: (module_missing("skl2onnx", "pip install skl2onnx onnxruntime")
                          or module_missing("onnxmltools", "pip install onnxmltools")),
                 _onnxruntime, model="forest"))
register(Backend("tl2cgen", "the forest compiled to C by Treelite + TL2cgen (gcc), one thread",
                 lambda: module_missing("tl2cgen", "pip install treelite tl2cgen"), _compiled,
                 model="forest"))
