"""`xpnet train` / `predict` on real-world tables, run as a user would
(a fresh ``python -m xpnet`` each time; exit status, stdout and the one
stderr line are checked): missing values, categorical columns, separators,
several targets, the task guess, degenerate targets, exit codes and hints.
"""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
from test_cli import ok, one_line_error, read_csv, score, write_csv, xpnet_cli

import xpnet

pytest.importorskip("pandas", reason="pandas is a dependency of xpnet's command line")

FAST = ["--epochs", "3", "--quiet"]


def table(path, header, rows, sep=","):
    path.write_text(sep.join(header) + "\n" + "".join(sep.join(map(str, row)) + "\n" for row in rows))
    return path


def blobs(n=60, seed=0):
    """Two numeric features and a 0/1 label that a small MLP learns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def no_warnings(result):
    assert "Warning" not in result.stderr and "warning" not in result.stderr, result.stderr
    return result


# --------------------------------------------------------------------------
# 1. Missing values
# --------------------------------------------------------------------------


@pytest.fixture
def holes(tmp_path):
    X, y = blobs()
    rows = [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)]
    rows[4][1] = ""
    rows[9][0] = "NA"
    rows[20][2] = "nan"  # a missing target
    return table(tmp_path / "holes.csv", ["a", "b", "y"], rows)


def test_missing_values_are_an_error_that_names_the_option(holes):
    result = xpnet_cli("train", "--data", holes, *FAST)
    line = one_line_error(result)
    assert result.returncode == 1
    assert "line 6: column 'b' has a missing value" in line and "--missing drop" in line and "--missing mean" in line


def test_a_missing_target_hint_does_not_promise_a_fill(holes, tmp_path):
    """A missing target is never filled in (--missing mean leaves its row
    out, as the data: line then says), yet its hint said mean, median or
    most_frequent "fills them in"."""
    rows = holes.read_text().splitlines()
    (tmp_path / "late.csv").write_text("\n".join(rows[:2] + rows[21:22] + rows[2:5] + rows[6:10]) + "\n")
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "late.csv", *FAST))
    assert "line 3: the target 'y' has a missing value" in line and "fills them in" not in line
    assert "--missing drop leaves such rows out, and so do mean, median and most_frequent" in line
    filled = ok(xpnet_cli("train", "--data", holes, "--missing", "mean", *FAST)).stdout
    assert "dropped 1 row(s) with a missing target" in filled


def test_an_empty_column_under_missing_error_names_ignore_not_options_that_fail_on_it(tmp_path):
    """An empty column's hint offered --missing drop (then: no row left) and
    mean (then: nothing to fill from); only --ignore gets past it."""
    X, y = blobs()
    path = table(tmp_path / "empty.csv", ["a", "notes", "b", "y"], [[f"{a:.3f}", "", f"{b:.3f}", c]
                                                                   for (a, b), c in zip(X, y)])
    line = one_line_error(xpnet_cli("train", "--data", path, *FAST))
    assert "line 2: column 'notes' has a missing value" in line and "--ignore notes leaves it out" in line, line
    assert "--missing" not in line
    ok(xpnet_cli("train", "--data", path, "--ignore", "notes", *FAST))


def test_missing_drop_leaves_rows_out(holes):
    out = ok(xpnet_cli("train", "--data", holes, "--missing", "drop", *FAST)).stdout
    assert "dropped 3 row(s) with a missing value (--missing drop)" in out and "57 rows" in out


def test_missing_mean_fills_from_training_rows_and_predict_applies_it(holes, tmp_path):
    model = tmp_path / "m.safetensors"
    out = ok(xpnet_cli("train", "--data", holes, "--missing", "mean", *FAST, "--save", model)).stdout
    assert "dropped 1 row(s) with a missing target" in out and "training rows' mean" in out
    info = xpnet.load(model, backend="numpy").info
    fills = {c["name"]: c["fill"] for c in info["columns"]}
    assert info["missing"] == "mean" and all(isinstance(v, float) for v in fills.values())
    rows = table(tmp_path / "new.csv", ["b", "a"], [["", "0.5"], [fills["b"], "0.5"]])
    _, predicted = read_csv(ok(xpnet_cli("predict", model, rows)).stdout)
    assert predicted[0] == predicted[1]  # the missing value was filled with the stored mean


@pytest.mark.parametrize("strategy", ["median", "most_frequent"])
def test_other_fill_strategies(holes, strategy):
    out = ok(xpnet_cli("train", "--data", holes, "--missing", strategy, *FAST)).stdout
    assert f"training rows' {strategy.replace('_', ' ')}" in out


def test_predict_with_a_missing_value_under_error_names_the_row(tmp_path):
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, *FAST, "--save", model))
    rows = table(tmp_path / "new.csv", ["a", "b"], [[1, 2], [3, ""]])
    line = one_line_error(xpnet_cli("predict", model, rows))
    assert "line 3: column 'b' has a missing value" in line and "--missing error" in line


def test_predict_under_drop_leaves_the_row_empty(holes, tmp_path):
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", holes, "--missing", "drop", *FAST, "--save", model))
    rows = table(tmp_path / "new.csv", ["a", "b"], [[1, 2], [3, ""], [0, 0]])
    result = ok(xpnet_cli("predict", model, rows))
    _, predicted = read_csv(result.stdout)
    assert [r[0] != "" for r in predicted] == [True, False, True]
    assert "1 row(s) with a missing value got no prediction" in result.stderr
    every = table(tmp_path / "holes_only.csv", ["a", "b"], [[1, ""], ["", 0]])  # no row left to predict
    result = ok(xpnet_cli("predict", model, every))
    assert read_csv(result.stdout) == (["y"], [[""], [""]])
    assert "2 row(s) with a missing value got no prediction" in result.stderr


def test_an_extra_field_in_the_first_row_is_an_error_in_train_and_predict(tmp_path):
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, *FAST, "--save", model))
    extra = "a,b,y\n1,2,1,999\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(X, y))
    (tmp_path / "extra.csv").write_text(extra)
    result = xpnet_cli("train", "--data", tmp_path / "extra.csv", *FAST)
    assert result.returncode == 1 and "extra.csv, line 2: 4 fields, but the header has 3" in one_line_error(result)
    (tmp_path / "new.csv").write_text("a,b\n1,2,999\n3,4\n")
    result = xpnet_cli("predict", model, tmp_path / "new.csv")
    assert result.returncode == 1 and "new.csv, line 2: 3 fields, but the header has 2" in one_line_error(result)


def test_an_unnamed_index_column_is_ignored_on_request_and_extra_in_predict(tmp_path):
    X, y = blobs()
    rows = [[i, a, b, c] for i, ((a, b), c) in enumerate(zip(X, y))]
    data = table(tmp_path / "indexed.csv", ["", "a", "b", "y"], rows)  # as DataFrame.to_csv writes it
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "column 1 of the header has no name" in line and "--ignore 0" in line
    model = tmp_path / "m.safetensors"
    assert "2 features" in ok(xpnet_cli("train", "--data", data, "--ignore", "0", *FAST, "--save", model)).stdout
    new = table(tmp_path / "new.csv", ["", "a", "b"], [[7, 1, 2], [8, -3, -4]])
    assert len(read_csv(ok(xpnet_cli("predict", model, new)).stdout)[1]) == 2


def test_the_hint_for_an_index_column_works_when_the_columns_are_named_by_numbers(tmp_path):
    """pd.DataFrame(array).to_csv() names the columns 0, 1, 2 beside its
    unnamed index: the hint's --ignore 0 left out the column named '0', and
    the same error came back."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 2))
    rows = [[i, f"{a:.4f}", f"{b:.4f}", int(a > 0)] for i, (a, b) in enumerate(X)]
    data = table(tmp_path / "array.csv", ["", "0", "1", "2"], rows)
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    option = re.search(r"--ignore[= ][^\s)]+", line).group().split(" ")
    assert "2 features" in ok(xpnet_cli("train", "--data", data, *option, *FAST)).stdout
    dup = table(tmp_path / "dup.csv", ["x", "1", "1", "y"], [[f"{a:.4f}", 1, 2, int(a > 0)] for a, _ in X])
    line = one_line_error(xpnet_cli("train", "--data", dup, "--target", "y", *FAST))
    option = re.search(r"--ignore[= ][^\s)]+", line).group().split(" ")
    assert "2 features" in ok(xpnet_cli("train", "--data", dup, "--target", "y", *option, *FAST)).stdout


# --------------------------------------------------------------------------
# 2. Categorical features
# --------------------------------------------------------------------------


@pytest.fixture
def colors(tmp_path):
    rng = np.random.default_rng(1)
    color = rng.choice(["red", "green", "blue"], size=90)
    size = rng.normal(size=90)
    label = np.where(color == "red", "hot", "cold")
    return table(tmp_path / "colors.csv", ["color", "size", "zone", "label"],
                 [[c, f"{s:.3f}", f"0{k % 3}", lab] for k, (c, s, lab) in enumerate(zip(color, size, label))])


def test_text_columns_are_one_hot_encoded_and_stored(colors, tmp_path):
    model = tmp_path / "m.safetensors"
    result = ok(xpnet_cli("train", "--data", colors, "--epochs", "30", "--lr", "0.01", "--save", model))
    assert "1 categorical one-hot encoded into 3 columns" in result.stdout
    assert score(result.stdout, "test accuracy") >= 0.9
    info = xpnet.load(model, backend="numpy").info
    kinds = {c["name"]: (c["kind"], c["categories"]) for c in info["columns"]}
    assert kinds["color"] == ("category", ["blue", "green", "red"]) and kinds["size"][0] == "number"


def test_unseen_category_is_an_error_or_zeros_with_unknown_ignore(colors, tmp_path):
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", colors, *FAST, "--save", model))
    rows = table(tmp_path / "new.csv", ["color", "size", "zone"], [["red", 0.1, "01"], ["purple", 0.1, "01"]])
    line = one_line_error(xpnet_cli("predict", model, rows))
    assert "column 'color' holds 'purple'" in line and "line 3" in line and "--unknown ignore" in line
    ignored = ok(xpnet_cli("predict", model, rows, "--unknown", "ignore"))
    header, predicted = read_csv(ignored.stdout)
    assert header == ["label"] and len(predicted) == 2
    assert "warning: 1 of 2 rows hold a category the model was not trained on" in ignored.stderr  # said how many


def test_categorical_option_keeps_numbers_as_written(colors, tmp_path):
    model = tmp_path / "m.safetensors"
    result = ok(xpnet_cli("train", "--data", colors, *FAST, "--categorical", "zone", "--save", model))
    assert "2 categorical" in result.stdout
    kinds = {c["name"]: c for c in xpnet.load(model, backend="numpy").info["columns"]}
    assert kinds["zone"]["categories"] == ["00", "01", "02"]  # leading zeros kept


