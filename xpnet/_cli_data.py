"""From the command line's files to the network's matrices, and back.

``xpnet train`` reads its table (or the shipped digits), picks target and
feature columns, applies ``--missing``, chooses the task, splits, encodes
and standardises (:func:`training_data`); ``xpnet predict`` repeats the
encoding stored in the model on new rows (:func:`prediction_inputs`). The
decisions travel in ``Network.info`` (see :func:`training_info`).
"""

from __future__ import annotations

import argparse
import re
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._files import shorten as _short
from ._usage import UsageError
from .columns import _MISSING_HINT, Column, Features, _few, _texts, column_kinds, fit_features
from .data_io import (
    DataError,
    Table,
    _one_line,
    check_input_file,
    column_names,
    read_header,
    read_table,
    sep_hint,
    split_names,
    unnamed_columns,
)
from .preprocessing import (
    Target,
    _shell,
    check_target,
    choose_task,
    encode_classes,
    plain,
    read_target,
    scaling,
    split_indices,
    standardize,
)

__all__ = ["INFO_VERSION", "Prepared", "prediction_inputs", "training_data", "training_info"]

#: Version of the layout of ``Network.info`` written by ``xpnet train``
#: (1: numeric columns only; 2: columns with kinds, fills and categories).
INFO_VERSION = 2


@dataclass
class Prepared:
    """Everything ``train`` needs after reading: the matrices, the task and
    the notes for ``Network.info`` and for the printed lines."""

    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Read:
    """Reading settings shared by the training and the test file (and stored for predict)."""

    sep: str | None
    encoding: str
    decimal: str
    na_values: list[str]

    def to_info(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "decimal": self.decimal, "na_values": self.na_values, "sep": self.sep}


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def training_data(args: argparse.Namespace) -> Prepared:
    """Read, clean, split, encode and standardise the training data."""
    sep = None if args.sep == "auto" else args.sep
    read = _Read(sep, args.encoding or "utf-8", args.decimal or ".", list(args.na_values or []))
    table, targets, kinds = _training_table(args, read)
    target = read_target(table, targets, args.task)
    table, target, dropped = _apply_missing(table, target, kinds, args.missing)
    fmt = "" if args.data is None else f" ({table.describe()})"
    choice = choose_task(target.values, target.kind, args.task, targets[0])
    test = _test_table(args, read, targets, kinds, choice.task) if args.test_data else None
    y, notes = _encode_target(target, choice.task)
    notes.update(_class_spellings(table, target, y, notes.get("classes")))
    check_target(target.values, choice.task, targets, stratify=test is None and args.test_size > 0)
    if test is None:
        labels = y if choice.task == "classification" else None
        train_rows, test_rows = split_indices(len(y), args.test_size, args.seed, labels)
        if args.test_size > 0 and len(test_rows) == 0:
            raise DataError(f"{len(y)} rows are too few to hold out a {args.test_size:g} test share"
                            + (" of each class" if labels is not None else ""),
                            "--test-size 0 trains and scores on all rows; --test-data FILE gives test rows")
    else:
        train_rows, test_rows = np.arange(len(y)), np.zeros(0, dtype=np.int64)
    holes = int(sum(int(table.frame[c.name].isna().sum()) for c in kinds))
    if table.sep is None:  # predict takes an X of this width by name (its --ignore'd columns left out)
        notes["npz_width"] = _npz_width(table)
    features, X = fit_features(table, kinds, train_rows, args.missing, args.max_categories)
    del table  # the raw columns are no longer needed: free them before training
    X = _in_model_dtype(X, args.dtype)
    if choice.task == "regression":
        y_mean, y_std = scaling(y, train_rows)
        notes.update(y_mean=y_mean.tolist(), y_std=y_std.tolist())
        y = standardize(y, y_mean, y_std)
    X_train, y_train = X[train_rows], y[train_rows]
    if test is None:
        X_test, y_test = X[test_rows], y[test_rows]
    else:
        X_test = _in_model_dtype(features.transform(test[0], args.unknown), args.dtype)
        y_test = _test_targets(test[0], test[1], choice.task, notes)
    del X
    info = training_info(features, targets, choice.task, notes, read, source=_source(args))
    prepared = Prepared(choice.task, X_train, y_train, X_test, y_test, info)
    counts = (dropped, holes, len(y), len(X_train), len(X_test))
    prepared.lines = _describe(args, fmt, features, targets, choice, notes, *counts)
    warnings = (choice.warning, *_index_warnings(features.names), *_test_warnings(args, test, features, len(X_test)))
    prepared.warnings = [w for w in warnings if w]
    return prepared


