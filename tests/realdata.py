"""Small card-less CSVs in the two real-data layouts the README documents, with a learnable
fraud signal: the ULB credit-card schema (`Time, V1..V28, Amount, Class`) and a generic CSV
(a label, a time column, no card column)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ULB_FEATURES = [f"V{i}" for i in range(1, 29)]


def _fraud_labels(rng: np.random.Generator, rows: int, rate: float) -> np.ndarray:
    label = (rng.random(rows) < rate).astype(int)
    label[:2] = [0, 1]  # both classes even for a tiny file
    return label


def write_ulb_like(path: Path, rows: int = 3000, fraud_rate: float = 0.04, seed: int = 0) -> Path:
    """The ULB schema: seconds since the first row in `Time` (no dates), PCA-like `V1..V28`, a
    positive `Amount`, `Class` 0/1. Frauds are shifted on a few components, as in the real data."""
    rng = np.random.default_rng(seed)
    label = _fraud_labels(rng, rows, fraud_rate)
    frame = pd.DataFrame(rng.normal(size=(rows, 28)), columns=ULB_FEATURES)
    for column, shift in (("V4", 2.0), ("V11", 1.5), ("V14", -2.5), ("V17", -1.5)):
        frame[column] += shift * label * rng.uniform(0.5, 1.5, rows)
    frame.insert(0, "Time", np.sort(rng.uniform(0, 2 * 86400, rows)).round())
    frame["Amount"] = np.round(rng.lognormal(3.5, 1.2, rows) * (1 + label), 2)
    frame["Class"] = label
    frame.to_csv(path, index=False)
    return path


def write_generic(path: Path, rows: int = 3000, fraud_rate: float = 0.04, seed: int = 1) -> Path:
    """A merchant's own export: `unix_time` (seconds), four numeric features, a text column
    that is not a feature, `is_fraud`; no card column."""
    rng = np.random.default_rng(seed)
    label = _fraud_labels(rng, rows, fraud_rate)
    frame = pd.DataFrame({
        "unix_time": 1_700_000_000 + np.sort(rng.integers(0, 3 * 86400, rows)),
        "amount": np.round(rng.lognormal(3.0, 1.0, rows) * (1 + 2 * label), 2),
        "merchant_risk": rng.beta(2, 8, rows) + 0.3 * label,
        "hour": rng.integers(0, 24, rows),
        "velocity_1h": rng.poisson(1 + 3 * label),
        "channel": rng.choice(["pos", "web", "app"], rows),
        "is_fraud": label,
    })
    frame.to_csv(path, index=False)
    return path


IMPORT_RUN = ["data.source=ulb_csv", "split.mode=fraction", "hls.random_vectors=100",
              "rtl.vectors=200", "rtl.random_vectors=100", "rtl.axis_pattern_vectors=100",
              "rtl.axis_duty_cycles=[0.5]", "rtl.axis_seeds=[1]"]


def import_step(folder: Path, csv: Path, name: str, model, extra=()):
    """The `imported` step of run `name` (a copy of `folder/p/base`, the CSV's data step) on
    `model`; its exit status and run folder."""
    import shutil

    from conftest import cli

    projects = folder / "p"
    if not (projects / name).exists():
        shutil.copytree(projects / "base", projects / name)
    settings = [*IMPORT_RUN, f"data.path={csv}", f"imported.model={model}",
                "firmware.families=[network,imported]", *extra]
    code = cli("step", "imported", "--run", name, "--projects-dir", str(projects), "--reconfigure",
               settings=settings)
    return code, projects / name
