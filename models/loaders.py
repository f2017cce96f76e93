"""Loaders for real transaction data, with errors that name the file, column and row.

Every loader returns a frame in the canonical layout used by the rest of the flow: the
feature columns, `label` (0/1), `time` (for time ordering), and where the data has them,
`card` (card/customer id, for Card Precision@k) and `day` (day index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fraudfpga.errors import FlowError

ULB_FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
ULB_COLUMNS = ["Time", *ULB_FEATURES, "Class"]
SECONDS_PER_DAY = 86400


class DataError(FlowError, ValueError):
    """Input data that cannot be used; the message names the file, column and row."""


def _read_csv(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the file: {error}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a readable CSV file: {error}") from None
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows")
    return frame


def row_and_line(index: int) -> str:
    """Row position -> the row and the line number a user sees in an editor (header: line 1)."""
    return f"row {index + 1} (line {index + 2})"


def _numeric_column(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    raw = frame[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad_text = np.isnan(values) & ~raw.str.lower().isin(["nan", "", "inf", "-inf", "+inf"]).to_numpy()
    if bad_text.any():
        first = int(np.flatnonzero(bad_text)[0])
        raise DataError(f"{path}: column '{column}', {row_and_line(first)}: "
                        f"non-numeric value {frame[column].iloc[first]!r}"
                        f" ({int(bad_text.sum())} such rows)")
    missing = ~np.isfinite(values) | (raw == "").to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        shown = frame[column].iloc[first] or "empty"
        raise DataError(f"{path}: column '{column}', {row_and_line(first)}: missing or infinite value "
                        f"({shown}); {int(missing.sum())} such rows in this column")
    return values


def _check_columns(path: Path, frame: pd.DataFrame, needed: list[str]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
                        f"the file has {', '.join(map(repr, frame.columns[:40]))}")


def _labels(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    values = _numeric_column(path, frame, column)
    invalid = (values != 0) & (values != 1)
    if invalid.any():
        first = int(np.flatnonzero(invalid)[0])
        raise DataError(f"{path}: label column '{column}', {row_and_line(first)}: value "
                        f"{frame[column].iloc[first]!r} is not 0 or 1 "
                        f"({int(invalid.sum())} such rows)")
    classes = np.unique(values)
    if classes.size < 2:
        raise DataError(f"{path}: label column '{column}' holds a single class "
                        f"({int(classes[0])}) in all {values.size} rows; training needs "
                        "both frauds (1) and genuine transactions (0)")
    return values.astype(np.int8)


def load_csv(path: str | Path, label_column: str, feature_columns: list[str] | None = None,
             time_column: str | None = None, card_column: str | None = None) -> pd.DataFrame:
    """A generic CSV: the user names the label, the features and optional time/card columns."""
    path = Path(path)
    if not label_column:
        raise DataError(f"{path}: data.label_column must name the label column")
    return _canonical(path, _read_csv(path), label_column, feature_columns, time_column,
                      card_column)


def _canonical(path: Path, frame: pd.DataFrame, label_column: str,
               feature_columns: list[str] | None, time_column: str | None,
               card_column: str | None) -> pd.DataFrame:
    extra = [c for c in (time_column, card_column) if c]
    if feature_columns is None:
        _check_columns(path, frame, [label_column, *extra])
        candidates = [c for c in frame.columns if c not in (label_column, *extra)]
        feature_columns = [c for c in candidates
                           if pd.to_numeric(frame[c].str.strip(), errors="coerce").notna().any()]
        if not feature_columns:
            raise DataError(f"{path}: no numeric feature column besides '{label_column}'")
    _check_columns(path, frame, [*feature_columns, label_column, *extra])
    out = pd.DataFrame({c: _numeric_column(path, frame, c) for c in feature_columns})
    out["label"] = _labels(path, frame, label_column)
    if time_column:
        out["time"] = _numeric_column(path, frame, time_column)
        out["day"] = np.floor((out["time"] - out["time"].min()) / SECONDS_PER_DAY).astype(np.int64)
    else:
        out["time"] = np.arange(len(out), dtype=np.float64)
    if card_column:
        out["card"] = frame[card_column].to_numpy()
    out.attrs["feature_columns"] = list(feature_columns)
    return out


def load_ulb_csv(path: str | Path) -> pd.DataFrame:
    """The ULB credit-card data set (`creditcard.csv`: Time, V1..V28, Amount, Class)."""
    path = Path(path)
    frame = _read_csv(path)
    _check_columns(path, frame, ULB_COLUMNS)
    return _canonical(path, frame, "Class", ULB_FEATURES, time_column="Time", card_column=None)