def test_too_many_categories_names_the_options(tmp_path):
    rows = [[f"id{i}", i % 2] for i in range(40)]
    data = table(tmp_path / "ids.csv", ["name", "y"], rows)
    line = one_line_error(xpnet_cli("train", "--data", data, "--max-categories", "10", *FAST))
    assert "'name' has 40 distinct text values" in line and "--ignore name" in line and "--max-categories" in line
    data2 = table(tmp_path / "ids2.csv", ["name", "x", "y"], [[f"id{i}", i, i % 2] for i in range(40)])
    ok(xpnet_cli("train", "--data", data2, "--ignore", "name", *FAST))


def test_a_word_in_a_numeric_column_names_na_values_and_categorical(tmp_path):
    rows = [[i, i % 2] for i in range(20)]
    rows[7][0] = "?"
    data = table(tmp_path / "q.csv", ["hp", "y"], rows)
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "line 9: column 'hp' holds '?', not a number" in line
    assert "--na-values '?'" in line and "--categorical hp" in line
    out = ok(xpnet_cli("train", "--data", data, "--na-values", "?", "--missing", "mean", *FAST)).stdout
    assert "20 rows" in out



def test_predict_hints_name_categorical_as_a_training_option_and_help_says_each_default_once(tmp_path):
    data = table(tmp_path / "n.csv", ["hp", "y"], [[i, i % 2] for i in range(20)])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, *FAST, "--save", model))
    line = one_line_error(xpnet_cli("predict", model, table(tmp_path / "new.csv", ["hp"], [[1], ["fast"]])))
    assert "line 3: column 'hp' holds 'fast', not a number" in line and "--na-values fast" in line
    assert "the model takes 'hp' as numbers: xpnet train --categorical hp trains one" in line
    text = " ".join(ok(xpnet_cli("predict", "--help")).stdout.split())
    assert "(default: as in training, else utf-8)" in text and "(default: as in training, else .)" in text
    assert text.count("(default: as in training)") <= 1  # --na-values only


# --------------------------------------------------------------------------
# 3. Separators
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("sep", "name"), [(";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")])
def test_separator_is_detected_and_printed(tmp_path, sep, name):
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[f"{a:.3f}", f"{b:.3f}", c] for (a, b), c in zip(X, y)], sep)
    out = ok(xpnet_cli("train", "--data", data, *FAST)).stdout
    assert f"(separator {name}, detected), 60 rows, 2 features" in out


def test_sep_overrides_detection(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a;b,y\n" + "".join(f"{i};{i},{i % 2}\n" for i in range(20)))
    out = ok(xpnet_cli("train", "--data", data, "--sep", "comma", "--categorical", "a;b", *FAST)).stdout
    assert "separator ',', from --sep" in out


def test_a_space_separated_file_names_sep_and_predict_reuses_the_trained_sep(tmp_path):
    X, y = blobs()
    data = table(tmp_path / "d.txt", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)], sep=" ")
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "no feature columns" in line and "if its separator is a space, pass --sep space" in line
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--sep", "space", *FAST, "--save", model))
    new = table(tmp_path / "new.txt", ["a", "b"], [[1, 2], [-1, -2]], sep=" ")
    assert len(read_csv(ok(xpnet_cli("predict", model, new)).stdout)[1]) == 2  # --sep space as in training
    comma = table(tmp_path / "o.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)])
    ok(xpnet_cli("train", "--data", comma, *FAST, "--save", tmp_path / "o.safetensors"))  # separator detected
    line = one_line_error(xpnet_cli("predict", tmp_path / "o.safetensors", new))
    assert "lacks the column(s) 'a', 'b'" in line and "pass --sep space" in line


def test_a_column_not_found_under_a_wrong_sep_names_the_separator(tmp_path):
    """--sep ';' (an Excel habit) on a comma file: --target label said "no
    column 'label'; its columns are 'a,b,label'" and "--target takes a column
    name or position", when the separator was what was wrong."""
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "label"], [[f"{a:.3f}", f"{b:.3f}", c] for (a, b), c in zip(X, y)])
    for option in ("--target", "--ignore", "--categorical"):
        line = one_line_error(xpnet_cli("train", "--data", data, "--sep", ";", option, "label", *FAST))
        assert "no column 'label'" in line and "if its separator is a comma, pass --sep comma" in line, line


def test_decimal_comma_files_name_the_option(tmp_path):
    X, y = blobs()
    rows = [[f"{a:.3f}".replace(".", ","), f"{b:.3f}".replace(".", ","), c] for (a, b), c in zip(X, y)]
    data = table(tmp_path / "eu.csv", ["a", "b", "y"], rows, ";")
    assert "--decimal ," in one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "2 features" in ok(xpnet_cli("train", "--data", data, "--decimal", ",", *FAST)).stdout


def test_a_comma_that_may_group_thousands_names_both_readings(tmp_path):
    """1,234 in a tab-separated file is 1234 or 1.234: the hint that named
    only --decimal , led to reading every such number a thousand times smaller."""
    rows = [[f"{k},{(k * 377) % 1000:03d}", str(k), "xy"[k % 2]] for k in range(1, 9)]
    data = table(tmp_path / "t.tsv", ["a", "b", "y"], rows, "\t")
    err = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "groups thousands" in err and "'1377'" in err and "--decimal ," in err


# --------------------------------------------------------------------------
# 4. Several targets
# --------------------------------------------------------------------------


def test_several_targets_train_a_multi_output_regressor(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    Y = np.stack([X[:, 0] * 10 + 50, X[:, 1] - X[:, 2]], axis=1)
    data = table(tmp_path / "m.csv", ["u", "v", "w", "weight", "waist"],
                 [[*map("{:.4f}".format, x), *map("{:.4f}".format, t)] for x, t in zip(X, Y)])
    model = tmp_path / "m.safetensors"
    out = ok(xpnet_cli("train", "--data", data, "--target", "weight,waist", "--epochs", "60", "--lr", "0.01",
                       "--quiet", "--save", model)).stdout
    assert "targets 'weight', 'waist' (regression, 2 outputs)" in out and "task: regression (2 numeric targets)" in out
    assert score(out, "R^2") > 0.8
    header, rows = read_csv(ok(xpnet_cli("predict", model, data)).stdout)
    assert header == ["weight", "waist"] and len(rows) == 80
    assert np.corrcoef(np.array(rows, dtype=float)[:, 0], Y[:, 0])[0, 1] > 0.9


def test_several_targets_cannot_be_classified(tmp_path):
    data = table(tmp_path / "d.csv", ["x", "a", "b"], [[i, i % 2, i % 3] for i in range(30)])
    line = one_line_error(xpnet_cli("train", "--data", data, "--target", "a,b", "--task", "classification"))
    assert "multi-output regressor" in line and "--target" in line


# --------------------------------------------------------------------------
# 5. The task guess, its reason and its warnings
# --------------------------------------------------------------------------


def test_task_reason_is_printed(tmp_path):
    out = ok(xpnet_cli("train", "--epochs", "1", "--quiet")).stdout
    assert "task: classification (integer target with 10 values)" in out


def test_whole_number_floats_are_classes_with_a_warning(tmp_path):
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "label"], [[a, b, f"{c:.1f}"] for (a, b), c in zip(X, y)])
    result = ok(xpnet_cli("train", "--data", data, *FAST))
    assert "task: classification (whole-number float target with 2 values)" in result.stdout
    assert re.fullmatch(r"xpnet: warning: .*'label'.*--task regression.*\n", result.stderr)
    settled = ok(xpnet_cli("train", "--data", data, "--task", "regression", *FAST))
    assert "task: regression (--task regression)" in settled.stdout and settled.stderr == ""


def test_integers_with_many_values_are_regressed_with_a_warning(tmp_path):
    rng = np.random.default_rng(3)
    weight = rng.integers(140, 250, size=20)  # linnerud-like: 20 rows, most weights once
    data = table(tmp_path / "lin.csv", ["chins", "weight"], [[w // 10 + k % 3, w] for k, w in enumerate(weight)])
    result = ok(xpnet_cli("train", "--data", data, *FAST))
    assert "task: regression (integer target with" in result.stdout
    assert "--task classification" in result.stderr and result.stderr.count("\n") == 1


# --------------------------------------------------------------------------
# 6. Degenerate targets
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[i, 5] for i in range(20)], "the target 'y' is constant (every row holds 5)"),
        ([[i, "cat"] for i in range(20)], "the target 'y' is constant (every row holds 'cat')"),
        ([[i, 2.5] for i in range(20)], "constant (every row holds 2.5)"),
        ([[1, 0]], "a single data row"),
        ([[i, i % 2] for i in range(10)] + [[10, 7]], "class(es) 7 of 'y' have a single row"),
        ([[0, 0], [1, 1], [2, 0], [3, 1]], "too few to hold out a 0.2 test share"),
    ],
)
def test_degenerate_targets_are_refused(tmp_path, rows, expected):
    data = table(tmp_path / "d.csv", ["x", "y"], rows)
    args = ["--task", "classification"] if "class(es)" in expected else []
    line = one_line_error(xpnet_cli("train", "--data", data, *args, *FAST))
    assert expected in line and "np." not in line


# --------------------------------------------------------------------------
# 7. Exit codes, file-system errors, hints
# --------------------------------------------------------------------------


BAD_OPTIONS = {
    "activation": (["--activation", "nosuch"], "--activation"),
    "resume without checkpoint": (["--resume"], "--resume needs --checkpoint"),
    "separator": (["--sep", "xx"], "--sep"),
    "missing strategy": (["--missing", "guess"], "--missing"),
    "unknown policy": (["--unknown", "maybe"], "--unknown"),
    "encoding": (["--encoding", "klingon"], "unknown encoding"),
    "decimal": (["--decimal", ";"], "--decimal"),
    "empty target list": (["--target", "a,,b"], "--target"),
    "target without data": (["--target", "y"], "--target applies to --data"),
    "test data without data": (["--test-data", "t.csv"], "--test-data applies to --data"),
    "missing without data": (["--missing", "mean"], "--missing applies to --data"),  # these three did nothing
    "unknown without data": (["--unknown", "ignore"], "--unknown applies to --data"),
    "max categories without data": (["--max-categories", "5"], "--max-categories applies to --data"),
    "device": (["--device", "nosuch:9"], "device"),
    "backend": (["--backend", "nosuch"], "unknown backend"),
    "missing data file": (["--data", "{d}/none.csv"], "no such data file"),
    "data is a folder": (["--data", "{d}"], "is a folder"),
    "save into a missing folder": (["--save", "{d}/no/m.safetensors"], "the folder"),
    "save into an unwritable folder": (["--save", "/proc/m.safetensors"], "cannot write in the folder /proc"),
    "checkpoint into a missing folder": (["--checkpoint", "{d}/no/c.safetensors"], "does not exist"),
    # Path() drops a trailing slash: --save wrote a file named as the folder, --plot failed after training
    "save to a missing folder's name": (["--save", "{d}/no/"], "ends with '/', naming a folder"),
    "checkpoint to a missing folder's name": (["--checkpoint", "{d}/no/"], "ends with '/', naming a folder"),
    "plot to a missing folder's name": (["--plot", "{d}/no/"], "ends with '/', naming a folder"),
}


