"""Numbers as tables write them: decimal marks, thousands marks, and the
words ``true``/``false``, read into float64 with a mask of what is not a
number. The CLI's column kinds, features and targets all read numbers here,
so that one table is read one way."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["as_numbers", "decimal_comma", "decimal_comma_share", "is_number", "number_marks", "plain_numbers"]


def is_number(text: str) -> bool:
    """Does Python read ``text`` as a number (``5.1``, ``1e-3``, ``inf``)?"""
    try:
        float(text)
    except ValueError:
        return False
    return True


def decimal_comma(text: str) -> bool:
    """Does ``text`` look like a number written with a decimal comma (``1,5``,
    or with points grouping thousands: ``1.234,5``)?"""
    return _DECIMAL_COMMA.fullmatch(text.strip()) is not None


_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:\.\d{3})+),\d+")


def decimal_comma_hint(sep: str | None, value: str = "") -> str:
    """How to read numbers written with a decimal comma from a file with
    ``sep``. Where ``value``'s comma may as well group thousands (``1,234``),
    both readings are named: --decimal , alone would read 1234 as 1.234."""
    if sep == ",":  # quoted "1,5": a decimal comma or a thousands mark? Only the writer knows
        return ("a comma-separated file cannot mark decimals with commas too: write it with ';' between columns "
                "(pandas: to_csv(sep=';', decimal=',')) and pass --decimal ,")
    if _THOUSANDS.fullmatch(value.strip()):
        return (f"if the ',' in {value.strip()!r} groups thousands, write the numbers without it "
                f"({value.strip().replace(',', '')!r}); if it marks decimals, --decimal , reads them")
    return "--decimal , reads numbers written with a decimal comma"


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")


def decimal_comma_share(texts: Any) -> float:
    """The share of (the first 1000 of) present ``texts`` that look like numbers with a decimal comma."""
    sample = list(texts[:1000])
    return float(np.mean([decimal_comma(str(t)) for t in sample])) if sample else 0.0


def number_marks(table: Any) -> tuple[str, str | None]:
    """``(decimal, thousands)`` of the table's numbers: a ``.`` groups
    thousands where the decimal mark is ``,`` (``1.234,5``); a ``,`` does in
    comma-separated files (Excel's quoted ``"1,234.5"``), and nowhere else,
    where ``1,234`` may be a decimal comma."""
    decimal = getattr(table, "decimal", ".")
    return decimal, "." if decimal == "," else ("," if table.sep == "," else None)


#: What :func:`plain_numbers` makes of a text that must not be read as a
#: number: ``pd.to_numeric`` refuses it (``errors="coerce"``: NaN). Not
#: ``"\x00"``: pandas 2 stores a replacement through NumPy's fixed-width
#: strings, which drop trailing NULs, and ``""`` reads as NaN, a missing
#: value, where the strict read must fail.
NOT_A_NUMBER = "?"


def plain_numbers(texts: Any, marks: tuple[str, str | None] = (".", None)) -> Any:
    """Stripped texts of numbers in Python's syntax: thousands marks removed
    where they group whole thousands (``1.234.567``; never after a leading
    ``0``: ``0.126`` groups nothing), the decimal mark made
    ``.``. Where the decimal mark is ``,``, a ``.`` in any other place
    (``1.5``) makes the text no number (:data:`NOT_A_NUMBER`): it would
    otherwise be read as a decimal point, a thousand times too small."""
    decimal, thousands = marks
    if thousands is None and decimal == ".":
        return texts
    out, grouped = texts, np.zeros(len(texts), dtype=bool)
    if thousands is not None:
        t, d = re.escape(thousands), re.escape(decimal)
        grouped = texts.str.fullmatch(rf"[+-]?[1-9]\d{{0,2}}(?:{t}\d{{3}})+(?:{d}\d*)?").fillna(False).to_numpy(bool)
        out = texts.where(~grouped, texts.str.replace(thousands, "", regex=False))
    if decimal != ".":
        ambiguous = out.str.contains(".", regex=False).fillna(False).to_numpy(bool) & ~grouped
        out = out.str.replace(decimal, ".", regex=False).where(~ambiguous, NOT_A_NUMBER)
    return out


def as_numbers(column: Any, marks: tuple[str, str | None] = (".", None)) -> tuple[np.ndarray, np.ndarray]:
    """A pandas column as float64 (NaN where missing) and a mask of the
    present values that are not numbers (text; ``true``/``false`` count as
    1/0); ``marks``: the table's :func:`number_marks`."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    missing = column.isna().to_numpy()
    texts = column.astype(object).where(~missing, "").astype(str).str.strip()
    lowered = texts.str.lower()
    with np.errstate(all="ignore"):
        numbers = pd.to_numeric(plain_numbers(texts, marks).where(~lowered.isin(("true", "false")), ""),
                                errors="coerce")  # fmt: skip
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.where(lowered == "true", 1.0, np.where(lowered == "false", 0.0, values))
    values = np.where(missing, np.nan, values)
    return values, ~missing & np.isnan(values)
