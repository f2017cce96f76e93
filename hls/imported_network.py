"""A team's own network as firmware: the input contract folded into the first layer, fixed-point
types chosen from the data, hls4ml's C simulation as the golden model.

A float network (`imported_networks.RawNetwork`) becomes firmware in four moves:
1. the input contract (`input_contract.fit_contract`: an offset and a power-of-two scale per
   input, from the training rows) gives integer codes; the firmware reads them as one fixed-point
   input type with `F` fractional bits, F chosen so that a code means about one standard deviation
   of its input per 2**F, and the contract's per-input offset and scale with the model's own
   normalization are folded into the first layer (w' = w 2**(F - shift) / std,
   b' = b + ((offset - mean) / std) w): exact algebra in float64 before any rounding;
2. each layer's types from the data, as hls4ml's profiling suggests: weights rounded to
   `imported.weight_bits` with the integer bits their largest magnitude needs, biases at the
   accumulator's fractional bits (within float32's 24 bits, the precision hls4ml reads them in), an
   accumulator that holds every product and partial sum exactly (its integer bits from the
   worst case), ReLU outputs of `imported.data_bits` bits whose integer bits cover the largest
   value on the training rows with a quarter of headroom (saturating beyond), and the logit the
   same way;
3. that network is handed to hls4ml as a Keras model of Dense and ReLU layers with those exact
   weights and per-layer precisions; its C simulation is the golden model, checked bit for bit
   against the toolkit's integer reference (`network.FixedNetwork.forward`);
4. the firmware against the library's own predictions: largest logit difference, AP change,
   decisions flipped at the operating point (no bound: rounding the weights changes the function;
   what it costs is measured).
A QKeras model keeps its quantizers: the toolkit's own QKeras conversion (`convert`), with the
input quantizer as the contract (offset 0, scale 2**frac).
"""

from __future__ import annotations

import math
import shutil

import numpy as np

from .fixed import FixedType
from .flow import compare, random_vectors
from .imported_models import ImportError_
from .imported_networks import DenseWeights, RawNetwork
from .input_contract import InputContract, fit_contract
from .network import DenseLayer, FixedNetwork

HEADROOM = 1.25  # data types cover the largest training value times this
FLOAT32_BITS = 24  # hls4ml reads weights and biases as float32: codes within 24 significant bits


def input_fraction(contract: InputContract, std: np.ndarray) -> int:
    """F: the input type's fractional bits, so that code * 2**-F is about the normalized input."""
    per_input = contract.shift + np.log2(std)
    return int(np.clip(round(float(np.median(per_input))), 0, contract.bits - 1))


def fold_contract(model: RawNetwork, contract: InputContract, frac: int) -> list[DenseWeights]:
    """The network's layers with the contract and the normalization folded into the first, so
    that it takes the firmware's input values code * 2**-frac."""
    first = model.layers[0]
    scale = np.ldexp(1.0, frac - contract.shift) / model.std
    centre = (contract.offset - model.mean) / model.std
    folded = DenseWeights(first.weight * scale[:, None], first.bias + centre @ first.weight,
                          first.relu)
    return [folded, *model.layers[1:]]


def _integer_bits(magnitude: float, signed: bool) -> int:
    """Integer bits (with the sign bit when signed) that hold values up to `magnitude`."""
    bits = math.floor(math.log2(magnitude)) + 1 if magnitude > 0 else 1
    return max(bits, 1) + (1 if signed else 0)


def _quantize(values: np.ndarray, t: FixedType) -> np.ndarray:
    return np.clip(np.rint(values * 2.0 ** t.frac), t.min_code, t.max_code).astype(np.int64)


def fixed_network(layers: list[DenseWeights], input_type: FixedType, train_codes: np.ndarray,
                  weight_bits: int, data_bits: int) -> FixedNetwork:
    """The layers with types chosen from the data (see the module's docstring, move 2)."""
    network = FixedNetwork(input_type)
    values = input_type.to_float(train_codes)
    bound, frac_in = max(abs(input_type.min_code), input_type.max_code) * input_type.lsb, \
        input_type.frac
    for k, layer in enumerate(layers, 1):
        w_int = _integer_bits(float(np.abs(layer.weight).max()), True)
        weight_t = FixedType(weight_bits, w_int, True, "RND_CONV", "SAT")
        if weight_t.frac < 0:
            raise ImportError_(f"layer {k}: weights up to {np.abs(layer.weight).max():.3g} need "
                               f"more than imported.weight_bits={weight_bits} bits")
        w_codes = _quantize(layer.weight, weight_t)
        acc_frac = frac_in + weight_t.frac
        b_int = _integer_bits(float(np.abs(layer.bias).max()), True)
        bias_t = FixedType(min(b_int + acc_frac, FLOAT32_BITS), b_int, True, "RND_CONV", "SAT")
        b_codes = _quantize(layer.bias, bias_t)
        worst = float((np.abs(w_codes).sum(axis=0) * weight_t.lsb * bound
                       + np.abs(b_codes) * bias_t.lsb).max())
        acc_int = _integer_bits(worst, True)
        if acc_int + acc_frac > 62:
            raise ImportError_(f"layer {k}: an exact accumulator needs {acc_int + acc_frac} bits "
                               "(more than 62); lower imported.weight_bits or imported.input_bits")
        accum_t = FixedType(acc_int + acc_frac, acc_int, True, "TRN", "WRAP")
        exact = weight_t.to_float(w_codes)
        values = values @ exact + bias_t.to_float(b_codes)
        if layer.relu:
            values = np.maximum(values, 0.0)
        largest = float(np.abs(values).max(initial=0.0)) * HEADROOM
        out_int = _integer_bits(largest, signed=not layer.relu)
        data_t = FixedType(data_bits, out_int, not layer.relu, "RND", "SAT")
        dense = dict(name=f"dense_{k}", weight_codes=w_codes, bias_codes=b_codes,
                     weight_type=weight_t, bias_type=bias_t, accum_type=accum_t)
        if layer.relu:
            network.layers.append(DenseLayer(**dense, result_type=accum_t,
                                             relu_name=f"relu_{k}", relu_type=data_t))
        else:
            network.layers.append(DenseLayer(**dense, result_type=data_t))
        out_t = network.layers[-1].output_type
        values = out_t.to_float(out_t.codes_from_float(values))
        bound, frac_in = max(abs(out_t.min_code), out_t.max_code) * out_t.lsb, out_t.frac
    return network


