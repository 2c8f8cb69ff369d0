"""Reading CSV and NPZ tables: separators, headers, raw columns, and what each refusal says."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="pandas is a dependency of xpnet's command line")

from xpnet._number_text import as_numbers  # noqa: E402
from xpnet.data_io import DataError, check_input_file, column_name, read_header, read_table  # noqa: E402


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def read(path, **options):
    return read_table(read_header(path), **options)


@pytest.mark.parametrize(
    ("text", "sep"),
    [
        ("a,b,label\n1,2,0\n3,4,1\n", ","),
        ("a;b;label\n1,5;2;0\n3,25;4;1\n", ";"),  # decimal commas do not fool it
        ("a\tb\tlabel\n1\t2\t0\n", "\t"),
        ("a|b|label\n1|2|0\n", "|"),
        ('name,"x;y",z\n"a;b",1,2\n', ","),  # quoted separators of another kind
        ("only\n1\n2\n", ","),  # a single column: the default
    ],
)
def test_separator_is_detected_from_header_and_rows(tmp_path, text, sep):
    table = read_header(write(tmp_path, "d.csv", text))
    assert table.sep == sep and table.detected
    assert ("detected" in table.describe()) and (sep != "\t" or "tab" in table.describe())


def test_given_separator_wins(tmp_path):
    table = read_header(write(tmp_path, "d.csv", "a;b,c\n1;2,3\n"), sep=",")
    assert table.names == ["a;b", "c"] and not table.detected and "--sep" in table.describe()


def test_header_names_are_stripped_and_bom_removed(tmp_path):
    path = write(tmp_path, "d.csv", "\ufeff a, b ,label\n1,2.5,0\n\n3,-4e1,2\n")  # a BOM, spaces, a blank line
    table = read(path)
    assert table.names == ["a", "b", "label"]
    assert table.frame["b"].tolist() == [2.5, -40.0] and table.frame["label"].tolist() == [0, 2]


def test_a_header_longer_than_the_sample_is_read_whole(tmp_path):
    names = [f"measurement_channel_{i:05d}" for i in range(4000)] + ["target"]  # about 100 KiB
    row = ",".join(["1"] * 4000 + ["hi"])
    table = read(write(tmp_path, "wide.csv", ",".join(names) + "\n" + (row + "\n") * 3))
    assert table.names == names and table.frame.shape == (3, 4001)


def test_a_first_line_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("xpnet.data_io._MAX_LINE_BYTES", 1 << 17)
    path = write(tmp_path, "long.csv", ",".join(f"c{i:06d}" for i in range(30000)) + "\n1\n")
    with pytest.raises(DataError, match="header and first row take more than"):
        read_header(path)


def test_text_columns_keep_their_spelling(tmp_path):
    table = read(write(tmp_path, "d.csv", "zip,y\n02134,1\n10001,0\n"), text=["zip"])
    assert table.frame["zip"].tolist() == ["02134", "10001"]


def test_missing_tokens_become_nan(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,c\n1,,x\nNA,2,NULL\nnan,3,?\n")
    frame = read(path, na_values=["?"]).frame
    assert frame["a"].isna().tolist() == [False, True, True]
    assert frame["b"].isna().tolist() == [True, False, False]
    assert frame["c"].isna().tolist() == [False, True, True]


def test_missing_tokens_with_spaces_around_them_are_missing(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,c\n1,x,z\nNA ,? ,NULL \n3,y,A \n")
    frame = read(path, na_values=["?"], text=["c"]).frame
    assert [frame[n].isna().tolist() for n in "abc"] == [[False, True, False]] * 3
    assert frame["c"].tolist()[::2] == ["z", "A "]  # other text keeps its spelling
    flags = read(write(tmp_path, "b.csv", "a,flag\n1,True\n2,\n3,False\n")).frame["flag"]  # bools and a gap
    assert flags.isna().tolist() == [False, True, False]


def test_only_the_columns_asked_for_are_read(tmp_path):
    table = read(write(tmp_path, "p.csv", "c,label,a,b\n3,x,1,2\n6,y,4,5\n"), columns=["a", "b", "c"])
    assert list(table.frame.columns) == ["a", "b", "c"]
    assert table.frame.to_numpy().tolist() == [[1, 2, 3], [4, 5, 6]]


def test_columns_by_name_or_position(tmp_path):
    table = read_header(write(tmp_path, "d.csv", "x,t,z\n1,0.5,3\n"))
    assert [column_name(table, s) for s in ("t", "1", "-1", "0")] == ["t", "t", "z", "x"]
    with pytest.raises(DataError, match="no column 'w'") as info:
        column_name(table, "w", "--ignore")
    assert "--ignore" in info.value.hint


@pytest.mark.parametrize("spec, said", [
    ("3", "position 3 is beyond its 3 columns (0 to 2, or -3 to -1 from the last)"),
    ("-4", "position -4 is beyond its 3 columns (0 to 2, or -3 to -1 from the last)"),
    ("Price", "did you mean 'price'?"),
    ("prise", "did you mean 'price'?"),
])
def test_a_column_not_found_says_what_was_near(tmp_path, spec, said):
    """'has no column '3'' for a position past the last column, and no word
    of 'price' for 'Price': the message says which positions exist, or the
    name that was nearly given."""
    table = read_header(write(tmp_path, "d.csv", "x,size,price\n1,0.5,3\n"))
    with pytest.raises(DataError) as info:
        column_name(table, spec, "--target")
    assert f"no column {spec!r}" in str(info.value) and said in str(info.value)


def test_as_numbers_marks_words_and_reads_booleans():
    values, stray = as_numbers(pd.Series(["1", " 2.5", None, "true", "FALSE", "x"], dtype=object))
    np.testing.assert_array_equal(values[:5], [1.0, 2.5, np.nan, 1.0, 0.0])
    assert stray.tolist() == [False, False, False, False, False, True]


def test_lines_in_messages_count_blank_lines_and_quoted_newlines(tmp_path):
    table = read(write(tmp_path, "d.csv", 'a,b\n1,"two\nlines"\n\n3,4\n'))
    assert table.where(0) == "line 3" and table.where(1) == "line 5"
    assert table.take(np.array([1])).where(0) == "line 5"


def test_lines_in_messages_count_a_row_of_separators_as_a_row(tmp_path):
    table = read(write(tmp_path, "d.csv", "a,b\n1,2\n,\n   \n3,?\n"), na_values=["?"])  # pandas keeps ",", not "   "
    assert len(table.frame) == 3 and table.where(1) == "line 3" and table.where(2) == "line 5"
    assert table.take(np.array([2])).where(0) == "line 5"


def test_a_header_of_numbers_and_a_short_name_is_a_header(tmp_path):
    """Names of 3 digits or more shaped as their column are values (an ID, a
    date); a short one such as T0 above T1..T9 is a header's."""
    rows = "".join(f"{i / 8:.3f},{i / 7:.3f},{i / 6:.3f},{i / 5:.3f},T{i}\n" for i in range(1, 10))
    assert read_header(write(tmp_path, "t.csv", "0.5,1.0,1.5,2.0,T0\n" + rows)).names[-1] == "T0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,4,5\n", "line 3: 3 fields, but the header has 2"),
        ("a,b\n1,2,9\n3,4\n", "line 2: 3 fields, but the header has 2"),  # pandas dropped the 9
        ("a,b\n\n1,2,9\n3,4,9\n", "line 3: 3 fields, but the header has 2"),  # every row
        ("a,b\n1,2,\n3,4,9\n", "line 3: 3 fields, but the header has 2"),  # the first with something in it
        ("a,a,y\n1,2,0\n", "duplicate column names"),
        ("a,,y\n1,2,0\n", "column 2 of the header has no name"),
        ("1,2,3\n4,5,6\n", "no header line"),
        ("5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n", "no header line.*'5.1', '3.5'"),  # a text column
        ("u-0001,2020-01-01,0.5,1.5,3.5,0\nu-0002,2020-01-02,2.5,0.5,1.5,1\nu-0003,2020-01-03,1.5,0.25,2.5,0\n",
         "no header line.*'u-0001'"),  # an ID and a date never repeat, but look like their columns
        ("sep=;\na;b;y\n1;2;0\n", "Excel's separator line 'sep=;'"),
        ("# exported 2026-11-26\na,b,y\n1,2,0\n", "starts with a comment line"),
        ("a,b,y\n", "no data rows"),
        ("", "is empty"),
        ("\n\n", "is empty"),
        (b"\xff\xfe\x00garbage\x00", "not a UTF-8 text"),
        # a quote never closed: pandas said 'Error tokenizing data. C error: EOF inside string starting at row 3'
        ("a,b,y\n1,2,0\n3,4,1\n\"5,6,0\n7,8,1\n", "line 4: a quoted field opens with '\"' and is never closed"),
        ("a,b,y\n1,2,0\n\"x\ny\",4,1\n\"5,6,0\n7,8,1\n", "line 5: a quoted field opens"),  # a quoted newline
        ("a,b,y\n1,2,0\n\"say \"\"hi\"\"\",4,1\n5,6,\"0\n", "line 4: a quoted field opens"),  # "" is a quote
    ],
)
def test_refusals_name_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read(write(tmp_path, "bad.csv", text))


