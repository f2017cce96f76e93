"""The one place that prepares TensorFlow for QKeras.

QKeras 0.9 is written for Keras 2, which TensorFlow 2.21 ships as the separate `tf_keras`
package; TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is first imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# 3: TensorFlow's C++ ERROR lines too. The pinned tf_keras asks TensorFlow 2.21's runtime for a
# dataset attribute it does not know ("E0000 ... NodeDef mentions attribute
# use_unbounded_threadpool"), once per fit and predict, between the flow's progress lines; a
# real failure still raises a Python exception.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """TensorFlow 2.21 writes C++ notices while it is imported, before TF_CPP_MIN_LOG_LEVEL
    applies ("WARNING: All log messages before absl::InitializeLog() ...", "I0000 ... oneDNN
    custom operations are on", "... Could not find cuda drivers"): the process's standard error
    goes to /dev/null for that one import. A failed import still raises its Python exception."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders import it
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                importlib.import_module("tensorflow")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        return importlib.util.spec_from_loader(name, _Imported())


class _Imported(importlib.abc.Loader):
    """Hands the import system the module imported above, instead of executing it again."""

    def create_module(self, spec):
        return sys.modules[spec.name]

    def exec_module(self, module):
        pass


if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport)
                                               for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlowImport())
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
