"""Task choice, class encoding, the seeded stratified split and scaling."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.preprocessing import MAX_CLASSES, choose_task, encode_classes, scaling, split_indices, standardize


def test_choose_task():
    assert choose_task(np.array([0, 1, 1]), "integer") == "classification"
    assert choose_task(np.arange(MAX_CLASSES + 1), "integer") == "regression"
    assert choose_task(np.array([0.5, 1.0]), "float") == "regression"
    assert choose_task(np.array(["a", "b"]), "text") == "classification"
    assert choose_task(np.array([1.0, 2.0]), "float", "classification") == "classification"
    with pytest.raises(ValueError, match="fractional"):
        choose_task(np.array([0.5, 1.0]), "float", "classification")
    with pytest.raises(ValueError, match="single value"):
        choose_task(np.array([3, 3]), "integer")
    with pytest.raises(ValueError, match="cannot be regressed"):
        choose_task(np.array(["a", "b"]), "text", "regression")
    with pytest.raises(ValueError, match="too many"):
        choose_task(np.array([f"v{i}" for i in range(MAX_CLASSES + 1)]), "text")


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


def test_split_keeps_every_class_in_training():
    labels = np.array([0, 0, 0, 0, 1])  # class 1 has one row: it must be trained on
    train, test = split_indices(5, 0.5, seed=0, labels=labels)
    assert 4 in train and len(test) == 2
    train, test = split_indices(10, 0.0, seed=0)
    assert len(train) == 10 and len(test) == 0


def test_scaling_leaves_constant_columns_finite():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, std = scaling(X)
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    np.testing.assert_array_equal(standardize(X, mean.tolist(), std.tolist()), [[-1.0, 0.0], [1.0, 0.0]])
