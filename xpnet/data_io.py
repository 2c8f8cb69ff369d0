"""Reading the command line's tables: CSV files (through pandas) and NPZ files.

CSV parsing is pandas' C engine (``pandas.read_csv``): it is the ecosystem's
standard, and its time and memory grow linearly with the file, where a
hand-written reader in Python was 30x slower and 3x bigger at a million rows
(``benchmarks/reading.py``). This module adds what the command line needs
around it: the separator detected from the header and first rows, header
checks, and messages that name the file and the line (found only when there
is an error, so reading stays as fast as pandas).

A :class:`Table` holds the raw columns: numbers as numbers, text as text,
missing values as NaN. What the columns mean (features, targets, categories)
is decided by :mod:`xpnet.preprocessing` and :mod:`xpnet.columns`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import shlex
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._files import is_symlink_loop
from ._number_text import is_number

__all__ = [
    "SEPARATORS",
    "DataError",
    "Table",
    "check_input_file",
    "column_name",
    "column_names",
    "read_header",
    "read_table",
    "read_text_column",
    "sep_hint",
    "split_names",
    "unnamed_columns",
]

#: The separators detected (and accepted by ``--sep``), with their names.
SEPARATORS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
#: How much of a file the separator and header are detected from.
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 50
#: The longest first line (the header) that is read.
_MAX_LINE_BYTES = 1 << 26
#: pandas' default missing-value tokens (``keep_default_na``).
_PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
              "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
#: pandas' warning when the first data row has more fields than the header.
_EXTRA_FIELDS = "Length of header or names does not match"


class DataError(ValueError):
    """A problem with the data, and the option or fix that solves it
    (the command line prints ``<message> (<hint>)``)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Table:
    """Raw columns read from one file, and what messages need about it.

    ``frame`` is a pandas DataFrame named by the header; ``sep`` is ``None``
    for an NPZ archive. Use :meth:`where` to name a data row in a message."""

    path: Path
    names: list[str]
    sep: str | None = None
    detected: bool = False
    encoding: str = "utf-8"
    frame: Any = None
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)  # the file's data rows, after take()
    na_values: tuple[str, ...] = ()
    decimal: str = "."
    #: Stand-in name of each repeated header name's later columns -> the name (see :func:`read_header`).
    duplicate_of: dict[str, str] = field(default_factory=dict, repr=False)

    def take(self, rows: np.ndarray) -> Table:
        """The same table restricted to ``rows`` (messages still name the file's lines)."""
        rows = np.asarray(rows, dtype=np.int64)
        original = rows if self.rows is None else self.rows[rows]
        frame = self.frame.iloc[rows].reset_index(drop=True)
        return Table(self.path, self.names, self.sep, self.detected, self.encoding, frame, None, original,
                     self.na_values, self.decimal, self.duplicate_of)

    def where(self, row: int) -> str:
        """``"line 7"`` (CSV: the file's line) or ``"row 7"`` (NPZ) for data row ``row`` (0-based)."""
        if self.rows is not None:
            row = int(self.rows[row])
        if self.sep is None:
            return f"row {row + 1}"
        return f"line {_line_of(self, row)}"

    def describe(self) -> str:
        """What the ``data:`` line says about the format."""
        if self.sep is None:
            return "NPZ"
        how = "detected" if self.detected else "from --sep"
        return f"separator {SEPARATORS.get(self.sep, repr(self.sep))}, {how}"


# --------------------------------------------------------------------------
# Files: existence and kind, checked before anything is read
# --------------------------------------------------------------------------


