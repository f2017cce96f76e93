"""fraudfpga: FPGA/GPU co-design toolkit for real-time payment-fraud detection."""

__version__ = "0.1.0"

# TensorFlow's environment (legacy Keras, its C++ log level, its import-time notices silenced)
# before any module of the toolkit or of a test imports it.
from . import kerasenv  # noqa: E402, F401