def _index_warnings(names: list[str], predict: bool = False) -> list[str]:
    """A feature named as pandas names an unnamed header cell (``Unnamed: 0``:
    the index that ``to_csv`` writes, read back and written again) is most
    likely row numbers, which the model would learn from and predict would
    then need: used, but said. ``predict``: a model saved from Python, which
    takes every column of the file."""
    fix = "remove it from the file" if predict else "leave it out with --ignore {}"
    return [f"column {name!r} looks like the row index pandas writes (to_csv without index=False) and is used as "
            f"a feature; {fix.format(shlex.quote(name))}, or write the file with index=False"
            for name in names if re.fullmatch(r"Unnamed: [0-9]+", name)]  # fmt: skip


def _in_model_dtype(X: np.ndarray, dtype: str) -> np.ndarray:
    """The standardised float64 matrix in the network's dtype, its float64
    original freed: fit and predict would cast a copy anyway, and the float64
    rows stayed alive beside it through training (twice the float32 data)."""
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which fit's checks name
        return X.astype(dtype, copy=False)


def _training_table(args: argparse.Namespace, read: _Read) -> tuple[Table, list[str], list[Column]]:
    """The training table with its target names and feature columns."""
    if args.data is None:
        return (*_digits(),)
    table = read_header(args.data, read.sep, read.encoding)
    if table.sep is None and (args.test_data is None or check_input_file(args.test_data)[1]):
        refuse_csv_options(args, table)  # they read --test-data too, where that is a CSV file
    if table.sep is None and args.target is not None:
        raise DataError(f"--target selects CSV columns; {table.path} is an NPZ archive, whose targets are its array 'y'",
                        "leave --target out for NPZ files")
    if table.sep is not None and table.sep == read.decimal:
        raise DataError(f"{table.path} is separated by {read.decimal!r}, which cannot be the decimal mark too",
                        "--sep names the separator; --decimal the decimal mark")
    if table.sep is None:
        targets = [n for n in table.names if n.startswith("y")]
        if not targets:
            raise DataError(f"{table.path} has no array 'y'", "save it with np.savez(path, X=X, y=y)")
    elif args.target is None:  # the last column with a name (an Excel export may end in ';;')
        unnamed = set(unnamed_columns(table))
        named = [n for n in table.names if n not in unnamed and n not in table.duplicate_of]
        targets = [named[-1] if named else table.names[-1]]
        if targets[0] in table.duplicate_of.values():
            copies = [str(i) for i, n in enumerate(table.names) if targets[0] in (n, table.duplicate_of.get(n))]
            raise DataError(f"the last column with a name, {targets[0]!r}, is repeated in the header (columns "
                            f"{', '.join(copies)}, by position)",
                            f"--target picks one by position, --ignore leaves out the others: --target {copies[-1]} "
                            f"--ignore {','.join(copies[:-1])}")  # fmt: skip
    else:
        targets = column_names(table, args.target, "--target")
    ignored = set(column_names(table, args.ignore, "--ignore"))
    categorical = set(column_names(table, args.categorical, "--categorical"))
    if ignored & categorical:  # compared as columns: 'Name, full' and 'Name' may be two of them
        raise UsageError(f"--categorical and --ignore both name {sorted(ignored & categorical)[0]!r}; "
                         "keep it in one of them")  # fmt: skip
    for option, names in (("--ignore", ignored), ("--categorical", categorical)):
        clash = sorted(names & set(targets))
        if clash:
            raise DataError(f"{option} names the target {clash[0]!r}", "--target names the column to predict")
    by_name = _given_by_name(table, args.ignore)
    ignored |= {n for n, name in table.duplicate_of.items() if name in by_name}  # a repeated name's later columns
    features = [n for n in table.names if n not in targets and n not in ignored]
    named = _name_used_copies(table, features + targets)
    features, targets = [named.get(n, n) for n in features], [named.get(n, n) for n in targets]
    categorical = {named.get(n, n) for n in categorical}
    if not features:
        raise DataError(f"{table.path} has no feature columns left besides the target {_names(targets)}",
                        "training needs feature columns; check --target and --ignore" + sep_hint(table))
    text = sorted(categorical) + _as_written(targets)
    read_table(table, columns=features + targets, text=text, na_values=read.na_values, decimal=read.decimal)
    features = [n for n in features if n in table.frame.columns]  # less the empty unnamed columns
    return table, targets, column_kinds(table, features, categorical)