def test_a_device_a_usable_backend_lacks_exits_2_as_the_readme_says(tmp_path):
    """torch asked for 'cuda' without CUDA exited 1 (an 'unusable backend'),
    where JAX and NumPy asked for a device they lack exit 2."""
    from xpnet._backend import backend_status

    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not backend_status("torch").usable or torch.cuda.is_available():
        pytest.skip("needs a usable torch without CUDA")
    result = xpnet_cli("train", "--backend", "torch", "--device", "cuda")
    assert result.returncode == 2 and "torch sees no CUDA device" in one_line_error(result)
    assert result.stdout == ""


def test_float64_on_a_device_without_it_exits_2_naming_dtype(tmp_path):
    """array_api_strict's no_float64 device with --dtype float64 was refused after the data was read and split,
    exit 1, in the Python API's words (dtype='float32')."""
    pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    data = write_csv(tmp_path / "d.csv", ["a", "y"], [[0.0, 1.0, 2.0, 3.0] * 5, [0, 1] * 10])
    result = xpnet_cli("train", "--data", data, "--backend", "array_api_strict", "--device", "no_float64",
                       "--dtype", "float64", "--epochs", "1")
    line = one_line_error(result)
    assert result.returncode == 2 and "--dtype float64: the array_api_strict device 'no_float64'" in line, line
    assert "--dtype float32" in line and result.stdout == ""
    ok(xpnet_cli("train", "--data", data, "--backend", "array_api_strict", "--device", "no_float64", "--epochs", "1"))


@pytest.mark.parametrize("case", list(BAD_OPTIONS), ids=list(BAD_OPTIONS))
def test_bad_option_values_exit_2_before_reading_data(case, tmp_path):
    args, expected = BAD_OPTIONS[case]
    args = [a.format(d=tmp_path) for a in args]
    result = xpnet_cli("train", *args)
    line = one_line_error(result)
    assert result.returncode == 2, line
    assert expected in line
    assert result.stdout == ""  # nothing was read or trained


def test_unwritable_folder_is_refused_before_training(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the /proc case covers this")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = xpnet_cli("train", "--save", folder / "m.safetensors")
    finally:
        folder.chmod(0o700)
    assert result.returncode == 2 and "cannot write in the folder" in one_line_error(result)


def test_predict_file_system_errors_are_one_line_naming_the_path(tmp_path):
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, *FAST, "--save", model))
    for args, expected in (
        (["--output", "/missing/dir/x.csv"], "--output /missing/dir/x.csv: the folder /missing/dir does not exist"),
        (["--output", str(tmp_path)], "is a folder"),
        (["--output", f"{tmp_path}/no/"], "ends with '/', naming a folder"),
    ):
        result = xpnet_cli("predict", model, data, *args)
        line = one_line_error(result)
        assert expected in line and "Errno" not in line and result.returncode == 2
    result = xpnet_cli("predict", tmp_path / "none.safetensors", data)
    assert "no such model file" in one_line_error(result) and result.returncode == 2


def test_data_errors_name_the_option_that_fixes_them(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,y\n1,2,0\n3,4,1,9\n")
    assert "--sep" in one_line_error(xpnet_cli("train", "--data", ragged))
    text = table(tmp_path / "t.csv", ["a", "y"], [[1, 0], [2, 1]])
    assert "--target takes a column name or position" in one_line_error(
        xpnet_cli("train", "--data", text, "--target", "price"))


def test_help_documents_the_new_options():
    text = ok(xpnet_cli("train", "--help")).stdout
    for option in ("--missing", "--categorical", "--sep", "--unknown", "--na-values", "--test-data", "--ignore",
                   "--decimal", "--encoding", "--max-categories", "separator is detected", "missing values"):
        assert option in text, option
    assert "--unknown" in ok(xpnet_cli("predict", "--help")).stdout


# --------------------------------------------------------------------------
# --test-data
# --------------------------------------------------------------------------


def test_test_data_replaces_the_split(tmp_path):
    X, y = blobs(100)
    rows = [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)]
    train = table(tmp_path / "train.csv", ["a", "b", "y"], rows[:70])
    test = table(tmp_path / "test.csv", ["b", "y", "a"], [[r[1], r[2], r[0]] for r in rows[70:]])
    out = ok(xpnet_cli("train", "--data", train, "--test-data", test, "--epochs", "20", "--quiet")).stdout
    assert f"70 training rows; 30 test rows from {test}" in out
    assert re.search(r"test accuracy: [0-9.]+ \(\d+/30 rows\)", out)
    odd = table(tmp_path / "odd.csv", ["a", "b", "y"], [[0, 0, 5]])
    assert "--test-data holds the class 5" in one_line_error(xpnet_cli("train", "--data", train, "--test-data", odd))
    late = table(tmp_path / "late.csv", ["a", "b", "y"], [[0, 0, 1], [1, 1, 0], [2, 2, 7], [3, 3, 7]])
    line = one_line_error(xpnet_cli("train", "--data", train, "--test-data", late))  # named where it is: file and line
    assert f"{late}, line 4: --test-data holds the class 7" in line
    lacking = table(tmp_path / "lack.csv", ["a", "y"], [[0, 0]])
    assert "lacks the column(s) 'b'" in one_line_error(xpnet_cli("train", "--data", train, "--test-data", lacking))


def test_a_test_file_of_another_separator_gets_a_hint_that_works(tmp_path):
    """With --sep ';' for both files, a comma-separated --test-data was told "pass --sep comma", which broke
    the reading of the ';'-separated training file; left out, each file's separator is detected."""
    X, y = blobs(60)
    rows = [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)]
    train = table(tmp_path / "train.csv", ["a", "b", "y"], rows[:40], sep=";")
    test = table(tmp_path / "test.csv", ["a", "b", "y"], rows[40:])
    line = one_line_error(xpnet_cli("train", "--data", train, "--test-data", test, "--sep", ";", *FAST))
    assert "--sep reads --data and --test-data alike" in line and "--sep comma" not in line, line
    assert "20 test rows from" in ok(xpnet_cli("train", "--data", train, "--test-data", test, *FAST)).stdout


# --------------------------------------------------------------------------
# Issue 15, item 8: data at the edges
# --------------------------------------------------------------------------


def test_huge_integer_labels_are_classes_without_overflow(tmp_path):
    X, y = blobs()
    labels = np.where(y == 1, "99999999999999999999", "1")
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, labels)])
    model = tmp_path / "m.safetensors"
    out = ok(xpnet_cli("train", "--data", data, *FAST, "--save", model)).stdout
    assert "2 classes" in out
    _, rows = read_csv(ok(xpnet_cli("predict", model, data)).stdout)
    assert {r[0] for r in rows} <= {"1", "99999999999999999999"}


@pytest.mark.parametrize("token", ["NULL", "nan", "\x00"])
def test_a_lone_token_in_an_integer_label_column_is_not_a_class(tmp_path, token):
    rows = [[i, i % 3] for i in range(30)]
    rows[11][1] = token
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in rows))
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "line 13" in line and "'y'" in line
    # pandas < 3 reads a lone NUL as an empty field (a missing value); pandas 3 keeps it, and it is refused as text
    assert ("missing value" in line and "--missing drop" in line) or (token == "\x00" and "NUL" in line)


def test_values_near_the_float64_limit(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    big = np.where(x > 0, 1e308, -1e308)
    data = table(tmp_path / "d.csv", ["x", "big", "y"], [[f"{a:.4f}", f"{b:g}", int(a > 0)] for a, b in zip(x, big)])
    result = no_warnings(ok(xpnet_cli("train", "--data", data, "--epochs", "30", "--lr", "0.01", "--quiet")))
    assert score(result.stdout, "test accuracy") == 1.0  # the 1e308 feature is informative, not zeroed
    target = table(tmp_path / "t.csv", ["x", "y"], [[f"{a:.4f}", f"{-1e308 * (a > 0):g}"] for a in x])
    result = no_warnings(ok(xpnet_cli("train", "--data", target, "--task", "regression", *FAST)))
    assert re.search(r"test mse: [0-9.]+e\+6\d\d, R\^2: -?[0-9.]+", result.stdout)  # finite, in the target's units
    inf = table(tmp_path / "inf.csv", ["x", "y"], [[1, 0], ["1e309", 1], [2, 0]])
    line = one_line_error(xpnet_cli("train", "--data", inf, *FAST))
    assert "line 3" in line and "infinite" in line and "inf/NaN" not in line


@pytest.mark.parametrize("value", ["-inf", "inf"])
def test_the_hint_for_an_infinite_value_names_the_token_that_makes_it_missing(tmp_path, value):
    """pandas matches --na-values inf to +inf only: the hint for a '-inf'
    (np.log(0) written by to_csv) said --na-values inf, which left it as it was."""
    X, y = blobs(40, seed=5)
    rows = [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)]
    rows[3][0] = value
    data = table(tmp_path / "f.csv", ["a", "b", "y"], rows)
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "line 5" in line and "infinite" in line
    option = re.search(r"--na-values[= ]\S+", line).group().split(" ")
    ok(xpnet_cli("train", "--data", data, *option, "--missing", "mean", *FAST))
    target = table(tmp_path / "t.csv", ["x", "y"], [[f"{a:.4f}", f"{b:.4f}"] for a, b in X])
    text = target.read_text().splitlines()
    text[4] = text[4].split(",")[0] + "," + value
    target.write_text("\n".join(text) + "\n")
    line = one_line_error(xpnet_cli("train", "--data", target, "--task", "regression", *FAST))
    option = re.search(r"--na-values[= ]\S+", line).group().split(" ")
    ok(xpnet_cli("train", "--data", target, "--task", "regression", *option, "--missing", "drop", *FAST))


