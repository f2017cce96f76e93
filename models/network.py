"""The fraud MLP: a QKeras model (the firmware's network) and its float twin.

Both end in a single logit; the sigmoid is applied outside the firmware and a decision is a
threshold on the logit.
"""

from __future__ import annotations

from fraudfpga.kerasenv import keras


def quantizer_specs(model_cfg: dict) -> dict[str, tuple[int, int]]:
    """(bits, integer bits) of each quantizer; integer bits exclude the sign as in QKeras."""
    return {
        "input": (model_cfg["input_bits"], model_cfg["input_integer"]),
        "weight": (model_cfg["weight_bits"], model_cfg["weight_integer"]),
        "bias": (model_cfg["bias_bits"], model_cfg["bias_integer"]),
        "activation": (model_cfg["activation_bits"], model_cfg["activation_integer"]),
    }


def build_qkeras_model(n_inputs: int, model_cfg: dict):
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    k = keras()
    spec = quantizer_specs(model_cfg)
    inputs = k.Input((n_inputs,), name="features")
    x = QActivation(quantized_bits(*spec["input"], alpha=1), name="input_quant")(inputs)

    def dense(width: int, name: str):
        return QDense(width, name=name,
                      kernel_quantizer=quantized_bits(*spec["weight"], alpha=1),
                      bias_quantizer=quantized_bits(*spec["bias"], alpha=1),
                      kernel_initializer="lecun_uniform")

    for index, width in enumerate(model_cfg["hidden"], start=1):
        x = dense(width, f"dense_{index}")(x)
        x = QActivation(quantized_relu(*spec["activation"]), name=f"relu_{index}")(x)
    logit = dense(1, "logit")(x)
    return k.Model(inputs, logit, name="fraud_mlp_qkeras")


def build_float_model(n_inputs: int, model_cfg: dict):
    k = keras()
    inputs = k.Input((n_inputs,), name="features")
    x = inputs
    for index, width in enumerate(model_cfg["hidden"], start=1):
        x = k.layers.Dense(width, name=f"dense_{index}", kernel_initializer="lecun_uniform")(x)
        x = k.layers.Activation("relu", name=f"relu_{index}")(x)
    logit = k.layers.Dense(1, name="logit", kernel_initializer="lecun_uniform")(x)
    return k.Model(inputs, logit, name="fraud_mlp_float")


def load_model(path):
    """Reload a saved model; QKeras custom objects are registered for the QKeras one."""
    from qkeras.utils import load_qmodel

    return load_qmodel(str(path), compile=False)


def model_summary(model, model_cfg: dict | None) -> dict:
    """Parameters and bits per layer (bits only for the quantized model)."""
    layers, total_params, total_bits = [], 0, 0
    spec = quantizer_specs(model_cfg) if model_cfg else None
    for layer in model.layers:
        params = int(layer.count_params())
        entry = {"name": layer.name, "type": type(layer).__name__, "params": params}
        if hasattr(layer, "units"):
            entry["units"] = int(layer.units)
        if spec and params:
            weights, biases = (int(w.numpy().size) for w in layer.weights[:2])
            entry["weight_bits"] = spec["weight"][0]
            entry["bias_bits"] = spec["bias"][0]
            entry["bits"] = weights * spec["weight"][0] + biases * spec["bias"][0]
            total_bits += entry["bits"]
        for attr in ("quantizer", "activation"):
            if hasattr(layer, attr) and getattr(layer, attr) is not None:
                entry[attr] = str(getattr(layer, attr))
        layers.append(entry)
        total_params += params
    summary = {"name": model.name, "parameters": total_params, "layers": layers}
    if spec:
        summary["parameter_bits"] = total_bits
        summary["quantizers"] = {k: {"bits": b, "integer": i} for k, (b, i) in spec.items()}
    return summary