def test_an_unnamed_column_may_be_left_out_never_used(tmp_path):
    path = write(tmp_path, "i.csv", ",a,y\n0,1.5,x\n1,2.5,y\n")  # pandas' index column
    table = read(path, columns=["a", "y"])
    assert table.names[1:] == ["a", "y"] and table.frame["a"].tolist() == [1.5, 2.5]
    with pytest.raises(DataError, match="column 1 of the header has no name") as info:
        read(path, columns=[read_header(path).names[0], "y"])
    assert "--ignore 0" in info.value.hint
    last = write(tmp_path, "t.csv", "a,my y,\n1,0,5\n2,1,\n")  # a trailing separator: the unnamed column is last
    with pytest.raises(DataError, match="column 3 of the header has no name") as info:
        read(last)
    assert info.value.hint.endswith("xpnet train --target 'my y' --ignore 2")  # it was the default target
    empty = write(tmp_path, "e.csv", "a,my y,\n1,0,\n2,1,\n")  # nothing in it: left out
    assert list(read(empty).frame.columns) == ["a", "my y"]


def test_a_trailing_separator_on_every_row_is_read(tmp_path):
    table = read(write(tmp_path, "t.csv", "a,b\n1,2,\n3,4,\n"))
    assert table.frame.values.tolist() == [[1, 2], [3, 4]]


