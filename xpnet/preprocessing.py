"""Host-side preparation for the command line: targets, task, classes, split, scaling.

All of it is NumPy on the host and seeded, so ``xpnet train --seed S`` splits
and scales the same way on every backend; the statistics it computes travel
with the model (``Network.info``) so ``xpnet predict`` can repeat them.
Messages show plain Python values (``1``, ``'cat'``), never NumPy reprs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral, Real  # (`numbers` names local Series here)
from typing import Any

import numpy as np

from ._backend import to_numpy
from ._number_text import as_numbers, decimal_comma_hint, decimal_comma_share, number_marks, plain_numbers
from .data_io import DataError, Table, read_text_column

__all__ = [
    "MAX_CLASSES",
    "TASKS",
    "Target",
    "TaskChoice",
    "check_target",
    "choose_task",
    "encode_classes",
    "infinity_hint",
    "plain",
    "read_target",
    "scaling",
    "split_indices",
    "standardize",
]

#: Integer targets with at most this many distinct values may be class labels.
MAX_CLASSES = 50
TASKS = ("auto", "classification", "regression")


def plain(value):
    """A NumPy scalar as the Python value it holds (for messages and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


@dataclass
class Target:
    """The target column(s) of a table.

    ``values``: (n,) for one column (int64, or object for Python ints beyond
    64 bits or text labels, or float64) or (n, k) float64 for several;
    ``kind``: ``"integer"``, ``"float"``, ``"text"`` or ``"numbers"``
    (several columns); ``missing``: rows whose target is missing."""

    names: list[str]
    values: np.ndarray
    kind: str
    missing: np.ndarray

    def take(self, rows: np.ndarray) -> Target:
        return Target(self.names, self.values[rows], self.kind, self.missing[rows])


def read_target(table: Table, names: list[str], task: str | None = None) -> Target:
    """The target column(s) ``names`` of ``table``, with their kind. With
    ``task="classification"`` a single target of mixed numbers and words
    is text labels; otherwise integers are numbers unless written with a
    leading zero or sign (``01``), which class labels keep."""
    if len(names) == 1:
        values, kind, missing = _one_target(table, names[0], task)
        return Target(names, values, kind, missing)
    columns, missing = [], np.zeros(len(table.frame), dtype=bool)
    for name in names:
        values, kind, gone = _one_target(table, name)
        if kind == "text":
            raise DataError(f"the target {name!r} holds text labels; several targets train a regressor of numbers",
                            "--target takes a single column to classify text labels")
        columns.append(np.where(gone, np.nan, values.astype(np.float64)))
        missing |= gone
    return Target(names, np.stack(columns, axis=1), "numbers", missing)


def _one_target(table: Table, name: str, task: str | None = None) -> tuple[np.ndarray, str, np.ndarray]:
    import pandas as pd

    column = table.frame[name]
    missing = column.isna().to_numpy()
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_integer_dtype(column.dtype):
        return column.to_numpy(), "integer", missing
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
        _refuse_infinite(table, name, np.where(missing, 0.0, values))
        whole = np.all(values[~missing] == np.round(values[~missing]))
        if task == "classification" and not whole and table.sep is not None:  # asked for: labels as written (1.50)
            column = read_text_column(table, name)
        elif not (missing.any() and whole and table.sep is not None):
            return values, "float", missing
        else:
            column = read_text_column(table, name)  # integers with a gap read as floats: how were they written?
    texts = column.astype(object).where(~missing, "").astype(str).str.strip()
    texts = texts.str.normalize("NFC")  # as categories: 'thé' saved decomposed (macOS) is one class, not two
    missing = missing | (texts == "").to_numpy()
    present = texts[~missing]
    if len(present) and present.str.lower().isin(("true", "false")).all():  # as pandas reads it without a gap
        return (texts.str.lower() == "true").to_numpy(), "integer", missing
    marks = number_marks(table)
    try:
        with np.errstate(all="ignore"):
            numbers = pd.to_numeric(plain_numbers(present, marks))
    except (ValueError, TypeError, OverflowError):
        numbers = None
    if numbers is None:
        numbers = _numbers_anyway(present, marks)  # integers beyond 64 bits, which some pandas versions refuse
    if numbers is None:
        if task != "classification":
            _refuse_stray_text(table, name, texts, missing)
            _refuse_decimal_commas(table, name, present)
            refuse_formatted_numbers(table, name, list(present[:1000]), target=True)
        return texts.to_numpy(dtype=object), "text", missing
    if task != "regression" and numbers.dtype.kind in "iuO" and _labels_as_written(present, numbers, task):
        return texts.to_numpy(dtype=object), "text", missing  # labels as written: 01 is not 1
    if task == "classification" and numbers.dtype.kind == "f" and not bool((numbers == numbers.round()).all()):
        return texts.to_numpy(dtype=object), "text", missing  # fractions asked to be classes: 1.50 as written
    if numbers.dtype == np.uint64 and len(numbers) and numbers.max() > np.iinfo(np.int64).max:
        numbers = numbers.astype(object)  # Python ints: labels beyond 64 bits stay exact
    out = np.zeros(len(texts), dtype=numbers.dtype if numbers.dtype.kind in "iuf" else object)
    out[~missing] = numbers.to_numpy()
    if out.dtype.kind == "u":
        out = out.astype(np.int64)
    if out.dtype.kind == "f":
        _refuse_infinite(table, name, np.where(missing, 0.0, out))
        return out, "float", missing
    return out, "integer", missing  # int64, or Python ints beyond 64 bits


def _labels_as_written(present: Any, numbers: Any, task: str | None) -> bool:
    """Class labels to keep as written: integers some of which Python would
    write otherwise (``01``, ``+1``; a ``-0`` among ``0`` is the number 0),
    as classes (``--task classification``, or few spellings: the guess's
    rule). Two spellings of one number (``01`` and ``1``) are two labels
    under ``auto`` too, whose numbers would merge them into one class; a
    regression target written ``+12`` (many values) stays a number."""
    if not bool(present.str.fullmatch(r"\+\d+|-?0\d+").fillna(False).any()):
        return False
    if task == "classification":  # asked for: the labels as written, 01 and 1 two classes
        return True
    texts = present.nunique()
    if texts > MAX_CLASSES:
        return False
    return texts > numbers.nunique() or int(present.value_counts().min()) >= 2


def _numbers_anyway(texts, marks: tuple[str, str | None]) -> Any:
    """Numbers that ``pandas.to_numeric`` refused: integers written in full as
    Python ints, others as floats; ``None`` if some are not numbers."""
    import pandas as pd

    if len(texts) and texts.str.fullmatch(r"[+-]?\d+").all() and (texts.str.len() <= 4000).all():
        return pd.Series([int(t) for t in texts], dtype=object)
    values, stray = as_numbers(texts, marks)
    return None if stray.any() else pd.Series(values)


def _refuse_infinite(table: Table, name: str, values: np.ndarray) -> None:
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        raise DataError(f"{table.path}, {table.where(int(bad[0]))}: the target {name!r} is infinite "
                        "(beyond float64's range of about 1.8e308)",
                        infinity_hint(table, values[bad[0]], target=True))


def _refuse_stray_text(table: Table, name: str, texts, missing: np.ndarray) -> None:
    """A column of numbers with a few words in it is not a column of text labels."""
    _, stray = as_numbers(texts.where(~missing, None), number_marks(table))
    numeric = np.count_nonzero(~missing) - np.count_nonzero(stray)
    if numeric >= max(1, 0.5 * np.count_nonzero(~missing)):
        row = int(np.flatnonzero(stray)[0])
        value = texts.iloc[row]
        _refuse_repeated_header(table, name, row, value)
        raise DataError(
            f"{table.path}, {table.where(row)}: the target {name!r} holds numbers, but this row holds {value!r}",
            f"{_stray_hint(value, ' with --missing drop')}; --task classification takes every value as a class label",
        )


def _refuse_repeated_header(table: Table, name: str, row: int, value: str) -> None:
    """A column that holds its own name where numbers are is a header line
    repeated inside the file (CSV files joined with `cat`): the word's hint,
    'pass --na-values NAME', led nowhere."""
    if value.strip() == name:
        raise DataError(f"{table.path}, {table.where(row)}: the line repeats the header ({name!r} in column "
                        f"{name!r}), as CSV files joined with `cat` do",
                        "delete that line: when joining CSV files, keep the first file's header only "
                        "(tail -n +2 more.csv >> all.csv)")  # fmt: skip


#: Numbers with a unit or currency sign (12%, $1,200.00, 1.200,50 €): one-hot encoded, each would be a category.
_FORMATTED = re.compile(r"[+-]?[$€£¥]?\s?[+-]?\d[\d.,\s\u00a0\u202f']*\s?(%|[$€£¥])?")  # groups: . , ' spaces


#: Digits grouped by a space or an apostrophe (1 000,50; 1'000.50), whole thousands after the first group;
#: or by commas where no decimal comma can be meant (1,234.50; 1,234,567): read as such only in comma-separated files.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:(?:[ '\u00a0\u202f]\d{3})+(?:[.,]\d+)?|(?:,\d{3})+\.\d+|(?:,\d{3}){2,})")
#: A number with a decimal point (0.13, -1.5e3): under --decimal , such a '.' groups nothing.
_POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
#: An English month's name or abbreviation (Excel's d-mmm-yy dates: 31-Jan-20).
_MONTH = (r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
#: A date, with a time or not: 2020-01-31 (ISO, or / and . between), 31/01/2020, 31.1.2020, 1/31/20,
#: 31-Jan-20, 31 Jan 2020, Jan 31, 2020.
_DATE = re.compile(r"(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{4}|\d{1,2}/\d{1,2}/\d{2}"
                   rf"|\d{{1,2}}([- ]){_MONTH}\3(?:\d{{4}}|\d{{2}})|{_MONTH} \d{{1,2}},? \d{{4}})"
                   r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def refuse_formatted_numbers(table: Table, name: str, sample: list[str], target: bool = False) -> None:
    """A column of numbers written with a ``%`` or a currency sign, with
    digit groups of spaces or apostrophes, or with decimal points under
    ``--decimal ,``, would silently become categories (an Excel export's
    prices, one category per row, or a target of 40 classes); say so, with
    the options. ``sample``: the column's present values as text."""
    categories = ("--task classification takes them as class labels" if target else
                  f"--categorical {_shell(name)} encodes them as categories")  # fmt: skip
    signed = [t for t in sample if _FORMATTED.fullmatch(t) and any(c in t for c in "%$€£¥")]
    if _most(signed, sample):
        raise DataError(f"{table.path}: column {name!r} holds numbers written with a unit or currency sign "
                        f"({signed[0]!r}), not plain numbers", f"write them as plain numbers, or {categories}")
    grouped = [t for t in sample if _GROUPED.fullmatch(t)]
    if _most(grouped, sample):
        raise DataError(f"{table.path}: column {name!r} holds numbers with digit groups ({grouped[0]!r}), not "
                        f"plain numbers", f"write them without the group marks ({_ungrouped(grouped[0])!r}), or "
                        f"{categories}")
    points = [t for t in sample if _POINT_DECIMAL.fullmatch(t)]
    if number_marks(table)[0] == "," and _most(points, sample):
        raise DataError(f"{table.path}: column {name!r} holds numbers with a decimal point ({points[0]!r}), but "
                        "--decimal , reads ',' as the decimal mark (a '.' only groups thousands: 1.234,5)",
                        f"write them with a decimal comma, or leave out --decimal , if the file's numbers use "
                        f"points; or {categories}")  # fmt: skip
    _refuse_dates(table, name, sample, target)


def _refuse_dates(table: Table, name: str, sample: list[str], target: bool) -> None:
    """Dates would become categories in silence: one per date, so that no
    later date can be predicted (past --max-categories, its hint said to
    raise the limit). A number (days, a year, a weekday) is what a date
    means to a network, and only the user knows which."""
    dates = [t for t in sample if _DATE.fullmatch(t)]
    if not _most(dates, sample):
        return
    how = ("--task classification takes them as class labels" if target else
           f"--ignore {_shell(name)} leaves the column out, or --categorical {_shell(name)} encodes each date as a "
           "category")  # fmt: skip
    raise DataError(f"{table.path}: column {name!r} holds dates ({dates[0]!r}), which xpnet does not read as numbers",
                    f"write them as numbers (e.g. days since a start date, or year, month and weekday columns); "
                    f"{how}")


def _ungrouped(text: str) -> str:
    """A :data:`_GROUPED` number without its group marks: ``1 000,50`` -> ``1000,50``, ``1,234.50`` -> ``1234.50``."""
    bare = re.sub(r"[ '\u00a0\u202f]", "", text)
    return bare if bare != text else bare.replace(",", "")


def _most(found: list[str], sample: list[str]) -> bool:
    return bool(sample) and len(found) > 0.5 * len(sample)


def _refuse_decimal_commas(table: Table, name: str, present: Any) -> None:
    """Numbers written with a decimal comma, read without ``--decimal ,``,
    are text: as labels they would train a classifier of many classes."""
    if table.sep is None or number_marks(table)[0] != "." or decimal_comma_share(present.to_numpy()) <= 0.5:
        return
    first = str(present.iloc[0])
    raise DataError(f"{table.path}: the target {name!r} holds numbers written with a decimal comma ({first!r})",
                    f"{decimal_comma_hint(table.sep, first)}; or --task classification takes them as class labels")


def _stray_hint(value: str, then: str = "") -> str:
    """How to fix a word among numbers: name it a missing-value token."""
    if "\x00" in value:
        return "it has a NUL character: the file may be damaged; fix or delete this row"
    if _GROUPED.fullmatch(value):  # 1,121.60 among 650.29: a number, which --na-values would make missing
        return f"it is a number with digit groups: write the numbers without the group marks ({_ungrouped(value)!r})"
    if value.startswith("-") and len(value) > 1:  # argparse would take `--na-values -x` for two options
        return f"if {value!r} marks a missing value, pass --na-values={_shell(value)}{then}"
    return f"if {value!r} marks a missing value, pass --na-values {_shell(value)}{then}"


def infinity_hint(table: Table, value: float, target: bool = False) -> str:
    """How to get past an infinite value (of the ``target``, or of a
    feature): in a CSV file, the ``--na-values`` token that makes it
    missing; an NPZ archive's arrays, which ``--na-values`` does not read
    (it is refused there), mark a missing value as NaN."""
    if table.sep is None:
        then = ("--missing drop leaves out" if target else
                "train's --missing drop, mean, median or most_frequent handles")  # fmt: skip
        return (f"fix the value: an NPZ archive marks a missing value as NaN (np.where(np.isinf(a), np.nan, a) "
                f"before np.savez), which {then}")
    token = _infinity_token(value)
    return (f"fix the value, or --missing drop with {token} to leave such rows out" if target else
            f"fix the value, or {token} to treat it as missing")  # fmt: skip


def _infinity_token(value: float) -> str:
    """The --na-values that makes ``value`` missing: pandas matches the token
    ``inf`` to +inf only, so -inf needs its own (attached, as it starts with '-')."""
    return "--na-values=-inf" if value < 0 else "--na-values inf"


def _shell(text: str) -> str:
    return text if text.isalnum() else repr(text)


# --------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------


@dataclass
class TaskChoice:
    task: str
    reason: str
    warning: str | None = None


def choose_task(values: np.ndarray, kind: str, task: str = "auto", name: str = "target") -> TaskChoice:
    """Classification or regression, why, and a warning when the guess is a
    close call (whole-number floats taken as classes; integers regressed).

    ``auto``: text labels are classes; integers (and floats that are all
    whole numbers) are classes when they take at most :data:`MAX_CLASSES`
    values, each on at least 2 rows; anything else is regressed."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if kind == "numbers":
        if task == "classification":
            raise DataError("several targets train a multi-output regressor, not a classifier",
                            "--target takes a single column for classification")
        return TaskChoice("regression", f"{values.shape[1]} numeric targets")
    if kind == "text":
        if task == "regression":
            raise DataError(f"the target {name!r} holds text labels, which cannot be regressed",
                            "--task classification, or --target a column of numbers")
        return TaskChoice("classification", f"text labels with {_count(values)} values")
    whole = kind == "integer" or bool(np.all(values == np.round(values)))
    if task == "classification":
        if not whole:
            raise DataError(f"the target {name!r} holds fractional values, which cannot be class labels",
                            "--task regression")
        return TaskChoice("classification", f"--task classification, {_count(values)} classes")
    if task == "regression":
        return TaskChoice("regression", "--task regression")
    return _guess(values, kind, whole, name)


def _guess(values: np.ndarray, kind: str, whole: bool, name: str) -> TaskChoice:
    if not whole:
        return TaskChoice("regression", "float target")
    _, counts = np.unique(values, return_counts=True)
    k, n = len(counts), len(values)
    written = _written(values, kind)
    if k <= MAX_CLASSES and counts.min() >= 2:
        if kind == "integer":
            return TaskChoice("classification", f"{written} target with {k} values")
        return TaskChoice("classification", f"whole-number float target with {k} values",
                          f"the target {name!r} is written as decimals but holds {k} whole values: "
                          "trained as classes (--task regression regresses it)")
    why = f"more than {MAX_CLASSES} for classes" if k > MAX_CLASSES else "some of them on a single row"
    reason = f"{written} target with {k} values in {n} rows, {why}"
    warning = None
    if kind == "integer":
        warning = (f"the target {name!r} holds {written} values, {k} distinct in {n} rows: trained as a "
                   "regression (--task classification treats them as classes)")
    return TaskChoice("regression", reason, warning)


def _written(values: np.ndarray, kind: str) -> str:
    """How whole-number targets are written: ``true/false`` (read as booleans), ``integer`` or a float."""
    if kind != "integer":
        return "whole-number float"
    return "true/false" if values.dtype == bool else "integer"


def _count(values: np.ndarray) -> int:
    return len(np.unique(values))


def check_target(values: np.ndarray, task: str, names: list[str], *, stratify: bool) -> None:
    """Refuse targets nothing can be learned from: one row, a constant
    target, or a class with a single row when the split is stratified."""
    n = len(values)
    if n < 2:
        raise DataError(f"{'no data row' if n == 0 else 'a single data row'} is left to train on; "
                        "training needs at least 2", "check the file, and --missing if rows were dropped")
    for j, name in enumerate(names):
        column = values if values.ndim == 1 else values[:, j]
        if len(np.unique(column)) < 2:
            raise DataError(f"the target {name!r} is constant (every row holds {plain(column[0])!r}); there is "
                            "nothing to learn", "--target names the column to predict")
    if task == "classification" and stratify:
        classes, counts = np.unique(values, return_counts=True)
        lonely = [plain(c) for c in classes[counts < 2]]
        if lonely:
            shown = ", ".join(repr(c) for c in lonely[:5]) + (" ..." if len(lonely) > 5 else "")
            raise DataError(f"the class(es) {shown} of {names[0]!r} have a single row; a stratified split needs "
                            "at least 2 rows per class", "--test-size 0 trains on all rows; --test-data FILE "
                            "gives test rows")


def encode_classes(y: np.ndarray) -> tuple[list, np.ndarray]:
    """Sorted class values (as JSON-able Python values) and labels ``0..K-1``."""
    classes, labels = np.unique(y, return_inverse=True)
    return [plain(c) for c in classes], labels.reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------
# Split and scaling
# --------------------------------------------------------------------------


def split_indices(
    n: int, test_size: float, seed: int | None, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, test)`` row indices, about ``test_size`` of them for testing.

    With ``labels`` the split is stratified: each class gives the same share
    of its rows to the test set (never all of them), so a small class is not
    missing from training."""
    if isinstance(test_size, bool) or not isinstance(test_size, Real) or not 0.0 <= test_size < 1.0:
        raise ValueError(f"the test share must be a number in [0, 1), got {test_size!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"split_indices: n must be a row count (an int >= 0), got {n!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise ValueError(f"split_indices: seed must be None or an int >= 0, got {seed!r}")
    classes = None if labels is None else _classes(labels, n)
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(classes == c) for c in np.unique(classes)]
    train, test = [], []
    for rows, k in zip(groups, _test_counts([len(rows) for rows in groups], test_size)):
        rows = rng.permutation(rows)
        test.append(rows[:k])
        train.append(rows[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _test_counts(counts: list[int], share: float) -> list[int]:
    """Each group's test rows: its share rounded, never all its rows. Where
    those roundings miss the share of the rows by a row or more (300 rows in
    100 classes of 3: 0.1 rounded to none in each, 0.5 to two thirds), the
    groups that rounding shorted most give one more row (or the ones it
    favoured most one fewer) until the total is the share of the rows,
    rounded, as scikit-learn's stratified splits apportion it (the rows of
    groups that can give one: a class of one row stays in training)."""
    sizes = np.array(counts, dtype=np.int64)
    exact = share * sizes
    k = np.minimum(np.round(exact).astype(np.int64), sizes - 1)
    rows = int(sizes[sizes > 1].sum())  # the rows of groups that can give any (a group of one row keeps it)
    if abs(int(k.sum()) - share * rows) < 1:  # the share of those rows to a row: as each group rounds it
        return k.tolist()
    want = min(round(share * rows), int((sizes - 1).sum()))
    while (gap := want - int(k.sum())) != 0:
        step = 1 if gap > 0 else -1
        movable = np.flatnonzero(k < sizes - 1 if step > 0 else k > 0)
        neediest = movable[np.argsort(-step * (exact - k)[movable], kind="stable")]
        k[neediest[: abs(gap)]] += step
    return k.tolist()


def _classes(labels: Any, n: int) -> np.ndarray:
    """``split_indices``'s labels as a host array of ``n`` sortable classes
    (a device array is fetched: the split is drawn on the host)."""
    labels = to_numpy(labels)
    if labels.shape != (n,):
        raise ValueError(f"split_indices: labels must hold one class per row, shape ({n},), got {labels.shape}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError("split_indices: labels must be finite (a NaN label's rows would be in neither part)")
    try:
        np.unique(labels)
    except TypeError:  # None beside strings: NumPy cannot order them
        raise TypeError("split_indices: labels must be numbers or strings, one kind, to be grouped into classes; "
                        f"got values of types {sorted({type(v).__name__ for v in labels.tolist()})}") from None
    return labels


def scaling(X: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``X`` (of its ``rows``); a
    constant column (but for rounding, as scikit-learn's ``StandardScaler``
    tells) gets std 1 (it is only centred) so scaling never divides by zero
    nor blows rounding noise up into a feature.

    One column at a time (no copy of the matrix), each divided by its
    largest magnitude first, so values near float64's limit (1e308) neither
    overflow nor warn."""
    X = np.asarray(X, dtype=np.float64)
    mean, std = np.zeros(X.shape[1]), np.ones(X.shape[1])
    with np.errstate(all="ignore"):
        for j in range(X.shape[1]):
            column = X[:, j] if rows is None else X[rows, j]
            if column.size == 0:
                continue
            scale = np.max(np.abs(column))
            scale = scale if scale > 0 and np.isfinite(scale) else 1.0
            z = column / scale
            m, s = z.mean(), z.std()
            mean[j], std[j] = m * scale, (s * scale if not _constant(s, m, column.size) else 1.0)
    return mean, std


def _constant(s: float, m: float, n: int) -> bool:
    """Is a column of ``n`` values, mean ``m`` and deviation ``s`` (scaled
    into [-1, 1]), constant but for rounding (``1e8`` and ``1e8 + 1.5e-8``,
    a computed feature's last bits)? scikit-learn's test (its
    ``StandardScaler``): divided by its deviation, that noise became a
    feature of -1s and 1s."""
    eps = np.finfo(np.float64).eps
    return not s > 0 or s * s <= n * eps * s * s + (n * m * eps) ** 2


def standardize(X: np.ndarray, mean, std) -> np.ndarray:
    """``(X - mean) / std`` with the statistics stored in a model, computed
    so that no intermediate overflows when the result is finite."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    with np.errstate(all="ignore"):
        scale = np.maximum(np.abs(mean), std)
        scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        return (X / scale - mean / scale) / (std / scale)