def check_input_file(path: Any, what: str = "data file") -> tuple[Path, bool]:
    """The path, checked to be a readable regular file, and whether it is an
    NPZ (zip) archive. Raises ``FileNotFoundError``/``ValueError`` naming it."""
    path = Path(path)
    if is_symlink_loop(path):
        raise ValueError(f"{path} is a symlink loop (too many levels of symbolic links), not a {what}")
    if not path.exists():
        raise FileNotFoundError(f"no such {what}: {path}")
    expected = "a model (safetensors) file" if what == "model file" else "a CSV or NPZ file"
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected {expected}")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; expected {expected}")
    try:
        with path.open("rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise OSError(f"cannot read {path}: {exc.strerror or exc}") from None
    if what != "model file" and path.suffix.lower() == ".npz" and not is_zip:  # a model: safetensors, any name
        raise ValueError(f"{path} is named .npz but is not an NPZ (zip) archive")
    return path, is_zip


# --------------------------------------------------------------------------
# CSV: the header and the separator
# --------------------------------------------------------------------------


def read_header(path: Any, sep: str | None = None, encoding: str = "utf-8", known: Any = (),
                rows_needed: bool = True) -> Table:
    """The column names and separator of a CSV file (detected among
    :data:`SEPARATORS` unless ``sep`` is given), or the columns of an NPZ
    archive (``x0``, ``x1``, ... and ``y`` or ``y0``, ``y1``, ...).

    The returned :class:`Table` has no data yet: pass it to :func:`read_table`.
    ``known``: column names the caller expects (a model's features): a first
    line of them is a header, whatever they look like (``900.0``, ``2019``).
    ``rows_needed=False`` takes an NPZ whose ``X`` has no rows (predict)."""
    path, is_npz = check_input_file(path)
    if is_npz:
        return _npz_table(path, rows_needed)
    _refuse_binary(path)
    _refuse_other_unicode(path, encoding)
    lines = _sample_lines(path, encoding)
    if not lines:
        raise ValueError(f"{path} is empty; expected a header line of column names, then rows")
    _refuse_preamble(path, lines, sep)
    if _looks_like_json(lines[0]):
        raise DataError(f"{path} looks like JSON, not a text table; expected a CSV file or an NPZ archive",
                        "convert it to CSV, e.g. pandas.read_json(path, lines=True).to_csv('data.csv', index=False); "
                        "lines=False reads one JSON array")  # fmt: skip
    detected = sep is None
    if detected:
        sep = _detect_separator(lines)
    reader = csv.reader(lines, delimiter=sep, skipinitialspace=True)  # as pandas reads the rows
    header, rows = next(reader), lines[reader.line_num :]  # a quoted name may span lines (Excel's wrapped cells)
    names = [_one_line(name) or _unnamed(i) for i, name in enumerate(header)]  # refused if used (read_table)
    wanted = set(known)  # once: 20,000 columns took 23 s as a set per name
    named = bool(known) and [n for n in names if n in wanted] == list(known)  # the model's own, in order
    if not named and not _pandas_default_header(names, rows, sep) and (
            all(is_number(name) for name in names) or _first_line_is_a_row(names, rows, sep)):  # fmt: skip
        if known and wanted <= set(names):  # the model's names, reordered: a header, or a row of those numbers?
            raise DataError(f"{path}: its first line holds the model's column names in another order "
                            f"({_list(names, 4)}); names that read as numbers cannot be told from a row of numbers "
                            "unless in the model's order",
                            f"put the columns in the model's order: {_list(list(known), 4)}")  # fmt: skip
        raise ValueError(f"{path} has no header line: the first line must name the columns (e.g. x1,x2,label); "
                         f"it reads {_list(names, 4)}")  # fmt: skip
    names, duplicate_of = _stand_ins_for_repeats(names)
    return Table(path, names, sep, detected, encoding, duplicate_of=duplicate_of)


def _one_line(name: str) -> str:
    """A header name stripped, its line breaks (a wrapped cell) one space,
    in Unicode's composed form (NFC: ``ü`` one character, however the file
    or the command line wrote it)."""
    return unicodedata.normalize("NFC", re.sub(r"\s*[\r\n]+\s*", " ", name.strip()))


def _looks_like_json(line: str) -> bool:
    """A JSON-lines record or array (``{"a": 1, ...}``, ``[{...``), not a
    header whose first name starts with a bracket (``[x1],[x2],y``)."""
    text = line.strip()
    if text in ("[", "{") or text.startswith(('{"', "{ ", "[{", "[ {", '["', "[[")):
        return True
    try:
        return isinstance(json.loads(text), list | dict)  # a JSON-lines record: [0.96, 0.95, 0]
    except ValueError:
        return False


def _first_line_is_a_row(names: list[str], rows: list[str], sep: str) -> bool:
    """A header-less file with a text column (iris as ``5.1,3.5,...,setosa``):
    decimals in most cells, and each other cell a value of its own column
    below. Decimal names above a header's own words (``900.0,...,label``,
    ``id,0.1,0.5,y``) are a header. Without decimals (``37,12,no``, UCI's
    adult.data), numbers and words each of which is a value of its own
    column below (the words exactly) are a row too: a header's names
    (``2019,2020,label``) are not its columns' values."""
    below = [row for row in csv.reader(rows, delimiter=sep, skipinitialspace=True) if row]
    words = [(i, name) for i, name in enumerate(names) if not is_number(name)]
    columns = {i: [row[i].strip() for row in below if i < len(row)] for i, _ in words}
    if sum(map(_is_fraction, names)) < max(2, len(names) / 2):
        return bool(words) and len(words) < len(names) and all(name in columns[i] for i, name in words)
    return all(_a_value_of(name, columns[i]) for i, name in words)


def _pandas_default_header(names: list[str], rows: list[str], sep: str) -> bool:
    """``0,1,2,...``: the header ``DataFrame.to_csv(index=False)`` writes for
    unnamed columns. A header when some column below holds no integer (text,
    or decimals: pandas writes floats as ``1.0``), which a first row of
    these integers would be out of place in; ``0,1,2`` above integers
    is a row."""
    if len(names) < 2 or names != [str(i) for i in range(len(names))]:
        return False
    below = [row for row in csv.reader(rows, delimiter=sep, skipinitialspace=True) if row]
    return bool(below) and any(all(i >= len(row) or not row[i].strip().lstrip("+-").isdigit() for row in below)
                               for i in range(len(names)))


def _a_value_of(cell: str, column: list[str]) -> bool:
    """Is ``cell`` one of ``column``'s values, or shaped as nearly all of
    them are, digits and all (an ID ``u-00017`` or a date ``2020-01-31``
    never repeats, but looks like its column; a header's name does not)?"""
    if cell in column:
        return True
    shape = _shape(cell)  # 3 digits at least: a name such as x1 or T0 is a header's, shaped as its column or not
    return sum(c.isdigit() for c in cell) >= 3 and bool(column) and (
        sum(_shape(v) == shape for v in column) >= 0.9 * len(column))  # fmt: skip


def _shape(text: str) -> str:
    return re.sub(r"[^\W\d_]", "a", re.sub(r"\d", "9", text))


def _refuse_preamble(path: Path, lines: list[str], sep: str | None = None) -> None:
    """Lines before the header that name no columns: Excel's ``sep=;`` and
    comments. Read as the header, they named one odd column, and the hints
    that followed led nowhere (``--target sep=``)."""
    line = lines[0].strip()
    if re.fullmatch(r"(?i)sep=.?", line):
        raise DataError(f"{path} starts with Excel's separator line {line!r}, not a header line of column names",
                        "delete that line: xpnet detects the separator (or --sep sets it)")  # fmt: skip
    if line.startswith("#") and _fewer_fields_than_next(lines, sep):  # "#id,a,b" or "# rooms" is a header
        raise DataError(f"{path} starts with a comment line ({line[:40]!r}), not a header line of column names",
                        "delete the lines before the header")  # fmt: skip


def _fewer_fields_than_next(lines: list[str], sep: str | None) -> bool:
    """Does the first line split into fewer fields than the next (with the
    given separator, else the one detected from the lines), not counting a
    row's trailing empty fields? A comment does; a header has as many
    names as the rows have fields."""
    if len(lines) < 2:
        return False
    sep = sep or _detect_separator(lines)
    fields = [_filled(next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])) for line in lines[:2]]
    return fields[0] < fields[1]


