"""The data step: load or simulate transactions, featurise, split in time, fit the scaler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .features import FEATURE_COLUMNS, LABEL_COLUMN, add_features
from .loaders import DataError, load_csv, load_ulb_csv
from .simulator import SimulatorSettings, simulate
from .split import Scaler, Split, book_split, fraction_split

SPLIT_PARTS = ("train", "valid", "test")


def simulated_frame(config: dict, progress=print) -> pd.DataFrame:
    """Simulated transactions with their features, in the canonical column layout."""
    settings = SimulatorSettings.from_config(config["data"]["simulator"])
    tx = simulate(settings, config["seed"], progress)
    tx = add_features(tx, config["data"]["feature_delay_days"])
    progress(f"[data] {len(FEATURE_COLUMNS)} features computed")
    frame = tx[["TRANSACTION_ID", "TERMINAL_ID", "TX_FRAUD_SCENARIO", *FEATURE_COLUMNS]].copy()
    frame["label"] = tx[LABEL_COLUMN].to_numpy()
    frame["time"] = tx["TX_TIME_SECONDS"].to_numpy(np.float64)
    frame["day"] = tx["TX_TIME_DAYS"].to_numpy()
    frame["card"] = tx["CUSTOMER_ID"].to_numpy()
    frame["datetime"] = tx["TX_DATETIME"].to_numpy()
    frame.attrs["feature_columns"] = list(FEATURE_COLUMNS)
    return frame


def load_frame(config: dict, progress=print) -> pd.DataFrame:
    data = config["data"]
    if data["source"] == "simulator":
        return simulated_frame(config, progress)
    if not data["path"]:
        raise DataError(f"data.source={data['source']} needs data.path (the CSV file)")
    progress(f"[data] reading {data['path']}")
    if data["source"] == "ulb_csv":
        return load_ulb_csv(data["path"])
    if data["source"] == "csv":
        return load_csv(data["path"], data["label_column"], data["feature_columns"],
                        data["time_column"], data["card_column"])
    raise DataError(f"data.source={data['source']!r}: expected simulator, ulb_csv or csv")


def split_frame(frame: pd.DataFrame, config: dict) -> Split:
    split = config["split"]
    if split["mode"] == "book":
        missing = [c for c in ("datetime", "day", "card") if c not in frame.columns]
        if missing:
            raise DataError(f"split.mode=book needs dates and card ids (columns {missing} are "
                            "missing in this data); use split.mode=fraction for this source")
        return book_split(frame, split["train_start"], split["train_days"], split["delay_days"],
                          split["test_days"], split["valid_days"])
    if split["mode"] == "fraction":
        return fraction_split(frame, split["train_fraction"], split["valid_fraction"])
    raise DataError(f"split.mode={split['mode']!r}: expected book or fraction")


class PreparedData:
    """The split and the scaler as the data step wrote them into `<run>/data/`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.scaler = Scaler.from_dict(json.loads((self.folder / "scaler.json").read_text()))
        self.parts = {name: pd.read_parquet(self.folder / f"{name}.parquet") for name in SPLIT_PARTS}

    @property
    def features(self) -> list[str]:
        return self.scaler.features

    def inputs(self, part: str) -> np.ndarray:
        return self.scaler.transform(self.parts[part])

    def labels(self, part: str) -> np.ndarray:
        return self.parts[part]["label"].to_numpy().astype(np.int8)

    def column(self, part: str, name: str) -> np.ndarray | None:
        frame = self.parts[part]
        return frame[name].to_numpy() if name in frame.columns else None