def test_binary_files_are_named_not_taken_for_another_encoding(tmp_path):
    import gzip
    import zipfile

    text = b"a,b,y\n1,2,0\n3,4,1\n"
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text))
    (tmp_path / "d.parquet").write_bytes(b"PAR1\x15\x04\x15\x10\x00binaryPAR1")  # Parquet ends as it starts
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as archive:
        archive.writestr("d.csv", text)
    for name, what, hint in (("d.csv.gz", "gzip-compressed", "gunzip"), ("d.parquet", "Parquet", "read_parquet"),
                             ("d.zip", "zip archive of 'd.csv'", "unzip")):
        with pytest.raises(DataError, match=f"looks like an? {what}.*not a text table") as info:
            read(tmp_path / name)
        assert hint in info.value.hint and "encoding" not in info.value.hint


def test_a_csv_whose_first_column_starts_like_a_binary_signature_is_read(tmp_path):
    import bz2

    for header in ("BZh_ratio,b,y", "PAR1,PAR2,y"):
        table = read(write(tmp_path, "t.csv", f"{header}\n0.1,0.2,1\n0.3,0.4,0\n"))
        assert table.names == header.split(",")
    (tmp_path / "d.csv.bz2").write_bytes(bz2.compress(b"a,b,y\n1,2,0\n"))
    with pytest.raises(DataError, match="looks like a bzip2-compressed file"):
        read(tmp_path / "d.csv.bz2")


def test_other_encodings_are_read_with_encoding(tmp_path):
    path = write(tmp_path, "l.csv", "name,y\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not a UTF-8") as info:
        read(path)
    assert "--encoding" in info.value.hint
    table = read_table(read_header(path, encoding="latin-1"))
    assert table.frame["name"].tolist() == ["caf\xe9"]


