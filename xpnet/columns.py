"""Feature columns for the command line: numbers, categories, missing values.

:func:`fit_features` decides each column's kind (numbers, or categories
one-hot encoded) and learns, from the training rows, what fills a missing
value and how to standardise; :meth:`Features.transform` applies it to any
table (the training file, a ``--test-data`` file, ``predict``'s input).
:meth:`Features.to_info` / :func:`features_from_info` carry it inside the
model file, so ``xpnet predict`` prepares rows exactly as ``train`` did.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._files import shorten as _short
from ._number_text import as_numbers, decimal_comma, decimal_comma_hint, decimal_comma_share, is_number, number_marks
from .data_io import DataError, Table
from .preprocessing import (
    _refuse_repeated_header,
    _shell,
    _stray_hint,
    infinity_hint,
    plain,
    refuse_formatted_numbers,
    scaling,
)

__all__ = ["MISSING", "UNKNOWN", "Column", "Features", "features_from_info", "fit_features"]

MISSING = ("error", "drop", "mean", "median", "most_frequent")
UNKNOWN = ("error", "ignore")
_MISSING_HINT = "--missing drop leaves such rows out; --missing mean, median or most_frequent fills them in"


@dataclass
class Column:
    """One input column: ``kind`` is ``"number"`` or ``"category"``; ``fill``
    replaces a missing value (``None``: none learned); ``categories`` are the
    one-hot columns of a category column, in order."""

    name: str
    kind: str
    fill: Any = None
    categories: list[str] | None = None

    @property
    def width(self) -> int:
        return 1 if self.kind == "number" else len(self.categories)


@dataclass
class Features:
    """How a table's feature columns become the network's input matrix."""

    columns: list[Column]
    missing: str = "error"
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))
    from_model: bool = field(default=False, repr=False)  # in predict: hints say which options are train's
    #: Rows of the last :meth:`encode` with a category the model was not
    #: trained on (encoded as all zeros under ``unknown="ignore"``).
    unseen_rows: int = field(default=0, repr=False)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def text(self) -> list[str]:
        """Columns to read as text (categories keep their spelling: ``02134``)."""
        return [c.name for c in self.columns if c.kind == "category"]

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def describe(self) -> str:
        n_cat = sum(c.kind == "category" for c in self.columns)
        if not n_cat:
            return f"{self.width} features"
        one_hot = sum(c.width for c in self.columns if c.kind == "category")
        return (f"{len(self.columns)} features ({len(self.columns) - n_cat} numeric, {n_cat} categorical "
                f"one-hot encoded into {one_hot} columns)")

    def missing_rows(self, table: Table) -> np.ndarray:
        """Rows with a missing value in any feature column."""
        out = np.zeros(len(table.frame), dtype=bool)
        for c in self.columns:
            out |= table.frame[c.name].isna().to_numpy()
        return out

    def transform(self, table: Table, unknown: str = "error", trained: str = "") -> np.ndarray:
        """The standardised float64 matrix of ``table``'s rows. Missing values
        are filled with the learned values (or are an error naming the row:
        under ``error``, and under ``drop`` for rows the caller kept);
        unseen categories are an error, or all zeros with ``unknown="ignore"``."""
        return self.scale(self.encode(table, unknown, trained))

    def encode(self, table: Table, unknown: str = "error", trained: str = "") -> np.ndarray:
        """The float64 matrix before scaling: numbers, then one-hot columns."""
        if all(c.kind == "number" for c in self.columns) and _all_numeric(table.frame, self.names):
            return self._numeric(table, trained)
        X = np.empty((len(table.frame), self.width), dtype=np.float64, order="F")  # fast column writes
        at, self._unseen = 0, np.zeros(len(table.frame), dtype=bool)
        for c in self.columns:
            if c.kind == "number":
                X[:, at] = self._numbers(table, c, trained)
            else:
                X[:, at : at + c.width] = self._one_hot(table, c, unknown, trained)
            at += c.width
        self.unseen_rows = int(np.count_nonzero(self._unseen))
        return X

    def scale(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean) / std`` in place on this fresh host matrix, in steps
        that cannot overflow near 1e308 (see ``preprocessing.standardize``)."""
        with np.errstate(all="ignore"):
            scale = np.maximum(np.abs(self.mean), self.std)
            scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
            X /= scale
            X -= self.mean / scale
            X /= self.std / scale
        return X

    def _numeric(self, table: Table, trained: str) -> np.ndarray:
        """All-number tables (the large ones): pandas' own block as the matrix,
        checked and filled column by column, with no copy."""
        X = _float_matrix(table.frame, self.names)
        for j, c in enumerate(self.columns):
            column = X[:, j]
            if np.isinf(column).any():
                self._refuse_infinite(table, c, column)
            missing = np.isnan(column)
            if missing.any():
                X[:, j] = np.where(missing, self._fill(table, c, missing, trained), column)
        return X

    def _refuse_infinite(self, table: Table, c: Column, values: np.ndarray) -> None:
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise DataError(f"{table.path}, {table.where(row)}: column {c.name!r} holds an infinite value "
                        "(beyond float64's range of about 1.8e308)",
                        infinity_hint(table, values[row]))

    def _numbers(self, table: Table, c: Column, trained: str) -> np.ndarray:
        values, stray = as_numbers(table.frame[c.name], number_marks(table))
        if stray.any():
            _refuse_text(table, c.name, stray, self.from_model)
        if np.isinf(values).any():
            self._refuse_infinite(table, c, values)
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, self._fill(table, c, missing, trained), values)
        return values

    def _one_hot(self, table: Table, c: Column, unknown: str, trained: str) -> np.ndarray:
        texts, missing = _texts(table.frame[c.name])
        if missing.any():
            texts = np.where(missing, self._fill(table, c, missing, trained), texts)
        import pandas as pd

        index = pd.Index(c.categories).get_indexer(texts).astype(np.int64)  # -1: unseen
        unseen = index < 0
        self._unseen |= unseen
        if unseen.any() and unknown != "ignore":
            row = int(np.flatnonzero(unseen)[0])
            raise DataError(f"{table.path}, {table.where(row)}: column {c.name!r} holds {texts[row]!r}, a category "
                            f"the model was not trained on (it knows {_few(c.categories)})",
                            "--unknown ignore encodes unseen categories as all zeros")
        return (index[:, None] == np.arange(c.width)[None, :]).astype(np.float64)

    def _fill(self, table: Table, c: Column, missing: np.ndarray, trained: str) -> Any:
        if c.fill is None:
            row = int(np.flatnonzero(missing)[0])
            raise DataError(f"{table.path}, {table.where(row)}: column {c.name!r} has a missing value",
                            trained or _MISSING_HINT)
        return c.fill

    def to_info(self) -> dict[str, Any]:
        return {
            "columns": [{"name": c.name, "kind": c.kind, "fill": c.fill, "categories": c.categories}
                        for c in self.columns],
            "missing": self.missing,
            "x_mean": self.mean.tolist(),
            "x_std": self.std.tolist(),
        }


