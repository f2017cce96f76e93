"""TensorFlow, the mission's baseline: the Keras float twin as a `tf.function` and as an
XLA-compiled one, on the GPU when TensorFlow sees one (`pip install tensorflow[and-cuda]`),
else on the CPU.

A `tf.function` traces, and XLA compiles, once per input shape; a compilation in the middle of
a load trace would be counted as latency. Batches are therefore padded to the next power of two
up to the largest batch, and every such shape is compiled when the session is loaded, as a
serving deployment with fixed batch buckets does."""

from __future__ import annotations

import numpy as np

from . import Backend, Session, register


def _session(paths: dict, max_batch: int, jit: bool) -> Session:
    from fraudfpga.models.network import load_model

    from ..benchmark import device_info

    import tensorflow as tf

    info = device_info()
    model = load_model(paths["keras"])
    function = tf.function(lambda x: model(x, training=False), jit_compile=jit)
    n_inputs = model.inputs[0].shape[1]
    buckets = [1 << k for k in range(max(max_batch - 1, 1).bit_length() + 1)]

    def predict(batch: np.ndarray) -> np.ndarray:
        rows = batch.shape[0]
        size = next((b for b in buckets if b >= rows), rows)
        if size != rows:
            batch = np.concatenate([batch, np.zeros((size - rows, n_inputs), np.float32)])
        with tf.device(info["device"]):
            return function(tf.constant(batch)).numpy()[:rows, 0]

    for size in buckets:
        predict(np.zeros((size, n_inputs), np.float32))

    return Session(predict, f"{info['type']} ({info['name']})",
                   {"tensorflow": info["tensorflow"]}, info["type"])


def _missing() -> str | None:
    return None  # TensorFlow is a dependency of the package


register(Backend("tensorflow", "TensorFlow tf.function, host batch in and scores out",
                 _missing, lambda paths, max_batch: _session(paths, max_batch, jit=False)))
register(Backend("tensorflow-xla", "TensorFlow tf.function(jit_compile=True) (XLA)",
                 _missing, lambda paths, max_batch: _session(paths, max_batch, jit=True)))
