"""The one place that prepares TensorFlow for QKeras.

QKeras 0.9 is written for Keras 2, which TensorFlow 2.21 ships as the separate `tf_keras`
package; TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is first imported.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# 3: TensorFlow's C++ ERROR lines too. The pinned tf_keras asks TensorFlow 2.21's runtime for a
# dataset attribute it does not know ("E0000 ... NodeDef mentions attribute
# use_unbounded_threadpool"), once per fit and predict, between the flow's progress lines; a
# real failure still raises a Python exception.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Known, harmless warnings of the pinned stack (HDF5 is the format QKeras' loader reads).
warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
warnings.filterwarnings("ignore", message=r"The `keras.constraints.serialize\(\)` API")
warnings.filterwarnings("ignore", category=DeprecationWarning, message="distutils Version")


def keras():
    """The Keras 2 API (`tf_keras`) that QKeras models are built with."""
    import tf_keras

    return tf_keras


def set_seeds(seed: int) -> None:
    import tensorflow as tf

    keras().utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