@pytest.mark.parametrize("where", ["X", "y"])
def test_the_hint_for_an_infinite_value_in_an_npz_file_leads_somewhere(tmp_path, where):
    """An NPZ archive's inf was met with the CSV hint "--na-values inf to
    treat it as missing", which train then refused ("--na-values read CSV
    files; ... an NPZ archive ..., which it does not apply to"). The hint
    says to store NaN, which --missing handles."""
    X, y = blobs(40, seed=5)
    y = X[:, 0] * 2.0
    if where == "X":
        X[3, 1] = np.inf
    else:
        y[3] = -np.inf
    np.savez(tmp_path / "d.npz", X=X, y=y)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "d.npz", "--task", "regression", *FAST))
    assert "row 4" in line and "infinite" in line and "--na-values" not in line
    assert "an NPZ archive marks a missing value as NaN" in line
    X, y = np.where(np.isinf(X), np.nan, X), np.where(np.isinf(y), np.nan, y)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ok(xpnet_cli("train", "--data", tmp_path / "d.npz", "--task", "regression", "--missing", "drop", *FAST))


def test_an_infinite_value_under_missing_mean_is_one_error_line(tmp_path):
    """The fill was computed before the infinite value was refused: numpy's
    'invalid value encountered in divide' came out as a warning above the error."""
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [["inf", 1, "A"], [2, 2, "B"], ["", 1, "A"], [4, 2, "B"],
                                                          [5, 1, "A"], [6, 3, "B"]])  # fmt: skip
    line = one_line_error(xpnet_cli("train", "--data", data, "--missing", "mean", *FAST))
    assert "line 2: column 'a' holds an infinite value" in line


def test_a_header_line_repeated_inside_the_file_is_named_as_such(tmp_path):
    """Two exports joined with `cat` repeat the header mid-file: the message
    said "column 'a' holds 'a', not a number (if 'a' marks a missing value,
    pass --na-values a ...)", a hint that leads nowhere."""
    X, y = blobs(40, seed=10)
    part = "a,b,y\n" + "".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in zip(X, y))
    data = tmp_path / "joined.csv"
    data.write_text(part + part)
    for options in ([], ["--categorical", "a,b", "--task", "regression"]):  # a feature; the target
        line = one_line_error(xpnet_cli("train", "--data", data, *options, *FAST))
        assert "line 42" in line and "repeats the header" in line and "--na-values" not in line, line
    model = tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", table(tmp_path / "t.csv", ["a", "b", "y"], [[a, b, c] for (a, b), c in zip(X, y)]),
                 "--save", model, *FAST))  # fmt: skip
    new = tmp_path / "new.csv"
    new.write_text("a,b\n1,2\na,b\n3,4\n")
    line = one_line_error(xpnet_cli("predict", model, new))
    assert "line 3" in line and "repeats the header" in line and "--na-values" not in line, line


def test_no_numpy_reprs_in_messages(tmp_path):
    data = table(tmp_path / "d.csv", ["x", "y"], [[i, "cat"] for i in range(5)])
    line = one_line_error(xpnet_cli("train", "--data", data))
    assert "np.str_" not in line and "'cat'" in line


# --------------------------------------------------------------------------
# 8. The progress display on a terminal without a width
# --------------------------------------------------------------------------


def test_zero_width_terminal_gets_a_line_per_epoch():
    import io

    from xpnet._progress import EpochLines, progress_bar

    out = io.StringIO()
    lines = EpochLines(3, file=out)
    lines.set_postfix({"loss": "0.5", "val_accuracy": "0.9000"}, refresh=False)
    lines.update(1)
    lines.close()
    assert out.getvalue() == "epoch 1/3: loss 0.5, val_accuracy 0.9000\n"
    assert not isinstance(progress_bar(3, file=io.StringIO()), EpochLines)  # not a terminal: tqdm's own rules


@pytest.mark.skipif(not shutil.which("script"), reason="needs script(1) from util-linux to get a terminal")
def test_the_progress_bar_follows_where_it_is_drawn_stderr(tmp_path):
    """The bar is drawn on stderr, so whether stderr is a terminal decides:
    stdout on a terminal and stderr in a file must leave the file clean."""
    import shlex
    import subprocess
    import sys

    from test_cli import clean_env

    err = tmp_path / "err.log"
    command = " ".join(map(shlex.quote, [sys.executable, "-m", "xpnet", "train", "--epochs", "3"])) + f" 2>{err}"
    result = subprocess.run(["script", "-q", "-c", command, "/dev/null"], capture_output=True, text=True,
                            timeout=120, env=clean_env(), stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0 and "test accuracy" in result.stdout, result.stdout
    assert err.read_text() == ""


@pytest.mark.skipif(not shutil.which("script"), reason="needs script(1) from util-linux to get a terminal")
def test_xpnet_train_under_script_prints_epoch_lines():
    """`script -q -c ... /dev/null` runs on a pseudo-terminal that reports 0 columns."""
    import shlex
    import subprocess
    import sys

    from test_cli import clean_env

    command = " ".join(map(shlex.quote, [sys.executable, "-m", "xpnet", "train", "--epochs", "3"]))
    result = subprocess.run(["script", "-q", "-c", command, "/dev/null"], capture_output=True, text=True,
                            timeout=120, env=clean_env(), stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout
    epochs = re.findall(r"^epoch (\d)/3: loss [0-9.]+, val_loss [0-9.]+, val_accuracy [0-9.]+\r?$",
                        result.stdout, re.M)
    assert epochs == ["1", "2", "3"], result.stdout


def test_repeated_column_options_add_up(tmp_path):
    """A second --ignore (--categorical, --target, --na-values) replaced the
    first without a word: f1 was still learned from."""
    X, y = blobs()
    rows = [[f"{a:.4f}", f"{b:.4f}", "?" if i == 3 else f"{a - b:.4f}", "-" if i == 7 else f"{b:.4f}", c]
            for i, ((a, b), c) in enumerate(zip(X, y))]  # fmt: skip
    data = table(tmp_path / "multi.csv", ["f1", "f2", "f3", "f4", "y"], rows)
    result = ok(xpnet_cli("train", "--data", data, "--ignore", "f1", "--ignore", "f2", "--na-values", "?",
                          "--na-values", "-", "--missing", "drop", "--epochs", "3"))  # fmt: skip
    assert "2 features" in result.stdout and "'f1'" not in result.stdout, result.stdout


def test_thousands_marks_are_read_as_thousands_not_as_decimals(tmp_path):
    """With --decimal , German thousands marks (1.200) were read as decimal
    points, a thousand times too small, without a word; US files' quoted
    "1,200" became categories."""
    de = tmp_path / "de.csv"
    de.write_text("area;price\n850;100,5\n999;1.120,25\n1.200;150,0\n1.500;180,5\n2.000;230,0\n900;110,0\n")
    model = tmp_path / "de.st"
    ok(xpnet_cli("train", "--data", de, "--decimal", ",", "--test-size", "0", "--save", model, *FAST))
    info = xpnet.load(model, backend="numpy").info
    assert info["x_mean"][0] == pytest.approx((850 + 999 + 1200 + 1500 + 2000 + 900) / 6)
    assert info["y_mean"][0] == pytest.approx((100.5 + 1120.25 + 150 + 180.5 + 230 + 110) / 6)
    us = table(tmp_path / "us.csv", ["a", "b", "y"], [['"1,200"', 1, 0], ['"2,500.5"', 2, 1], [300, 3, 0],
                                                      ['"1,000,000"', 4, 1], [5, 5, 0], [6, 6, 1]])  # fmt: skip
    ok(xpnet_cli("train", "--data", us, "--test-size", "0", "--save", model, *FAST))
    info = xpnet.load(model, backend="numpy").info
    assert info["columns"][0]["kind"] == "number"
    assert info["x_mean"][0] == pytest.approx((1200 + 2500.5 + 300 + 1_000_000 + 5 + 6) / 6)


def test_a_point_that_groups_no_thousands_is_refused_where_the_decimal_mark_is_a_comma(tmp_path):
    de = tmp_path / "de.csv"
    de.write_text("area;price\n850;100,5\n1.5;120,25\n1.200;150,0\n0.126;1,0\n")
    line = one_line_error(xpnet_cli("train", "--data", de, "--decimal", ",", "--test-size", "0", *FAST))
    assert "column 'area' holds '1.5', not a number" in line and "a '.' only groups thousands" in line
    de.write_text("area;price\n850;100,5\n0.126;120,25\n1.200;150,0\n")  # a leading 0 groups no thousands
    line = one_line_error(xpnet_cli("train", "--data", de, "--decimal", ",", "--test-size", "0", *FAST))
    assert "column 'area' holds '0.126', not a number" in line


def test_a_decimal_comma_target_without_the_option_is_refused_with_the_option(tmp_path):
    """It became text labels (34 classes), and --test-size 0 then trained a
    classifier of them without a word."""
    rng = np.random.default_rng(0)
    rows = [[int(rng.integers(1, 6)), f"{rng.uniform(0, 5):.1f}".replace(".", ",")] for _ in range(60)]
    data = table(tmp_path / "rating.csv", ["rooms", "rating"], rows, sep=";")
    line = one_line_error(xpnet_cli("train", "--data", data, "--test-size", "0", *FAST))
    assert "the target 'rating' holds numbers written with a decimal comma" in line and "--decimal ," in line
    result = ok(xpnet_cli("train", "--data", data, "--decimal", ",", *FAST))
    assert "task: regression" in result.stdout


def test_an_output_that_is_a_file_the_command_reads_is_refused_before_anything_is_written(tmp_path):
    """predict --output DATA replaced the data, --output MODEL the model, and
    train --save DATA the training file."""
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)])
    model = tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", data, "--save", model, *FAST))
    before = data.read_bytes(), model.read_bytes()
    for args, words in [
        (("predict", model, data, "--output", data), "--output .* is the same file as DATA"),
        (("predict", model, data, "--output", model), "--output .* is the same file as MODEL"),
        (("train", "--data", data, "--save", data, *FAST), "--save .* is the same file as --data"),
        (("train", "--data", data, "--save", tmp_path / "x.st", "--checkpoint", tmp_path / "x.st", *FAST),
         "--checkpoint .* is the same file as --save"),
    ]:  # fmt: skip
        result = xpnet_cli(*args)
        assert result.returncode == 2 and re.search(words, one_line_error(result)), result.stderr
    assert (data.read_bytes(), model.read_bytes()) == before