def _all_numeric(frame: Any, names: list[str]) -> bool:
    import pandas as pd

    return all(pd.api.types.is_numeric_dtype(frame[n].dtype) and not pd.api.types.is_bool_dtype(frame[n].dtype)
               for n in names)


def _float_matrix(frame: Any, names: list[str]) -> np.ndarray:
    """The columns as one writable float64 matrix. When pandas holds them as
    one float64 block, that block itself (pandas hands it out read-only to
    guard copy-on-write; this frame is private to the command, and its
    numbers are not read again): at a million rows by 50 columns a copy is
    400 MB that the system has to page in, about a second here."""
    X = frame[names].to_numpy(dtype=np.float64)
    if not X.flags.writeable:
        try:
            X.flags.writeable = True
        except ValueError:
            X = np.array(X, dtype=np.float64, order="F")
    return X


def _texts(column: Any, composed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A column's values as stripped text (numbers as written), and the
    missing mask. Text is in Unicode's composed form (NFC), so that ``ü``
    matches whether a file wrote it as one character or two (as macOS may);
    ``composed=False``: as the file spells it (labels written back)."""
    missing = column.isna().to_numpy()
    texts = column.astype(object).where(~missing, "").astype(str).str.strip()
    texts = texts.str.normalize("NFC") if composed else texts
    missing = missing | (texts == "").to_numpy()
    return texts.to_numpy(dtype=object), missing


def _refuse_text(table: Table, name: str, stray: np.ndarray, from_model: bool = False) -> None:
    row = int(np.flatnonzero(stray)[0])
    value = str(table.frame[name].iloc[row]).strip()
    _refuse_repeated_header(table, name, row, value)
    if _is_infinite(value):  # pandas < 3 keeps 1e309 as text
        raise DataError(f"{table.path}, {table.where(row)}: column {name!r} holds an infinite value "
                        "(beyond float64's range of about 1.8e308)",
                        infinity_hint(table, float(value)))
    hint = f"{_stray_hint(value)}; --categorical {_shell(name)} encodes the column as categories"
    if from_model:
        hint = (f"{_stray_hint(value)}; the model takes {name!r} as numbers: xpnet train --categorical "
                f"{_shell(name)} trains one that takes categories")
    if decimal_comma(value) and table.sep is not None:
        also = "" if from_model else f"; or --categorical {_shell(name)} if they are categories"
        hint = f"{decimal_comma_hint(table.sep, value)}{also}"
    if number_marks(table)[0] == "," and "." in value and is_number(value):
        hint = "with --decimal , a '.' only groups thousands (1.234,5): write the number with a decimal comma"
        if from_model:  # the ',' is the model's or predict's own --decimal: either way predict's option sets it
            hint = ("predict reads this file with --decimal , (the model's, unless given here), where a '.' only "
                    "groups thousands (1.234,5); if this file's decimal mark is '.', pass predict --decimal .")
    raise DataError(f"{table.path}, {table.where(row)}: column {name!r} holds {value!r}, not a number", hint)


def _is_infinite(text: str) -> bool:
    try:
        return bool(np.isinf(float(text)))
    except ValueError:
        return False


def _decimal_commas(column: Any) -> float:
    """The share of (the first 1000) values that look like numbers with a decimal comma (``1,5``)."""
    texts, missing = _texts(column)
    return decimal_comma_share(texts[~missing])


def _few(values: list, limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


# --------------------------------------------------------------------------
# Fitting on the training rows
# --------------------------------------------------------------------------


def column_kinds(table: Table, names: list[str], categorical: set[str]) -> list[Column]:
    """Each feature column as numbers or categories: ``categorical`` columns
    (read as text) and columns of words are categories; a column of numbers
    with a few words in it is refused with the options that fix it."""
    import pandas as pd

    out = []
    for name in names:
        column = table.frame[name]
        if name in categorical:
            out.append(Column(name, "category"))
        elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            out.append(Column(name, "number"))
        else:
            _, stray = as_numbers(column, number_marks(table))
            present = np.count_nonzero(~column.isna().to_numpy())
            if np.count_nonzero(stray) <= 0.5 * present:  # mostly numbers, with a few stray words
                if stray.any():
                    _refuse_text(table, name, stray)
                out.append(Column(name, "number"))
            elif table.sep is not None and _decimal_commas(column) > 0.5:
                _refuse_text(table, name, stray)
            else:
                texts, missing = _texts(column)
                refuse_formatted_numbers(table, name, [str(t) for t in texts[~missing][:1000]])
                out.append(Column(name, "category"))
    return out


def fit_features(
    table: Table,
    columns: list[Column],
    rows: np.ndarray,
    missing: str = "error",
    max_categories: int = 100,
) -> tuple[Features, np.ndarray]:
    """Learn categories (from all rows of the training file), fill values and
    scaling (from the training ``rows`` only); also return the standardised
    matrix of all of ``table``'s rows."""
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {', '.join(MISSING)}, got {missing!r}")
    learned = []
    for c in columns:
        if c.kind == "category":
            texts, gone = _texts(table.frame[c.name])
            categories = sorted(set(texts[~gone].tolist()))
            if len(categories) > max_categories:
                raise DataError(f"column {c.name!r} has {len(categories)} distinct text values, too many to one-hot "
                                f"encode (at most {max_categories})",
                                f"--ignore {_shell(c.name)} leaves it out; --max-categories raises the limit")
            if not categories:
                raise DataError(f"column {c.name!r} holds no values", f"--ignore {_shell(c.name)} leaves it out")
            fill = _most_frequent(texts[rows][~gone[rows]]) if missing not in ("error", "drop") else None
            learned.append(Column(c.name, "category", fill, categories))
        else:
            values, _ = as_numbers(table.frame[c.name], number_marks(table))
            learned.append(Column(c.name, "number", _number_fill(values[rows], missing, c.name)))
    features = Features(learned, missing)
    X = features.encode(table, trained=_MISSING_HINT)
    features.mean, features.std = scaling(X, rows)
    return features, features.scale(X)


def _number_fill(values: np.ndarray, missing: str, name: str) -> float | None:
    if missing in ("error", "drop"):
        return None
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise DataError(f"column {name!r} has no values in the training rows to fill its missing ones from",
                        f"--ignore {_shell(name)} leaves it out")
    if missing == "mean":
        lo, hi = present.min(), present.max()
        scale = max(abs(lo), abs(hi)) or 1.0
        with np.errstate(invalid="ignore"):  # an infinite value (inf / inf) is refused next, by encode, with its line
            return float(min(max(np.mean(present / scale) * scale, lo), hi))  # no overflow near 1e308
    if missing == "median":
        return float(np.median(present))
    return float(_most_frequent(present))


def _most_frequent(values: np.ndarray) -> Any:
    """The most frequent value (the smallest of the ties), as a plain value."""
    if values.size == 0:
        return None
    uniques, counts = np.unique(values, return_counts=True)
    return plain(uniques[int(np.argmax(counts))])


# --------------------------------------------------------------------------
# From a model file
# --------------------------------------------------------------------------


class _ScalingWithoutColumns(Exception):
    """A model's info with a scaling and no columns to apply it to."""


def features_from_info(info: dict[str, Any], n_in: int) -> Features | None:
    """The features stored by ``xpnet train`` (``None`` if the model has
    none: a model saved from Python takes its columns as they are).

    Models of the first layout (``features``, ``x_mean``, ``x_std``, all
    numeric) are read too. A malformed record is a ``ValueError``."""
    try:
        if "columns" in info:
            columns = [Column(_nfc(str(c["name"])), c["kind"], _nfc(c.get("fill")), _categories(c))
                       for c in info["columns"]]
        elif "features" in info:
            columns = [Column(_nfc(str(name)), "number") for name in info["features"]]
        elif "x_mean" in info or "x_std" in info:  # a scaling that predict would skip, silently: say so
            raise _ScalingWithoutColumns
        else:
            return None
        missing = info.get("missing", "error")
        if missing not in MISSING:  # an edited 'x' was taken as error in silence (fills as drop's)
            raise ValueError(f"missing must be one of {', '.join(MISSING)}, got {_short(missing)}")
        features = Features(columns, missing, from_model=True)
        for c in columns:
            _check_column(c)
        _check_names([c.name for c in columns])
        if "columns" in info:
            _check_fills(columns, missing)
        width = features.width
        features.mean = _vector(info.get("x_mean", [0.0] * width), width)
        features.std = _vector(info.get("x_std", [1.0] * width), width, positive=True)
    except _ScalingWithoutColumns:
        raise ValueError("the model's info holds x_mean/x_std (a scaling of its inputs) but no 'features' (the "
                         "column names it applies to), so predict cannot prepare new rows as its training rows "
                         "were: add info['features'] (an NPZ file's columns are x0, x1, ...) and save it again, or "
                         "train it with xpnet train") from None  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"the model's column record is malformed ({exc}); save it again with xpnet train") from None
    if features.width != n_in:
        raise ValueError(f"the model's column record gives {features.width} inputs, but its network takes {n_in}")
    return features


