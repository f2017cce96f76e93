"""The golden model: hls4ml's firmware C++ compiled with g++ and driven in batches."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
from numpy import ctypeslib

from fraudfpga.errors import PrerequisiteError, ToolMissing

from .network import FixedNetwork

LIBRARY = "firmware/fraudfpga_batch.so"


def build_library(project_dir: Path, network: FixedNetwork, progress=print) -> Path:
    """Compile the firmware and the batch entry point into one shared library."""
    if shutil.which("g++") is None:
        raise ToolMissing("g++ not found: the C simulation needs a C++ compiler "
                          "(Debian/Ubuntu: apt-get install g++)")
    project_dir = Path(project_dir).resolve()
    template = resources.files("fraudfpga.hls").joinpath("templates/fraudfpga_batch.cpp")
    (project_dir / "fraudfpga_batch.cpp").write_text(template.read_text())
    target = project_dir / LIBRARY
    partial = target.with_name(f".{target.name}.partial")
    flags = ["-O3", "-fPIC", "-std=c++17", "-pthread", "-w", f"-I{project_dir}",
             f"-I{project_dir / 'firmware'}", f"-I{project_dir / 'firmware/ap_types'}",
             f'-DWEIGHTS_DIR="{project_dir / "firmware/weights"}"',
             f"-DFRAUDFPGA_N_IN={network.n_inputs}", f"-DFRAUDFPGA_N_OUT={network.n_outputs}"]
    sources = ["fraudfpga_batch.cpp"]  # it includes firmware/myproject.cpp
    progress(f"[hls] compiling the C simulation ({', '.join(sources)})")
    done = subprocess.run(["g++", *flags, "-shared", *[str(project_dir / s) for s in sources],
                           "-o", str(partial)], capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"g++ failed to compile the firmware in {project_dir}:\n{done.stderr[-4000:]}")
    os.replace(partial, target)
    return target


class CSimulation:
    """Run input codes through the compiled firmware; returns output codes."""

    def __init__(self, project_dir: Path, network: FixedNetwork, threads: int | None = None):
        library = Path(project_dir).resolve() / LIBRARY
        if not library.is_file():
            raise PrerequisiteError(f"{library}: C simulation library missing; run the hls step "
                                    "(make hls)")
        self.network = network
        self.threads = threads or os.cpu_count() or 1
        self._lib = ctypes.CDLL(str(library))
        self._batch = self._lib.fraudfpga_batch
        self._batch.restype = None
        array = ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
        self._batch.argtypes = [array, array, ctypes.c_long, ctypes.c_int]

    def run(self, input_codes: np.ndarray) -> np.ndarray:
        codes = self.network.check_input_codes(input_codes)
        values = np.ascontiguousarray(self.network.input_type.to_float(codes))
        out = np.empty((codes.shape[0], self.network.n_outputs), dtype=np.float64)
        self._batch(values, out, codes.shape[0], self.threads)
        return self.network.output_type.exact_codes(out, "C simulation outputs")