@pytest.mark.parametrize(("write", "words"), [
    (lambda path, text: path.write_text(text, encoding="utf-16"), "byte-order mark of UTF-16 text.*--encoding utf-16"),
    (lambda path, text: path.write_text(text, encoding="utf-16-le"), "NUL byte beside every character.*utf-16-le"),
    (lambda path, text: path.write_text(text, encoding="utf-8-sig"), "byte-order mark of UTF-8 text.*--encoding utf-8"),
    (lambda path, text: path.write_text('{"a":1,"b":2,"y":0}\n{"a":3,"b":4,"y":1}\n'), "looks like JSON"),
])  # fmt: skip
def test_unicode_files_read_in_another_encoding_and_json_are_named(tmp_path, write, words):
    """UTF-16 got 'pass --encoding latin-1', which then trained on names with
    NULs; JSON lines trained as a CSV with the target 'y:"no"}'."""
    path = tmp_path / "t.csv"
    write(path, "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    encoding = ["--encoding", "latin-1"] if "UTF-8" in words else []
    line = one_line_error(xpnet_cli("train", "--data", path, "--test-size", "0", *encoding, *FAST))
    assert re.search(words, line), line


def test_a_space_separated_file_with_runs_of_spaces_reads(tmp_path):
    """The header was split at every space, naming empty columns, while pandas
    read the rows with runs of spaces as one separator."""
    path = tmp_path / "sp.txt"
    path.write_text("a  b  y\n1  2  0\n3  4  1\n5  6  0\n7  8  1\n")
    result = ok(xpnet_cli("train", "--data", path, "--sep", "space", "--test-size", "0", *FAST))
    assert "2 features" in result.stdout and "target 'y'" in result.stdout


def test_numbers_with_a_percent_or_currency_sign_are_named_not_made_categories(tmp_path):
    """'12%' and '$1,200.00' became one-hot categories without a word."""
    rows = [["12%", '"$1,200.00"', 1], ["15%", '"$1,350.50"', 0], ["9%", '"$980.00"', 1], ["20%", '"$2,100.00"', 0]]
    data = table(tmp_path / "fmt.csv", ["rate", "cost", "y"], rows * 3)
    line = one_line_error(xpnet_cli("train", "--data", data, "--test-size", "0", *FAST))
    assert "column 'rate' holds numbers written with a unit or currency sign ('12%')" in line
    assert "--categorical rate" in line
    result = ok(xpnet_cli("train", "--data", data, "--test-size", "0", "--categorical", "rate,cost", *FAST))
    assert "2 categorical" in result.stdout


def test_empty_unnamed_columns_at_the_end_are_left_out(tmp_path):
    """An Excel export's trailing ';;' made the empty last column the target,
    and the hints that followed led nowhere; an unnamed column with data
    (pandas' index) is still refused."""
    trail = tmp_path / "trail.csv"
    trail.write_text("a;b;y;;\n" + "".join(f"{i % 5};{i % 3};{i % 2};;\n" for i in range(30)))
    result = ok(xpnet_cli("train", "--data", trail, "--test-size", "0", *FAST))
    assert "2 features" in result.stdout and "target 'y'" in result.stdout
    index = tmp_path / "index.csv"
    index.write_text(",a,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))
    assert "column 1 of the header has no name" in one_line_error(xpnet_cli("train", "--data", index, *FAST))


def test_test_size_and_test_data_together_are_a_usage_error(tmp_path):
    """--test-size was silently ignored beside --test-data."""
    X, y = blobs()
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(X, y)])
    result = xpnet_cli("train", "--data", data, "--test-data", data, "--test-size", "0.3", *FAST)
    assert result.returncode == 2 and "--test-size and --test-data both choose the test rows" in result.stderr


def test_the_model_line_shows_momentum_and_a_folder_model_is_called_a_model(tmp_path):
    result = ok(xpnet_cli("train", "--optimizer", "momentum", "--epochs", "1", "--quiet"))
    assert "sgd lr 0.001 momentum 0.9" in result.stdout
    data = table(tmp_path / "d.csv", ["a", "y"], [[1, 0], [2, 1]])
    line = one_line_error(xpnet_cli("predict", tmp_path, data))
    assert "is a folder; expected a model (safetensors) file" in line


def test_a_utf16_models_encoding_on_a_utf8_file_is_named(tmp_path):
    """predict reads with the training file's --encoding: a UTF-8 file read
    as UTF-16 gave a kilobyte of mojibake as a 'column name'."""
    rows = "".join(f"{i % 5},{i % 3},{i % 2}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows, encoding="utf-16")
    model = tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", tmp_path / "t.csv", "--encoding", "utf-16", "--save", model, *FAST))
    plain = table(tmp_path / "p.csv", ["a", "b"], [[1, 2], [3, 4]])
    line = one_line_error(xpnet_cli("predict", model, plain))
    assert "is read as utf-16" in line and "holds no UTF-16 text" in line and "--encoding utf-8" in line
    ok(xpnet_cli("predict", model, plain, "--encoding", "utf-8"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_wide_encoding_file_longer_than_the_sample_is_read(tmp_path, encoding):
    """Excel's "Unicode text" (UTF-16) export of more than 64 KiB was refused
    with --encoding utf-16, the option the hint names: 'not a utf-16 text CSV
    file'. The sample was cut after its last b'\\n', half of UTF-16's '\\n\\0'."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(3000, 2))
    path = tmp_path / "export.txt"
    path.write_text("a\tb\ty\n" + "".join(f"{a:.6f}\t{b:.6f}\t{'ja' if a > 0 else 'nein'}\n" for a, b in X),
                    encoding=encoding)  # fmt: skip
    assert path.stat().st_size > 1 << 17
    out = ok(xpnet_cli("train", "--data", path, "--encoding", encoding, *FAST)).stdout
    assert "3000 rows, 2 features, target 'y' (2 classes)" in out


def test_a_utf32_file_is_read_with_encoding_utf32(tmp_path):
    """--encoding utf-32 was taken, and the file then refused: 'has a NUL byte
    beside every character: it looks like UTF-16 text' (as UTF-16 it reads as NULs)."""
    rows = "".join(f"{i % 5},{i % 3},{'AB'[i % 2]}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows, encoding="utf-32")
    assert "40 rows, 2 features" in ok(xpnet_cli("train", "--data", tmp_path / "t.csv", "--encoding", "utf-32",
                                                 *FAST)).stdout  # fmt: skip


def test_second_review_of_the_table_rules(tmp_path):
    """False alarms and gaps the second review of today's table rules found:
    UTF-16 text of another script without a mark, JSON lines of arrays,
    single-column '#' headers, comment lines with a separator, a model's
    decimal feature names in predict, a repeated name at the end, and
    currency grouped with no-break spaces."""
    rows = "".join(f"Москва,{i % 7},{i % 3}\n" for i in range(40))
    (tmp_path / "cyr.csv").write_text("город,площадь,цена\n" + rows, encoding="utf-16-le")
    ok(xpnet_cli("train", "--data", tmp_path / "cyr.csv", "--encoding", "utf-16-le", *FAST))
    (tmp_path / "a.jsonl").write_text("".join(f"[0.{i}, 0.{i + 1}, {i % 2}]\n" for i in range(10)))
    assert "looks like JSON" in one_line_error(xpnet_cli("train", "--data", tmp_path / "a.jsonl", *FAST))
    model = tmp_path / "m.st"
    (tmp_path / "rooms.csv").write_text("# rooms,price\n" + "".join(f"{i % 5},{i % 7}.5\n" for i in range(40)))
    ok(xpnet_cli("train", "--data", tmp_path / "rooms.csv", "--save", model, *FAST))
    (tmp_path / "p.csv").write_text("# rooms\n3\n4\n")
    assert len(ok(xpnet_cli("predict", model, tmp_path / "p.csv")).stdout.split()) == 3
    comment = "# exported by tool, 2024-05-01\na,b,y\n" + "".join(f"{i % 5},{i % 3},{i % 2}\n" for i in range(40))
    (tmp_path / "c.csv").write_text(comment)
    assert "starts with a comment line" in one_line_error(xpnet_cli("train", "--data", tmp_path / "c.csv", *FAST))
    spectra = "900.0,902.5,905.0,label\n" + "".join(f"0.{i % 9},0.{i % 7},0.{i % 5},{'ab'[i % 2]}\n" for i in range(40))
    (tmp_path / "s.csv").write_text(spectra)
    ok(xpnet_cli("train", "--data", tmp_path / "s.csv", "--save", model, *FAST))
    (tmp_path / "sp.csv").write_text("900.0,902.5,905.0\n0.1,0.2,0.3\n")
    ok(xpnet_cli("predict", model, tmp_path / "sp.csv"))
    (tmp_path / "d.csv").write_text("a,b,y,note,note\n" + "".join(f"{i % 5},{i % 3},{i % 2},x,z\n" for i in range(40)))
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "d.csv", "--ignore", "note", *FAST))
    assert "the last column with a name, 'note', is repeated" in line and "--target" in line  # which one? ask
    result = ok(xpnet_cli("train", "--data", tmp_path / "d.csv", "--ignore", "note", "--target", "y", *FAST))
    assert "target 'y'" in result.stdout
    euros = "".join(f"{i};{1000 + i} 504,83\u00a0€;{i % 2}\n" for i in range(40))  # no-break spaces
    (tmp_path / "e.csv").write_text("a;price;y\n" + euros)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "e.csv", "--decimal", ",", *FAST))
    assert "holds numbers written with a unit or currency sign" in line


def test_third_review_of_the_table_rules(tmp_path):
    """A header-less predict file whose first row holds the model's numeric
    feature names in another order; '#' headers over rows with decimal
    commas, commas in tab-separated text, or a trailing separator; and
    UTF-8 text of another script read as UTF-16."""
    model = tmp_path / "k.st"
    rows = "".join(f"{i % 3},{i // 3 % 3},{i // 9 % 3},{i % 2}\n" for i in range(60))
    (tmp_path / "k.csv").write_text("0,1,2,y\n" + rows)
    ok(xpnet_cli("train", "--data", tmp_path / "k.csv", "--save", model, *FAST))
    (tmp_path / "kp.csv").write_text("2,1,0\n0,0,1\n")  # the names reordered, or a row? said, with the fix
    line = one_line_error(xpnet_cli("predict", model, tmp_path / "kp.csv"))
    assert "first line holds the model's column names in another order ('2', '1', '0')" in line
    assert "put the columns in the model's order: '0', '1', '2'" in line
    (tmp_path / "kr.csv").write_text("5,7,9\n0,0,1\n")  # numbers that are not the names: a file without a header
    assert "has no header line" in one_line_error(xpnet_cli("predict", model, tmp_path / "kr.csv"))
    (tmp_path / "s.csv").write_text("#a;b;y\n" + "".join(f"0,{i % 5};0,{i % 3};{i % 2}\n" for i in range(40)))
    ok(xpnet_cli("train", "--data", tmp_path / "s.csv", "--decimal", ",", *FAST))
    rows = "".join(f"Smith, J{i % 3}\tParis, FR\t{i % 2}\n" for i in range(40))
    (tmp_path / "t.csv").write_text("#name\tcity\ty\n" + rows)
    ok(xpnet_cli("train", "--data", tmp_path / "t.csv", *FAST))
    (tmp_path / "r.csv").write_text("#id,a,y\n" + "".join(f"{i % 4},{i % 3},{i % 2},\n" for i in range(40)))
    ok(xpnet_cli("train", "--data", tmp_path / "r.csv", *FAST))
    rows = "".join(f"Москва,{i % 7},{i % 3}\n" for i in range(40))
    (tmp_path / "u.csv").write_text("город,площадь,цена\n" + rows)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "u.csv", "--encoding", "utf-16", *FAST))
    assert "holds no UTF-16 text" in line