def _nfc(value: Any) -> Any:
    """Text in Unicode's composed form, as the tables are read (a model of
    an older xpnet may hold names or categories as its file spelled them);
    other values (a number column's fill) as they are."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _categories(c: dict[str, Any]) -> list[str] | None:
    """A column's stored categories, distinct texts (numbers as they print):
    an edited ['blue'] was read as the text "['blue']" in silence, and a
    repeated one ended in pandas' InvalidIndexError, called a bug."""
    values = c.get("categories")
    if values is None:
        return None
    where = f"column {_short(c['name'])}"
    if not isinstance(values, list):
        raise ValueError(f"{where}: categories must be a list, got {_short(values)}")
    odd = [v for v in values if isinstance(v, bool) or not isinstance(v, str | int | float)]
    if odd:
        raise ValueError(f"{where}: categories must be texts (or numbers), got {_short(odd)}")
    texts = [_nfc(str(v)) for v in values]
    seen: set[str] = set()
    twice = next((t for t in texts if t in seen or seen.add(t)), None)  # (--max-categories may be large)
    if twice is not None:
        raise ValueError(f"{where}: categories must be distinct, got {twice!r} twice")
    return texts


def _check_column(c: Column) -> None:
    if c.kind == "number":
        if c.fill is not None and (isinstance(c.fill, bool) or not isinstance(c.fill, int | float)
                                   or not np.isfinite(c.fill)):
            raise ValueError(f"column {c.name!r} has a fill value that is not a finite number")
    elif c.kind == "category":
        if not c.categories or (c.fill is not None and str(c.fill) not in c.categories):
            raise ValueError(f"column {c.name!r} has no categories, or a fill value that is not one of them")
    else:
        raise ValueError(f"column {c.name!r} has the unknown kind {c.kind!r}")


