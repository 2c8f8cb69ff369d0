"""Feature columns: kinds, fills from the training rows, one-hot categories,
scaling, and the record that travels in the model file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pandas", reason="pandas is a dependency of xpnet's command line")

from xpnet.columns import column_kinds, features_from_info, fit_features  # noqa: E402
from xpnet.data_io import DataError, read_header, read_table  # noqa: E402

TEXT = "n,color,zip,y\n1,red,02134,0\n,blue,10001,1\n3,red,02134,0\n5,,10001,1\n"


def load(tmp_path, text=TEXT, categorical=()):
    path = tmp_path / "d.csv"
    path.write_text(text)
    table = read_table(read_header(path), text=list(categorical))
    return table, column_kinds(table, ["n", "color", "zip"], set(categorical))


def test_kinds_numbers_words_and_forced_categories(tmp_path):
    _, kinds = load(tmp_path)
    assert [c.kind for c in kinds] == ["number", "category", "number"]
    _, kinds = load(tmp_path, categorical=["zip"])
    assert [c.kind for c in kinds] == ["number", "category", "category"]


def test_fills_come_from_training_rows_and_encoding_is_one_hot(tmp_path):
    table, kinds = load(tmp_path, categorical=["zip"])
    rows = np.array([0, 1, 2])  # row 3 (n=5) is not a training row: the mean is (1 + 3) / 2
    features, X = fit_features(table, kinds, rows, "mean")
    assert [c.fill for c in features.columns] == [2.0, "red", "02134"]
    assert features.columns[2].categories == ["02134", "10001"] and features.width == 5
    raw = features.encode(table)
    np.testing.assert_array_equal(raw[:, 0], [1.0, 2.0, 3.0, 5.0])
    np.testing.assert_array_equal(raw[:, 1:3], [[0, 1], [1, 0], [0, 1], [0, 1]])  # blue, red; row 3 filled: red
    np.testing.assert_allclose(X[rows].mean(axis=0), 0.0, atol=1e-12)  # standardised on the training rows


def test_missing_error_names_the_line_and_option(tmp_path):
    table, kinds = load(tmp_path)
    with pytest.raises(DataError, match="line 3: column 'n' has a missing value") as info:
        fit_features(table, kinds, np.arange(4), "error")
    assert "--missing" in info.value.hint


def test_unknown_categories(tmp_path):
    table, kinds = load(tmp_path)
    features, _ = fit_features(table, kinds, np.arange(4), "most_frequent")
    other = tmp_path / "o.csv"
    other.write_text("n,color,zip\n1,green,3\n")
    new = read_table(read_header(other), text=features.text)
    with pytest.raises(DataError, match="column 'color' holds 'green'") as info:
        features.transform(new)
    assert "--unknown ignore" in info.value.hint
    X = features.encode(new, unknown="ignore")
    np.testing.assert_array_equal(X[0, 1:3], [0.0, 0.0])


def test_record_round_trip_and_malformed_records(tmp_path):
    table, kinds = load(tmp_path, categorical=["zip"])
    features, X = fit_features(table, kinds, np.arange(4), "median")
    info = features.to_info()
    again = features_from_info(info, features.width)
    np.testing.assert_array_equal(again.transform(table), X)
    with pytest.raises(ValueError, match="takes 9"):
        features_from_info(info, 9)
    for broken in ({**info, "x_mean": [1.0]}, {**info, "columns": [{"name": "n", "kind": "pixel"}]},
                   {**info, "columns": "nope"}):
        with pytest.raises(ValueError, match="malformed"):
            features_from_info(broken, features.width)
    assert features_from_info({}, 3) is None  # a model saved from Python: no record
    # a scaling without the columns it applies to was skipped by predict, silently (examples/digits.py's model)
    for scaling_only in ({"x_mean": [0.0] * 3, "x_std": [1.0] * 3}, {"x_std": [2.0] * 3}):
        with pytest.raises(ValueError, match=r"holds x_mean/x_std .* but no 'features'"):
            features_from_info(scaling_only, 3)


def test_a_scale_that_is_not_positive_is_a_malformed_record(tmp_path):
    """Training writes std 1 for a constant column, so an x_std of 0 or below
    is an edited file: 0 made predict blame the user's rows ("X contains
    inf ... remove or clip them"), and -1 flipped a feature's sign in silence."""
    table, kinds = load(tmp_path, categorical=["zip"])
    features, _ = fit_features(table, kinds, np.arange(4), "median")
    info = features.to_info()
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="malformed .*positive"):
            features_from_info({**info, "x_std": [bad] + info["x_std"][1:]}, features.width)


