"""Reading CSV and NPZ host data: what is accepted, and what each refusal says."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.data_io import read_features, read_training_data


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_target_defaults_to_last_column_and_keeps_integer_kind(tmp_path):
    path = write(tmp_path, "d.csv", "a, b ,label\n1,2.5,0\n3,-4e1,2\n\n")  # spaces, a blank line
    data = read_training_data(path)
    assert data.features == ["a", "b"] and data.target == "label" and data.y_kind == "integer"
    np.testing.assert_array_equal(data.X, [[1.0, 2.5], [3.0, -40.0]])
    assert data.X.dtype == np.float64 and data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y, [0, 2])


@pytest.mark.parametrize("target", ["t", "1", "-2"])
def test_csv_target_by_name_or_position(tmp_path, target):
    path = write(tmp_path, "d.csv", "x,t,z\n1,0.5,3\n2,1.0,4\n")
    data = read_training_data(path, target)
    assert data.target == "t" and data.y_kind == "float" and data.features == ["x", "z"]
    np.testing.assert_array_equal(data.y, [0.5, 1.0])


def test_csv_text_target_is_kept_as_text(tmp_path):
    data = read_training_data(write(tmp_path, "d.csv", "x,name\n1,cat\n2,dog\n"))
    assert data.y_kind == "text" and data.y.tolist() == ["cat", "dog"]


def test_features_are_picked_by_name_in_any_order(tmp_path):
    path = write(tmp_path, "p.csv", "c,label,a,b\n3,x,1,2\n6,y,4,5\n")
    X = read_features(path, ["a", "b", "c"], 3)  # the text target column is never parsed
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3\n", "line 3: 1 fields"),
        ("a,b,y\n1,zz,0\n", "line 2: column 'b' holds 'zz'"),
        ("a,b,y\n1,nan,0\n", "NaN or inf"),
        ("a,b,y\n1,,0\n", "column 'b' is empty"),
        ("a,b,y\n1,2,\n", "target column 'y' is empty"),
        ("a,a,y\n1,2,0\n", "duplicate column names"),
        ("a,,y\n1,2,0\n", "column 2 of the header has no name"),
        ("1,2,3\n4,5,6\n", "no header line"),
        ("a,b,y\n", "no data rows"),
        ("", "is empty"),
        ("y\n1\n2\n", "single column"),
    ],
)
def test_csv_refusals_name_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_training_data(write(tmp_path, "bad.csv", text))


def test_missing_feature_columns_are_listed(tmp_path):
    path = write(tmp_path, "p.csv", "a,c\n1,2\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) 'b'"):
        read_features(path, ["a", "b"], 2)


def test_npz_kinds_and_refusals(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(6).reshape(3, 2), y=np.array([0, 1, 1], dtype=np.uint8))
    data = read_training_data(path)
    assert data.y_kind == "integer" and data.features == ["x0", "x1"] and data.X.dtype == np.float64
    np.savez(path, X=np.ones((3, 2)), y=np.ones((3, 2)))
    assert read_training_data(path).y_kind == "float"
    np.savez(path, X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(ValueError, match="match X's 3 rows"):
        read_training_data(path)
    with pytest.raises(ValueError, match="--target selects a CSV column"):
        read_training_data(path, "y")
    with pytest.raises(ValueError, match="model takes 5"):
        read_features(path, None, 5)
    np.savez(path, X=np.array([[1.0, np.inf]]), y=np.ones(1))
    with pytest.raises(ValueError, match="NaN or inf"):
        read_training_data(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        read_training_data(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is a folder"):
        read_training_data(tmp_path)
    fake = write(tmp_path, "f.npz", "plain text")
    with pytest.raises(ValueError, match="not an NPZ"):
        read_training_data(fake)
