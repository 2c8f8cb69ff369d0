"""Command-line conventions a shell user relies on: ``-`` names stdout,
options that cannot apply to a file are refused rather than ignored."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_cli import clean_env, ok, read_csv, write_csv, xpnet_cli


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
