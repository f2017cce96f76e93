"""The forest's golden model: conifer's C++ emulation compiled with g++ and driven in batches.

conifer's cpp backend writes the converted forest as JSON and includes `conifer.h`, nlohmann
JSON and the ap_types headers; the PyPI wheel ships none of the last two, so the build takes
nlohmann JSON from PyPI (`nlohmann-json`) and ap_types from hls4ml.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
from numpy import ctypeslib

from fraudfpga.compile_cache import cache_folder, copy_atomically
from fraudfpga.errors import PrerequisiteError, ToolMissing

from .fixed import FixedType
from .forest import (FixedForest, conifer_precision, score_type, snap_thresholds,
                     sum_bound)

PROJECT_NAME = "forest"
LIBRARY = "forest_batch.so"


def include_dirs() -> list[Path]:
    import conifer
    import hls4ml
    import nlohmann_json

    dirs = [Path(conifer.__path__[0]) / "backends/cpp/include",
            Path(nlohmann_json.__path__[0]) / "include",
            Path(hls4ml.__path__[0]) / "templates/vivado/ap_types"]
    for folder, package in zip(dirs, ("conifer", "nlohmann-json", "hls4ml")):
        if not folder.is_dir():
            raise ToolMissing(f"{folder}: headers of {package} missing; reinstall it "
                              f"(.venv/bin/pip install --force-reinstall {package})")
    return dirs


def convert(model, in_type: FixedType, score_frac_bits: int, name: str = "forest"):
    """conifer's conversion of `model` (its converter chosen by `forest_models`), every threshold
    snapped to the input grid (`snap_thresholds`), and the score type that holds its sums.
    Returns (ensemble, score type, score sense)."""
    import logging

    import conifer

    from .forest_models import check_model

    entry = check_model(model, name)
    logging.getLogger("conifer").setLevel(logging.ERROR)
    ensemble = snap_thresholds(conifer.converters.get_converter(entry.converter).convert(model),
                               in_type)
    return ensemble, score_type(sum_bound(ensemble), score_frac_bits), entry.score_sense


def write_project(ensemble: dict, forest_in: FixedType, forest_out: FixedType,
                  project_dir: Path) -> None:
    """conifer's cpp-backend project of the converted ensemble (the JSON the emulation reads)."""
    import conifer

    project_dir = Path(project_dir).resolve()
    shutil.rmtree(project_dir, ignore_errors=True)
    project_dir.mkdir(parents=True)
    config = {"Backend": "cpp", "OutputDir": str(project_dir), "ProjectName": PROJECT_NAME,
              "InputPrecision": conifer_precision(forest_in),
              "ThresholdPrecision": conifer_precision(forest_in),
              "ScorePrecision": conifer_precision(forest_out)}
    conifer.converters.make_model(ensemble, config).write()


def build_library(project_dir: Path, forest: FixedForest, progress=print) -> Path:
    """Compile conifer.h with the batch entry point (templates/forest_batch.cpp)."""
    if shutil.which("g++") is None:
        raise ToolMissing("g++ not found: the forest's C++ emulation needs a C++ compiler "
                          "(Debian/Ubuntu: apt-get install g++)")
    project_dir = Path(project_dir).resolve()
    source = project_dir / "forest_batch.cpp"
    source.write_text(resources.files("fraudfpga.hls").joinpath("templates/forest_batch.cpp")
                      .read_text())
    target = project_dir / LIBRARY
    partial = target.with_name(f".{target.name}.partial")
    flags = ["-O2", "-fPIC", "-std=c++17", "-pthread", "-w",
             *[f"-I{d}" for d in include_dirs()],
             f"-DFRAUDFPGA_INPUT_T={conifer_precision(forest.input_type)}",
             f"-DFRAUDFPGA_SCORE_T={conifer_precision(forest.output_type)}"]
    stored = library_cache() / _library_key(flags, source) / LIBRARY
    if stored.is_file():
        progress(f"[forest] conifer's C++ emulation for these types compiled before: {stored}")
        copy_atomically(stored, target)
        return target
    progress(f"[forest] compiling conifer's C++ emulation ({source.name}, conifer.h)")
    done = _compile(["g++", *flags, "-shared", str(source), "-o", str(partial)])
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"g++ failed to compile conifer's emulation in {project_dir}:\n"
                           f"{done.stderr[-4000:]}")
    stored.parent.mkdir(parents=True, exist_ok=True)
    copy_atomically(partial, stored)
    os.replace(partial, target)
    return target


def library_cache() -> Path:
    """Compiled emulations, one per source, flags (the input and score types among them),
    compiler and header packages: the library reads the forest from its JSON at run time, so
    every forest of the same types shares it (7 s of g++ each, about 15 times a test run)."""
    return cache_folder("conifer-emulation")


def _library_key(flags: list[str], source: Path) -> str:
    from importlib import metadata

    compiler = _compile(["g++", "--version"]).stdout.splitlines()[:1]
    versions = [metadata.version(p) for p in ("conifer", "nlohmann-json", "hls4ml")]
    digest = hashlib.sha256(json.dumps([flags, compiler, versions]).encode())
    digest.update(source.read_bytes())
    return digest.hexdigest()[:24]


def _compile(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


class ConiferEmulation:
    """Input codes through conifer's compiled emulation; returns output codes (rows, 1)."""

    def __init__(self, project_dir: Path, forest: FixedForest, threads: int | None = None):
        project_dir = Path(project_dir).resolve()
        library = project_dir / LIBRARY
        self.model_json = project_dir / f"{PROJECT_NAME}.json"
        if not library.is_file() or not self.model_json.is_file():
            raise PrerequisiteError(f"{library}: the forest's emulation is missing; run the "
                                    "forest step (make forest)")
        self.forest = forest
        self.threads = threads or os.cpu_count() or 1
        self._batch = ctypes.CDLL(str(library)).forest_batch
        self._batch.restype = ctypes.c_int
        array = ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
        self._batch.argtypes = [ctypes.c_char_p, array, array, ctypes.c_long, ctypes.c_int,
                                ctypes.c_int]

    def run(self, input_codes: np.ndarray) -> np.ndarray:
        codes = self.forest.check_input_codes(input_codes)
        values = np.ascontiguousarray(self.forest.input_type.to_float(codes))
        out = np.empty(codes.shape[0], dtype=np.float64)
        status = self._batch(str(self.model_json).encode(), values, out, codes.shape[0],
                             codes.shape[1], self.threads)
        if status != 0:
            raise RuntimeError(f"conifer's emulation could not read {self.model_json}")
        return self.forest.output_type.exact_codes(out, "conifer emulation outputs")[:, None]
