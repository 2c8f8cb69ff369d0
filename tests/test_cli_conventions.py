"""Command-line conventions a shell user relies on: ``-`` names stdout,
options that cannot apply to a file are refused rather than ignored."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_cli import clean_env, ok, one_line_error, read_csv, write_csv, xpnet_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CSV, the same rows as an NPZ, and a model trained on the CSV."""
    folder = tmp_path_factory.mktemp("conventions")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    data = write_csv(folder / "d.csv", ["a", "b", "c", "y"], [*X.T, y])
    np.savez(folder / "d.npz", X=X, y=y)
    model = folder / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", "2", "--quiet", "--backend", "numpy", "--save", model))
    return folder, data, model


def test_predict_output_dash_writes_the_csv_to_stdout_and_no_file(trained):
    """``--output -`` is stdout, as for curl, sort -o, csvkit: it wrote a file named '-'."""
    folder, data, model = trained
    plain = ok(xpnet_cli("predict", model, data))
    result = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(model), str(data), "--output", "-"],
                            capture_output=True, text=True, timeout=120, env=clean_env(), cwd=folder)
    ok(result)
    assert not (folder / "-").exists()
    assert result.stdout == plain.stdout
    header, rows = read_csv(result.stdout)
    assert header == ["y"] and len(rows) == 60


@pytest.mark.parametrize("options, named", [
    (["--sep", "tab"], "--sep"),
    (["--decimal", ",", "--na-values", "?"], "--decimal, --na-values"),
    (["--encoding", "latin-1"], "--encoding"),
])
@pytest.mark.parametrize("command", ["train", "predict"])
def test_csv_reading_options_on_an_npz_are_refused_naming_them(trained, command, options, named):
    """An NPZ holds arrays, not text: --sep, --encoding, --decimal and
    --na-values did nothing to it, in silence (a user who passed them
    believed them applied). Exit 2, naming each option and the file."""
    folder, _, model = trained
    npz = folder / "d.npz"
    if command == "train":
        argv = ["train", "--data", npz, "--epochs", "1", "--quiet", "--backend", "numpy", *options]
    else:
        argv = ["predict", model, npz, *options]
    result = xpnet_cli(*argv)
    line = one_line_error(result)
    assert result.returncode == 2
    assert f"{named} read CSV files" in line and f"{npz} is an NPZ archive" in line and "leave" in line


def test_csv_reading_options_apply_to_a_csv_test_file_of_an_npz_run(trained, tmp_path):
    """They read --test-data too: with a CSV test file they are not idle,
    and are not refused for the NPZ --data (its error is about its columns)."""
    folder, _, _ = trained
    test = write_csv(tmp_path / "t.csv", ["x0", "x1", "x2", "y"], [[0.5, -1.0], [0.1, 0.2], [1.0, 2.0], [1, 0]])
    result = xpnet_cli("train", "--data", folder / "d.npz", "--test-data", test, "--sep", "comma", "--epochs", "1",
                       "--quiet", "--backend", "numpy")
    assert "read CSV files" not in result.stderr


@pytest.mark.parametrize("option", ["--save", "--checkpoint", "--plot"])
def test_train_outputs_refuse_dash_rather_than_write_a_file_named_dash(tmp_path, option):
    """'-' means stdout to a shell user (predict --output - writes there):
    a model, checkpoint or image is no text for stdout, and a file named
    '-' appeared in the folder. Exit 2 before training; ./- names that file."""
    result = subprocess.run([sys.executable, "-m", "xpnet", "train", "--epochs", "1", option, "-"],
                            capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2 and f"{option} -" in line and "./-" in line
    assert not (tmp_path / "-").exists()
