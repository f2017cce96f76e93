"""The data step: load or simulate transactions, featurise, split in time, fit the scaler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import DATA_SUMMARY, SCALER, SPLIT_FILES, SPLIT_PARTS
from .features import FEATURE_COLUMNS, LABEL_COLUMN, add_features
from .loaders import DataError, load_csv, load_ulb_csv, row_and_line
from .simulator import SimulatorSettings, simulate
from .streaming import add_streaming_features, paper_scale
from .split import Scaler, Split, book_split, fraction_split


def simulated_frame(config: dict, progress=print) -> pd.DataFrame:
    """Simulated transactions with their features, in the canonical column layout."""
    settings = SimulatorSettings.from_config(config["data"]["simulator"])
    tx = simulate(settings, config["data"]["seed"], progress)
    data = config["data"]
    if data["features"] == "streaming":
        tx = add_streaming_features(tx, data["feature_delay_days"], data["streaming_extra_day"],
                                    progress)
    else:
        tx = add_features(tx, data["feature_delay_days"])
    progress(f"[data] {len(FEATURE_COLUMNS)} features computed ({data['features']})")
    frame = tx[["TRANSACTION_ID", "TERMINAL_ID", "TX_FRAUD_SCENARIO", *FEATURE_COLUMNS]].copy()
    frame["label"] = tx[LABEL_COLUMN].to_numpy()
    frame["time"] = tx["TX_TIME_SECONDS"].to_numpy(np.float64)
    frame["day"] = tx["TX_TIME_DAYS"].to_numpy()
    frame["card"] = tx["CUSTOMER_ID"].to_numpy()
    frame["datetime"] = tx["TX_DATETIME"].to_numpy()
    frame.attrs["feature_columns"] = list(FEATURE_COLUMNS)
    frame.attrs["source"] = "simulated data"
    if "streaming" in tx.attrs:
        settings = config["data"]["simulator"]
        frame.attrs["streaming"] = tx.attrs["streaming"] | {"scale": {
            "this_population": paper_scale(tx.attrs["streaming"]["state_bytes"],
                                           settings["n_customers"], settings["n_terminals"],
                                           len(tx) / (settings["n_days"] * 86400)),
            "a_bank": paper_scale(tx.attrs["streaming"]["state_bytes"], 100_000_000, 1_000_000,
                                  50_000)}}
    return frame


def load_frame(config, progress=print) -> pd.DataFrame:
    data = config["data"]
    if data["source"] == "simulator":
        return simulated_frame(config, progress)
    progress(f"[data] reading {data['path']}")
    if data["source"] == "ulb_csv":
        frame = load_ulb_csv(data["path"])
    else:
        frame = load_csv(data["path"], data["label_column"], data["feature_columns"],
                         data["time_column"], data["card_column"])
    frame.attrs["source"] = str(data["path"])
    return frame


def check_extreme_values(split: Split, scaler: Scaler, max_abs_scaled: float, source: str) -> None:
    """Refuse a value so far from the training data that it would wreck training or the
    fixed-point inputs, naming the column, the row and the value."""
    for name in SPLIT_PARTS:
        part = getattr(split, name)
        scaled = np.abs(scaler.transform(part).astype(np.float64))
        bad = scaled > max_abs_scaled
        if bad.any():
            rows, cols = np.nonzero(bad)
            row, col = int(rows[0]), int(cols[0])
            feature = scaler.features[col]
            where = row_and_line(int(part.index[row])) if source != "simulated data" else \
                f"transaction {int(part.index[row])}"
            raise DataError(
                f"{source}: column '{feature}', {where}: value {part[feature].iloc[row]:.6g} is "
                f"{scaled[row, col]:.3g} standard deviations from the training mean (limit "
                f"data.max_abs_scaled = {max_abs_scaled:g}); it would flatten this feature for "
                f"every other row. Remove or correct it ({int(bad.sum())} such values in the "
                f"{name} part)")


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
        return fraction_split(frame, split["train_fraction"], split["valid_fraction"],
                              split["delay_fraction"])
    raise DataError(f"split.mode={split['mode']!r}: expected book or fraction")


class PreparedData:
    """The split and the scaler as the data step wrote them into the run folder."""

    def __init__(self, run_root: Path):
        root = Path(run_root)
        self.scaler = Scaler.from_dict(json.loads((root / SCALER).read_text()))
        self.parts = {name: pd.read_parquet(root / SPLIT_FILES[name]) for name in SPLIT_PARTS}
        self.summary = json.loads((root / DATA_SUMMARY).read_text())

    def test_period(self) -> str:
        """How the report names the test set: a date range in book mode, rows otherwise."""
        test = self.summary["split"]["test"]
        if self.summary.get("split_mode") == "book" and "first" in test:
            return f"test period {test['first'][:10]} to {test['last'][:10]}"
        return "test set (the last rows in time order)"

    def inputs(self, part: str) -> np.ndarray:
        return self.scaler.transform(self.parts[part])

    def labels(self, part: str) -> np.ndarray:
        return self.parts[part]["label"].to_numpy().astype(np.int8)

    def column(self, part: str, name: str) -> np.ndarray | None:
        frame = self.parts[part]
        return frame[name].to_numpy() if name in frame.columns else None
