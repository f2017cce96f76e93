"""hls4ml conversion, the C simulation against the numpy reference, and error cases."""

import shutil

import numpy as np
import pytest

from fraudfpga.config import default_config
from fraudfpga.errors import ToolMissing
from fraudfpga.hls.codec import FirmwareCodec
from fraudfpga.hls.convert import check_supported, convert, firmware_config
from fraudfpga.hls.csim import CSimulation, build_library
from fraudfpga.hls.flow import edge_vectors, random_vectors
from fraudfpga.hls.network import FixedNetwork, network_from_hls_model
from fraudfpga.kerasenv import keras, set_seeds
from fraudfpga.models.network import build_qkeras_model
from fraudfpga.models.split import Scaler

N_INPUTS = 6


def model_config(bits, hidden):
    return {"hidden": hidden, "input_bits": bits, "input_integer": bits // 2,
            "weight_bits": bits, "weight_integer": 1, "bias_bits": bits, "bias_integer": 2,
            "activation_bits": bits, "activation_integer": bits // 2 - 1}


def random_qkeras_model(bits, hidden, seed=0):
    set_seeds(seed)
    model = build_qkeras_model(N_INPUTS, model_config(bits, hidden))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(-1.5, 1.5, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def converted(model, tmp_path, rounding="RND"):
    """The hls4ml project written and read back as a FixedNetwork, its C simulation not compiled
    (for tests that only read the network)."""
    hls_cfg = default_config()["hls"] | {"activation_rounding": rounding}
    hls_model = convert(model, firmware_config(model, hls_cfg), hls_cfg, tmp_path / "project")
    return hls_model, network_from_hls_model(hls_model)


def firmware(model, tmp_path, rounding="RND"):
    hls_model, network = converted(model, tmp_path, rounding)
    build_library(tmp_path / "project", network, progress=lambda _: None)
    return hls_model, network, CSimulation(tmp_path / "project", network)


@pytest.mark.parametrize("bits, hidden", [(4, [8]), (6, [8, 4]), (8, [10, 6]), (8, [5, 4, 3])])
def test_csim_equals_numpy_reference_on_random_and_edge_inputs(tmp_path, bits, hidden):
    _, network, csim = firmware(random_qkeras_model(bits, hidden), tmp_path)
    assert network.input_type.width == bits and len(network.layers) == len(hidden) + 1
    codes = random_vectors(network, 3000, seed=1)
    expected = network.forward(codes)
    np.testing.assert_array_equal(csim.run(codes), expected)
    # The random inputs drive ReLU outputs into saturation and to zero.
    relu_max = network.layers[0].relu_type.max_code
    first = network.layers[0].relu_type.cast_codes(
        np.maximum(network.layers[0].result_type.cast_codes(
            codes @ network.layers[0].weight_codes, network.input_type.frac
            + network.layers[0].weight_type.frac), 0), network.layers[0].result_type.frac)
    assert (first == relu_max).any() and (first == 0).any()


def test_reference_notices_a_wrong_weight(tmp_path):
    _, network, csim = firmware(random_qkeras_model(8, [8]), tmp_path)
    codes = random_vectors(network, 500, seed=2)
    broken = FixedNetwork.from_dict(network.to_dict())
    broken.layers[0].weight_codes[3, 2] += 1
    assert (broken.forward(codes) != csim.run(codes)).any()


def test_one_matrix_product_equals_wrapping_after_every_addition():
    """The reference sums a layer's products as one integer matrix product; with an accumulator
    that wraps (here: often, 12 bits) that equals wrapping after every product, as the
    firmware adds them."""
    from fraudfpga.hls.fixed import FixedType
    from fraudfpga.hls.network import DenseLayer

    rng = np.random.default_rng(5)
    weight, accum = FixedType(8, 2), FixedType(12, 2, overflow="WRAP")
    layer = DenseLayer("dense", rng.integers(-128, 128, (12, 7)), rng.integers(-128, 128, 7),
                       weight, FixedType(8, 4), accum, FixedType(12, 2))
    network = FixedNetwork(FixedType(8, 5), [layer])
    codes = rng.integers(-128, 128, (2000, 12))
    shift = accum.frac - (network.input_type.frac + weight.frac)
    acc = np.tile(accum.cast_codes(layer.bias_codes, layer.bias_type.frac), (len(codes), 1))
    for i in range(codes.shape[1]):
        acc = accum.overflow_codes(acc + accum.overflow_codes(
            (codes[:, i:i + 1] * layer.weight_codes[i]) << shift))
    wraps = np.abs(codes @ layer.weight_codes) << shift > accum.max_code
    assert wraps.mean() > 0.5
    np.testing.assert_array_equal(network.forward(codes), acc)


def test_convergent_rounding_reproduces_qkeras_exactly(tmp_path):
    model = random_qkeras_model(8, [8, 4])
    _, network, csim = firmware(model, tmp_path, rounding="RND_CONV")
    rng = np.random.default_rng(3)
    # Inputs on a finer grid than the input type, some beyond its range (saturation).
    scaled = np.round(rng.uniform(-6, 6, (5000, N_INPUTS)) * 64) / 64
    codec = FirmwareCodec(Scaler([f"f{i}" for i in range(N_INPUTS)], np.zeros(N_INPUTS),
                                 np.ones(N_INPUTS)), network.input_type, network.output_type)
    firmware_logit = codec.logits(csim.run(codec.codes_from_scaled(scaled)))
    qkeras_logit = model.predict(scaled.astype(np.float32), verbose=0)[:, 0]
    np.testing.assert_array_equal(firmware_logit, qkeras_logit.astype(np.float64))


def test_batch_library_equals_hls4ml_predict(tmp_path):
    hls_model, network, csim = firmware(random_qkeras_model(6, [8]), tmp_path)
    codes = random_vectors(network, 300, seed=4)
    hls_model.compile()
    predicted = np.asarray(hls_model.predict(network.input_type.to_float(codes)))
    np.testing.assert_array_equal(network.output_type.to_float(csim.run(codes)).ravel(),
                                  predicted.ravel())


def test_network_json_round_trip(tmp_path):
    _, network = converted(random_qkeras_model(4, [8]), tmp_path)
    network.save(tmp_path / "network.json")
    again = FixedNetwork.load(tmp_path / "network.json")
    codes = edge_vectors(network)
    np.testing.assert_array_equal(again.forward(codes), network.forward(codes))


def test_out_of_range_input_codes_are_refused(tmp_path):
    _, network, csim = firmware(random_qkeras_model(4, [8]), tmp_path)
    codes = np.zeros((3, N_INPUTS), dtype=np.int64)
    codes[2, 4] = network.input_type.max_code + 1
    with pytest.raises(ValueError, match=r"input code 8 for 'input 4' in row 2 is out of range"):
        csim.run(codes)
    with pytest.raises(ValueError, match="out of range"):
        network.forward(codes)


def test_codec_saturates_scaled_features_and_rejects_nan():
    scaler = Scaler(["amount", "risk"], np.zeros(2), np.ones(2))
    from fraudfpga.hls.fixed import FixedType

    codec = FirmwareCodec(scaler, FixedType(8, 5, True, "RND_CONV", "SAT"), FixedType(12, 4))
    codes = codec.codes_from_scaled(np.array([[100.0, -0.0625], [-100.0, 0.1875]]))
    assert codes.tolist() == [[127, 0], [-128, 2]]  # ties to even: -0.5 -> 0, 1.5 -> 2 (x8)
    assert codec.saturated(np.array([[100.0, 0.0], [-100.0, 1.0]])) == {"amount": 2}
    with pytest.raises(ValueError, match=r"feature 'risk' in row 1 is nan"):
        codec.codes_from_scaled(np.array([[0.0, 0.0], [0.0, np.nan]]))


def test_unsupported_layers_and_quantizers_are_named():
    from qkeras import QActivation, QDense, quantized_bits, quantized_tanh

    k = keras()
    inputs = k.Input((4,))
    x = QActivation(quantized_bits(8, 3, alpha=1), name="input_quant")(inputs)
    conv = k.layers.Reshape((4, 1), name="to_sequence")(x)
    with pytest.raises(ValueError, match=r"layer 'to_sequence' \(Reshape\) is not supported"):
        check_supported(k.Model(inputs, conv))
    tanh = QActivation(quantized_tanh(8), name="squash")(x)
    with pytest.raises(ValueError, match=r"layer 'squash': quantizer quantized_tanh is not supported"):
        check_supported(k.Model(inputs, tanh))
    auto = QDense(2, kernel_quantizer=quantized_bits(8, 1, alpha="auto"),
                  bias_quantizer=quantized_bits(8, 1, alpha=1), name="scaled")(x)
    with pytest.raises(ValueError, match=r"layer 'scaled': quantized_bits with alpha='auto'"):
        check_supported(k.Model(inputs, auto))
    fused = QDense(2, activation="relu", kernel_quantizer=quantized_bits(8, 1, alpha=1),
                   bias_quantizer=quantized_bits(8, 1, alpha=1), name="fused")(x)
    with pytest.raises(ValueError, match=r"layer 'fused' \(QDense\) has activation 'relu'"):
        check_supported(k.Model(inputs, fused))


def test_missing_compiler_is_reported(tmp_path, monkeypatch):
    _, network = converted(random_qkeras_model(4, [8]), tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing, match="apt-get install g\\+\\+"):
        build_library(tmp_path / "project", network, progress=lambda _: None)
