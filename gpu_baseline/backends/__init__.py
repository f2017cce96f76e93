"""CPU/GPU back ends that score the float twin: one module per back end, each registering a
`Backend`. The serving benchmark drives every back end through the same interface: a
session's `predict` takes a host batch (float32, rows x features) and returns host scores, so
every figure includes the copies a deployment pays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

BACKENDS: dict[str, "Backend"] = {}


@dataclass
class Session:
    predict: Callable[[np.ndarray], np.ndarray]
    device: str   # what ran it, e.g. "CPU (AMD EPYC ...)" or "GPU (NVIDIA H100)"
    versions: dict[str, str]
    kind: str     # "GPU" or "CPU"; a CPU figure of a GPU back end is labelled "CPU fallback"


class BackendUnavailable(Exception):
    """A back end that cannot serve this run's model (said why, and skipped like a missing
    package), e.g. ONNX Runtime for a QKeras model, whose quantizers have no ONNX form."""


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    missing: Callable[[], str | None]  # why it cannot run here (with the install command), or None
    # (run folder paths {"keras": ..., "onnx": ..., "forest": ...}, largest batch) -> Session
    load: Callable[[dict, int], Session]
    model: str = "network"  # the model it serves: network (the float twin), forest or imported


def register(backend: Backend) -> Backend:
    BACKENDS[backend.name] = backend
    return backend


def _load_modules() -> None:
    from . import (forest_backends, imported_backends,  # noqa: F401  (they register)
                   onnxruntime_backend, tensorflow_backend)


def backend(name: str) -> Backend:
    _load_modules()
    if name not in BACKENDS:
        raise KeyError(f"unknown back end {name!r}; available: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def known_backends(model: str = "network") -> list[str]:
    _load_modules()
    return sorted(name for name, b in BACKENDS.items() if b.model == model)


def module_missing(module: str, install: str) -> str | None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"the Python package for {module!r} is not installed ({install})"
    return None

