"""hls4ml conversion of the trained QKeras model into HLS C++ firmware."""

from __future__ import annotations

import contextlib
import copy
import sys
from pathlib import Path

from .fixed import FixedType

SUPPORTED_LAYERS = "InputLayer, QDense (no activation), QActivation(quantized_bits | quantized_relu)"
SUPPORTED_QUANTIZERS = ("quantized_bits", "quantized_relu")


@contextlib.contextmanager
def keras2_frontend():
    """Make hls4ml 1.3 parse a tf-keras (Keras 2) model with its Keras 2 front end.

    hls4ml picks its Keras-3 parser whenever `import keras` yields Keras 3, which TensorFlow
    2.21 installs; QKeras models are tf_keras models. For the duration of the hls4ml calls,
    `keras` is pointed at `tf_keras`, then restored.
    """
    import tf_keras

    previous = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop("keras", None)
        else:
            sys.modules["keras"] = previous


def check_supported(model) -> None:
    """Raise naming the first layer or quantizer the firmware flow does not support."""
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "QDense":
            activation = getattr(layer.activation, "__name__", str(layer.activation))
            if activation != "linear":
                raise ValueError(f"layer {layer.name!r} (QDense) has activation {activation!r}; "
                                 "put the activation in its own QActivation layer")
            for attr in ("kernel_quantizer_internal", "bias_quantizer_internal"):
                _check_quantizer(layer, getattr(layer, attr), ("quantized_bits",))
            continue
        if kind == "QActivation":
            _check_quantizer(layer, layer.quantizer, SUPPORTED_QUANTIZERS)
            continue
        raise ValueError(f"layer {layer.name!r} ({kind}) is not supported; supported layers: "
                         f"{SUPPORTED_LAYERS}")


def _check_quantizer(layer, quantizer, allowed) -> None:
    name = type(quantizer).__name__ if quantizer is not None else "none"
    if name not in allowed:
        raise ValueError(f"layer {layer.name!r}: quantizer {name} is not supported; supported: "
                         f"{', '.join(allowed)}")
    alpha = getattr(quantizer, "alpha", None)
    if name == "quantized_bits" and alpha not in (None, 1, 1.0):
        raise ValueError(f"layer {layer.name!r}: quantized_bits with alpha={alpha!r} is not "
                         "supported; use alpha=1 so that values are plain fixed point")


def input_type(model) -> FixedType:
    """The firmware's input precision: the model's input quantizer (QKeras rounds half to even
    and saturates)."""
    quant = next((l for l in model.layers if type(l).__name__ == "QActivation"), None)
    if quant is None or type(quant.quantizer).__name__ != "quantized_bits":
        raise ValueError("the model must start with a QActivation(quantized_bits) input quantizer")
    q = quant.quantizer
    return FixedType(int(q.bits), int(q.integer) + 1, True, "RND_CONV", "SAT")


def firmware_config(model, hls_cfg: dict) -> dict:
    """The hls4ml configuration (a plain dict, saved in the run folder for the user to read).

    The input precision is set to the input quantizer's type so that hls4ml removes the
    quantizer as an identity. ReLU outputs use `hls.activation_rounding` instead of the
    RND_CONV (round half to even) that hls4ml copies from QKeras, so that the RTL generator,
    which rounds only TRN or RND, computes the same function.
    """
    import hls4ml

    check_supported(model)
    with keras2_frontend():
        config = hls4ml.utils.config_from_keras_model(model, granularity="name",
                                                      backend=hls_cfg["backend"])
    config["Model"]["Strategy"] = hls_cfg["strategy"]
    config["Model"]["ReuseFactor"] = hls_cfg["reuse_factor"]
    layers = config["LayerName"]
    input_layer = model.layers[0].name
    layers[input_layer]["Precision"]["result"] = str(input_type(model))
    rounding = hls_cfg["activation_rounding"]
    if rounding not in ("TRN", "RND", "RND_CONV"):
        raise ValueError(f"hls.activation_rounding={rounding!r}: expected TRN, RND or RND_CONV")
    for layer in model.layers:
        if type(layer).__name__ == "QActivation" and type(layer.quantizer).__name__ == "quantized_relu":
            current = FixedType.parse(layers[layer.name]["Precision"]["result"])
            layers[layer.name]["Precision"]["result"] = str(FixedType(
                current.width, current.integer, current.signed, rounding, current.overflow))
    return config


def convert(model, config: dict, hls_cfg: dict, output_dir: Path):
    """Convert to an hls4ml model and write the HLS project into `output_dir`."""
    import hls4ml

    with keras2_frontend():
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, hls_config=copy.deepcopy(config), backend=hls_cfg["backend"],
            io_type=hls_cfg["io_type"], output_dir=str(output_dir), project_name="myproject",
            part=hls_cfg["part"], clock_period=hls_cfg["clock_period_ns"])
        hls_model.write()
    return hls_model
