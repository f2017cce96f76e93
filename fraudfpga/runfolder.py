"""The run folder `fpga_projects/<run>/` and its manifest.

Each step (data, train, ...) reads and writes artifacts in the run folder. The manifest records
for every step the configuration it ran with, the hashes of its inputs and outputs, the tool
versions and when it ran. A step whose configuration and inputs are unchanged, and whose
outputs are still intact, is not redone. Files are written under a temporary name and renamed
into place, so an interrupted step never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

TRACKED_PACKAGES = (
    "fraudfpga", "numpy", "pandas", "scikit-learn", "tensorflow", "tf-keras", "qkeras",
    "hls4ml", "da4ml", "cocotb",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 over fraudfpga's own source files: a step reruns when the code that made its
    outputs changed, not only its configuration or inputs."""
    import fraudfpga

    digest = hashlib.sha256()
    roots = [Path(p) for p in fraudfpga.__path__]
    for name in ("models", "hls", "sim", "gpu_baseline"):
        module = __import__(f"fraudfpga.{name}", fromlist=["__path__"])
        roots += [Path(p) for p in module.__path__]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".yaml", ".v", ".cpp") and "__pycache__" not in path.parts:
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


class RunFolder:
    """One run: `root/` with `manifest.json`."""

    def __init__(self, root: str | Path, config: dict):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.manifest_path = self.root / "manifest.json"
        if self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text())
        else:
            self.manifest = {"run": self.root.name, "steps": {}}

    def path(self, relative: str) -> Path:
        return self.root / relative

    def step_key(self, config_part: dict, inputs: list[str]) -> tuple[str, dict[str, str]]:
        input_hashes = {name: file_sha256(self.path(name)) for name in inputs}
        key = {"config": config_part, "inputs": input_hashes, "code": code_fingerprint()}
        return json_sha256(key), input_hashes

    def is_current(self, step: str, key: str) -> bool:
        """True when `step` last ran with `key` and all its outputs are intact."""
        record = self.manifest["steps"].get(step)
        if not record or record.get("key") != key:
            return False
        for name, digest in record.get("outputs", {}).items():
            path = self.path(name)
            if not path.is_file() or file_sha256(path) != digest:
                return False
        return True

    def record(self, step: str, key: str, config_part: dict, inputs: dict[str, str],
               outputs: list[str], started: dt.datetime, extra: dict | None = None) -> None:
        self.manifest["steps"][step] = {
            "key": key,
            "config": config_part,
            "inputs": inputs,
            "outputs": {name: file_sha256(self.path(name)) for name in outputs},
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now().isoformat(timespec="seconds"),
            "versions": package_versions(),
            "code_sha256": code_fingerprint(),
            "command": " ".join(sys.argv),
            **(extra or {}),
        }
        self.manifest["config"] = self.config
        self.manifest["seed"] = self.config.get("seed")
        write_json(self.manifest_path, self.manifest)

    def step_outputs(self, step: str) -> list[str]:
        return list(self.manifest["steps"].get(step, {}).get("outputs", {}))
