"""Reading the command line's host data: CSV files with a header, NPZ files.

Data on disk is host data, so this module uses NumPy only; a model converts
the arrays to its backend once. Every problem with a file (missing, not a
CSV or NPZ, ragged rows, a non-numeric or empty feature value, a missing
column) is a ``ValueError`` or ``FileNotFoundError`` whose message names the
file and, where there is one, the line and column, so the CLI can print it as
its one-line reason.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Dataset", "read_features", "read_training_data"]

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Dataset:
    """Features and targets read from one source.

    ``y`` keeps the file's kind of value: ``y_kind`` is ``"integer"`` (whole
    numbers, e.g. class labels), ``"float"`` or ``"text"`` (labels written as
    words); ``y`` is (n,) or (n, k) for several float targets.
    """

    X: np.ndarray
    y: np.ndarray
    y_kind: str
    features: list[str]
    target: str
    source: str


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Csv:
    """A CSV file as text: header names and string rows of equal length."""

    path: Path
    names: list[str]
    rows: list[list[str]]
    lines: list[int]  # file line number of each row, for messages

    def column_index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            pass
        if re.fullmatch(r"-?\d+", name) and -len(self.names) <= int(name) < len(self.names):
            return int(name) % len(self.names)  # a position, when no column has that name
        raise ValueError(f"{self.path} has no column {name!r}; its columns are {_list(self.names)}")

    def strings(self, j: int) -> list[str]:
        return [row[j].strip() for row in self.rows]

    def numbers(self, j: int) -> np.ndarray:
        """Column ``j`` as float64, refusing empty, non-numeric and non-finite values."""
        values = self.strings(j)
        try:
            out = np.array(values, dtype=np.float64)
        except ValueError:
            out = None
        if out is not None and np.isfinite(out).all():
            return out
        for i, text in enumerate(values):
            if not text:
                raise ValueError(f"{self.path}, line {self.lines[i]}: column {self.names[j]!r} is empty (missing value)")
            try:
                v = float(text)
            except ValueError:
                raise ValueError(
                    f"{self.path}, line {self.lines[i]}: column {self.names[j]!r} holds {text!r}, not a number"
                ) from None
            if not np.isfinite(v):
                raise ValueError(f"{self.path}, line {self.lines[i]}: column {self.names[j]!r} holds {text!r} (NaN or inf)")
        raise AssertionError("unreachable")  # pragma: no cover

    def matrix(self, columns: list[int]) -> np.ndarray:
        if not columns:
            return np.zeros((len(self.rows), 0))
        return np.stack([self.numbers(j) for j in columns], axis=1)


def _read_csv(path: Path) -> _Csv:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            records = []
            for row in reader:
                records.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text CSV file (nor an NPZ archive)") from None
    except csv.Error as exc:
        raise ValueError(f"{path} is not a valid CSV file: {exc}") from None
    records = [(line, row) for line, row in records if any(field.strip() for field in row)]
    if not records:
        raise ValueError(f"{path} is empty; expected a header line of column names and rows of numbers")
    (_, header), body = records[0], records[1:]
    names = [name.strip() for name in header]
    if all(_is_number(name) for name in names):
        raise ValueError(f"{path} has no header line: the first line must name the columns (e.g. x1,x2,label)")
    for i, name in enumerate(names):
        if not name:
            raise ValueError(f"{path}: column {i + 1} of the header has no name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate column names in the header: {_list(duplicates)}")
    for line, row in body:
        if len(row) != len(names):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, but the header has {len(names)} columns")
    if not body:
        raise ValueError(f"{path} has a header but no data rows")
    return _Csv(path, names, [row for _, row in body], [line for line, _ in body])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _target_column(table: _Csv, j: int) -> tuple[np.ndarray, str]:
    """The target as numbers (``"integer"``/``"float"``) or, if it is not
    numeric, as text labels; empty target values are always an error."""
    values = table.strings(j)
    for i, text in enumerate(values):
        if not text:
            raise ValueError(f"{table.path}, line {table.lines[i]}: target column {table.names[j]!r} is empty (missing value)")
    if all(_INTEGER.fullmatch(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64), "integer"
    if all(_is_number(v) for v in values):
        return table.numbers(j), "float"
    return np.array(values), "text"


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is not a readable NPZ archive ({exc})") from None
    except ValueError as exc:  # e.g. object arrays, which would need pickle
        raise ValueError(f"{path}: cannot read its arrays without unpickling ({exc}); store plain numeric arrays") from None


def _npz_features(path: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    if "X" not in arrays:
        raise ValueError(f"{path} has no array 'X' (it holds {_list(sorted(arrays)) or 'nothing'}); save it with np.savez(path, X=X, y=y)")
    X = arrays["X"]
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{path}: X must be a non-empty 2-D array (n_samples, n_features), got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise ValueError(f"{path}: X must hold real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: X holds NaN or inf values")
    return X


def _npz_target(path: Path, arrays: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, str]:
    if "y" not in arrays:
        raise ValueError(f"{path} has no array 'y' (it holds {_list(sorted(arrays))}); save it with np.savez(path, X=X, y=y)")
    y = arrays["y"]
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"{path}: y must have shape ({n},) or ({n}, k) to match X's {n} rows, got {y.shape}")
    if y.dtype.kind in "US":
        if y.ndim != 1:
            raise ValueError(f"{path}: text labels in y must be a 1-D array, got shape {y.shape}")
        return y.astype(str), "text"
    if y.dtype.kind in "iub":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1:
            return y.astype(np.int64), "integer"
    if y.dtype.kind not in "iubf":
        raise ValueError(f"{path}: y must hold numbers or text labels, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"{path}: y holds NaN or inf values")
    return y, "float"


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def _source(path: Any) -> tuple[Path, bool]:
    """The path, checked to exist, and whether it is an NPZ archive."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such data file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected a CSV or NPZ file")
    with path.open("rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if path.suffix.lower() == ".npz" and not is_zip:
        raise ValueError(f"{path} is named .npz but is not an NPZ (zip) archive")
    return path, is_zip


def read_training_data(path: Any, target: str | None = None) -> Dataset:
    """Features and target from a CSV (``target`` names the column, default
    the last) or an NPZ file (arrays ``X`` and ``y``)."""
    path, is_npz = _source(path)
    if is_npz:
        if target is not None:
            raise ValueError(f"--target selects a CSV column; {path} is an NPZ archive, whose targets are its array 'y'")
        arrays = _read_npz(path)
        X = _npz_features(path, arrays)
        y, kind = _npz_target(path, arrays, X.shape[0])
        features = [f"x{i}" for i in range(X.shape[1])]
        return Dataset(X, y, kind, features, "y", str(path))
    table = _read_csv(path)
    if len(table.names) < 2:
        raise ValueError(f"{path} has a single column {table.names[0]!r}; training needs feature columns and a target column")
    j = table.column_index(target) if target is not None else len(table.names) - 1
    y, kind = _target_column(table, j)
    columns = [i for i in range(len(table.names)) if i != j]
    X = table.matrix(columns)
    return Dataset(X, y, kind, [table.names[i] for i in columns], table.names[j], str(path))


def read_features(path: Any, features: list[str] | None, n_features: int) -> np.ndarray:
    """The feature matrix for prediction, float64 ``(n, n_features)``.

    From a CSV, the columns named in ``features`` are taken by name (others,
    such as a target column, are ignored); without recorded names the file
    must hold exactly ``n_features`` columns. From an NPZ, the array ``X``."""
    path, is_npz = _source(path)
    if is_npz:
        X = _npz_features(path, _read_npz(path))
    else:
        table = _read_csv(path)
        if features is None:
            columns = list(range(len(table.names)))
        else:
            missing = [name for name in features if name not in table.names]
            if missing:
                raise ValueError(
                    f"{path} lacks the column(s) {_list(missing)} the model was trained on; it has {_list(table.names)}"
                )
            columns = [table.names.index(name) for name in features]
        X = table.matrix(columns)
    if X.shape[1] != n_features:
        raise ValueError(f"{path} has {X.shape[1]} feature columns, but the model takes {n_features}")
    return X


def _list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
