"""The firmware's fixed-point network as plain data, and its independent numpy reference.

`FixedNetwork` is read from the hls4ml model graph (layer precisions, quantized weights) and
saved as `hls/network.json`. Its `forward` computes the firmware's function with integer
arithmetic only, following hls4ml's latency-strategy dense layer: every product and the bias
are cast to the accumulator type, added input by input, then cast to the result type; ReLU
compares the dense result with zero and casts it to its own result type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fixed import FixedType, _check_int64


@dataclass
class DenseLayer:
    name: str
    weight_codes: np.ndarray        # (n_in, n_out) integer codes
    bias_codes: np.ndarray          # (n_out,)
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    relu_name: str | None = None
    relu_type: FixedType | None = None  # output type of the ReLU after this layer, if any

    @property
    def output_type(self) -> FixedType:
        return self.relu_type if self.relu_type is not None else self.result_type


@dataclass
class FixedNetwork:
    input_type: FixedType
    layers: list[DenseLayer] = field(default_factory=list)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].weight_codes.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].weight_codes.shape[1]

    @property
    def output_type(self) -> FixedType:
        return self.layers[-1].output_type

    def fraud_scores(self, output_codes: np.ndarray) -> np.ndarray:
        """The fraud probability of output codes (the logit through a sigmoid, in float64)."""
        return 1.0 / (1.0 + np.exp(-self.output_type.to_float(np.asarray(output_codes)[:, 0])))

    def check_input_codes(self, codes: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Reject codes the input type cannot hold; the error names the row and the input."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_inputs:
            raise ValueError(f"expected input codes of shape (rows, {self.n_inputs}), got {codes.shape}")
        bad = (codes < self.input_type.min_code) | (codes > self.input_type.max_code)
        if bad.any():
            row, col = (int(i[0]) for i in np.nonzero(bad))
            name = names[col] if names else f"input {col}"
            raise ValueError(f"input code {int(codes[row, col])} for {name!r} in row {row} is out of "
                             f"range for {self.input_type} [{self.input_type.min_code}, "
                             f"{self.input_type.max_code}] ({int(bad.sum())} such values)")
        return codes.astype(np.int64)

    def forward(self, input_codes: np.ndarray) -> np.ndarray:
        """Output codes (rows, n_outputs) of the firmware for input codes (rows, n_inputs)."""
        x, frac = self.check_input_codes(input_codes), self.input_type.frac
        for layer in self.layers:
            accum = layer.accum_type
            product_frac = frac + layer.weight_type.frac
            bias = accum.cast_codes(layer.bias_codes, layer.bias_type.frac)
            _check_int64(x, layer.weight_type.width, f"{layer.name} products")
            if accum.overflow == "WRAP" and product_frac <= accum.frac:
                acc = accum.overflow_codes(bias + _wrapped_sum(x, layer, accum.frac - product_frac))
            else:
                acc = np.broadcast_to(bias, (x.shape[0], bias.size)).copy()
                for i in range(x.shape[1]):
                    product = accum.cast_codes(x[:, i:i + 1] * layer.weight_codes[i], product_frac)
                    acc = accum.overflow_codes(acc + product)
            x = layer.result_type.cast_codes(acc, accum.frac)
            frac = layer.result_type.frac
            if layer.relu_type is not None:
                x = layer.relu_type.cast_codes(np.maximum(x, 0), frac)
                frac = layer.relu_type.frac
        return x

    def to_dict(self) -> dict:
        return {
            "input_type": str(self.input_type),
            "layers": [{
                "name": l.name, "relu_name": l.relu_name,
                "weight_type": str(l.weight_type), "bias_type": str(l.bias_type),
                "accum_type": str(l.accum_type), "result_type": str(l.result_type),
                "relu_type": str(l.relu_type) if l.relu_type else None,
                "weight_codes": l.weight_codes.tolist(), "bias_codes": l.bias_codes.tolist(),
            } for l in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FixedNetwork":
        layers = [DenseLayer(
            name=d["name"], relu_name=d["relu_name"],
            weight_codes=np.asarray(d["weight_codes"], dtype=np.int64),
            bias_codes=np.asarray(d["bias_codes"], dtype=np.int64),
            weight_type=FixedType.parse(d["weight_type"]), bias_type=FixedType.parse(d["bias_type"]),
            accum_type=FixedType.parse(d["accum_type"]), result_type=FixedType.parse(d["result_type"]),
            relu_type=FixedType.parse(d["relu_type"]) if d["relu_type"] else None,
        ) for d in data["layers"]]
        return cls(FixedType.parse(data["input_type"]), layers)

    def save(self, path: Path) -> None:
        from fraudfpga.runfolder import write_json

        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "FixedNetwork":
        return cls.from_dict(json.loads(Path(path).read_text()))


def network_from_hls_model(hls_model) -> FixedNetwork:
    """Read the dense/ReLU chain, precisions and quantized weights from an hls4ml model."""
    def precision(layer, attr) -> FixedType:
        return FixedType.parse(str(layer.get_attr(attr).precision))

    def output_type(layer) -> FixedType:
        return FixedType.parse(str(layer.get_output_variable().type.precision))

    layers = list(hls_model.get_layers())
    if layers[0].class_name != "Input":
        raise ValueError(f"first hls4ml layer is {layers[0].class_name}, expected Input")
    network = FixedNetwork(output_type(layers[0]))
    for layer in layers[1:]:
        kind = layer.class_name
        activation = str(layer.get_attr("activation") or "").lower()
        if kind == "Dense":
            weight_t, bias_t = precision(layer, "weight_t"), precision(layer, "bias_t")
            network.layers.append(DenseLayer(
                name=layer.name,
                weight_codes=weight_t.exact_codes(layer.weights["weight"].data, f"{layer.name} weights"),
                bias_codes=bias_t.exact_codes(layer.weights["bias"].data, f"{layer.name} biases"),
                weight_type=weight_t, bias_type=bias_t, accum_type=precision(layer, "accum_t"),
                result_type=output_type(layer)))
        elif kind == "Activation" and activation == "linear" and network.layers \
                and output_type(layer) == network.layers[-1].output_type:
            continue  # hls4ml's identity after a Dense layer of a float model: same type
        elif kind in ("Activation", "ReLU") and activation == "relu" and network.layers \
                and network.layers[-1].relu_type is None:
            network.layers[-1].relu_name = layer.name
            network.layers[-1].relu_type = output_type(layer)
        else:
            raise ValueError(f"hls4ml layer {layer.name!r} ({kind}, activation {activation or 'none'}) "
                             "is not supported by the fixed-point reference; supported: Dense, "
                             "each optionally followed by one ReLU")
    if not network.layers:
        raise ValueError("the hls4ml model has no Dense layer")
    return network


def _wrapped_sum(x: np.ndarray, layer: DenseLayer, shift: int) -> np.ndarray:
    """Sum of the layer's products, each shifted left by `shift` (the exact cast of a product
    to an accumulator with at least its fractional bits), as one integer matrix product.

    With a wrapping accumulator, wrapping after every addition and wrapping once at the end
    give the same code (addition modulo 2**width), so the per-input loop collapses into a
    matmul as long as the unwrapped sum stays within int64, which is checked."""
    peak = int(np.abs(x).max(initial=0)) * int(np.abs(layer.weight_codes).max(initial=0))
    _check_int64(np.array([peak * x.shape[1]]), shift, f"{layer.name} sum of products")
    if peak * x.shape[1] < 2 ** 53:  # every partial sum is an integer float64 holds exactly
        return np.rint(x.astype(np.float64) @ layer.weight_codes.astype(np.float64)).astype(
            np.int64) << shift
    return (x @ layer.weight_codes.astype(np.int64)) << shift

