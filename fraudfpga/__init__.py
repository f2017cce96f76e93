"""fraudfpga: FPGA/GPU co-design toolkit for real-time payment-fraud detection."""

__version__ = "0.1.0"
