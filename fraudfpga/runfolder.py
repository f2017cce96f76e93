"""The run folder `fpga_projects/<run>/`: its configuration, its manifest and atomic writes.

`config.yaml` is the run's effective configuration, written when the run is created; later
commands on the run use it. `manifest.json` records for every step the configuration values it
read, the hashes of its inputs and outputs, the code it ran, the tool versions and when it ran.
Steps of one run may run at the same time in several processes (`make -j`): every change of
the manifest re-reads it under a file lock and changes only its own step's entry. Files are
written under a temporary name and renamed into place, so an interrupted step never leaves a
file that looks complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import yaml

from .config import ConfigError, apply, changed_keys, default_config, lookup, merge, read_yaml
from .schema import RUN_NAME, migrate, validate

PROJECTS_DIR = Path("fpga_projects")
CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
TRACKED_PACKAGES = (
    "fraudfpga", "numpy", "pandas", "scikit-learn", "tensorflow", "tf-keras", "qkeras",
    "hls4ml", "da4ml", "cocotb", "xgboost", "optuna", "shap",
)
# The shared core every step's code key includes.
CORE_MODULES = ("fraudfpga.runfolder", "fraudfpga.registry", "fraudfpga.config",
                "fraudfpga.schema", "fraudfpga.errors", "fraudfpga.kerasenv")
CODE_SUFFIXES = (".py", ".v", ".cpp", ".h")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def code_files(modules: tuple[str, ...]) -> tuple[Path, ...]:
    """Source files of the named modules or packages (a package: its whole folder)."""
    files: set[Path] = set()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None and not spec.submodule_search_locations:
            raise ValueError(f"code fingerprint: no module {name!r}")
        if spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                files.update(p for p in Path(root).rglob("*")
                             if p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts)
        else:
            files.add(Path(spec.origin))
    return tuple(sorted(files))


@functools.cache
def code_fingerprint(modules: tuple[str, ...]) -> str:
    """SHA-256 over the source of the named modules plus the shared core: a step reruns when
    the code that made its outputs changed, and only then."""
    digest = hashlib.sha256()
    for path in code_files(tuple(sorted(set(modules) | set(CORE_MODULES)))):
        digest.update(f"{path.parent.name}/{path.name}".encode())
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


def run_root(projects_dir: Path, name: str) -> Path:
    """`projects_dir/name`, refusing names that are not plain folder names."""
    if not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"run: {name!r} is not a valid run name; use letters, digits, '.', '_' "
                          "and '-' only (it names a folder under the projects folder)")
    return Path(projects_dir) / name


class HashCache:
    """File hashes within one command, refreshed when a file's size or mtime changes."""

    def __init__(self):
        self._known: dict[Path, tuple[tuple[int, int], str]] = {}

    def __call__(self, path: Path) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        known = self._known.get(path)
        if known is None or known[0] != stamp:
            known = self._known[path] = (stamp, file_sha256(path))
        return known[1]


class RunFolder:
    """One run: `root/` with `config.yaml` and `manifest.json`."""

    def __init__(self, root: str | Path, config: dict):
        self.root = Path(root)
        self.config = config
        self.hashes = HashCache()
        # Set by the registry while a step runs: the optional inputs it may use, and those
        # left out as stale (path -> why), for the step to show.
        self.optional_inputs: list[str] = []
        self.stale_inputs: dict[str, str] = {}

    @classmethod
    def open(cls, projects_dir: Path, name: str, requested: list[tuple[str, dict]],
             reconfigure: bool = False, allowed_changes: tuple[str, ...] = (),
             progress=print) -> "RunFolder":
        """Open (or create) a run with its kept configuration.

        The run's `config.yaml` plus what the user asked for now (`requested`: a YAML file,
        `--set` overrides). Asking for a value other than the run's is refused, naming the
        keys, unless `reconfigure` (or every changed key is in `allowed_changes`: the options
        of the command itself, such as `sim --vectors`); then the run's configuration changes
        and exactly the steps that read a changed key become out of date.
        """
        root = run_root(projects_dir, name)
        saved_path = root / CONFIG_FILE
        base = default_config()
        migrated = []
        if saved_path.is_file():
            saved = read_yaml(saved_path, "run configuration") or {}
            if not isinstance(saved, dict):
                raise ConfigError(f"{saved_path}: the top level must be a mapping of sections")
            migrated = migrate(saved)
            for note in migrated:
                progress(f"[run] {name}: configuration from an earlier version: {note}")
            merge(base, saved, str(saved_path))
        base["run"] = name
        config = apply(base, requested)
        config["run"] = name
        validate(config)
        changed = changed_keys(base, config)
        run = cls(root, config)
        if saved_path.is_file() and changed:
            listing = ", ".join(f"{k}: {lookup(base, k)!r} -> {lookup(config, k)!r}" for k in changed)
            if not reconfigure and not set(changed) <= set(allowed_changes):
                raise ConfigError(
                    f"run '{name}' was made with other settings ({listing}); its configuration is "
                    f"{saved_path}. Add --reconfigure to change the run's configuration (the steps "
                    "that read these keys will rerun), or pick another run name with --run.")
            progress(f"[run] {name}: configuration changed: {listing}")
        if not saved_path.is_file() or changed or migrated:
            root.mkdir(parents=True, exist_ok=True)
            with run.locked():
                with atomic_path(saved_path) as tmp:
                    tmp.write_text(f"# configuration of run '{name}' (fraudfpga); change it with "
                                   "--set/--config and --reconfigure\n"
                                   + yaml.safe_dump(config, sort_keys=False))
        return run

    def path(self, relative: str) -> Path:
        return self.root / relative

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock on the run's manifest and configuration (across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def manifest(self) -> dict:
        """The manifest as it is on disk now."""
        path = self.root / MANIFEST_FILE
        if not path.is_file():
            return {"run": self.root.name, "steps": {}}
        return json.loads(path.read_text())

    def entry(self, step: str) -> dict | None:
        return self.manifest()["steps"].get(step)

    def record(self, step: str, entry: dict) -> None:
        """Write one step's entry; other steps' entries, also those written meanwhile by other
        processes, are kept."""
        with self.locked():
            manifest = self.manifest()
            manifest["steps"][step] = entry
            manifest["run"] = self.root.name
            write_json(self.root / MANIFEST_FILE, manifest)

    def forget(self, step: str) -> None:
        with self.locked():
            manifest = self.manifest()
            if manifest["steps"].pop(step, None) is not None:
                write_json(self.root / MANIFEST_FILE, manifest)

