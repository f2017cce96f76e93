"""Time-ordered train / validation / test split and the input scaler.

`book` mode is the protocol of the shared spec: a training period, an unused delay period
(labels arrive late), a test period from which cards known to be compromised are removed day by
day. The validation window is the end of the training period, never a random sample. The delay
period's transactions are kept without using their labels: models refitted on the whole
training period set their operating threshold on them (`models/operating.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .loaders import DataError


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    delay: pd.DataFrame  # between training and test; labels unused (empty in fraction mode)

    def summary(self) -> dict:
        def describe(frame: pd.DataFrame) -> dict:
            info = {"rows": int(len(frame)), "frauds": int(frame["label"].sum()),
                    "fraud_rate": float(frame["label"].mean()) if len(frame) else 0.0}
            if "datetime" in frame:
                info["first"] = str(frame["datetime"].min())
                info["last"] = str(frame["datetime"].max())
            return info

        return {name: describe(getattr(self, name)) for name in ("train", "valid", "delay", "test")}


def _check_parts(split: Split, where: str) -> Split:
    for name in ("train", "valid", "test"):
        part = getattr(split, name)
        if part.empty:
            raise DataError(f"{where}: the {name} part of the split is empty; check the split "
                            "dates/fractions against the data's time range")
    for name in ("train", "valid"):
        classes = np.unique(getattr(split, name)["label"])
        if classes.size < 2:
            raise DataError(f"{where}: the {name} part holds a single class ({int(classes[0])}); "
                            "widen the training period or change the split")
    return split


def book_split(frame: pd.DataFrame, train_start: str, train_days: int, delay_days: int,
               test_days: int, valid_days: int) -> Split:
    """The handbook protocol on a frame with `datetime`, `day`, `card` and `label` columns."""
    if not 0 < valid_days < train_days:
        raise DataError(f"split.valid_days={valid_days} must be between 1 and "
                        f"split.train_days-1={train_days - 1}")
    start = pd.Timestamp(train_start)
    in_train = (frame["datetime"] >= start) & (frame["datetime"] < start + pd.Timedelta(days=train_days))
    train_period = frame[in_train]
    if train_period.empty:
        raise DataError(f"split.train_start={train_start}: no transaction in the training period")
    first_day = int(train_period["day"].min())
    fit = train_period[train_period["day"] < first_day + train_days - valid_days]
    valid = train_period[train_period["day"] >= first_day + train_days - valid_days]

    delay = frame[(frame["day"] >= first_day + train_days)
                  & (frame["day"] < first_day + train_days + delay_days)]
    known = set(train_period.loc[train_period["label"] == 1, "card"])
    test_parts = []
    for offset in range(test_days):
        test_day = first_day + train_days + delay_days + offset
        # Labels of the day just before the delay period ends become known now.
        revealed = frame[(frame["day"] == first_day + train_days + offset - 1) & (frame["label"] == 1)]
        known |= set(revealed["card"])
        day_rows = frame[frame["day"] == test_day]
        test_parts.append(day_rows[~day_rows["card"].isin(known)])
    test = pd.concat(test_parts)
    return _check_parts(Split(fit, valid, test, delay),
                        f"split (book mode, train_start {train_start})")


def fraction_split(frame: pd.DataFrame, train_fraction: float, valid_fraction: float,
                   delay_fraction: float = 0.0) -> Split:
    """For data without dates: rows in time order cut by fractions into train, validation,
    delay (labels unused) and test."""
    if not (0 < train_fraction and 0 < valid_fraction and 0 <= delay_fraction
            and train_fraction + valid_fraction + delay_fraction < 1):
        raise DataError(f"split fractions train={train_fraction}, valid={valid_fraction}, "
                        f"delay={delay_fraction} must be positive and add up to less than 1")
    ordered = frame.iloc[np.argsort(frame["time"].to_numpy(), kind="stable")]
    cuts = np.cumsum([int(len(ordered) * f)
                      for f in (train_fraction, valid_fraction, delay_fraction)])
    return _check_parts(Split(ordered.iloc[:cuts[0]], ordered.iloc[cuts[0]:cuts[1]],
                              ordered.iloc[cuts[2]:], ordered.iloc[cuts[1]:cuts[2]]),
                        "split (fraction mode)")


WINSOR_QUANTILE = 0.001


@dataclass
class Scaler:
    """Standardisation fitted on training rows only; saved with the run because the
    firmware's fixed-point inputs are the scaled features."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str]) -> "Scaler":
        """Mean and standard deviation of the training rows winsorised at the 0.1 % and 99.9 %
        quantiles, so that a few wild values cannot flatten a feature for every other row.
        A feature constant within those quantiles (a rare flag) keeps its plain statistics."""
        values = frame[features].to_numpy(np.float64)
        low, high = np.quantile(values, [WINSOR_QUANTILE, 1 - WINSOR_QUANTILE], axis=0)
        clipped = np.clip(values, low, high)
        robust = clipped.std(axis=0) > 0
        mean = np.where(robust, clipped.mean(axis=0), values.mean(axis=0))
        scale = np.where(robust, clipped.std(axis=0), values.std(axis=0))
        return cls(list(features), mean, np.where(scale > 0, scale, 1.0))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise DataError(f"scaler: missing feature column(s) {missing}")
        return ((frame[self.features].to_numpy(np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": self.features, "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Scaler":
        return cls(list(data["features"]), np.asarray(data["mean"]), np.asarray(data["scale"]))