def test_fourth_review_of_the_table_rules(tmp_path):
    """A review with real tables found: quoted decimal commas in a
    comma-separated file silently became categories; labels lost their
    spelling (``01`` came back as ``1``); a class of words among number
    labels was refused even with --task classification; and --missing drop
    on an empty column ended in NumPy's 'zero-size array' message."""
    q = table(tmp_path / "q.csv", ["a", "b", "y"], [[f'"{i},5"', i % 3, i % 2] for i in range(1, 11)])
    line = one_line_error(xpnet_cli("train", "--data", q, *FAST))
    assert "column 'a' holds '1,5', not a number" in line and "to_csv(sep=';', decimal=',')" in line
    assert "--categorical a" in line
    de = table(tmp_path / "de.csv", ["a", "b", "y"], [["1.234,5", 2, 0], *[[f"{i},5", i, i % 2] for i in range(9)]],
               sep=";")  # fmt: skip
    assert "(--decimal , reads numbers" in one_line_error(xpnet_cli("train", "--data", de, *FAST))
    qy = table(tmp_path / "qy.csv", ["a", "y"], [[i, f'"{i},5"'] for i in range(1, 11)])
    assert "holds numbers written with a decimal comma" in one_line_error(xpnet_cli("train", "--data", qy, *FAST))

    X, y = blobs(60)
    rows = [[*x, label] for x, label in zip(X.round(4), np.array(["01", "02", "10"])[y + (X[:, 0] > 1)])]
    zeros, model = table(tmp_path / "zeros.csv", ["a", "b", "cls"], rows), tmp_path / "z.st"
    trained = ok(xpnet_cli("train", "--data", zeros, "--save", model, *FAST))
    assert "text labels with 3 values" in trained.stdout
    header, predicted = read_csv(ok(xpnet_cli("predict", model, zeros)).stdout)
    assert header == ["cls"] and {r[0] for r in predicted} <= {"01", "02", "10"}
    regression = ok(xpnet_cli("train", "--data", zeros, "--task", "regression", *FAST))
    assert "task: regression" in regression.stdout

    words = table(tmp_path / "words.csv", ["a", "b", "cls"], [[*x, ["1", "2", "x"][k % 3]] for k, x in enumerate(X)])
    assert "--task classification takes every value" in one_line_error(xpnet_cli("train", "--data", words, *FAST))
    assert "text labels with 3 values" in ok(xpnet_cli("train", "--data", words, "--task", "classification",
                                                       *FAST)).stdout  # fmt: skip

    empty = table(tmp_path / "e.csv", ["a", "b", "c", "y"], [[i, i + 1, "", i % 2] for i in range(6)])
    for task in ("classification", "regression"):
        line = one_line_error(xpnet_cli("train", "--data", empty, "--missing", "drop", "--task", task, *FAST))
        assert "--missing drop leaves no row to train on: column(s) 'c' hold no value" in line


def test_a_long_column_list_in_a_message_says_how_many_it_leaves_out(tmp_path):
    """predict's message on a file that lacks the model's columns showed
    its first 12 names as if they were all."""
    model = tmp_path / "m.st"
    X, y = blobs(40)
    ok(xpnet_cli("train", "--data", table(tmp_path / "t.csv", ["a", "b", "y"], [[*x, v] for x, v in zip(X, y)]),
                 "--save", model, *FAST))  # fmt: skip
    wide = table(tmp_path / "w.csv", [f"c{i}" for i in range(20)], [list(range(20))])
    line = one_line_error(xpnet_cli("predict", model, wide))
    assert "lacks the column(s) 'a', 'b'" in line and "'c11', ... (20 in all)" in line


def test_a_long_list_of_lacking_columns_is_shortened_too(tmp_path):
    """predict (and --test-data) listed every lacking column, 64 for the
    digits, while the columns present were cut to 12: both are cut alike."""
    names = [f"f{i}" for i in range(20)]
    data = table(tmp_path / "t.csv", [*names, "y"], [[*range(20), i % 2] for i in range(8)])
    model, other = tmp_path / "m.st", table(tmp_path / "o.csv", ["a", "y"], [[1, 0], [2, 1]])
    ok(xpnet_cli("train", "--data", data, "--save", model, "--test-size", "0", *FAST))
    for args in (["predict", model, other], ["train", "--data", data, "--test-data", other, *FAST]):
        line = one_line_error(xpnet_cli(*args))
        assert "lacks the column(s) 'f0', 'f1'," in line and "'f11', ... (20 in all)" in line and "'f12'" not in line