#: The options of a CSV file's reading, which an NPZ archive (arrays, not text) has no use for.
CSV_OPTIONS = ("sep", "encoding", "decimal", "na_values")


def refuse_csv_options(args: argparse.Namespace, table: Table) -> None:
    """An NPZ read with --sep, --encoding, --decimal or --na-values: they
    did nothing, in silence, and the user believed them applied. ``--sep
    auto`` asks for the default, and is no claim about the file."""
    given = [n for n in CSV_OPTIONS if getattr(args, n) is not None and not (n == "sep" and args.sep == "auto")]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(f"{flags} read CSV files; {table.path} is an NPZ archive of arrays, which "
                         f"{'they do' if len(given) > 1 else 'it does'} not apply to (leave "
                         f"{'them' if len(given) > 1 else 'it'} out)")


def _given_by_name(table: Table, values: list[str]) -> set[str]:
    """The header names that option values give by name (``--ignore note``),
    not by position (``--ignore 1``): a name leaves out every column of a
    repeated name, a position that column only, as the hint 'leave out all
    but one: --ignore 1' means."""
    specs = [_one_line(s) for v in values for s in ([v] if _one_line(v) in table.names else split_names(v))]
    return {s for s in specs if s in table.names}


def _name_used_copies(table: Table, used: list[str]) -> dict[str, str]:
    """A repeated name's later column picked by position (``--target 3`` of
    ``a,b,y,y``, with ``--ignore 2``) takes the name from its left-out first
    column, so that the model, its messages and predict's header say ``y``,
    not the stand-in name. Returns stand-in -> name for those swapped."""
    named = {}
    for standin, name in table.duplicate_of.items():
        if standin in used and name not in used and name not in named.values():
            i, j = table.names.index(name), table.names.index(standin)
            table.names[i], table.names[j] = standin, name
            named[standin] = name
    return named


def _digits() -> tuple[Table, list[str], list[Column]]:
    import pandas as pd

    from .datasets import load_digits

    X, y = load_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    frame = pd.DataFrame(X, columns=names)
    frame["digit"] = y
    table = Table(Path("digits"), [*names, "digit"], sep=None, frame=frame)
    return table, ["digit"], [Column(n, "number") for n in names]


def _source(args: argparse.Namespace) -> str:
    return "digits (shipped with xpnet)" if args.data is None else str(args.data)


#: A target is never filled in: --missing mean, median and most_frequent leave such rows out, as drop does.
_TARGET_MISSING_HINT = ("--missing drop leaves such rows out, and so do mean, median and most_frequent, "
                        "which fill in features only")


def _apply_missing(table: Table, target: Target, kinds: list[Column], missing: str,
                   training: bool = True) -> tuple[Table, Target, int]:  # fmt: skip
    """``--missing``: an error naming the first missing value, or drop rows
    (any missing value under ``drop``; a missing target always)."""
    holes = Features(kinds).missing_rows(table)
    if missing == "error":
        gone = holes | target.missing
        if gone.any():
            row = int(np.flatnonzero(gone)[0])
            hint = _MISSING_HINT
            if target.missing[row]:  # a target is never filled in: every --missing but error leaves the row out
                what, hint = f"the target {target.names[0]!r}", _TARGET_MISSING_HINT
            else:
                name = next(c.name for c in kinds if bool(table.frame[c.name].isna().iloc[row]))
                what = f"column {name!r}"
                if training and bool(table.frame[name].isna().all()):  # drop and the fills would fail on it next
                    hint = f"it holds no value in any row: --ignore {_shell(name)} leaves it out"
            raise DataError(f"{table.path}, {table.where(row)}: {what} has a missing value", hint)
        return table, target, 0
    drop = (holes | target.missing) if missing == "drop" else target.missing
    if not drop.any():
        return table, target, 0
    keep = np.flatnonzero(~drop)
    if len(keep) == 0 and training:  # test rows may all go: then there is no test score
        _refuse_dropping_all(table, target, kinds, missing)
    return table.take(keep), target.take(keep), int(drop.sum())


def _as_written(targets: list[str]) -> list[str]:
    """A single target is read as text, so that class labels keep their
    spelling (``01`` stays ``01``); several targets are numbers."""
    return list(targets) if len(targets) == 1 else []