def test_too_many_categories(tmp_path):
    text = "name,y\n" + "".join(f"id{i},{i % 2}\n" for i in range(30))
    path = tmp_path / "ids.csv"
    path.write_text(text)
    table = read_table(read_header(path))
    kinds = column_kinds(table, ["name"], set())
    with pytest.raises(DataError, match="30 distinct text values") as info:
        fit_features(table, kinds, np.arange(30), max_categories=10)
    assert "--ignore name" in info.value.hint and "--max-categories" in info.value.hint


def test_fills_that_disagree_with_missing_are_a_malformed_record(tmp_path):
    """Under --missing mean (median, most_frequent) train stores a fill for
    every column, under error and drop none. An edited missing of 'error'
    over fills filled missing values in silence; 'mean' without fills said
    'trained with --missing mean, so it fills in no values; train with
    --missing mean'."""
    table, kinds = load(tmp_path, text=TEXT.replace("\n,", "\n2,").replace(",,", ",blue,"), categorical=["zip"])
    filled = fit_features(table, kinds, np.arange(4), "median")[0].to_info()
    plain = fit_features(table, kinds, np.arange(4), "drop")[0].to_info()
    for broken, why in (({**filled, "missing": "error"}, "has a fill value, but missing is 'error'"),
                        ({**plain, "missing": "mean"}, "has no fill value, but missing is 'mean'")):
        with pytest.raises(ValueError, match=f"malformed .*{why}"):
            features_from_info(broken, len(filled["x_mean"]))
    assert features_from_info({**filled, "missing": "mean"}, len(filled["x_mean"])) is not None
    assert features_from_info({**plain, "missing": "error"}, len(plain["x_mean"])) is not None


def test_categories_that_are_not_distinct_texts_are_a_malformed_record(tmp_path):
    """An edited category ['blue'] was read as the text "['blue']" in
    silence, and a repeated one ended in pandas' InvalidIndexError, which
    predict called a bug in xpnet."""
    table, kinds = load(tmp_path, categorical=["zip"])
    features, X = fit_features(table, kinds, np.arange(4), "median")
    info = features.to_info()
    for categories, why in (([["blue"], "red"], r"categories must be texts \(or numbers\), got \[\['blue'\]"),
                            (["red", "red"], "categories must be distinct, got 'red' twice"),
                            ("red", "categories must be a list")):
        columns = [dict(c) for c in info["columns"]]
        columns[1]["categories"] = categories
        with pytest.raises(ValueError, match=f"malformed .*column 'color': {why}"):
            features_from_info({**info, "columns": columns}, features.width)
    np.testing.assert_array_equal(features_from_info(info, features.width).transform(table), X)


def test_a_column_named_twice_is_a_malformed_record(tmp_path):
    """An edited record naming two columns 'n' ended in "AttributeError:
    'DataFrame' object has no attribute 'dtype'", called a bug in xpnet."""
    table, kinds = load(tmp_path, categorical=["zip"])
    info = fit_features(table, kinds, np.arange(4), "median")[0].to_info()
    columns = [dict(c) for c in info["columns"]]
    columns[1]["name"] = "n"
    with pytest.raises(ValueError, match="malformed .*column names must be distinct, got 'n' twice"):
        features_from_info({**info, "columns": columns}, len(info["x_mean"]))
    with pytest.raises(ValueError, match="malformed .*column names must be distinct, got 'a' twice"):
        features_from_info({"features": ["a", "b", "a"]}, 3)