def test_fifth_review_targets_written_with_signs_and_test_rows_all_dropped(tmp_path):
    """After the label-spelling rule: a regression target written +12 was
    read as 104 text classes, and a -0 among 0/1 labels made a third class;
    --test-data whose rows --missing drop all leaves was refused as if it
    were the training data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2)).round(4)
    signed = [f"{v:+d}" for v in (X[:, 0] * 40 + X[:, 1] * 10).astype(int) + 200]
    data = table(tmp_path / "signed.csv", ["a", "b", "y"], [[*x, v] for x, v in zip(X, signed)])
    assert "task: regression" in ok(xpnet_cli("train", "--data", data, *FAST)).stdout
    zero = table(tmp_path / "zero.csv", ["a", "b", "y"],
                 [[*x, "-0" if i == 0 else str(int(x[0] > 0))] for i, x in enumerate(X)])  # fmt: skip
    assert "integer target with 2 values" in ok(xpnet_cli("train", "--data", zero, *FAST)).stdout
    codes = table(tmp_path / "codes.csv", ["a", "b", "y"],
                  [[*x, ["01", "1", "02", "2"][i % 4]] for i, x in enumerate(X)])  # fmt: skip
    assert "text labels with 4 values" in ok(xpnet_cli("train", "--data", codes, "--task", "classification",
                                                      *FAST)).stdout  # asked for: 01 and 1 are two classes
    test = table(tmp_path / "test.csv", ["a", "b", "y"], [[1.0, "", 1], [2.0, "", 0]])
    result = ok(xpnet_cli("train", "--data", zero, "--test-data", test, "--missing", "drop", *FAST))
    assert "no test rows" in result.stdout


def test_fifth_review_of_the_table_rules(tmp_path):
    """A review with messy tables found numbers that silently became
    categories (points under --decimal ,; digits grouped by spaces or
    apostrophes, as a feature and as a 40-class target), a header-less
    file of numbers and words that lost its first row to the header, a
    hint naming --ignore to predict (which has none), a separator that is
    the decimal mark read as data, and an early-stopping share that left
    no validation row, announced and then failed in the Python API's words."""
    rows = "".join(f"{(i * 0.37) % 2 - 1:.2f};{(i * 0.73) % 2 - 1:.2f};{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "points.csv").write_text("a;b;y\n" + rows)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "points.csv", "--decimal", ",", *FAST))
    assert "column 'a' holds numbers with a decimal point ('-1.00')" in line and "leave out --decimal ," in line
    groups = "".join(f"{i % 7},5;{1 + i % 9} {100 + i:03d},50;{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "groups.csv").write_text("a;price;y\n" + groups)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "groups.csv", "--decimal", ",", *FAST))
    assert "column 'price' holds numbers with digit groups ('1 100,50')" in line and "('1100,50')" in line
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "groups.csv", "--decimal", ",", "--target",
                                    "price", "--test-size", "0", *FAST))  # fmt: skip
    assert "digit groups" in line and "--task classification" in line
    swiss = "".join(f"{i % 7}.5,{1 + i % 9}'{100 + i:03d}.50,{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "swiss.csv").write_text("a,price,y\n" + swiss)
    assert "digit groups (\"1'100.50\")" in one_line_error(xpnet_cli("train", "--data", tmp_path / "swiss.csv", *FAST))
    adult = "".join(f"{(i * 37) % 90},{(i * 11) % 50},{['no', 'yes'][i % 2]}\n" for i in range(40))
    (tmp_path / "adult.data").write_text(adult)
    assert "has no header line" in one_line_error(xpnet_cli("train", "--data", tmp_path / "adult.data", *FAST))
    (tmp_path / "years.csv").write_text("2019,2020,label\n" + adult)
    ok(xpnet_cli("train", "--data", tmp_path / "years.csv", *FAST))  # a header's names are not its values

    model = tmp_path / "m.st"
    (tmp_path / "ab.csv").write_text("a,b,y\n" + adult)
    ok(xpnet_cli("train", "--data", tmp_path / "ab.csv", "--save", model, *FAST))
    (tmp_path / "twice.csv").write_text("a,b,a\n1,2,3\n")
    line = one_line_error(xpnet_cli("predict", model, tmp_path / "twice.csv"))
    assert "duplicate column names" in line and "--ignore" not in line and "rename them" in line
    result = xpnet_cli("predict", model, tmp_path / "ab.csv", "--sep", ",", "--decimal", ",")
    assert result.returncode == 2 and "--sep and --decimal are both ','" in result.stderr
    result = xpnet_cli("train", "--data", tmp_path / "years.csv", "--sep", ".")
    assert result.returncode == 2 and "--sep '.' is the decimal mark" in result.stderr

    singles = table(tmp_path / "singles.csv", ["a", "name"], [[f"{i * 0.1:.2f}", f"c{i}"] for i in range(30)])
    result = ok(xpnet_cli("train", "--data", singles, "--test-size", "0", *FAST))
    assert "early stopping: off (--validation-split 0.1 of each class's training rows leaves no validation row" \
        in result.stdout  # fmt: skip


def test_a_header_cell_wrapped_over_lines_names_one_column(tmp_path):
    """Excel writes a wrapped header cell as a quoted name with a line break;
    the header was read from the first line alone ('line 3: 3 fields, but the
    header has 2 columns'). The name is read whole, its break one space."""
    wrapped = tmp_path / "w.csv"
    wrapped.write_text('a,"Price\n(USD)",y\n' + "".join(f"0.{i},1.{i},{i % 2}\n" for i in range(1, 41)))
    model = tmp_path / "w.st"
    result = ok(xpnet_cli("train", "--data", wrapped, "--save", model, *FAST))
    assert "2 features" in result.stdout and "target 'y'" in result.stdout
    result = ok(xpnet_cli("train", "--data", wrapped, "--target", "Price (USD)", *FAST))
    assert "target 'Price (USD)' (regression" in result.stdout
    (tmp_path / "p.csv").write_text('"Price\n(USD)",a\n1.5,0.2\n')  # another order, wrapped too
    assert len(ok(xpnet_cli("predict", model, tmp_path / "p.csv")).stdout.split()) == 2


def test_labels_01_and_1_are_two_classes_under_task_auto_too(tmp_path):
    """Under --task auto, 01 and 1 were read as the integer 1 and merged
    into one class (a file of only 01 and 1 was "constant"), while --task
    classification kept them apart: both modes keep distinct text distinct."""
    X, _ = blobs(60)
    labels = np.array(["01", "1", "10"])[(X[:, 0] > 0.5).astype(int) + (X[:, 0] < -0.5) * 2]
    data, model = table(tmp_path / "lab.csv", ["a", "b", "y"], [[*x, v] for x, v in zip(X, labels)]), tmp_path / "m"
    for task in ("auto", "classification"):
        out = ok(xpnet_cli("train", "--data", data, "--task", task, "--save", model, *FAST)).stdout
        assert "(3 classes)" in out
        assert {r[0] for r in read_csv(ok(xpnet_cli("predict", model, data)).stdout)[1]} <= {"01", "1", "10"}
    two = table(tmp_path / "two.csv", ["a", "b", "y"], [[*x, "01" if x[0] > 0 else "1"] for x in X])
    assert "task: classification (text labels with 2 values)" in ok(xpnet_cli("train", "--data", two, *FAST)).stdout


def test_categorical_and_ignore_clash_only_on_one_column_not_on_part_of_a_name(tmp_path):
    """'Name, full' categorical beside 'Name' ignored are two columns; the
    clash was checked on the values split at their commas."""
    X, y = blobs(60)
    rows = [[x[0], f'"{["p", "q"][i % 2]}"', x[1], v] for i, (x, v) in enumerate(zip(X, y))]
    data = tmp_path / "t.csv"
    data.write_text('Name,"Name, full",a,y\n' + "".join(",".join(map(str, r)) + "\n" for r in rows))
    out = ok(xpnet_cli("train", "--data", data, "--categorical", "Name, full", "--ignore", "Name", *FAST)).stdout
    assert "2 features (1 numeric, 1 categorical" in out
    result = xpnet_cli("train", "--data", data, "--categorical", "a", "--ignore", "a", *FAST)
    assert result.returncode == 2 and "--categorical and --ignore both name 'a'" in one_line_error(result)


def test_a_column_name_with_a_comma_can_be_named_in_each_column_option(tmp_path):
    """--ignore/--categorical/--target split their value at commas before
    the header was read, so 'Name, full' (pandas writes it quoted) could not
    be named, though xpnet's own hint said --ignore 'Name, full'."""
    X, y = blobs(60)
    rows = [[*x, f'"person {i}"', f'"{["02134", "10001"][i % 2]}"', v] for i, (x, v) in enumerate(zip(X, y))]
    data = table(tmp_path / "people.csv", ["a", "b", '"Name, full"', '"Zip,code"', '"Label, final"'], rows)
    hint = one_line_error(xpnet_cli("train", "--data", data, "--max-categories", "10", *FAST))
    assert "(--ignore 'Name, full' leaves it out" in hint
    out = ok(xpnet_cli("train", "--data", data, "--ignore", "Name, full", "--categorical", "Zip,code",
                       "--target", "Label, final", *FAST)).stdout  # fmt: skip
    assert "3 features (2 numeric, 1 categorical" in out and "target 'Label, final'" in out
    assert "2 features, target 'Label, final'" in ok(xpnet_cli("train", "--data", data, "--ignore", "2, 3",
                                                                *FAST)).stdout  # a list of positions still splits


def test_predict_sep_auto_detects_instead_of_the_trained_sep(tmp_path):
    """predict --sep auto read the file with the --sep given in training,
    as if the option were left out; auto now detects, as its help says."""
    X, y = blobs(40)
    model = tmp_path / "m.st"
    semi = table(tmp_path / "t.csv", ["a", "b", "y"], [[*x, v] for x, v in zip(X, y)], sep=";")
    ok(xpnet_cli("train", "--data", semi, "--sep", "semicolon", "--save", model, *FAST))
    comma = table(tmp_path / "new.csv", ["a", "b"], X[:3])
    assert "pass --sep comma" in one_line_error(xpnet_cli("predict", model, comma))  # the trained ';' by default
    header, rows = read_csv(ok(xpnet_cli("predict", model, comma, "--sep", "auto")).stdout)
    assert header == ["y"] and len(rows) == 3


def test_a_missing_value_token_that_starts_with_a_dash_has_a_hint_that_works(tmp_path):
    """The hint said --na-values '--', which argparse refuses (it reads '--'
    as an option), and --na-values=-- was accepted and silently dropped
    (Python 3.11's argparse strips a '--' value)."""
    X, y = blobs(40)
    data = table(tmp_path / "d.csv", ["a", "b", "y"], [["--" if i == 3 else x[0], x[1], v]
                                                        for i, (x, v) in enumerate(zip(X, y))])  # fmt: skip
    line = one_line_error(xpnet_cli("train", "--data", data, "--missing", "drop", *FAST))
    assert "pass --na-values='--';" in line
    out = ok(xpnet_cli("train", "--data", data, "--missing", "drop", "--na-values=--", *FAST)).stdout
    assert "dropped 1 row(s) with a missing value" in out
    assert "--na-values=-x" in one_line_error(xpnet_cli("train", "--data", data, "--na-values", "--", *FAST))


def test_pandas_default_header_of_integers_is_a_header_above_decimals_or_text(tmp_path):
    """DataFrame.to_csv(index=False) of unnamed columns writes the header
    0,1,2,3, which was refused as "no header line" even above a column of
    words; above rows of integers it may be a row, and is still refused."""
    X, y = blobs(40)
    numbers = table(tmp_path / "n.csv", ["0", "1", "2"], [[*x, x[0] - x[1]] for x in X])
    assert "target '2' (regression" in ok(xpnet_cli("train", "--data", numbers, *FAST)).stdout
    words = table(tmp_path / "w.csv", ["0", "1", "2"], [[*x, "yes" if v else "no"] for x, v in zip(X, y)])
    model = tmp_path / "m.st"
    assert "target '2' (2 classes)" in ok(xpnet_cli("train", "--data", words, "--save", model, *FAST)).stdout
    assert read_csv(ok(xpnet_cli("predict", model, words)).stdout)[0] == ["2"]
    ints = table(tmp_path / "i.csv", ["0", "1", "2"], [[i, i + 1, i % 2] for i in range(3, 40)])
    assert "has no header line" in one_line_error(xpnet_cli("train", "--data", ints, *FAST))


def test_a_repeated_target_name_is_picked_by_position(tmp_path):
    """Header a,b,y,y: the message said --target picks which column, but
    every --target was refused as a duplicate name; a position with the
    other copy left out now works, and the messages say so."""
    X, y = blobs(40)
    data = table(tmp_path / "d.csv", ["a", "b", "y", "y"], [[*x, v, int(x[1] > 0)] for x, v in zip(X, y)])
    assert "(--target picks one by position, --ignore leaves out the others: --target 3 --ignore 2)" in (
        one_line_error(xpnet_cli("train", "--data", data, *FAST)))  # fmt: skip
    assert "leave out all but one: --ignore 2" in one_line_error(xpnet_cli("train", "--data", data, "--target", "3",
                                                                           *FAST))  # fmt: skip
    model = tmp_path / "m.st"
    for picked, left_out, labels in (("2", "3", y), ("3", "2", (X[:, 1] > 0).astype(int))):
        out = ok(xpnet_cli("train", "--data", data, "--target", picked, "--ignore", left_out, "--save", model,
                           "--epochs", "200", "--quiet")).stdout  # fmt: skip
        assert "2 features, target 'y' (2 classes)" in out
        header, rows = read_csv(ok(xpnet_cli("predict", model, data)).stdout)
        assert header == ["y"] and np.mean(np.array([int(r[0]) for r in rows]) == labels) > 0.8


def test_a_repeated_feature_name_keeps_one_column_as_the_hint_says(tmp_path):
    """Header b,a,a,y: the hint said 'leave out all but one: --ignore 1', but
    a position resolved to the name 'a', and every 'a' was left out; a
    position now leaves out that column, a name (--ignore a) all of them."""
    rows = [[i, i % 3, (i * 7) % 5, i % 2] for i in range(40)]
    data = table(tmp_path / "d.csv", ["b", "a", "a", "y"], rows)
    line = one_line_error(xpnet_cli("train", "--data", data, *FAST))
    assert "leave out all but one: --ignore 1" in line
    model = tmp_path / "m.st"
    result = ok(xpnet_cli("train", "--data", data, "--ignore", "1", "--save", model, *FAST))
    assert "2 features" in result.stdout
    assert [c["name"] for c in xpnet.load(model, backend="numpy").info["columns"]] == ["b", "a"]
    assert "1 features" in ok(xpnet_cli("train", "--data", data, "--ignore", "a", *FAST)).stdout
    predicted = read_csv(ok(xpnet_cli("predict", model, table(tmp_path / "p.csv", ["a", "b"], [[3, 1]]))).stdout)
    assert predicted[0] == ["y"] and len(predicted[1]) == 1


def test_class_labels_are_written_back_as_spelled_in_the_file(tmp_path):
    """Labels TRUE/FALSE came back as True/False, and 0 among 1 and 1.0
    came back as 0.0: a class written one way in the file is written back
    that way (a class written two ways keeps its value's spelling)."""
    X, y = blobs(60)
    model = tmp_path / "m.st"
    for name, spell, expected in (("tf", lambda i, v: ["FALSE", "TRUE"][v], {"FALSE", "TRUE"}),
                                  ("mixed", lambda i, v: ["0", "1" if i % 2 else "1.0"][v], {"0", "1.0"})):
        rows = [[*x, spell(i, v)] for i, (x, v) in enumerate(zip(X, y))]
        data = table(tmp_path / f"{name}.csv", ["a", "b", "t"], rows)
        ok(xpnet_cli("train", "--data", data, "--save", model, "--epochs", "100", "--quiet"))
        assert {r[0] for r in read_csv(ok(xpnet_cli("predict", model, data)).stdout)[1]} == expected


def test_predict_reading_option_hints_lead_to_commands_that_work(tmp_path):
    """predict's --na-values replaced the model's tokens (its help says it
    adds to them), so following the hint for '-' made the trained '?' fail;
    a model trained with --decimal , on a file with decimal points got a
    hint about writing decimal commas, not predict --decimal ."""
    X, y = blobs(40)
    rows = [["?" if i % 10 == 0 else x[0], x[1], v] for i, (x, v) in enumerate(zip(X, y))]
    model = tmp_path / "q.st"
    ok(xpnet_cli("train", "--data", table(tmp_path / "q.csv", ["a", "b", "y"], rows), "--na-values", "?",
                 "--missing", "mean", "--save", model, *FAST))  # fmt: skip
    new = table(tmp_path / "new.csv", ["a", "b"], [["?", 0.5], ["-", 0.5], [0.1, 0.2]])
    assert "pass --na-values '-'" in one_line_error(xpnet_cli("predict", model, new))
    assert len(read_csv(ok(xpnet_cli("predict", model, new, "--na-values", "-")).stdout)[1]) == 3
    eu = table(tmp_path / "eu.csv", ["a", "b", "y"], [[f"{a:.3f}".replace(".", ","), f"{b:.3f}".replace(".", ","), v]
                                                      for (a, b), v in zip(X, y)], sep=";")  # fmt: skip
    ok(xpnet_cli("train", "--data", eu, "--decimal", ",", "--save", model, *FAST))
    points = table(tmp_path / "points.csv", ["a", "b"], [[0.5, 0.25]])
    assert "pass predict --decimal ." in one_line_error(xpnet_cli("predict", model, points))
    ok(xpnet_cli("predict", model, points, "--decimal", "."))


def test_names_and_categories_match_across_unicode_normalisation(tmp_path):
    """A header name or a category written decomposed (NFD, as macOS may
    save 'ü' as 'u' and a combining mark) did not match the same text
    composed (NFC): predict said the file lacked 'größe' while listing it."""
    import unicodedata

    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731
    X, y = blobs(40)
    cities = ["São Paulo", "Zürich"]
    rows = [[x[0], cities[i % 2], v] for i, (x, v) in enumerate(zip(X, y))]
    model = tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", table(tmp_path / "t.csv", ["größe", "city", "y"], rows), "--save", model, *FAST))
    new = table(tmp_path / "new.csv", [nfd("größe"), "city"], [[0.5, nfd("Zürich")], [0.1, nfd("São Paulo")]])
    assert len(read_csv(ok(xpnet_cli("predict", model, new)).stdout)[1]) == 2
    decomposed = table(tmp_path / "d.csv", [nfd("größe"), "city", "y"], rows)
    out = ok(xpnet_cli("train", "--data", decomposed, "--ignore", "größe", *FAST)).stdout  # typed composed
    assert "1 features (0 numeric, 1 categorical" in out


def test_decomposed_class_labels_are_written_back_as_the_file_spells_them(tmp_path):
    """Names and categories are matched composed (NFC); the labels predict
    writes are the file's own spelling, not a composed one it never held."""
    import unicodedata

    label = unicodedata.normalize("NFD", "Ü")
    X, y = blobs(40)
    rows = [[x[0], x[1], label if v else "b"] for x, v in zip(X, y)]
    data, model = table(tmp_path / "t.csv", ["a", "b", "y"], rows), tmp_path / "m.st"
    ok(xpnet_cli("train", "--data", data, "--save", model, *FAST))
    predicted = {r[-1] for r in read_csv(ok(xpnet_cli("predict", model, data)).stdout)[1]}
    assert predicted <= {label, "b"} and label in predicted


def test_class_labels_match_across_unicode_normalisation(tmp_path):
    """Class labels were compared as written: 'thé' typed on macOS (NFD) was
    a third class beside 'thé' (NFC), and a --test-data file saved so was
    refused: "holds the class 'thé', which the training data does not have
    (the training classes are 'café', 'thé')"."""
    import unicodedata

    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731
    X, y = blobs(60, seed=7)
    rows = [[f"{a:.4f}", f"{b:.4f}", "thé" if v else "café"] for (a, b), v in zip(X, y)]
    mixed = [[a, b, nfd(v) if i % 3 == 0 else v] for i, (a, b, v) in enumerate(rows)]
    out = ok(xpnet_cli("train", "--data", table(tmp_path / "mixed.csv", ["a", "b", "y"], mixed), *FAST)).stdout
    assert "target 'y' (2 classes)" in out
    train = table(tmp_path / "t.csv", ["a", "b", "y"], rows[:40])
    test = table(tmp_path / "test.csv", ["a", "b", "y"], [[a, b, nfd(v)] for a, b, v in rows[40:]])
    assert "20 test rows" in ok(xpnet_cli("train", "--data", train, "--test-data", test, *FAST)).stdout


def test_an_excel_workbook_is_named_with_a_way_to_save_it_as_csv(tmp_path):
    """An .xlsx (a zip of XML parts) was refused with "unzip it and pass
    the CSV file", which finds no CSV file inside."""
    import zipfile

    book = tmp_path / "sales.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        for name in ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"):
            z.writestr(name, "<x/>")
    line = one_line_error(xpnet_cli("train", "--data", book, *FAST))
    assert "looks like an Excel workbook" in line and "save it as CSV" in line and "pandas.read_excel" in line
    assert "unzip" not in line


