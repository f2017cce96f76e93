"""Compression of the QKeras network: magnitude pruning and distillation from a float teacher.

- Pruning (`train.prune_sparsity`): every QDense kernel is wrapped by
  tensorflow-model-optimization's `prune_low_magnitude` with a polynomial-decay schedule that
  reaches the target sparsity after the first third of the epochs (`PRUNE_SHARE`); early
  stopping ignores the epochs before that, so the kept weights are at the target sparsity. The
  wrappers are stripped before the model is saved, leaving plain QDense layers whose pruned
  kernel entries are exactly zero (da4ml then builds no adder for them).
- Distillation (`train.distill_weight` w): a larger float teacher (`train.teacher_hidden`) is
  trained first; the QKeras model is trained on the soft target (1 - w) * label + w * teacher
  probability. Binary cross-entropy is linear in its target, so this is exactly
  (1 - w) * BCE(label) + w * BCE(teacher).
"""

from __future__ import annotations

import numpy as np

PRUNE_SHARE = 1 / 3  # share of the epochs over which the sparsity ramps up
PRUNE_FREQUENCY = 50  # steps between mask updates


def prune_epochs(epochs: int) -> int:
    """Epochs before the pruning schedule has reached its target."""
    return max(1, int(round(epochs * PRUNE_SHARE)))


def with_pruning(model, sparsity: float, epochs: int, steps_per_epoch: int):
    """A copy of `model` whose QDense layers are pruned to `sparsity` by the end of
    `prune_epochs(epochs)` epochs, and the callback that advances the schedule."""
    import tensorflow_model_optimization as tfmot

    from fraudfpga.kerasenv import keras

    end = max(1, prune_epochs(epochs) * steps_per_epoch)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end,
        frequency=min(PRUNE_FREQUENCY, end))

    def wrap(layer):
        if type(layer).__name__ == "QDense":
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras().models.clone_model(model, clone_function=wrap)
    return pruned, tfmot.sparsity.keras.UpdatePruningStep()


def strip_pruning(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


def kernel_sparsity(model) -> dict[str, float]:
    """Share of exactly-zero kernel entries of each QDense layer."""
    return {layer.name: float(np.mean(layer.get_weights()[0] == 0))
            for layer in model.layers if type(layer).__name__ == "QDense"}


def soft_targets(labels: np.ndarray, teacher_probability: np.ndarray, weight: float) -> np.ndarray:
    return ((1 - weight) * labels + weight * teacher_probability).astype(np.float32)