def _filled(fields: list[str]) -> int:
    """The number of fields, less empty ones at the end (a row's trailing separator)."""
    while fields and not fields[-1].strip():
        fields = fields[:-1]
    return len(fields)


def _stand_ins_for_repeats(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """A repeated header name's later columns get stand-in names: such
    columns may be left out (an export's extra ``note`` columns that
    ``predict`` ignores), never used (:func:`read_table` refuses them)."""
    out, duplicate_of, seen = [], {}, set()
    for i, name in enumerate(names):
        if name in seen:
            out.append(f"(column {i + 1}, another {name!r})")
            duplicate_of[out[-1]] = name
        else:
            out.append(name)
            seen.add(name)
    return out, duplicate_of


#: File signatures of binary formats that are given as tables by mistake, and how to read them.
_BINARY = {
    b"\x1f\x8b": ("a gzip-compressed file", "decompress it with gunzip and pass the CSV file"),
    b"PAR1": ("a Parquet file", "convert it to CSV: pandas.read_parquet(path).to_csv('data.csv', index=False)"),
    b"BZh": ("a bzip2-compressed file", "decompress it with bunzip2 and pass the CSV file"),
    b"\xfd7zXZ\x00": ("an xz-compressed file", "decompress it with unxz and pass the CSV file"),
    b"\x28\xb5\x2f\xfd": ("a zstd-compressed file", "decompress it with unzstd and pass the CSV file"),
    b"SQLite format 3\x00": ("an SQLite database", "export the table to CSV first"),
}


def _refuse_binary(path: Path) -> None:
    """Name a known binary format (by its first bytes) rather than guess at an
    encoding. Signatures that text can begin with are checked in full: bzip2's
    block magic after ``BZh`` and its level, Parquet's ``PAR1`` at both ends
    (a CSV column may be called ``PAR1`` or ``BZh_ratio``)."""
    with path.open("rb") as f:
        start = f.read(16)
        f.seek(max(path.stat().st_size - 4, 0))
        end = f.read(4)
    for magic, (what, hint) in _BINARY.items():
        if start.startswith(magic) and _whole_signature(magic, start, end):
            raise DataError(f"{path} looks like {what}, not a text table; expected a CSV file or an NPZ archive", hint)


#: Byte-order marks, the encoding they announce, and what --encoding reads it.
_BOMS = {b"\xef\xbb\xbf": ("UTF-8", "utf-8"), b"\xff\xfe": ("UTF-16", "utf-16"), b"\xfe\xff": ("UTF-16", "utf-16")}


def _refuse_other_unicode(path: Path, encoding: str) -> None:
    """A file that announces (by its byte-order mark) or shows (a NUL byte
    beside every character) a Unicode encoding other than ``encoding``:
    read so, its names and values would carry NULs or stray marks."""
    with path.open("rb") as f:
        start = f.read(4096)
    codec = _python_encoding(encoding).replace("_", "-").lower()
    for mark, (name, option) in _BOMS.items():
        if start.startswith(mark) and not codec.startswith(option) and _mostly_ascii(start, option):
            raise DataError(f"{path} starts with the byte-order mark of {name} text, and is read as {encoding}",
                            f"pass --encoding {option}")  # fmt: skip
    pairs = start[: len(start) // 2 * 2]
    nuls = bool(pairs) and max(pairs[1::2].count(0), pairs[0::2].count(0)) > 0.9 * len(pairs) // 2
    if nuls and not codec.startswith(("utf-16", "utf-32")):  # UTF-32 has NULs beside every character too
        raise DataError(f"{path} has a NUL byte beside every character: it looks like UTF-16 text",
                        "pass --encoding utf-16-le, or utf-16-be")  # fmt: skip
    if (pairs and codec.startswith("utf-16") and not nuls and not start.startswith((b"\xff\xfe", b"\xfe\xff"))
            and _printable(start, "utf-8")):  # UTF-8 text (of any script), not UTF-16 without a mark  # fmt: skip
        raise DataError(f"{path} is read as {encoding} (a model keeps its training file's --encoding), but it "
                        "holds no UTF-16 text: no byte-order mark, no NUL bytes",
                        "pass its encoding, e.g. --encoding utf-8")  # fmt: skip


def _mostly_ascii(raw: bytes, encoding: str) -> bool:
    """Does ``raw`` read in ``encoding`` as text, mostly ASCII (a table's
    digits, separators and names; not binary data behind a stray mark)?"""
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")  # the mark itself is not ASCII
    return bool(text) and sum(ch.isascii() and (ch.isprintable() or ch in "\r\n\t") for ch in text) > 0.9 * len(text)


def _printable(raw: bytes, encoding: str) -> bool:
    """Does ``raw`` read in ``encoding`` as printable text (letters of any
    script, no control characters: UTF-16 read as UTF-8 shows NULs or
    controls such as 0x04 between its letters)?"""
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
    return bool(text) and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) > 0.95 * len(text)


def _whole_signature(magic: bytes, start: bytes, end: bytes) -> bool:
    if magic == b"BZh":
        return len(start) >= 10 and start[3:4] in b"123456789" and start[4:10] == b"1AY&SY"
    if magic == b"PAR1":
        return end == b"PAR1"
    return True


def _unnamed(i: int) -> str:
    """The stand-in name of header cell ``i`` when it is empty (pandas writes
    its index column so): such a column may be left out, never used."""
    return f"(column {i + 1}, no name)"


def unnamed_columns(table: Table) -> list[str]:
    """The stand-in names of the header's empty cells."""
    return [name for i, name in enumerate(table.names) if name == _unnamed(i)]


def _empty_unnamed(table: Table, frame: Any, wanted: list[str]) -> list[str]:
    """The wanted unnamed columns that hold nothing in any row (the trailing
    ``;;`` of an Excel export): they carry nothing, and are left out."""
    return [name for name in unnamed_columns(table) if name in wanted and frame[name].isna().all()]


def _refuse_unnamed(table: Table, wanted: list[str], can_ignore: bool = True) -> None:
    """``can_ignore``: the command has ``--ignore`` (train); predict wants an
    unnamed column only for a model without train's record of its columns
    (saved from Python), which takes every column of the file."""
    for i, name in enumerate(table.names):
        if name == _unnamed(i) and name in wanted:
            last = i == len(table.names) - 1  # the default target: leaving it out needs another target
            target = f"--target {shlex.quote(table.names[i - 1])} " if last and i > 0 else ""
            fix = f"leave it out: xpnet train {target}{_by_position(table, [i])}" if can_ignore else (
                "remove it from the file (pandas: to_csv(..., index=False)): a model saved from Python, without "
                "xpnet train's record of its columns, takes every column of the file as a feature")  # fmt: skip
            raise DataError(f"{table.path}: column {i + 1} of the header has no name",
                            f"name it in the header, or {fix}")


def _by_position(table: Table, positions: list[int], option: str = "--ignore") -> str:
    """``--ignore 0``, or, where a column is named like a position (pandas'
    ``0,1,2`` header of an array, beside its unnamed index), ``--ignore=-4``:
    positions counted from the end, as ``0`` would name that column instead."""
    n, names = len(table.names), set(table.names)
    if not any(str(i) in names for i in positions):
        return f"{option} {','.join(map(str, positions))}"
    return f"{option}={','.join(str(i - n) for i in positions)}"



def _refuse_repeated(table: Table, wanted: list[str], can_ignore: bool) -> None:
    """``can_ignore``: may the command leave a column out (``train --ignore``)?
    There, one column of a repeated name may be used, the others left out
    (``a,b,y,y``: ``--target 3 --ignore 2``); ``predict`` reads the model's
    columns by name, so it can use none."""
    for name in sorted(set(table.duplicate_of.values())):
        copies = [i for i, n in enumerate(table.names) if n == name or table.duplicate_of.get(n) == name]
        used = sorted((i for i in copies if table.names[i] in wanted), key=lambda i: wanted.index(table.names[i]))
        if len(used) > (1 if can_ignore else 0):  # train lists the targets last: the copy kept is the target
            fix = f", or leave out all but one: {_by_position(table, sorted(used[:-1]))}" if can_ignore else (
                ": predict reads the model's columns by name")  # fmt: skip
            raise DataError(f"{table.path}: duplicate column names in the header: {name!r} (columns "
                            f"{', '.join(str(i) for i in copies)}, by position)", f"rename them{fix}")


#: Separators that the header's single name may hold: how to say them, and their --sep.
_OTHER_SEPS = {" ": ("a space", "space"), ",": ("a comma", "comma"), ";": ("a semicolon", "semicolon"),
               "\t": ("a tab", "tab"), "|": ("'|'", "pipe"), ":": ("':'", "':'")}


def sep_hint(table: Table) -> str:
    """``"; ..."`` naming --sep when the header reads as a single column whose
    name holds another likely separator (a space-separated file), else ``""``."""
    if table.sep is None or len(table.names) != 1:
        return ""
    found = [said for sep, said in _OTHER_SEPS.items() if sep != table.sep and sep in table.names[0]]
    if not found:
        return ""
    word, option = found[0]
    return (f"; the header reads as the single column {table.names[0]!r}: if its separator is {word}, "
            f"pass --sep {option}")


def _sample_lines(path: Path, encoding: str) -> list[str]:
    """The first non-blank lines of the file (whole records only)."""
    raw, complete = _sample_bytes(path)
    try:  # a cut character at the sample's end is left out, not an error
        text = codecs.getincrementaldecoder(_python_encoding(encoding))().decode(raw, final=complete)
    except UnicodeDecodeError:
        raise _not_text(path, encoding) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", "--encoding takes a Python codec name such as latin-1") from None
    if not complete and "\n" in text:  # whole lines only: a cut header would name the wrong columns
        text = text[: text.rindex("\n") + 1]  # cut as text: a cut after the byte b'\n' split UTF-16's '\n\0'
    lines = [line for line in text.splitlines(keepends=True) if line.strip()]
    return lines[:_SAMPLE_LINES]


def _sample_bytes(path: Path) -> tuple[bytes, bool]:
    """At least :data:`_SAMPLE_BYTES` of the file, read on until the header
    and the first row are whole (wide tables have long lines), and whether
    that is the whole file. A first line beyond :data:`_MAX_LINE_BYTES` is refused."""
    with path.open("rb") as f:
        raw = f.read(_SAMPLE_BYTES)
        complete = len(raw) < _SAMPLE_BYTES
        while not complete and raw.count(b"\n") < 2:
            if len(raw) >= _MAX_LINE_BYTES:
                raise DataError(f"{path}: its header and first row take more than {_MAX_LINE_BYTES >> 20} MiB; "
                                "expected a header line of column names, then rows",
                                "is it a text table with one record per line?")
            more = f.read(len(raw))
            complete = len(more) < len(raw)
            raw += more
    return raw, complete


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding


def _not_text(path: Path, encoding: str) -> DataError:
    if _is_safetensors(path):  # `xpnet predict m.safetensors m.safetensors`: not a question of encodings
        return DataError(f"{path} is an xpnet model (safetensors) file, not a CSV or NPZ data file",
                         "give the rows' file as the data; a model is predict's first argument: "
                         "xpnet predict MODEL DATA")  # fmt: skip
    name = "UTF-8" if _python_encoding(encoding) == "utf-8-sig" else encoding
    return DataError(f"{path} is not a {name} text CSV file (nor an NPZ archive)",
                     "if it is text in another encoding, pass --encoding, e.g. --encoding latin-1")


def _is_safetensors(path: Path) -> bool:
    """Does the file start as safetensors does: an 8-byte header size that
    fits the file, then a JSON object?"""
    try:
        with path.open("rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8


def _undecodable(table: Table) -> DataError:
    """A byte past the sampled start that the encoding cannot read: the
    header and first rows were text, so the file is, but for that byte (a
    Latin-1 'ö' in a UTF-8 file); 'not a UTF-8 text CSV file' did not say
    where. Found only for the message, a line at a time."""
    encoding = _python_encoding(table.encoding)
    name = "UTF-8" if encoding == "utf-8-sig" else table.encoding
    with table.path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                where = line[max(exc.start - 8, 0): exc.end + 8].decode(encoding, "backslashreplace").strip()
                return DataError(f"{table.path}, line {number}: byte 0x{line[exc.start]:02x} ('{where}') is not "
                                 f"{name}, the encoding the file is read in",
                                 "pass --encoding with the file's encoding, e.g. --encoding cp1252 for Excel's on "
                                 "Windows, --encoding latin-1 for ISO-8859-1")  # fmt: skip
    return _not_text(table.path, table.encoding)  # pragma: no cover - a multi-byte encoding's split character


def _detect_separator(lines: list[str]) -> str:
    """The candidate that splits the header into the most columns (at least
    2) and every sampled row into as many; ``,`` when none does."""
    best, best_key = ",", (False, 0)
    sample = "".join(lines)
    for sep in SEPARATORS:
        try:
            rows = [row for row in csv.reader(io.StringIO(sample), delimiter=sep) if row]
        except csv.Error:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        body = rows[1:-1] if len(rows) > 2 else rows[1:]  # the last sampled record may be cut short
        key = (all(len(row) == width for row in body), width)
        if key > best_key:
            best, best_key = sep, key
    return best


# --------------------------------------------------------------------------
# Reading the rows
# --------------------------------------------------------------------------


def read_table(
    table: Table,
    *,
    columns: list[str] | None = None,
    text: list[str] = (),
    na_values: list[str] = (),
    decimal: str = ".",
    can_ignore: bool = True,
    rows_needed: bool = True,
) -> Table:
    """``table`` (from :func:`read_header`) with its rows read into ``frame``.

    ``columns``: keep only these (default: all; every column is still
    parsed, so that a row with too many fields is an error, never a silent
    shift of the columns after it); ``text``: columns kept as text
    even when they look like numbers (categories, targets); ``na_values``:
    tokens that mark a missing value besides pandas' defaults (empty, NA,
    NaN, nan, NULL, N/A, ...); ``can_ignore``: the command has ``--ignore``;
    ``rows_needed=False`` takes a header without rows (predict: it writes
    a header only), which is otherwise refused."""
    if table.sep is None:
        return _npz_frame(table, columns)
    import pandas as pd

    wanted = list(table.names) if columns is None else list(columns)
    _refuse_repeated(table, wanted, can_ignore)
    text = {name: str for name in text if name in wanted}
    options = {"dtype": text} if text else {}  # (a dtype= keeps pandas from joining the numbers into one block)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # mixed columns are checked below, with lines
            warnings.filterwarnings("error", _EXTRA_FIELDS, pd.errors.ParserWarning)  # else pandas drops them
            frame = pd.read_csv(
                table.path, sep=table.sep, header=0, names=table.names, index_col=False, na_values=list(na_values),
                keep_default_na=True, skipinitialspace=True, decimal=decimal,
                encoding=_python_encoding(table.encoding), **options,
            )
    except UnicodeDecodeError:
        raise _undecodable(table) from None
    except pd.errors.ParserError as exc:
        raise _parser_error(table, exc) from None
    except pd.errors.ParserWarning:
        raise _extra_fields(table) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{table.path} is empty; expected a header line of column names, then rows") from None
    if len(frame) == 0 and rows_needed:
        raise ValueError(f"{table.path} has a header but no data rows")
    empty = _empty_unnamed(table, frame, wanted)
    wanted = [name for name in wanted if name not in empty]
    _refuse_unnamed(table, wanted, can_ignore)
    table.frame = frame if wanted == list(table.names) else frame[wanted]
    _spaced_missing(table.frame, na_values)
    table.na_values, table.decimal = tuple(na_values), decimal
    return table


def read_text_column(table: Table, name: str) -> Any:
    """Column ``name`` as written (text, NaN where missing), read again: for
    the rare column whose parsed numbers do not tell how they were written
    (integers with a missing value come back as floats), in the file's
    number marks (:func:`xpnet._number_text.plain_numbers` reads them)."""
    import pandas as pd

    frame = pd.read_csv(
        table.path, sep=table.sep, header=0, names=table.names, index_col=False, usecols=[name], dtype=str,
        na_values=list(table.na_values), keep_default_na=True, skipinitialspace=True,
        encoding=_python_encoding(table.encoding), low_memory=False,
    )
    _spaced_missing(frame, table.na_values)
    column = frame[name]
    return column if table.rows is None else column.iloc[table.rows].reset_index(drop=True)


def _spaced_missing(frame: Any, na_values: Any) -> None:
    """Mark missing, in place, the text cells that are a missing-value token
    once stripped (``NA `` with a trailing space): pandas matches tokens
    exactly, and the columns are read as stripped text later."""
    tokens = _PANDAS_NA | set(na_values)
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or str(column.dtype) in ("str", "string"):
            spaced = column.astype(str).str.strip().isin(tokens) & column.notna()  # (cells may be bools)
            if spaced.any():
                frame[name] = column.mask(spaced)


def _parser_error(table: Table, exc: Exception) -> DataError:
    hint = _sep_hint(table)
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if found:
        expected, line, saw = found.groups()
        return DataError(f"{table.path}, line {line}: {saw} fields, but the header has {expected} columns", hint)
    if "EOF inside string" in str(exc):  # pandas counts records there ('starting at row 3'), not lines
        return DataError(f"{table.path}, line {_open_quote_line(table)}: a quoted field opens with '\"' and is never "
                         "closed (the file ends inside it)", "close the quote; a '\"' within a quoted value is "
                         "written twice ('\"\"')")  # fmt: skip
    text = " ".join(str(exc).split())
    return DataError(f"{table.path} is not a valid CSV file: {text}", hint)


def _open_quote_line(table: Table) -> int:
    """The line whose '"' opens the quoted field that the file ends inside:
    each '"' turns quoting on or off ('""' within a value turns it twice)."""
    start, inside = 1, False
    with table.path.open(newline="", encoding=_python_encoding(table.encoding), errors="replace") as f:
        for number, line in enumerate(f, 1):
            for _ in range(line.count('"')):
                inside = not inside
                if inside:
                    start = number
    return start


def _extra_fields(table: Table) -> DataError:
    """The error for rows with more fields than the header, which pandas
    reads without one when the first data row is such a row: it names the
    first row whose extra fields hold something (else the first longer row;
    a single empty field after the last column, a trailing separator on
    every row, is what pandas reads silently)."""
    width, first = len(table.names), None
    for line, record in _records(table):
        if len(record) > width:
            first = first or (line, len(record))
            if any(value.strip() for value in record[width:]):
                first = (line, len(record))
                break
    line, saw = first or (2, width + 1)
    return DataError(f"{table.path}, line {line}: {saw} fields, but the header has {width} columns", _sep_hint(table))


def _sep_hint(table: Table) -> str:
    return f"the separator is {SEPARATORS.get(table.sep, repr(table.sep))}; --sep sets another"


def _records(table: Table):
    """``(line, fields)`` of each data record of the file, as pandas counts them."""
    with table.path.open(newline="", encoding=_python_encoding(table.encoding), errors="replace") as f:
        reader = csv.reader(f, delimiter=table.sep, skipinitialspace=True)
        header = False
        for record in reader:
            if len(record) < 2 and not "".join(record).strip():
                continue  # pandas skips blank lines, but keeps ",," as a row of missing values
            if header:
                yield reader.line_num, record
            header = True


def _line_of(table: Table, row: int) -> int:
    """The file line on which data row ``row`` ends (a second pass over the
    file, done only for an error message)."""
    for seen, (line, _) in enumerate(_records(table)):
        if seen == row:
            return line
    return row + 2  # pragma: no cover - the file changed under us


def split_names(value: str) -> list[str]:
    """An option's value split at its commas, each part stripped (``"a, b"`` -> ``["a", "b"]``)."""
    return [part.strip() for part in value.split(",")]


def column_names(table: Table, values: list[str], option: str = "--target") -> list[str]:
    """The columns that an option's values name, in order, once each: a value
    that is a header name exactly names that column, commas and all (pandas
    writes ``"Name, full"``); else it lists names or positions separated by
    commas (``a,b``, ``0,-1``)."""
    specs = [[v] if _one_line(v) in table.names else split_names(v) for v in values]
    return list(dict.fromkeys(column_name(table, spec, option) for group in specs for spec in group))


def column_name(table: Table, spec: str, option: str = "--target") -> str:
    """The column that ``spec`` names: a header name, else a position
    (``0``, ``-1``) when no column has that name."""
    spec = _one_line(spec)
    if spec in table.names:
        return spec
    n = len(table.names)
    if re.fullmatch(r"-?\d+", spec) and -n <= int(spec) < n:
        return table.names[int(spec)]
    raise DataError(f"{table.path} has no column {spec!r}{_nearly(table.names, spec)}; its columns are "
                    f"{_list(table.names)}", f"{option} takes a column name or position" + sep_hint(table))


def _nearly(names: list[str], spec: str) -> str:
    """What a name or position not found was near: the positions there are,
    or a name that differs in case or a letter or two ('Price', 'prise')."""
    import difflib

    n = len(names)
    if re.fullmatch(r"-?\d+", spec):
        return f": position {spec} is beyond its {n} columns (0 to {n - 1}, or -{n} to -1 from the last)"
    folded = {name.casefold(): name for name in names}
    near = folded.get(spec.casefold()) or next(iter(difflib.get_close_matches(spec, names, n=1, cutoff=0.75)), None)
    return "" if near is None else f" (did you mean {near!r}?)"


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


def _npz_table(path: Path, rows_needed: bool = True) -> Table:
    _refuse_plain_zip(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is not a readable NPZ archive ({exc})") from None
    except ValueError as exc:  # e.g. object arrays, which would need pickle
        raise ValueError(f"{path}: cannot read its arrays without unpickling ({exc}); store plain numeric arrays") from None
    X = _npz_features(path, arrays, rows_needed)
    names = [f"x{i}" for i in range(X.shape[1])]
    if "y" in arrays:
        y = _npz_target(path, arrays["y"], X.shape[0])
        names += ["y"] if y.ndim == 1 else [f"y{k}" for k in range(y.shape[1])]
        arrays = {"X": X, "y": y}
    else:
        arrays = {"X": X}
    return Table(path, names, arrays=arrays)


def _refuse_plain_zip(path: Path) -> None:
    """A zip archive without ``.npy`` members (a zipped CSV, a spreadsheet) is not an NPZ."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return  # np.load says what is wrong
    if "xl/workbook.xml" in members:  # unzipped, an Excel workbook is XML parts, not a CSV file
        raise DataError(f"{path} looks like an Excel workbook, not a text table nor an NPZ archive",
                        "save it as CSV (File > Save As > CSV), or convert it: "
                        "pandas.read_excel(path).to_csv('data.csv', index=False)")  # fmt: skip
    if members and not any(name.endswith(".npy") for name in members):
        raise DataError(f"{path} looks like a zip archive of {_list(members, 4)}, not a text table nor an NPZ "
                        "archive of arrays", "unzip it and pass the CSV file")


def _npz_frame(table: Table, columns: list[str] | None) -> Table:
    import pandas as pd

    X = table.arrays["X"]
    k = X.shape[1]
    data = {name: X[:, i] for i, name in enumerate(table.names[:k])}  # names may be a model's (predict)
    if "y" in table.arrays:
        y = table.arrays["y"]
        data.update(zip(table.names[k:], [y] if y.ndim == 1 else list(y.T)))
    wanted = list(table.names) if columns is None else list(columns)
    table.frame = pd.DataFrame({name: data[name] for name in wanted})
    return table


def _npz_features(path: Path, arrays: dict[str, np.ndarray], rows_needed: bool = True) -> np.ndarray:
    if "X" not in arrays:
        raise ValueError(f"{path} has no array 'X' (it holds {_list(sorted(arrays)) or 'nothing'}); save it with np.savez(path, X=X, y=y)")
    X = arrays["X"]
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or (X.shape[0] == 0 and rows_needed):
        need = "a non-empty 2-D array" if rows_needed else "a 2-D array"
        raise ValueError(f"{path}: X must be {need} (n_samples, n_features), got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise ValueError(f"{path}: X must hold real numbers, got dtype {X.dtype}")
    return X.astype(np.float64)


def _npz_target(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"{path}: y must have shape ({n},) or ({n}, k) to match X's {n} rows, got {y.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind in "US":
        if y.ndim != 1:
            raise ValueError(f"{path}: text labels in y must be a 1-D array, got shape {y.shape}")
        return y.astype(str).astype(object)
    if y.dtype.kind not in "iubf":
        raise ValueError(f"{path}: y must hold numbers or text labels, got dtype {y.dtype}")
    return y


def _is_fraction(text: str) -> bool:
    """A number with a fractional part or an exponent (``5.1``, ``1e-3``):
    data, not a column's name (a year such as ``2019`` may name one)."""
    return is_number(text) and not text.strip().lstrip("+-").isdigit()


def _list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