def test_npz_columns(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(6).reshape(3, 2), y=np.array([0, 1, 1], dtype=np.uint8))
    table = read(path)
    assert table.names == ["x0", "x1", "y"] and table.sep is None and table.describe() == "NPZ"
    assert table.frame["y"].tolist() == [0, 1, 1] and table.where(2) == "row 3"
    np.savez(path, X=np.ones((3, 2)), y=np.ones((3, 2)))
    assert read(path).names == ["x0", "x1", "y0", "y1"]
    np.savez(path, X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(ValueError, match="match X's 3 rows"):
        read(path)
    np.savez(path, X=np.array(["a", "b"]), y=np.ones(2))
    with pytest.raises(ValueError, match="real numbers"):
        read(path)


def test_missing_file_folder_and_fake_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        check_input_file(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is a folder"):
        check_input_file(tmp_path)
    with pytest.raises(ValueError, match="not an NPZ"):
        check_input_file(write(tmp_path, "f.npz", "plain text"))


def test_a_repeated_column_name_may_be_left_out_never_used(tmp_path):
    """read_header refused any repeated name, so predict could not ignore an
    export's two extra 'note' columns, and train --ignore note did not help."""
    path = write(tmp_path, "n.csv", "a,note,b,note,y\n1.5,x,2,z,0\n2.5,w,3,v,1\n")
    table = read(path, columns=["a", "b", "y"])
    assert table.frame["a"].tolist() == [1.5, 2.5] and table.frame["b"].tolist() == [2, 3]
    with pytest.raises(DataError, match="duplicate column names in the header: 'note' [(]columns 1, 3") as info:
        read(path, columns=["a", "note", read_header(path).names[3], "y"])
    assert "leave out all but one: --ignore 1" in info.value.hint
    assert read(path, columns=[read_header(path).names[3], "y"]).frame.iloc[:, 0].tolist() == ["z", "v"]  # one copy


def test_train_ignores_every_column_of_a_repeated_name(tmp_path):
    from test_cli import ok, xpnet_cli

    rows = "".join(f"{i % 7 / 3:.3f},x,{i % 5},z,{i % 2}\n" for i in range(40))
    path = write(tmp_path, "n.csv", "a,note,b,note,y\n" + rows)
    result = ok(xpnet_cli("train", "--data", path, "--ignore", "note", "--epochs", "2", "--quiet"))
    assert "2 features" in result.stdout


def test_predict_ignores_extra_columns_of_a_repeated_name(tmp_path):
    from test_cli import ok, xpnet_cli

    rows = "".join(f"{i % 7 / 3:.3f},{i % 5},{i % 2}\n" for i in range(40))
    model = tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", write(tmp_path, "t.csv", "a,b,y\n" + rows), "--save", model, "--epochs", "2"))
    extra = write(tmp_path, "p.csv", "a,b,note,note\n0.5,1,x,y\n1.5,2,z,w\n")
    result = ok(xpnet_cli("predict", model, extra))
    assert len(result.stdout.strip().splitlines()) == 3  # a header and two rows


def test_a_header_of_whole_numbers_names_columns(tmp_path):
    """Years may name columns; a header of decimals is a row of data; a
    header may start with '#' (a comment line has no separator)."""
    table = read(write(tmp_path, "y.csv", "2019,2020,region\n1,2,a\n3,4,b\n"))
    assert table.names == ["2019", "2020", "region"]
    assert read(write(tmp_path, "h.csv", "#id,a,y\n1,2,0\n")).names == ["#id", "a", "y"]
    spectra = write(tmp_path, "s.csv", "900.0,902.0,904.0,label\n0.1,0.2,0.3,a\n0.2,0.3,0.1,b\n")  # wavelengths
    assert read_header(spectra).names == ["900.0", "902.0", "904.0", "label"]
    assert read_header(write(tmp_path, "q.csv", "id,0.1,0.5,0.9,y\n1,2,3,4,0\n")).names[1] == "0.1"
    assert read_header(write(tmp_path, "b.csv", "[x1],[x2],y\n1,2,0\n")).names == ["[x1]", "[x2]", "y"]
    spaced = write(tmp_path, "p.txt", "# x1 x2 y\n0 0.00 0 0\n")
    assert read_header(spaced, sep=" ").names == ["#", "x1", "x2", "y"]


def test_a_leading_zero_groups_no_thousands():
    """'0.126' under --decimal , (and '0,126' in a comma file) read as 126."""
    import pandas as pd

    from xpnet._number_text import NOT_A_NUMBER, plain_numbers

    german = plain_numbers(pd.Series(["0.126", "-0.132", "1.200", "12.345,5", "1.5"]), (",", "."))
    assert german.tolist() == [NOT_A_NUMBER, NOT_A_NUMBER, "1200", "12345.5", NOT_A_NUMBER]
    with pytest.raises(ValueError):  # not a missing value: pandas 2 made "\x00" "", which reads as NaN
        pd.to_numeric(german[:1])
    english = plain_numbers(pd.Series(["0,126", "1,200", "-1,234.5", "12,34"]), (".", ","))
    assert english.tolist() == ["0,126", "1200", "-1234.5", "12,34"]


def test_a_byte_not_utf8_past_the_sample_names_its_line(tmp_path):
    """A UTF-8 file with one Latin-1 byte far down ('K\\xf6ln' on line
    20,002) was 'not a UTF-8 text CSV file (nor an NPZ archive)': true of
    one byte, and no help finding it. The message names the line and the
    byte; --encoding still reads it."""
    rows = "".join(f"{i % 7},{i % 5},city{i % 3},{i % 2}\n" for i in range(20000))
    path = write(tmp_path, "late.csv", b"a,b,c,y\n" + rows.encode() + b"1,2,K\xf6ln,0\n")
    with pytest.raises(ValueError, match=r"late.csv, line 20002: byte 0xf6 \('1,2,K\\xf6ln,0'\) is not UTF-8") as got:
        read(path)
    assert "--encoding" in got.value.hint
    assert read_table(read_header(path, encoding="latin-1")).frame["c"].iloc[-1] == "Köln"
