"""Files the baseline step writes in the run folder."""

BASELINE = "baseline/results.json"
ONNX_MODEL = "baseline/float_model.onnx"
WEIGHTS = "baseline/float_weights.npz"
EXPORT = "baseline/export.json"
SERVING = "baseline/serving.json"
DECISION_PLOT = "baseline/decision.png"
FOREST_SERVING = "forest/serving.json"
IMPORTED_SERVING = "imported/serving.json"
TRANSACTION_DECISION = "baseline/transaction_decision.json"  # the streaming engine + forest, per transaction
