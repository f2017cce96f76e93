"""Compiled objects kept between runs and shared by every run and test worker: one folder per
kind under the user's cache ($XDG_CACHE_HOME, else ~/.cache, then fraudfpga/), each file written
atomically so that parallel builds of the same object are safe."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_folder(kind: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fraudfpga" / kind


def copy_atomically(source: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
