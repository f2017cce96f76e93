"""Files the hls and vendor-synthesis steps write in the run folder."""

PROJECT = "hls/project"
HLS4ML_CONFIG = "hls/hls4ml_config.json"
NETWORK = "hls/network.json"
GOLDEN = "hls/golden.npz"
BIT_EXACTNESS = "hls/bit_exactness.json"
FIRMWARE_METRICS = "hls/metrics.json"
FIRMWARE_SOURCES = (f"{PROJECT}/firmware/myproject.cpp", f"{PROJECT}/firmware/defines.h",
                    f"{PROJECT}/firmware/parameters.h")
CSIM_LIBRARY = f"{PROJECT}/firmware/fraudfpga_batch.so"

VENDOR = "synth/vendor.json"
VENDOR_PROJECT = "synth/vendor_project"

REASON_CODES = "hls/reason_codes.csv"
EXPLAIN_SUMMARY = "hls/explain.json"
EXPLAIN_PLOT = "hls/shap_importance.png"

FOREST_DIR = "forest"
FOREST_MODEL = "forest/model.joblib"
FOREST_CONIFER = "forest/conifer"
FOREST_FIXED = "forest/forest.json"
FOREST_GOLDEN = "forest/golden.npz"
FOREST_EXACTNESS = "forest/bit_exactness.json"
FOREST_METRICS = "forest/metrics.json"
FOREST_VALID_SCORES = "forest/valid_scores.parquet"  # the selection forest's, on the validation window
FOREST_GPU_TREES = "forest/gpu_trees.npz"  # the float forest as node arrays for gpu_standalone.py
FOREST_REASONS = "forest/reason_codes.csv"

IMPORTED_DIR = "imported"  # a team's own tree ensemble or network (imported.model)
IMPORTED_CONIFER = "imported/conifer"
IMPORTED_FIXED = "imported/firmware_model.json"  # {"generator": forest|network, ...}
IMPORTED_HLS_PROJECT = "imported/hls_project"  # a network's hls4ml project
IMPORTED_HLS_CONFIG = "imported/hls4ml_config.json"
IMPORTED_GOLDEN = "imported/golden.npz"
IMPORTED_CONTRACT = "imported/input_contract.json"
IMPORTED_REFERENCE = "imported/input_contract_reference.py"
IMPORTED_CHECK = "imported/bit_exactness.json"
IMPORTED_METRICS = "imported/metrics.json"
IMPORTED_REASONS = "imported/reason_codes.csv"
IMPORTED_EXPLAIN = "imported/explain.json"
FOREST_EXPLAIN = "forest/explain.json"