def _check_names(names: list[str]) -> None:
    """Each column once: a repeated name ended in pandas' AttributeError, called a bug."""
    seen: set[str] = set()
    twice = next((n for n in names if n in seen or seen.add(n)), None)
    if twice is not None:
        raise ValueError(f"column names must be distinct, got {twice!r} twice")


def _check_fills(columns: list[Column], missing: str) -> None:
    """Train stores a fill for every column under ``mean``, ``median`` and
    ``most_frequent``, and none under ``error`` and ``drop``: an edited
    ``missing`` filled values in silence, or gave a hint that led nowhere."""
    fills = missing not in ("error", "drop")
    odd = next((c for c in columns if (c.fill is None) == fills), None)
    if odd is not None:
        has = "has no fill value" if fills else "has a fill value"
        raise ValueError(f"column {odd.name!r} {has}, but missing is {missing!r}")


def _vector(values: Any, width: int, positive: bool = False) -> np.ndarray:
    """A stored scaling; ``positive`` for the divisors (training writes 1 for
    a constant column: 0 or below is an edited file, which gave infinities
    blamed on the rows, or flipped a feature in silence)."""
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (width,) or not np.isfinite(out).all() or (positive and not (out > 0).all()):
        raise ValueError(f"expected {width} finite{', positive' if positive else ''} scaling values")
    return out