def _refuse_dropping_all(table: Table, target: Target, kinds: list[Column], missing: str) -> None:
    """Every row has a missing value: say where (an empty column, most often)."""
    empty = [c.name for c in kinds if bool(table.frame[c.name].isna().all())]
    if target.missing.all():
        why, hint = f"the target {target.names[0]!r} has no value in any row", "--target names the column to predict"
    elif empty:
        why, hint = f"column(s) {_few(empty, 5)} hold no value in any row", "--ignore leaves such columns out"
    else:
        why, hint = "every row has a missing value", "--missing mean, median or most_frequent fills them in"
    raise DataError(f"{table.path}: --missing {missing} leaves no row to train on: {why}", hint)


def _test_table(args: argparse.Namespace, read: _Read, targets: list[str], kinds: list[Column],
                task: str) -> tuple[Table, Target, int]:  # fmt: skip
    """``--test-data``: the same columns, read the same way; rows with a missing
    value are handled as ``--missing`` says."""
    table = read_header(args.test_data, read.sep, read.encoding)
    names = [c.name for c in kinds] + targets
    have = set(table.names)
    lacking = [n for n in names if n not in have]
    if lacking:
        need = "--test-data needs the training file's feature and target columns"
        raise DataError(f"{table.path} lacks the column(s) {_few(lacking, 12)} of the training data",
                        need + _test_sep_hint(table, read))
    text = [c.name for c in kinds if c.kind == "category"] + _as_written(targets)
    read_table(table, columns=names, text=text, na_values=read.na_values, decimal=read.decimal)
    target = read_target(table, targets, task)
    return _apply_missing(table, target, kinds, args.missing, training=False)


def _test_sep_hint(table: Table, read: _Read) -> str:
    """:func:`sep_hint`, but a given --sep reads --data too: "pass --sep comma" for the test file
    would have broken the training file's reading, so the hint says what works."""
    hint = sep_hint(table)
    if not hint or read.sep is None:
        return hint
    return (f"; the header reads as the single column {table.names[0]!r}: --sep reads --data and --test-data alike; "
            "write the test file with the training file's separator, or leave --sep out to detect each file's")


def _test_warnings(args: argparse.Namespace, test: tuple | None, features: Features, n_test: int) -> list[str]:
    """What --test-data lost, said as predict says it of its rows: rows left
    out by --missing, and rows whose unseen categories --unknown ignore
    encoded as all zeros (the test score is on what is left)."""
    if test is None:
        return []
    dropped, unseen = test[2], features.unseen_rows
    why = "a missing value" if args.missing == "drop" else "a missing target"
    return [f"--test-data: {dropped} row(s) with {why} left out of the test rows (--missing {args.missing})"
            if dropped else None,
            f"--test-data: {unseen} of {n_test} rows hold a category the model was not trained on (--unknown "
            "ignore: encoded as all zeros)" if unseen else None]  # fmt: skip


def _encode_target(target: Target, task: str) -> tuple[np.ndarray, dict[str, Any]]:
    if task == "classification":
        classes, labels = encode_classes(target.values)
        return labels, {"classes": classes}
    values = target.values.astype(np.float64)
    return values.reshape(len(values), -1), {}


def _class_spellings(table: Table, target: Target, labels: np.ndarray, classes: list | None) -> dict[str, Any]:
    """``{"class_spellings": [...]}``: how each class is written in the file
    where it has one spelling (``TRUE``, read as True; ``0`` among ``1`` and
    ``1.0``, read as 0.0), for predict to write back as written; ``{}`` when
    each is written as its value prints (text labels, or an NPZ)."""
    if classes is None or table.sep is None or len(target.names) != 1:
        return {}
    import pandas as pd

    groups = pd.Series(_texts(table.frame[target.names[0]], composed=False)[0]).groupby(labels)
    one = groups.nunique().to_numpy() == 1
    spellings = [str(w) if single else str(c) for c, w, single in zip(classes, groups.first().to_numpy(), one)]
    return {} if spellings == [str(c) for c in classes] else {"class_spellings": spellings}


