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
