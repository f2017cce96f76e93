"""Real-data loaders: the ULB schema, a generic CSV, and every error naming file/column/row."""

import numpy as np
import pytest

from fraudfpga.models.loaders import ULB_COLUMNS, DataError, load_csv, load_ulb_csv


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def ulb_text(rows):
    lines = [",".join(ULB_COLUMNS)]
    for time, value, amount, label in rows:
        lines.append(",".join([str(time)] + [str(value)] * 28 + [str(amount), str(label)]))
    return "\n".join(lines) + "\n"


def test_ulb_csv_loads_29_features_with_time_and_day(tmp_path):
    path = write(tmp_path, ulb_text([(0, 0.5, 10.0, 0), (90000, -1.0, 20.0, 1), (100, 0.1, 1, 0)]))
    frame = load_ulb_csv(path)
    assert frame.attrs["feature_columns"] == [f"V{i}" for i in range(1, 29)] + ["Amount"]
    assert frame["label"].tolist() == [0, 1, 0]
    assert frame["day"].tolist() == [0, 1, 0]
    assert "card" not in frame.columns


def test_generic_csv_with_named_columns(tmp_path):
    path = write(tmp_path, "ts,card,amt,risk,y,note\n1,A,3.5,0.1,0,x\n2,B,4,0.2,1,y\n3,A,5,0.3,0,z\n")
    frame = load_csv(path, "y", ["amt", "risk"], time_column="ts", card_column="card")
    assert frame.attrs["feature_columns"] == ["amt", "risk"]
    np.testing.assert_allclose(frame["amt"], [3.5, 4, 5])
    assert frame["card"].tolist() == ["A", "B", "A"]
    auto = load_csv(path, "y", None, time_column="ts")
    assert auto.attrs["feature_columns"] == ["amt", "risk"]  # card/note are not numeric


@pytest.mark.parametrize("text, pattern", [
    ("", r"data\.csv: the file is empty"),
    ("a,b,y\n", r"data\.csv: the file has a header but no data rows"),
    ("a,y\n1,0\n2,1\n", r"data\.csv: missing column\(s\) 'b'"),
    ("a,b,y\n1,2,0\n1,oops,1\n", r"data\.csv: column 'b', row 2 \(line 3\): non-numeric value 'oops'"),
    ("a,b,y\n1,2,0\n1,,1\n", r"data\.csv: column 'b', row 2 \(line 3\): missing or infinite value"),
    ("a,b,y\n1,NaN,0\n1,2,1\n", r"data\.csv: column 'b', row 1 \(line 2\): missing or infinite"),
    ("a,b,y\n1,2,0\ninf,2,1\n", r"data\.csv: column 'a', row 2 \(line 3\): missing or infinite"),
    ("a,b,y\n1,2,0\n1,2,2\n", r"data\.csv: label column 'y', row 2 \(line 3\): value '2' is not 0 or 1"),
    ("a,b,y\n1,2,0\n1,2,0.5\n", r"label column 'y', row 2 \(line 3\): value '0.5' is not 0 or 1"),
    ("a,b,y\n1,2,0\n1,2,0\n", r"data\.csv: label column 'y' holds a single class \(0\)"),
])
def test_generic_csv_errors(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=pattern):
        load_csv(path, "y", ["a", "b"])


def test_ulb_errors_name_missing_columns_and_bad_rows(tmp_path):
    path = write(tmp_path, "Time,V1,Amount,Class\n0,1,2,0\n", "creditcard.csv")
    with pytest.raises(DataError, match=r"creditcard\.csv: missing column\(s\) 'V2', 'V3'"):
        load_ulb_csv(path)
    path = write(tmp_path, ulb_text([(0, 0.5, 10.0, 0), (1, "x", 2, 1)]), "creditcard.csv")
    with pytest.raises(DataError, match=r"creditcard\.csv: column 'V1', row 2 \(line 3\)"):
        load_ulb_csv(path)
    with pytest.raises(DataError, match=r"nothere\.csv: file not found"):
        load_ulb_csv(tmp_path / "nothere.csv")


def test_generic_csv_needs_a_label_column(tmp_path):
    path = write(tmp_path, "a,y\n1,0\n2,1\n")
    with pytest.raises(DataError, match="label_column"):
        load_csv(path, None)