def test_test_data_rows_lost_to_missing_values_or_unseen_categories_are_warned_about(tmp_path):
    """train --test-data silently left out rows under --missing drop and
    encoded unseen categories as zeros under --unknown ignore, where
    predict warns about both: the test score was on rows nobody was told of."""
    X, y = blobs(60)
    colors = ["red", "green"]
    rows = [[x[0], colors[v], v] for x, v in zip(X, y)]
    data = table(tmp_path / "t.csv", ["x", "color", "y"], rows[:40])
    test = [list(r) for r in rows[40:]]
    for r in test[:3]:
        r[1] = "purple"
    for r in test[5:7]:
        r[0] = ""
    test = table(tmp_path / "test.csv", ["x", "color", "y"], test)
    result = ok(xpnet_cli("train", "--data", data, "--test-data", test, "--unknown", "ignore", "--missing", "drop",
                          *FAST))  # fmt: skip
    assert "--test-data: 2 row(s) with a missing value left out of the test rows (--missing drop)" in result.stderr
    assert "--test-data: 3 of 18 rows hold a category the model was not trained on" in result.stderr
    no_warnings(ok(xpnet_cli("train", "--data", data, "--test-data", data, "--unknown", "ignore", *FAST)))


def test_comma_grouped_numbers_outside_comma_files_are_refused_not_categories(tmp_path):
    """A tab- or semicolon-separated export of US-formatted numbers
    (``1,062.87``, ``1,188,519``: commas that can only group thousands) was
    read silently as text: a feature became one category per row, a target
    a classifier of one class per row refused with a hint (--test-size 0)
    that would have trained it."""
    rows = "".join(f"{1000 + i * 7:,}.5{i % 10}\t{1_000_000 + i * 1234:,}\t{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "us.tsv").write_text("price\tpop\ty\n" + rows)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "us.tsv", "--ignore", "pop", *FAST))
    assert "column 'price' holds numbers with digit groups ('1,000.50')" in line and "('1000.50')" in line
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "us.tsv", "--ignore", "price", *FAST))
    assert "column 'pop' holds numbers with digit groups ('1,000,000')" in line and "--categorical pop" in line
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "us.tsv", "--target", "price", "--ignore", "pop",
                                    *FAST))  # fmt: skip
    assert "digit groups ('1,000.50')" in line and "--task classification" in line
    (tmp_path / "codes.tsv").write_text("code\ty\n" + "".join(f"1,{i % 4}\t{'pq'[i % 2]}\n" for i in range(40)))
    assert "--decimal ," in one_line_error(xpnet_cli("train", "--data", tmp_path / "codes.tsv", *FAST))


def test_a_few_grouped_numbers_among_plain_ones_are_not_offered_as_missing_value_tokens(tmp_path):
    """Excel groups only the amounts from a thousand up: such a column read
    as numbers with a few stray words, and the hint said "if '1,100.25'
    marks a missing value, pass --na-values '1,100.25'" (the same hint for a
    regression target), which would have dropped every large amount."""
    few = "".join(f"{'1,' if i % 4 == 0 else ''}{i + 100}.25\t{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "few.tsv").write_text("amount\ty\n" + few)  # a quarter of the amounts reach a thousand: 1,100.25
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "few.tsv", *FAST))
    assert "line 2: column 'amount' holds '1,100.25', not a number" in line and "--na-values" not in line, line
    assert "digit groups: write the numbers without the group marks ('1100.25')" in line


@pytest.mark.parametrize("dates", [
    [f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(40)],             # ISO
    [f"2020-01-{1 + i % 28:02d}T{i % 24:02d}:30:00" for i in range(40)],        # ISO with a time
    [f"{1 + i % 28:02d}/{1 + i % 12:02d}/2021" for i in range(40)],             # day/month/year
    [f"{1 + i % 28}.{1 + i % 12}.2021" for i in range(40)],                     # German
    [f"{1 + i % 28:02d}-{'JanFebMarAprMayJun'[i % 6 * 3:][:3]}-21" for i in range(40)],  # Excel's d-mmm-yy
    [f"{1 + i % 28} {['March', 'Sept.', 'May'][i % 3]} 2021" for i in range(40)],  # the month in words
])  # fmt: skip
def test_dates_as_features_are_refused_unless_categorical(tmp_path, dates):
    """A column of dates became categories in silence: one per date, so
    that no later date could be predicted (or, past 100, the hint raised
    --max-categories). It is refused, naming dates and what to do with them;
    --categorical takes them as categories on purpose."""
    rows = "".join(f"{(i * 0.37) % 2 - 1:.2f},{d},{i % 2}\n" for i, d in enumerate(dates))
    data = tmp_path / "dates.csv"
    data.write_text("a,when,y\n" + rows)
    result = xpnet_cli("train", "--data", data, *FAST)
    line = one_line_error(result)
    assert result.returncode == 1 and f"column 'when' holds dates ({dates[0]!r})" in line
    assert "--ignore when" in line and "--categorical when" in line and "days since" in line
    ok(xpnet_cli("train", "--data", data, "--categorical", "when", *FAST))
    line = one_line_error(xpnet_cli("train", "--data", data, "--target", "when", "--ignore", "y", *FAST))
    assert "holds dates" in line and "--task classification" in line


def test_version_numbers_and_times_are_no_dates(tmp_path):
    rows = "".join(f"{i % 5}.{i % 3}.{i % 7},{i % 24:02d}:{i % 60:02d},{i % 2}\n" for i in range(40))
    (tmp_path / "v.csv").write_text("version,time,y\n" + rows)
    ok(xpnet_cli("train", "--data", tmp_path / "v.csv", *FAST))