def keras_model(network: FixedNetwork):
    """The fixed-point network as a tf_keras model whose weights are its exact values, and the
    hls4ml precisions of each layer (by layer name)."""
    from fraudfpga.kerasenv import keras

    k = keras()
    inputs = k.layers.Input((network.n_inputs,), name="inputs")
    x, precisions = inputs, {"inputs": {"result": str(network.input_type)}}
    for layer in network.layers:
        dense = k.layers.Dense(layer.weight_codes.shape[1], name=layer.name)
        x = dense(x)
        dense.set_weights([layer.weight_type.to_float(layer.weight_codes).astype(np.float32),
                           layer.bias_type.to_float(layer.bias_codes).astype(np.float32)])
        precisions[layer.name] = {"weight": str(layer.weight_type), "bias": str(layer.bias_type),
                                  "accum": str(layer.accum_type),
                                  "result": str(layer.result_type)}
        if layer.relu_type is not None:
            x = k.layers.Activation("relu", name=layer.relu_name)(x)
            precisions[layer.relu_name] = {"result": str(layer.relu_type)}
    return k.Model(inputs, x), precisions


def hls_config(model, precisions: dict, hls_cfg: dict) -> dict:
    import hls4ml

    from .convert import keras2_frontend

    with keras2_frontend():
        config = hls4ml.utils.config_from_keras_model(model, granularity="name",
                                                      backend=hls_cfg["backend"])
    config["Model"]["Strategy"] = hls_cfg["strategy"]
    config["Model"]["ReuseFactor"] = hls_cfg["reuse_factor"]
    for name, precision in precisions.items():
        config["LayerName"][name]["Precision"].update(precision)
        if f"{name}_linear" in config["LayerName"]:  # hls4ml's identity after a float Dense
            config["LayerName"][f"{name}_linear"]["Precision"]["result"] = precision["result"]
    return config


def float_firmware(model: RawNetwork, raw_train: np.ndarray, names: list[str], settings: dict,
                   hls_cfg: dict, project, progress=print):
    """Contract, hls4ml configuration, fixed-point network and C simulation of a float network."""
    from .convert import convert
    from .csim import CSimulation, build_library
    from .network import network_from_hls_model

    contract = fit_contract(raw_train, names, settings["input_bits"])
    frac = input_fraction(contract, model.std)
    input_type = FixedType(contract.bits, contract.bits - frac, True, "RND_CONV", "SAT")
    chosen = fixed_network(fold_contract(model, contract, frac), input_type,
                           contract.codes(raw_train), settings["weight_bits"],
                           settings["data_bits"])
    keras, precisions = keras_model(chosen)
    config = hls_config(keras, precisions, hls_cfg)
    shutil.rmtree(project, ignore_errors=True)
    network = network_from_hls_model(convert(keras, config, hls_cfg, project))
    if network.to_dict() != chosen.to_dict():
        raise RuntimeError("hls4ml changed the chosen types or weights of the imported network; "
                           f"compare {project} with the chosen network")
    build_library(project, network, progress)
    return contract, config, network, CSimulation(project, network)


def qkeras_firmware(model: RawNetwork, names: list[str], hls_cfg: dict, project, progress=print):
    """A QKeras model through the toolkit's own conversion; its input quantizer is the contract."""
    from .convert import input_type
    from .flow import compile_firmware

    t = input_type(model.qkeras_model)
    contract = InputContract(names, t.width, np.zeros(len(names)),
                             np.full(len(names), t.frac, dtype=np.int64))
    config, network, csim = compile_firmware(model.qkeras_model, hls_cfg, project, progress)
    return contract, config, network, csim


def network_golden(network: FixedNetwork, csim, test_in: np.ndarray, test_out: np.ndarray,
                   cfg) -> tuple[dict, dict]:
    """The golden vectors (test set, then edge and random codes) and the C simulation checked
    against the integer reference on both."""
    random_in = random_vectors(network, cfg["hls"]["random_vectors"], cfg["seed"])
    random_out = csim.run(random_in)
    golden = {"test_input_codes": test_in, "test_output_codes": test_out,
              "random_input_codes": random_in, "random_output_codes": random_out}
    checks = {"test_set_vs_reference": compare(network.forward(test_in), test_out, test_in),
              "random_vs_reference": compare(network.forward(random_in), random_out, random_in)
              | {"seed": cfg["seed"]}}
    return golden, checks