def _test_targets(table: Table, target: Target, task: str, notes: dict[str, Any]) -> np.ndarray:
    """The test file's targets as the model's; a class that training lacks is named with its file and line."""
    if task == "classification":
        index = {c: i for i, c in enumerate(notes["classes"])}
        labels = [index.get(plain(v)) for v in target.values]
        unseen = [row for row, i in enumerate(labels) if i is None]
        if unseen:
            raise DataError(f"{table.path}, {table.where(unseen[0])}: --test-data holds the class "
                            f"{plain(target.values[unseen[0]])!r}, which the training data does not have",
                            f"the training classes are {_names(notes['classes'])}")
        return np.asarray(labels, dtype=np.int64)
    values = target.values.astype(np.float64).reshape(len(target.values), -1)
    return standardize(values, notes["y_mean"], notes["y_std"])


def training_info(features: Features, targets: list[str], task: str, notes: dict[str, Any], read: _Read,
                  source: str) -> dict[str, Any]:
    """What ``predict`` needs, stored in ``Network.info``."""
    return {"xpnet_train": INFO_VERSION, "task": task, "features": features.names,
            "target": targets[0] if len(targets) == 1 else ",".join(targets), "targets": targets,
            **features.to_info(), **notes, "read": read.to_info(), "source": source}


def _describe(args: argparse.Namespace, fmt: str, features: Features, targets: list[str], choice: Any, notes: dict[str, Any],
              dropped: int, holes: int, n: int, n_train: int, n_test: int) -> list[str]:
    outputs = "1 output" if len(targets) == 1 else f"{len(targets)} outputs"
    what = f"{len(notes['classes'])} classes" if "classes" in notes else f"regression, {outputs}"
    target = f"target {targets[0]!r}" if len(targets) == 1 else f"targets {_names(targets)}"
    lines = [f"data: {_source(args)}{fmt}, {n} rows, {features.describe()}, {target} ({what})"]
    if dropped:
        why = "a missing value" if args.missing == "drop" else "a missing target"
        lines.append(f"missing: dropped {dropped} row(s) with {why} (--missing {args.missing})")
    if args.missing not in ("error", "drop") and holes:
        lines.append(f"missing: {holes} feature value(s) filled in with the training rows' "
                     f"{args.missing.replace('_', ' ')} (--missing {args.missing})")
    lines.append(f"task: {choice.task} ({choice.reason})")
    if args.test_data:
        lines.append(f"split: {n_train} training rows; {n_test} test rows from {args.test_data}; "
                     "features standardised on the training rows")
    else:
        lines.append(f"split: {n_train} training rows, {n_test} test rows (seed {args.seed}); "
                     "features standardised on the training rows")
    return lines


def _names(names: list[Any]) -> str:
    return ", ".join(repr(n) for n in names)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------


def _stored_read(info: dict[str, Any], model: str) -> dict[str, Any]:
    """The CSV options the model was trained with, as ``train`` writes them:
    an edited record (``na_values: 5``) failed deep in the reading with
    "'int' object is not iterable", naming neither the model nor the field."""
    stored = info.get("read") if isinstance(info.get("read"), dict) else {}
    problem = _read_problem(stored)
    if problem is not None:
        raise ValueError(f"{model}: the model's read record is malformed ({problem}); save it again with xpnet train")
    return stored


def _read_problem(stored: dict[str, Any]) -> str | None:
    """What is wrong with a stored read record, field by field: a decimal of
    'x' blamed the rows ('not a number'), an unknown encoding an --encoding
    never given, and a sep of 'ab' was dropped in silence for detection."""
    import codecs

    na_values, encoding = stored.get("na_values", []), stored.get("encoding", "utf-8")
    decimal, sep = stored.get("decimal", "."), stored.get("sep")
    if not isinstance(na_values, list) or not all(isinstance(v, str) for v in na_values):
        return f"na_values must be a list of texts, got {_short(na_values)}"
    if not isinstance(decimal, str) or decimal not in (".", ","):
        return f"decimal must be '.' or ',', got {_short(decimal)}"
    if sep is not None and not (isinstance(sep, str) and len(sep) == 1 and sep not in "\"'\r\n" and not sep.isalnum()):
        return f"sep must be null (detected in training) or one character, got {_short(sep)}"
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        return f"encoding must name a Python codec, got {_short(encoding)}"
    return None


def _stored_sep(stored: dict[str, Any]) -> str | None:
    """The --sep given in training (``None``: it was detected, and is detected again)."""
    sep = stored.get("sep")
    return sep if isinstance(sep, str) and len(sep) == 1 else None


def _npz_width(table: Table) -> int:
    return sum(1 for n in table.names if n.startswith("x"))


