"""Targets, the task guess and its reasons, degenerate targets, the split and scaling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pandas", reason="pandas is a dependency of xpnet's command line")

from xpnet.data_io import DataError, read_header, read_table  # noqa: E402
from xpnet.preprocessing import (  # noqa: E402
    MAX_CLASSES,
    check_target,
    choose_task,
    encode_classes,
    read_target,
    scaling,
    split_indices,
    standardize,
)


def target_of(tmp_path, column: list[str]):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(column)))
    table = read_header(path)
    return read_target(read_table(table, text=["y"]), ["y"])


def test_target_kinds_follow_how_values_are_written(tmp_path):
    assert target_of(tmp_path, ["1", "2", "1"]).kind == "integer"
    assert target_of(tmp_path, ["1.0", "2.0"]).kind == "float"
    assert target_of(tmp_path, ["cat", "dog"]).kind == "text"
    big = target_of(tmp_path, ["1", "99999999999999999999"])
    assert big.kind == "integer" and big.values.tolist() == [1, 99999999999999999999]  # exact, not OverflowError
    gone = target_of(tmp_path, ["1", "NULL", "nan", ""])
    assert gone.kind == "integer" and gone.missing.tolist() == [False, True, True, True]


def test_a_true_false_target_with_a_gap_is_read_as_without_one(tmp_path):
    path = tmp_path / "b.csv"
    for rows, gone in (("1,True\n2,False\n3,True\n4,False\n", []), ("1,True\n2,\n3,FALSE\n4,True\n5,false\n", [1])):
        path.write_text("x,y\n" + rows)
        for text in ([], ["y"]):
            target = read_target(read_table(read_header(path), text=text), ["y"])
            kept = np.delete(target.values, gone).tolist()
            assert target.kind == "integer" and kept == [True, False, True, False] and type(kept[0]) is bool
            choice = choose_task(np.delete(target.values, gone), target.kind)
            assert choice.warning is None and choice.reason == "true/false target with 2 values"  # not 'integer'


def test_a_decimal_comma_target_with_a_gap_is_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x;y\n1,5;100,00\n2,5;\n3,5;300,50\n4,5;400,00\n")
    target = read_target(read_table(read_header(path), decimal=","), ["y"])
    assert target.kind == "float" and target.missing.tolist() == [False, True, False, False]
    whole = path.with_name("w.csv")
    whole.write_text("x;y\n1,5;100,00\n2,5;\n3,5;300,00\n")  # whole numbers, read again as written
    target = read_target(read_table(read_header(whole), decimal=","), ["y"])
    assert target.kind == "float" and target.values[~target.missing].tolist() == [100.0, 300.0]


@pytest.mark.parametrize("stray", ["\x00", "oops"])
def test_a_word_among_integer_labels_is_refused_not_a_class(tmp_path, stray):
    try:
        target = target_of(tmp_path, ["0", "1", "2", "1", stray])
    except DataError as exc:
        assert "holds numbers, but this row holds" in str(exc) and "line 6" in str(exc)
    else:  # pandas < 3 reads a lone NUL as an empty field: a missing value, never a class
        assert stray == "\x00" and target.missing.tolist() == [False] * 4 + [True]


def test_infinite_target_is_refused(tmp_path):
    with pytest.raises(DataError, match="infinite"):
        target_of(tmp_path, ["1.5", "1e309"])


def test_task_guess_and_reason():
    choice = choose_task(np.array([0, 1, 2] * 5), "integer")
    assert (choice.task, choice.reason, choice.warning) == ("classification", "integer target with 3 values", None)
    assert choose_task(np.array(["a", "b"]), "text").reason == "text labels with 2 values"
    assert choose_task(np.array([0.5, 1.0]), "float").task == "regression"
    assert choose_task(np.ones((3, 2)), "numbers").reason == "2 numeric targets"


def test_ambiguous_guesses_warn():
    whole = choose_task(np.array([0.0, 1.0] * 5), "float", name="label")
    assert whole.task == "classification" and "--task regression" in whole.warning and "'label'" in whole.warning
    many = choose_task(np.arange(MAX_CLASSES + 1).repeat(2), "integer")
    assert many.task == "regression" and "--task classification" in many.warning
    lonely = choose_task(np.array([150, 160, 150, 170, 180]), "integer")  # linnerud-like: most values once
    assert lonely.task == "regression" and lonely.warning


def test_task_option_settles_it():
    assert choose_task(np.array([1.0, 2.0]), "float", "classification").task == "classification"
    assert choose_task(np.arange(100), "integer", "regression").warning is None
    with pytest.raises(DataError, match="fractional") as info:
        choose_task(np.array([0.5, 1.0]), "float", "classification")
    assert info.value.hint == "--task regression"
    with pytest.raises(DataError, match="cannot be regressed"):
        choose_task(np.array(["a", "b"]), "text", "regression")
    with pytest.raises(DataError, match="multi-output regressor"):
        choose_task(np.ones((3, 2)), "numbers", "classification")


def test_degenerate_targets_are_refused_with_plain_values():
    with pytest.raises(DataError, match=r"constant \(every row holds 3\)") as info:
        check_target(np.array([3, 3, 3], dtype=np.int64), "classification", ["y"], stratify=True)
    assert "np." not in str(info.value)
    with pytest.raises(DataError, match=r"constant \(every row holds 'cat'\)"):
        check_target(np.array(["cat", "cat"], dtype=object), "classification", ["y"], stratify=False)
    with pytest.raises(DataError, match="a single data row"):
        check_target(np.array([1.0]), "regression", ["y"], stratify=False)
    with pytest.raises(DataError, match=r"class\(es\) 7 of 'y' have a single row") as info:
        check_target(np.array([0, 0, 1, 1, 7]), "classification", ["y"], stratify=True)
    assert "--test-size 0" in info.value.hint
    check_target(np.array([0, 0, 1, 1, 7]), "classification", ["y"], stratify=False)  # no split: fine


def test_encode_classes_sorts_and_indexes():
    classes, labels = encode_classes(np.array([7, 3, 7, 5]))
    assert classes == [3, 5, 7] and all(type(c) is int for c in classes)  # JSON-able
    np.testing.assert_array_equal(labels, [2, 0, 2, 1])


def test_split_is_seeded_disjoint_complete_and_stratified():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = split_indices(100, 0.2, seed=3, labels=labels)
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).size == 100
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]  # 20% of each class
    again = split_indices(100, 0.2, seed=3, labels=labels)
    np.testing.assert_array_equal(train, again[0])
    other = split_indices(100, 0.2, seed=4, labels=labels)
    assert not np.array_equal(test, other[1])


def test_split_without_test_share():
    train, test = split_indices(10, 0.0, seed=0)
    assert len(train) == 10 and len(test) == 0


def test_scaling_leaves_constant_columns_finite():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, std = scaling(X)
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    np.testing.assert_array_equal(standardize(X, mean.tolist(), std.tolist()), [[-1.0, 0.0], [1.0, 0.0]])


def test_a_column_constant_but_for_rounding_is_only_centred_as_scikit_learn_does():
    """Values that differ in their last bits only (1e8 plus noise below its
    float64 spacing, a computed feature's rounding) got that noise's std,
    ~1e-8, and became a feature of -1s and 1s; scikit-learn's StandardScaler
    calls such a column constant (scale 1). A small real spread is kept."""
    preprocessing = pytest.importorskip("sklearn.preprocessing", reason="scikit-learn is the reference")
    rng = np.random.default_rng(0)
    X = np.c_[1e8 + rng.normal(size=100) * 1e-8, 0.1 * 3 + np.zeros(100) + (rng.random(100) < 0.5) * 5.6e-17,
              1e8 + rng.normal(size=100) * 1e-3, rng.normal(size=100)]
    assert len(np.unique(X[:, 0])) > 1 and len(np.unique(X[:, 1])) > 1
    mean, std = scaling(X)
    reference = preprocessing.StandardScaler().fit(X)
    np.testing.assert_allclose(mean, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(std, reference.scale_, rtol=1e-6)  # 1e8 + 1e-3 noise: divided by 1e8 first
    assert std[0] == std[1] == 1.0 and std[2] < 1e-2
    assert np.abs(standardize(X, mean, std)[:, :2]).max() < 1e-6


def test_scaling_of_rows_and_near_the_float64_limit():
    X = np.array([[1e308, 1.0], [-1e308, 2.0], [1e308, 3.0], [5.0, 100.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        mean, std = scaling(X, np.array([0, 1, 2]))
        Z = standardize(X[:3], mean, std)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(Z).all()
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0)
    assert Z[0, 0] != 0.0  # a 1e308 feature is scaled, not zeroed


@pytest.mark.parametrize(("args", "message"), [
    ((10, 0.2, 0, np.array([0] * 5)), r"shape \(10,\), got \(5,\)"),
    ((4, 0.5, 0, np.eye(2)[[0, 1, 0, 1]]), r"shape \(4,\), got \(4, 2\)"),
    ((6, 0.5, 0, np.array([0, 1, np.nan, 0, 1, np.nan])), "labels must be finite"),
    ((3.5, 0.2, 0), "n must be a row count"),
    ((-1, 0.2, 0), "n must be a row count"),
    ((10, "0.2", 0), r"test share must be a number in \[0, 1\), got '0.2'"),  # TypeError from a comparison
    ((10, None, 0), "test share must be a number"),
    ((10, 0.2, -1), "seed must be None or an int >= 0, got -1"),  # NumPy's "expected non-negative integer"
    ((10, 0.2, 1.5), "seed must be None or an int >= 0, got 1.5"),
])  # fmt: skip
def test_split_indices_refuses_labels_that_do_not_fit_its_rows(args, message):
    """Rows 5-9 were in neither part, or indices went past n; the share
    and seed failed deep in a comparison or in NumPy, naming neither."""
    with pytest.raises(ValueError, match=message):
        split_indices(*args)


def test_split_indices_groups_device_labels_and_names_labels_it_cannot_group():
    labels = np.arange(20) % 3
    want = split_indices(20, 0.2, 0, labels)
    strict = pytest.importorskip("array_api_strict", reason="a device array of labels")
    got = split_indices(20, 0.2, 0, strict.asarray(labels, device=strict.Device("device1")))
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    with pytest.raises(TypeError, match="labels must be numbers or strings, one kind"):
        split_indices(4, 0.5, 0, np.array([None, "a", None, "a"], dtype=object))


def test_task_classification_takes_fractional_labels_as_written(tmp_path):
    """'--task settles it': fractions asked to be classes were refused ("cannot
    be class labels") with no way to train a classifier on ratings of 1.50,
    2.50 and 3.00. Asked for, they are labels as written; unasked, numbers."""
    path = tmp_path / "r.csv"
    path.write_text("x,y\n" + "".join(f"{i},{['1.50', '2.50', '3.00'][i % 3]}\n" for i in range(9)))
    for text in ([], ["y"]):
        asked = read_target(read_table(read_header(path), text=text), ["y"], "classification")
        assert asked.kind == "text" and sorted(set(asked.values)) == ["1.50", "2.50", "3.00"]
        assert choose_task(asked.values, asked.kind, "classification").task == "classification"
        guessed = read_target(read_table(read_header(path), text=text), ["y"])
        assert guessed.kind == "float" and choose_task(guessed.values, guessed.kind).task == "regression"
