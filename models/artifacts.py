"""Files the data and train steps write in the run folder (other stages import these names)."""

SPLIT_PARTS = ("train", "valid", "delay", "test")
SPLIT_FILES = {part: f"data/{part}.parquet" for part in SPLIT_PARTS}
SCALER = "data/scaler.json"
DATA_SUMMARY = "data/summary.json"

QKERAS_MODEL = "models/qkeras_model.h5"
FLOAT_MODEL = "models/float_model.h5"
REFERENCE_MODELS = "models/references.joblib"
REFERENCE_SEARCH = "models/references.json"
MODEL_SUMMARY = "models/summary.json"
# The networks' own results (the train step), before the references join them.
NETWORK_METRICS = "models/network_metrics.json"
NETWORK_TEST_SCORES = "models/network_test_scores.parquet"
NETWORK_VALID_SCORES = "models/network_valid_scores.parquet"
# Every model's (the references step).
TEST_SCORES = "models/test_scores.parquet"
VALID_SCORES = "models/valid_scores.parquet"  # the selection fits', on the validation window
MODEL_METRICS = "models/metrics.json"