def _npz_columns(table: Table, features: Features, trained_width: Any) -> None:
    """Name an NPZ's X columns for the model: by position when X has the
    model's width; an X of the training file's width (``x1``, ``x3`` of a
    model trained with ``--ignore x0,x2``) by name. Any other width is
    refused: an X with an extra first column would silently feed the model
    the wrong columns."""
    width = _npz_width(table)
    if width == len(features.names):
        table.names = [*features.names, *table.names[width:]]
    elif width != trained_width or not set(features.names) <= set(table.names[:width]):
        raise DataError(f"{table.path}: X has {width} columns, but the model takes {len(features.names)} "
                        f"({_few(features.names)} of its training file)",
                        "predict needs X of the model's columns, or X of the training file's columns")


def prediction_inputs(args: argparse.Namespace, info: dict[str, Any], features: Features | None,
                      n_in: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """The standardised rows to predict, and a mask of the rows that get no
    prediction (a missing value, under a model trained with ``--missing drop``)."""
    stored = _stored_read(info, args.model)
    encoding = args.encoding or str(stored.get("encoding", "utf-8"))
    decimal = args.decimal or str(stored.get("decimal", "."))
    na_values = [*(str(v) for v in stored.get("na_values", [])), *(args.na_values or [])]  # --na-values adds
    sep = None if args.sep == "auto" else args.sep or _stored_sep(stored)
    table = read_header(args.data, sep, encoding, known=() if features is None else features.names, rows_needed=False)
    if table.sep is None:
        refuse_csv_options(args, table)
    saved = features is None  # saved from Python (Network.save): every column a number, no fills, no --categorical
    if saved:
        features = Features([Column(n, "number") for n in table.names if table.sep is not None or n.startswith("x")],
                            from_model=True)  # hints name train's options as train's, not predict's
        features.mean, features.std = np.zeros(features.width), np.ones(features.width)
        for line in _index_warnings(features.names, predict=True):
            warnings.warn(line, stacklevel=2)
    elif table.sep is None:
        _npz_columns(table, features, info.get("npz_width"))
    have = set(table.names)
    lacking = [n for n in features.names if n not in have]
    if lacking:
        raise DataError(f"{table.path} lacks the column(s) {_few(lacking, 12)} the model was trained on; "
                        f"it has {_few(table.names, 12)}",
                        "predict needs the model's feature columns, by name" + sep_hint(table))
    read_table(table, columns=features.names, text=features.text, na_values=na_values, decimal=decimal,
               can_ignore=False, rows_needed=False)  # a header only: predict writes a header only
    if features.width != n_in:
        raise DataError(f"{table.path} has {features.width} feature columns, but the model takes {n_in}",
                        "predict needs the feature columns the model was trained on")
    skipped = np.zeros(len(table.frame), dtype=bool)
    if features.missing == "drop":
        skipped = features.missing_rows(table)
        if skipped.any():
            table = table.take(np.flatnonzero(~skipped))
    trained = (f"the model was trained with --missing {features.missing}, so it fills in no values; "
               "train with --missing mean (or median, most_frequent) to predict rows with missing values")
    if saved:
        trained = ("the model was saved from Python, without xpnet train's record of its columns, so it fills in "
                   "no values; fill them in the file, or train with --missing mean, median or most_frequent")
    X = features.transform(table, args.unknown, trained)
    _refuse_beyond_dtype(table, features, X, dtype)
    return X, skipped


def _refuse_beyond_dtype(table: Table, features: Features, X: np.ndarray, dtype: str) -> None:
    """A value that, scaled as in training, is beyond the model's dtype (a
    float32 model given 1e308) named by its column and line: the network's
    own check named neither, and gave the Python API's dtype= as the fix."""
    limit = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        if X.size == 0 or (np.fmax.reduce(X, axis=None) <= limit and -limit <= np.fmin.reduce(X, axis=None)):
            return
    row, j = (int(i[0]) for i in np.nonzero(np.abs(X) > limit))
    starts = np.cumsum([0, *(c.width for c in features.columns)])
    column = features.columns[int(np.searchsorted(starts, j, side="right")) - 1]
    mean, std = features.mean[j], features.std[j]
    raise DataError(f"{table.path}, {table.where(row)}: column {column.name!r} holds a value that, scaled as in "
                    f"training ((x - {mean:.6g}) / {std:.6g}), is beyond the range of the model's {dtype} inputs "
                    f"(about {limit:.4g})",
                    "check the value; a model trained with --dtype float64 takes it")  # fmt: skip

