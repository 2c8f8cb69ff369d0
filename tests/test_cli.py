"""The ``xpnet`` command line, run as a user would: ``python -m xpnet ...``.

Every test starts a fresh interpreter, so what is checked is the real exit
status, stdout and stderr (no traceback, ever) of the installed entry point.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env

import xpnet
from xpnet._backend import KNOWN_BACKENDS, backend_status

REPO = Path(__file__).resolve().parent.parent
#: The command line under test is the xpnet this test imported, installed or not.
XPNET_HOME = str(Path(xpnet.__file__).resolve().parent.parent)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in child_env(XPNET_HOME).items() if k not in ("XPNET_BACKEND", "XPNET_DEBUG")}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # BLAS threads that spin-wait slow a busy small machine down ~5x
    env.update(extra)
    return env


def numpy_env() -> dict[str, str]:
    """For predictions compared exactly with NumPy's: a GPU (auto's choice
    there) rounds float32 matrix products differently."""
    return clean_env(XPNET_BACKEND="numpy")


def xpnet_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xpnet", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env or clean_env(),
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The run failed cleanly: non-zero status, one stderr line, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xpnet: error: "), lines[0]
    return lines[0]


def score(stdout: str, name: str) -> float:
    match = re.search(rf"{re.escape(name)}: (-?[0-9.]+)", stdout)
    assert match, stdout
    return float(match.group(1))


def write_csv(path: Path, header: list[str], columns: list) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns))
    return path


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def stored_prediction(model: Path, X: np.ndarray) -> np.ndarray:
    """What the saved network predicts for raw rows X, scaled as stored in it."""
    net = xpnet.load(model, backend="numpy")
    mean, std = np.asarray(net.info["x_mean"]), np.asarray(net.info["x_std"])
    return xpnet.to_numpy(net.predict((X - mean) / std)).astype(np.float64)


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def test_default_train_learns_the_digits():
    result = ok(xpnet_cli("train"))
    lines = result.stdout.splitlines()
    auto = "cupy" if backend_status("cupy").usable else "numpy"  # the documented auto choice on this machine
    assert re.match(rf"backend: {auto}, device: (cpu|cuda:\d+), dtype: float32$", lines[0]), lines[0]
    assert "1797 rows, 64 features" in result.stdout
    assert score(result.stdout, "test accuracy") >= 0.95
    assert re.search(r"time: [0-9.]+ s training", result.stdout)
    assert "\r" not in result.stderr  # no progress bar when stdout is not a terminal


@pytest.mark.parametrize(("optimizer", "activation", "lr"), [("rmsprop", "gelu", "0.001"), ("adamw", "silu", "0.003")])
def test_new_optimizers_and_activations_train_the_digits(optimizer, activation, lr):
    result = ok(xpnet_cli("train", "--optimizer", optimizer, "--activation", activation, "--lr", lr, "--epochs", "5"))
    assert f"{optimizer} lr {float(lr):g}" in result.stdout
    assert score(result.stdout, "test accuracy") >= 0.9


def test_backend_comes_from_the_environment_in_auto_mode():
    result = ok(xpnet_cli("train", "--epochs", "1", env=clean_env(XPNET_BACKEND="array_api_strict")))
    assert result.stdout.startswith("backend: array_api_strict, device: CPU_DEVICE")


def test_jax_named_by_the_environment_keeps_its_programs_too(tmp_path):
    """auto as XPNET_BACKEND=jax (with a device) is JAX as --backend jax is:
    its compiled programs were kept only for the option."""
    if not backend_status("jax").usable:
        pytest.skip(f"jax: {backend_status('jax').reason}")
    env = {k: v for k, v in clean_env().items() if k not in ("XPNET_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env |= {"XDG_CACHE_HOME": str(tmp_path), "XPNET_BACKEND": "jax:cpu"}
    result = ok(xpnet_cli("train", "--epochs", "2", env=env))
    assert result.stdout.startswith("backend: jax") and any((tmp_path / "xpnet" / "jax").iterdir())


@pytest.mark.parametrize(("given", "want"), [
    (None, "--xla_gpu_autotune_level=0"),
    ("--xla_cpu_enable_fast_math=false", "--xla_cpu_enable_fast_math=false --xla_gpu_autotune_level=0"),
    ("--xla_gpu_autotune_level=4", "--xla_gpu_autotune_level=4"),  # the user's own level wins
])
def test_the_cli_on_jax_compiles_without_gpu_autotuning(given, want):
    """XLA's GPU autotuning doubled the digits run's first training on an
    H200 (6.9 s against 3.5 s). The CLI turns it off in its own process,
    before JAX starts, unless XLA_FLAGS names a level."""
    if not backend_status("jax").usable:
        pytest.skip(f"jax: {backend_status('jax').reason}")
    code = ("import os\nfrom xpnet._commands import quick_jax_compiles\nquick_jax_compiles()\n"
            "import jax\njax.numpy.ones(2).sum()\nprint(os.environ['XLA_FLAGS'])")  # fmt: skip
    env = {k: v for k, v in clean_env().items() if k != "XLA_FLAGS"} | ({"XLA_FLAGS": given} if given else {})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == want


def test_the_cli_on_jax_keeps_its_compiled_programs_unless_told_otherwise(tmp_path):
    if not backend_status("jax").usable:
        pytest.skip(f"jax: {backend_status('jax').reason}")
    ours, theirs = tmp_path / "cache" / "xpnet" / "jax", tmp_path / "theirs"

    def train(**env: str) -> None:
        base = {k: v for k, v in clean_env().items() if k not in ("XPNET_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR")}
        ok(xpnet_cli("train", "--backend", "jax", "--epochs", "2", "--quiet",
                     env=base | {"XDG_CACHE_HOME": str(tmp_path / "cache")} | env))  # fmt: skip

    train(XPNET_JAX_CACHE="0")
    assert not ours.exists()
    train()
    kept = sorted(p.name for p in ours.iterdir())
    assert kept  # the run's programs, for the next one
    train(JAX_COMPILATION_CACHE_DIR=str(theirs), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
          JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")  # the user's own settings win  # fmt: skip
    assert any(theirs.iterdir()) and sorted(p.name for p in ours.iterdir()) == kept
    (tmp_path / "a file").write_text("")
    result = ok(xpnet_cli("train", "--backend", "jax", "--epochs", "1", "--quiet",
                          env=clean_env(XPNET_JAX_CACHE="1", XDG_CACHE_HOME=str(tmp_path / "a file"))))  # fmt: skip
    assert "warning" not in result.stderr  # no folder to keep them in: compiled every run, quietly


def test_the_cli_trains_and_predicts_float64_on_jax_and_reads_a_model_of_any_name(tmp_path):
    """The library refuses float64 while JAX's 64-bit mode is off; the CLI,
    which owns its process, switches it on (it failed after reading the
    data). A model saved as ``m.npz`` is still a model file (predict took
    the name for a data archive's)."""
    if not backend_status("jax").usable:
        pytest.skip(f"jax: {backend_status('jax').reason}")
    env = {k: v for k, v in clean_env().items() if k not in ("JAX_ENABLE_X64", "XPNET_JAX_CACHE")}
    env["XPNET_JAX_CACHE"] = "0"
    model = tmp_path / "m.npz"
    trained = ok(xpnet_cli("train", "--backend", "jax", "--dtype", "float64", "--epochs", "2", "--quiet",
                           "--save", model, env=env))  # fmt: skip
    assert "dtype: float64" in trained.stdout
    rows = tmp_path / "rows.csv"
    write_csv(rows, [f"pixel_{i // 8}_{i % 8}" for i in range(64)], list(np.eye(64)[:5].T * 16))
    on_jax = ok(xpnet_cli("predict", "--backend", "jax", model, rows, env=env)).stdout
    on_numpy = ok(xpnet_cli("predict", model, rows, env=env)).stdout
    assert on_jax == on_numpy and len(on_jax.splitlines()) == 6


def test_predict_takes_a_device_it_cannot_use_as_a_bad_option_value(tmp_path):
    """As train does: exit 2, the device named, before the model is read
    (predict exited 1 after reading it)."""
    model = tmp_path / "m.safetensors"
    xpnet.MLP([2, 3], backend="numpy", seed=0).save(model)
    rows = write_csv(tmp_path / "rows.csv", ["a", "b"], [[1.0], [2.0]])
    cases = ((["--backend", "numpy", "--device", "cuda"], {}), (["--backend", "auto"], {"XPNET_BACKEND": "numpy:cuda"}))
    for args, env in cases:
        result = xpnet_cli("predict", *args, model, rows, env=clean_env(**env))
        line = one_line_error(result)
        assert result.returncode == 2 and "the numpy backend has only the device 'cpu', got 'cuda'" in line, line
        assert result.stdout == ""


def test_a_network_too_large_for_memory_is_not_called_a_bug(tmp_path):
    """A MemoryError (here --hidden 10**15: petabytes, beyond any address space) ended in "this looks like a bug
    in xpnet"; it is the run's size, which the options change."""
    data = write_csv(tmp_path / "d.csv", ["a", "y"], [[0.0, 1.0, 2.0, 3.0] * 5, [0, 1] * 10])
    result = xpnet_cli("train", "--data", data, "--hidden", str(10**15), "--epochs", "1")
    line = one_line_error(result)
    assert result.returncode == 1 and "MemoryError" in line and "bug" not in line, line
    assert "not enough memory: try a smaller --hidden" in line


def test_csv_train_save_predict_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    labels = np.where(X[:, 0] - X[:, 2] > 0, 7, 3)  # classes need not start at 0
    data = write_csv(tmp_path / "train.csv", ["a", "b", "c", "kind"], [*X.T, labels])
    model = tmp_path / "model.safetensors"
    result = ok(xpnet_cli("train", "--data", data, "--epochs", 40, "--lr", 0.01, "--save", model))
    assert "2 classes" in result.stdout and model.exists()

    # Prediction data: other column order, the target and an extra text column.
    Xp = X[:40]
    pred = write_csv(tmp_path / "new.csv", ["c", "note", "a", "kind", "b"],
                     [Xp[:, 2], ["x"] * 40, Xp[:, 0], labels[:40], Xp[:, 1]])
    header, rows = read_csv(ok(xpnet_cli("predict", model, pred, env=numpy_env())).stdout)
    assert header == ["kind"]
    got = np.array([int(r[0]) for r in rows])

    net = xpnet.load(model, backend="numpy")
    assert net.info["features"] == ["a", "b", "c"] and net.info["classes"] == [3, 7]
    expected = np.array([3, 7])[stored_prediction(model, Xp).argmax(axis=1)]
    np.testing.assert_array_equal(got, expected)
    assert np.mean(got == labels[:40]) >= 0.9  # and it learned the rule

    out = tmp_path / "pred.csv"
    assert ok(xpnet_cli("predict", model, pred, "--output", out, env=numpy_env())).stdout == ""
    assert out.read_text() == "kind\n" + "".join(f"{v}\n" for v in got)


def test_text_labels_are_classes(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2))
    names = np.where(X[:, 0] > 0, "right", "left")
    data = write_csv(tmp_path / "t.csv", ["x", "y", "side"], [*X.T, names])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 30, "--lr", 0.01, "--save", model))
    _, rows = read_csv(ok(xpnet_cli("predict", model, data)).stdout)
    got = np.array([r[0] for r in rows])
    assert set(got) <= {"left", "right"} and np.mean(got == names) >= 0.9


def test_predictions_piped_from_a_non_utf8_locale_are_written_in_utf8(tmp_path):
    """`xpnet predict m d.csv > out.csv` under a locale that is not UTF-8
    (Windows' code page, LANG=C) wrote the header and some rows, then ended
    with "'ascii' codec can't encode character": stdout that is not a
    terminal is a CSV file, written in UTF-8 as --output writes it."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 2))
    names = np.where(X[:, 0] > 0, "São Paulo", "北京")
    data = write_csv(tmp_path / "t.csv", ["x", "y", "city"], [*X.T, names])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 3, "--quiet", "--save", model))
    env = clean_env(LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    env.pop("PYTHONIOENCODING", None)
    result = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(model), str(data)], capture_output=True,
                            timeout=120, env=env)  # fmt: skip
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    header, rows = read_csv(result.stdout.decode("utf-8"))
    assert header == ["city"] and len(rows) == 60 and {r[0] for r in rows} <= {"São Paulo", "北京"}


def test_npz_input_for_train_and_predict(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 4))
    y = (X[:, 1] > 0).astype(np.int32)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    model = tmp_path / "m.safetensors"
    result = ok(xpnet_cli("train", "--data", data, "--epochs", 20, "--lr", 0.01, "--save", model))
    assert "120 rows, 4 features" in result.stdout and "2 classes" in result.stdout
    header, rows = read_csv(ok(xpnet_cli("predict", model, data, env=numpy_env())).stdout)
    got = np.array([int(r[0]) for r in rows])
    assert header == ["y"] and len(got) == 120
    np.testing.assert_array_equal(got, stored_prediction(model, X).argmax(axis=1))


def test_a_model_trained_with_ignore_predicts_on_its_npz_file(tmp_path):
    """A model trained on an NPZ with --ignore x0 took X by position, so its
    own training file was refused ("X has 4 columns, but the model takes 3")."""
    rng = np.random.default_rng(15)
    X = rng.normal(size=(100, 4))
    data, model = tmp_path / "d.npz", tmp_path / "m.safetensors"
    np.savez(data, X=X, y=np.where(X[:, 1] > 0, "cat", "dog"))
    ok(xpnet_cli("train", "--data", data, "--ignore", "x0", "--epochs", 5, "--quiet", "--save", model))
    _, rows = read_csv(ok(xpnet_cli("predict", model, data)).stdout)
    kept = tmp_path / "kept.npz"
    np.savez(kept, X=X[:, 1:])  # X of the model's own columns: by position, as before
    assert rows == read_csv(ok(xpnet_cli("predict", model, kept)).stdout)[1] and len(rows) == 100
    np.savez(kept, X=X[:, :2])
    assert "X of the training file's columns" in one_line_error(xpnet_cli("predict", model, kept))
    np.savez(kept, X=np.hstack([X, np.arange(100.0)[:, None]]))  # wider than the training file: not by name
    assert "X has 5 columns, but the model takes 3" in one_line_error(xpnet_cli("predict", model, kept))


def test_an_npz_wider_than_the_training_file_is_refused_not_read_by_its_first_columns(tmp_path):
    """A model of x0..x3 took X with an ID column put first by name: the
    ID and three features, silently."""
    rng = np.random.default_rng(16)
    X = rng.normal(size=(100, 4))
    data, model, wide = tmp_path / "d.npz", tmp_path / "m.safetensors", tmp_path / "wide.npz"
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(int))
    ok(xpnet_cli("train", "--data", data, "--epochs", 5, "--quiet", "--test-size", 0, "--save", model))
    np.savez(wide, X=np.hstack([np.arange(100.0)[:, None], X]))
    assert "X has 5 columns, but the model takes 4" in one_line_error(xpnet_cli("predict", model, wide))


def test_float_target_trains_a_regressor(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    price = 50.0 + 8.0 * X[:, 0] - 3.0 * X[:, 1]  # far from zero mean and unit scale
    data = write_csv(tmp_path / "r.csv", ["u", "price", "v"], [X[:, 0], price, X[:, 1]])
    model = tmp_path / "r.safetensors"
    result = ok(xpnet_cli("train", "--data", data, "--target", "price", "--epochs", 60, "--lr", 0.01,
                          "--save", model))
    assert "regression" in result.stdout and "mse loss" in result.stdout
    assert score(result.stdout, "R^2") > 0.9

    header, rows = read_csv(ok(xpnet_cli("predict", model, data, env=numpy_env())).stdout)
    got = np.array([float(r[0]) for r in rows])
    net = xpnet.load(model, backend="numpy")
    expected = stored_prediction(model, X)[:, 0] * net.info["y_std"][0] + net.info["y_mean"][0]
    assert header == ["price"]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.sqrt(np.mean((got - price) ** 2)) < 2.0  # in the target's own units


def test_plot_writes_a_png(tmp_path):
    png = tmp_path / "loss.png"
    result = ok(xpnet_cli("train", "--epochs", 3, "--plot", png))
    assert str(png) in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_to_a_name_matplotlib_cannot_write_is_refused_before_training(tmp_path):
    """'.txt' failed after training (exit 1, the curves lost); no extension
    wrote loss.png where the run said it wrote loss."""
    pytest.importorskip("matplotlib")
    for name, got in (("loss.txt", "got '.txt'"), ("loss", "got no extension")):
        result = xpnet_cli("train", "--epochs", 3, "--plot", tmp_path / name)
        line = one_line_error(result)
        assert result.returncode == 2 and "ending in .png" in line and got in line, line
        assert result.stdout == ""  # before any data is read
    assert list(tmp_path.iterdir()) == []
    ok(xpnet_cli("train", "--epochs", 2, "--quiet", "--plot", tmp_path / "loss.SVG"))
    assert (tmp_path / "loss.SVG").read_bytes().lstrip().startswith(b"<?xml")


def test_plot_without_matplotlib_is_a_clear_error(tmp_path):
    code = "import sys; sys.modules['matplotlib'] = None; from xpnet.cli import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--plot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )
    line = one_line_error(result)
    assert "matplotlib" in line and "xpnet[plot]" in line
    assert result.stdout == ""  # refused before any training


# --------------------------------------------------------------------------
# Failures: one line, non-zero, never a traceback
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "ragged.csv").write_text("a,b,label\n1,2,0\n3,4\n")
    (d / "text.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    (d / "empty.csv").write_text("")
    (d / "noheader.csv").write_text("1,2,0\n3,4,1\n")
    (d / "hole.csv").write_text("a,b,label\n1,,0\n3,4,1\n")
    (d / "good.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    (d / "fake.npz").write_text("not a zip")
    np.savez(d / "noy.npz", X=np.ones((3, 2)))
    return d


FAILURES = {
    "unknown option": (["train", "--bogus"], "unrecognized arguments"),
    "unknown command": (["fly"], "invalid choice"),
    "no command": ([], "no command"),
    "bad number": (["train", "--epochs", "many"], "--epochs"),
    "negative lr": (["train", "--lr", "-1"], "--lr"),
    "bad hidden sizes": (["train", "--hidden", "12,x"], "--hidden"),
    "unknown backend": (["train", "--backend", "nosuch"], "unknown backend 'nosuch'"),
    "unknown activation": (["train", "--activation", "swish"], "swish"),
    "missing data file": (["train", "--data", "{d}/missing.csv"], "no such data file"),
    "ragged csv": (["train", "--data", "{d}/ragged.csv"], "line 3"),
    "non-numeric column": (["train", "--data", "{d}/text.csv"], "'oops', not a number"),
    "empty csv": (["train", "--data", "{d}/empty.csv"], "empty"),
    "csv without header": (["train", "--data", "{d}/noheader.csv"], "header"),
    "missing value": (["train", "--data", "{d}/hole.csv"], "missing value"),
    "binary file": (["train", "--data", "{d}/binary.csv"], "not a UTF-8"),
    "missing target column": (["train", "--data", "{d}/good.csv", "--target", "price"], "no column 'price'"),
    "fake npz": (["train", "--data", "{d}/fake.npz"], "not an NPZ"),
    "npz without y": (["train", "--data", "{d}/noy.npz"], "no array 'y'"),
    "save into a missing folder": (["train", "--save", "{d}/no/such/m.safetensors"], "does not exist"),
    "save under a file": (["train", "--save", "{d}/good.csv/m.safetensors"], "good.csv is a file, not a folder"),
    "diverging training": (["train", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2", "--activation", "relu"], "--lr"),
    "missing model": (["predict", "{d}/missing.safetensors", "{d}/good.csv"], "no such model file"),
    "model that is not a model": (["predict", "{d}/good.csv", "{d}/good.csv"], "safetensors file"),
    "predict without data": (["predict", "{d}/m.safetensors"], "DATA"),
}


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_failures_are_one_line_and_non_zero(case, bad_files):
    args, expected = FAILURES[case]
    line = one_line_error(xpnet_cli(*[a.format(d=bad_files) for a in args]))
    assert expected in line


@pytest.mark.parametrize("case", ["unknown option", "unknown activation", "missing data file", "ragged csv"])
def test_xpnet_debug_shows_the_traceback_of_every_error(case, bad_files):
    """XPNET_DEBUG=1 showed the traceback of a data error but not of a
    command-line error (exit 2). Each now shows it, keeping its status."""
    args = [a.format(d=bad_files) for a in FAILURES[case][0]]
    plain = xpnet_cli(*args)
    debug = xpnet_cli(*args, env=clean_env(XPNET_DEBUG="1"))
    assert "Traceback (most recent call last)" in debug.stderr, debug.stderr
    assert debug.returncode == plain.returncode != 0


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links on this platform")
def test_save_through_a_link_into_a_missing_folder_fails_before_training(tmp_path):
    """The folder check looked at the link's own folder, which exists: the
    whole run trained, then the save failed and the model was lost."""
    link = tmp_path / "current.safetensors"
    link.symlink_to(tmp_path / "gone" / "m.safetensors")
    result = xpnet_cli("train", "--epochs", 1, "--save", link, env=numpy_env())
    assert "does not exist" in one_line_error(result) and "training" not in result.stdout, result.stdout


def test_unusable_backend_names_the_reason():
    status = backend_status("cupy")
    if status.usable:
        pytest.skip("CuPy works on this machine, so it is not an unusable backend here")
    line = one_line_error(xpnet_cli("train", "--backend", "cupy"))
    assert "'cupy' is not usable here" in line and status.reason in line and "xpnet info" in line


def test_predict_needs_the_columns_the_model_was_trained_on(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1]])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--save", model, "--test-size", 0))
    other = write_csv(tmp_path / "o.csv", ["a", "c"], [[1, 2], [3, 4]])
    assert "lacks the column(s) 'b'" in one_line_error(xpnet_cli("predict", model, other))


def test_train_warns_of_a_pandas_index_column_used_as_a_feature(tmp_path):
    """A file written by ``pd.read_csv(...).to_csv(...)`` of a table with an
    index holds it as ``Unnamed: 0`` (0, 1, 2, ...): it was trained on as a
    feature in silence, and predict then needed it in every file."""
    rows = [[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1]]
    data = write_csv(tmp_path / "d.csv", ["Unnamed: 0", "a", "y"], rows)
    result = ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--test-size", 0))
    assert "'Unnamed: 0' looks like the row index pandas writes" in result.stderr, result.stderr
    assert "--ignore 'Unnamed: 0'" in result.stderr
    result = ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--test-size", 0, "--ignore", "Unnamed: 0"))
    assert "Unnamed" not in result.stderr


def test_predict_warns_of_a_pandas_index_column_a_python_model_takes(tmp_path):
    """A model saved from Python takes every column of the file: a pandas
    index written back as ``Unnamed: 0`` became its first feature in silence
    (the widths matched: the model was trained on the index-free table)."""
    net = xpnet.MLP([2, 1], output_activation="identity", backend="numpy", seed=0)
    model = tmp_path / "plain.safetensors"
    net.save(model)
    data = write_csv(tmp_path / "x.csv", ["Unnamed: 0", "p"], [[0, 1], [0.5, 2.0]])
    result = ok(xpnet_cli("predict", model, data))
    assert "'Unnamed: 0' looks like the row index pandas writes" in result.stderr, result.stderr


def test_predict_names_an_edited_read_record(tmp_path):
    """A model whose stored CSV options were edited (``na_values: 5``) failed
    with "'int' object is not iterable", naming neither the model nor the field."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1]])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--save", model, "--test-size", 0))
    with safe_open(model, "np") as f:
        meta = f.metadata()
    info = json.loads(meta["info"])
    info["read"]["na_values"] = 5
    save_file(load_file(model), model, {**meta, "info": json.dumps(info)})
    line = one_line_error(xpnet_cli("predict", model, data))
    assert f"{model}: the model's read record is malformed" in line, line


def test_predict_with_a_model_saved_from_python(tmp_path):
    """A model without CLI notes: columns are taken in file order, as they are."""
    net = xpnet.MLP([2, 3], output_activation="identity", backend="numpy", dtype="float64", seed=0)
    model = tmp_path / "plain.safetensors"
    net.save(model)
    X = np.array([[0.5, -1.0], [2.0, 3.0]])
    data = write_csv(tmp_path / "x.csv", ["p", "q"], list(X.T))
    header, rows = read_csv(ok(xpnet_cli("predict", model, data, env=numpy_env())).stdout)
    assert header == ["prediction_0", "prediction_1", "prediction_2"]
    np.testing.assert_allclose(np.array(rows, dtype=float), xpnet.to_numpy(net.predict(X)), rtol=1e-15)


@pytest.mark.parametrize(("version", "named"), [
    (99, "version 99 of xpnet train's record, newer than this xpnet reads (2); upgrade xpnet"),
    ("2", "xpnet_train must be a whole number"),
    (True, "xpnet_train must be a whole number"),
    (0, "xpnet_train must be a whole number from 1"),
])  # fmt: skip
def test_predict_refuses_a_record_of_a_newer_or_an_invalid_version(tmp_path, version, named):
    """``info["xpnet_train"]``, the version of the record train writes, was
    never read: a model from a newer xpnet (whose record may mean something
    else) was predicted with as if it were this one's."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1]])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--save", model, "--test-size", 0))
    with safe_open(model, "np") as f:
        meta = f.metadata()
    info = json.loads(meta["info"])
    info["xpnet_train"] = version
    save_file(load_file(model), model, {**meta, "info": json.dumps(info)})
    line = one_line_error(xpnet_cli("predict", model, data))
    assert named in line and str(model) in line, line


def test_predict_of_a_python_model_on_a_file_with_an_index_column_gives_a_hint_predict_can_follow(tmp_path):
    """A model saved from Python takes every column; the index column that
    pandas' to_csv writes (no name in the header) was refused with the hint
    'xpnet train --ignore 0', an option predict does not have."""
    net = xpnet.MLP([2, 1], output_activation="identity", backend="numpy", seed=0)
    model = tmp_path / "plain.safetensors"
    net.save(model)
    data = write_csv(tmp_path / "x.csv", ["", "p", "q"], [[0, 1], [0.5, 2.0], [-1.0, 3.0]])
    line = one_line_error(xpnet_cli("predict", model, data))
    assert "column 1 of the header has no name" in line and "--ignore" not in line, line
    assert "index=False" in line


def test_predict_names_the_value_a_float32_model_cannot_take(tmp_path):
    """A finite value far beyond the training range (1e308, scaled as in
    training) overflows the model's float32 inputs: the error said 'X has
    values beyond the float32 range ... use dtype='float64'', naming
    neither the column nor the line, and an option of the Python API."""
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], [1, 2, 3, 4, 5, 6]])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--save", model, "--test-size", 0))
    new = write_csv(tmp_path / "n.csv", ["a", "b"], [[1, 2, 3], [0, 1e308, 1]])
    line = one_line_error(xpnet_cli("predict", model, new))
    assert "line 3" in line and "column 'b'" in line and "float32" in line and "--dtype float64" in line, line
    assert "dtype='float64'" not in line


def test_predict_says_standard_input_is_not_read(tmp_path):
    """``--output -`` is stdout; ``DATA -`` (``cat new.csv | xpnet predict
    m -``) said 'no such data file: - (check the path)'."""
    model = tmp_path / "m.safetensors"
    xpnet.MLP([2, 1], backend="numpy", seed=0).save(model)
    result = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(model), "-"], input="p,q\n1,2\n",
                            capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2 and "standard input" in line and "check the path" not in line, line


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="no /dev/stdout on this platform")
def test_predict_output_to_dev_stdout(tmp_path):
    """``--output /dev/stdout`` (a link to the pipe's /proc entry) was refused:
    'cannot write in the folder /proc/self/fd', the check probing for a new
    file beside the target; a device or a pipe is written in place."""
    model = tmp_path / "m.safetensors"
    xpnet.MLP([2, 1], output_activation="identity", backend="numpy", seed=0).save(model)
    data = write_csv(tmp_path / "x.csv", ["p", "q"], [[0.5, 2.0], [-1.0, 3.0]])
    header, rows = read_csv(ok(xpnet_cli("predict", model, data, "--output", "/dev/stdout")).stdout)
    assert header == ["prediction"] and len(rows) == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this platform")
def test_predict_output_on_a_full_disk_names_the_file(tmp_path):
    """A write that fails for want of space said 'No space left on device',
    naming no file."""
    model = tmp_path / "m.safetensors"
    xpnet.MLP([2, 1], output_activation="identity", backend="numpy", seed=0).save(model)
    data = write_csv(tmp_path / "x.csv", ["p", "q"], [[0.5, 2.0], [-1.0, 3.0]])
    line = one_line_error(xpnet_cli("predict", model, data, "--output", "/dev/full"))
    assert "No space left on device" in line and "/dev/full" in line, line


def test_a_plugin_component_lacking_a_method_is_not_called_a_bug_in_xpnet(tmp_path):
    """A --plugin activation without ``_forward`` ended with 'Swish must
    define _forward(xp, v) (this looks like a bug in xpnet; ... report it)'."""
    (tmp_path / "half_done.py").write_text(
        "import xpnet\nfrom xpnet.activations import Activation\n\n\n@xpnet.register\n"
        "class Swish(Activation):\n    name = 'half_swish'\n")
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1]])
    result = subprocess.run([sys.executable, "-m", "xpnet", "train", "--data", str(data), "--epochs", "1",
                             "--plugin", "half_done", "--activation", "half_swish", "--test-size", "0"],
                            capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path)
    line = one_line_error(result)
    assert "must define _forward" in line and "bug in xpnet" not in line and "Extending xpnet" in line, line


def test_predict_overflow_of_a_float64_model_does_not_suggest_float64(tmp_path):
    """An overflow in a float64 model's computation ended with the hint
    'retrain the model with --dtype float64': it is float64 already."""
    net = xpnet.MLP([2, 1], output_activation="identity", backend="numpy", dtype="float64", seed=0)
    net.layers[0].weights = np.full((2, 1), 1e30)
    model = tmp_path / "m.safetensors"
    net.save(model)
    data = write_csv(tmp_path / "x.csv", ["p", "q"], [[1e300], [1e300]])
    line = one_line_error(xpnet_cli("predict", model, data))
    assert "overflowed" in line and "--dtype float64" not in line and "far beyond" in line, line


def test_a_model_given_as_the_data_is_named_as_a_model(tmp_path):
    """``xpnet predict m.safetensors m.safetensors`` (or a model as --data)
    said the file 'is not a UTF-8 text CSV file' and suggested
    --encoding latin-1."""
    model = tmp_path / "m.safetensors"
    xpnet.MLP([2, 1], backend="numpy", seed=0).save(model)
    line = one_line_error(xpnet_cli("predict", model, model))
    assert "is an xpnet model (safetensors) file" in line and "--encoding" not in line, line
    assert "xpnet predict MODEL DATA" in line


@pytest.mark.parametrize(("outputs", "notes", "named"), [
    (1, {"y_mean": [0.0], "y_std": [1.0, 2.0, 3.0]}, "y_std must be a list of 1 finite number(s)"),  # 3 columns
    (1, {"y_mean": [0.0]}, "y_std must be a list of 1 finite number(s), one per output, got None"),  # a KeyError
    (3, {"classes": ["a", "b"]}, "classes must be a list of 3 labels, one per output, got ['a', 'b']"),  # IndexError
])  # fmt: skip
def test_predict_refuses_an_edited_target_record_naming_it(tmp_path, outputs, notes, named):
    """A model whose notes on the target were edited (or written from
    Python) predicted every row's one output as three columns, or failed
    with a KeyError or an IndexError called a bug in xpnet."""
    net = xpnet.MLP([2, outputs], output_activation="softmax" if outputs > 1 else "identity", backend="numpy", seed=0)
    net.info = {"features": ["a", "b"], **notes}
    model = tmp_path / "m.safetensors"
    net.save(model)
    data = write_csv(tmp_path / "x.csv", ["a", "b"], [[0.5, 2.0], [-1.0, 3.0]])
    line = one_line_error(xpnet_cli("predict", model, data))
    assert f"{model}: the model's target record is malformed ({named}" in line, line
    assert "save it again with xpnet train" in line


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory):
    """A classifier (classes False, True, written 'FALSE'/'TRUE') and a two-output regressor, by xpnet train."""
    d = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(23)
    X = rng.normal(size=(40, 2))
    data = write_csv(d / "d.csv", ["a", "b", "label", "u", "v"],
                     [*X.T, np.where(X[:, 0] > 0, "TRUE", "FALSE"), X[:, 0] + 1, X[:, 1] - 1])
    for name, target, ignore in (("cls", "label", "u,v"), ("reg", "u,v", "label")):
        ok(xpnet_cli("train", "--data", data, "--target", target, "--ignore", ignore, "--epochs", 1,
                     "--test-size", 0, "--quiet", "--save", d / f"{name}.safetensors"))
    return d, data


def _edited_model(src: Path, dst: Path, edit) -> Path:
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(src, "np") as f:
        meta = f.metadata()
    info = json.loads(meta["info"])
    edit(info)
    save_file(load_file(src), dst, {**meta, "info": json.dumps(info)})
    return dst


@pytest.mark.parametrize(("model", "field", "value", "named"), [
    ("cls", "target", 5, "target record is malformed (target must be a text, the target column's name, got 5)"),
    ("reg", "target", ["u", "v"], "target record is malformed (target must be a text"),
    ("reg", "targets", [1, 2], "target record is malformed (targets must be a list of texts"),
    ("cls", "missing", "x", "column record is malformed (missing must be one of error, drop, mean, median, "
                            "most_frequent, got 'x')"),
    ("cls", "missing", 3, "column record is malformed (missing must be one of"),
    ("cls", "classes", [[1, 2], True], "target record is malformed (classes[0] must be a label"),
    ("cls", "classes", [False, {"a": 1}], "target record is malformed (classes[1] must be a label"),
    ("cls", "classes", [None, True], "target record is malformed (classes[0] must be a label"),
    ("cls", "class_spellings", [["FALSE"], "TRUE"], "target record is malformed (class_spellings must be"),
])  # fmt: skip
def test_predict_refuses_edited_names_and_labels_in_the_record(trained_models, model, field, value, named):
    """Edited fields of the record changed predict's header or labels in
    silence: a target of 5 headed the column '5', a list "['u', 'v']", a
    class [1, 2] was written as '[1, 2]', and a missing of 'x' was taken as
    'error'. Each is a malformed record, named with the model and the field."""
    d, data = trained_models
    edited = _edited_model(d / f"{model}.safetensors", d / "edited.safetensors",
                           lambda info: info.update({field: value}))
    line = one_line_error(xpnet_cli("predict", edited, data))
    assert named in line and str(edited) in line and "save it again with xpnet train" in line, line



@pytest.mark.parametrize(("field", "value"),
                         [("decimal", "x"), ("encoding", "nosuch"), ("sep", "ab"), ("sep", 5), ("sep", "a")])
def test_predict_refuses_edited_reading_options_in_the_record(trained_models, field, value):
    """A stored decimal of 'x' made predict blame the rows ("holds '0.126',
    not a number"), an unknown encoding blamed an --encoding never given,
    and a sep of 'ab' or 5 was dropped in silence for detection."""
    d, data = trained_models
    edited = _edited_model(d / "cls.safetensors", d / "edited.safetensors",
                           lambda info: info["read"].update({field: value}))
    line = one_line_error(xpnet_cli("predict", edited, data))
    assert f"{edited}: the model's read record is malformed" in line and repr(value) in line, line

def test_predict_keeps_the_labels_and_names_a_record_holds(trained_models):
    d, data = trained_models
    header, rows = read_csv(ok(xpnet_cli("predict", d / "cls.safetensors", data)).stdout)
    assert header == ["label"] and {r[0] for r in rows} <= {"TRUE", "FALSE"}
    header, _ = read_csv(ok(xpnet_cli("predict", d / "reg.safetensors", data)).stdout)
    assert header == ["u", "v"]


def test_predict_decimal_point_hint_does_not_blame_a_training_option_never_given(tmp_path):
    """predict's own --decimal , (or a model saved from Python) made the
    hint say 'the model was trained with --decimal ,'."""
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[0.5, 1.5, 2.5, 3.5], [1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1]])
    model = tmp_path / "m.safetensors"
    ok(xpnet_cli("train", "--data", data, "--epochs", 1, "--test-size", 0, "--save", model, env=numpy_env()))
    plain = tmp_path / "plain.safetensors"
    xpnet.MLP([2, 3], backend="numpy", seed=0).save(plain)
    (tmp_path / "p.csv").write_text("a;b\n1.5;2\n")
    for net in (model, plain):
        line = one_line_error(xpnet_cli("predict", "--decimal", ",", net, tmp_path / "p.csv", env=numpy_env()))
        assert "holds '1.5', not a number" in line and "pass predict --decimal ." in line, line
        assert "trained with --decimal" not in line


def test_predict_on_a_file_without_data_rows_writes_the_header_only(tmp_path):
    """A header-only CSV (an empty day's export) was refused with 'has a
    header but no data rows' (exit 1), though predict writes the header
    alone when --missing drop leaves no row; a batch job expects a
    header-only output. train still refuses data without rows."""
    rng = np.random.default_rng(21)
    X = rng.normal(size=(40, 2))
    data = write_csv(tmp_path / "d.csv", ["a", "color", "b", "price"],
                     [X[:, 0], np.where(X[:, 1] > 0, "red", "blue"), X[:, 1], 3 * X[:, 0] + 0.5])
    model, out = tmp_path / "m.safetensors", tmp_path / "out.csv"
    ok(xpnet_cli("train", "--data", data, "--epochs", 2, "--quiet", "--save", model))
    empty = tmp_path / "empty.csv"
    empty.write_text("price,b,color,a\n")
    result = ok(xpnet_cli("predict", model, empty))
    assert result.stdout == "price\n" and f"{empty} has a header but no data rows" in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1 and "wrote the header only" in result.stderr
    ok(xpnet_cli("predict", model, empty, "--output", out))
    assert out.read_text() == "price\n"
    (tmp_path / "other.csv").write_text("a,b\n")  # the model's columns are still needed
    assert "lacks the column(s) 'color'" in one_line_error(xpnet_cli("predict", model, tmp_path / "other.csv"))
    assert "no data rows" in one_line_error(xpnet_cli("train", "--data", empty, "--target", "price"))


def test_predict_on_an_npz_without_rows_writes_the_header_only(tmp_path):
    rng = np.random.default_rng(22)
    data, model, empty = tmp_path / "d.npz", tmp_path / "m.safetensors", tmp_path / "empty.npz"
    X = rng.normal(size=(40, 3))
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(int))
    ok(xpnet_cli("train", "--data", data, "--epochs", 2, "--quiet", "--save", model))
    np.savez(empty, X=np.zeros((0, 3)))
    result = ok(xpnet_cli("predict", model, empty))
    assert result.stdout == "y\n" and "has no data rows" in result.stderr, result
    np.savez(empty, X=np.zeros((0, 3)), y=np.zeros(0, dtype=int))
    assert "X must be a non-empty 2-D array" in one_line_error(xpnet_cli("train", "--data", empty))


def test_predict_with_its_arguments_swapped_says_the_table_is_no_model(tmp_path):
    """`predict data.csv model.st` read the table's first 8 letters as a
    header size: 'not a complete safetensors file: header size
    7578543767644038249 does not fit ... (truncated ...)'."""
    model = tmp_path / "plain.safetensors"
    xpnet.MLP([2, 3], backend="numpy", seed=0).save(model)
    data = write_csv(tmp_path / "x.csv", ["p", "q"], [[0.5], [1.0]])
    line = one_line_error(xpnet_cli("predict", data, model, env=numpy_env()))
    assert "x.csv is a text file (a CSV table?), not an xpnet model (a safetensors file)" in line, line
    assert "header size" not in line and "truncated" not in line
    assert f"{model} is an xpnet model: the order is `xpnet predict MODEL DATA`" in line, line
    other = write_csv(tmp_path / "y.csv", ["p", "q"], [[0.5], [1.0]])  # two tables: no order to suggest
    line = one_line_error(xpnet_cli("predict", data, other, env=numpy_env()))
    assert "not an xpnet model" in line and "MODEL DATA" not in line, line


def test_predict_hints_for_a_model_saved_from_python_name_no_option_predict_lacks(tmp_path):
    """Such a model has no --categorical of predict's to offer and was never
    trained with --missing error, but the hints said both."""
    model = tmp_path / "plain.safetensors"
    xpnet.MLP([2, 3], backend="numpy", seed=0).save(model)
    (tmp_path / "word.csv").write_text("p,q\n0.5,x\n")
    line = one_line_error(xpnet_cli("predict", model, tmp_path / "word.csv", env=numpy_env()))
    assert "column 'q' holds 'x', not a number" in line and "xpnet train --categorical q" in line, line
    (tmp_path / "hole.csv").write_text("p,q\n0.5,\n")
    line = one_line_error(xpnet_cli("predict", model, tmp_path / "hole.csv", env=numpy_env()))
    assert "line 2: column 'q' has a missing value" in line and "saved from Python" in line, line
    assert "trained with --missing error" not in line


# --------------------------------------------------------------------------
# info, version
# --------------------------------------------------------------------------


def test_info_lists_backends_and_the_auto_choice():
    out = ok(xpnet_cli("info")).stdout
    assert f"xpnet {xpnet.__version__}" in out and f"numpy {np.__version__}" in out
    assert "array-api-compat" in out and "Python" in out
    for name in KNOWN_BACKENDS:
        assert re.search(rf"^  {name} +(usable|not usable)", out, re.M), name
    assert re.search(r"^  numpy +usable .*devices: cpu", out, re.M)
    auto = xpnet.get_backend().name  # this process has no XPNET_BACKEND either (see clean_env)
    if "XPNET_BACKEND" not in os.environ:
        assert re.search(rf"^auto choice: {auto} ", out, re.M)


@pytest.mark.parametrize("words", [["model.safetensors"], ["data.csv"], ["--backend", "torch"]])
def test_info_given_a_file_or_option_says_it_describes_the_installation(words):
    """``xpnet info model.safetensors`` (or a CSV file) said only
    'unrecognized arguments': info reads no file; it says what it shows."""
    result = xpnet_cli("info", *words)
    line = one_line_error(result)
    assert result.returncode == 2 and f"xpnet info takes no arguments, got {' '.join(words)!r}" in line
    assert "this installation" in line


def test_version_and_help():
    assert ok(xpnet_cli("--version")).stdout.strip() == f"xpnet {xpnet.__version__}"
    help_text = ok(xpnet_cli("train", "--help")).stdout
    for option in ("--data", "--target", "--hidden", "--epochs", "--lr", "--batch-size", "--optimizer",
                   "--backend", "--device", "--dtype", "--seed", "--save", "--plot"):
        assert option in help_text


# --------------------------------------------------------------------------
# A fresh machine: pip install . && xpnet train
# --------------------------------------------------------------------------


def _index_reachable(python: Path, env: dict[str, str]) -> tuple[bool, str]:
    """Can pip (with this machine's configuration) list versions from its index?"""
    probe = subprocess.run(
        [str(python), "-m", "pip", "index", "versions", "tqdm", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    tail = (probe.stderr.strip().splitlines() or ["no output"])[-1]
    return probe.returncode == 0, tail


@pytest.mark.slow
def test_fresh_venv_pip_install_then_xpnet_train(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", ".venv", "venv"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    env = clean_env()
    env.pop("PYTHONPATH", None)  # the fresh install, not this checkout, must be imported

    reachable, why = _index_reachable(python, env)
    if not reachable:
        pytest.skip(f"pip cannot reach a package index from here ({why})")
    install = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", str(source)],
                             capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    result = subprocess.run([str(bindir / "xpnet"), "train", "--epochs", "2"],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    ok(result)
    assert "backend: " in result.stdout and score(result.stdout, "test accuracy") > 0.5
    where = subprocess.run([str(python), "-c", "import xpnet; print(xpnet.__file__)"],
                           capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert str(env_dir) in where.stdout  # it ran the installed package, with its shipped data


def test_r2_without_spread_in_the_test_rows_says_why(tmp_path):
    """One test row, or a constant test target, printed 'R^2: nan'."""
    few = tmp_path / "few.csv"
    few.write_text("a,y\n1,1.5\n2,2.5\n3,3.7\n4,4.1\n5,5.9\n")
    out = ok(xpnet_cli("train", "--data", few, "--epochs", "3", "--quiet")).stdout
    assert "test mse: " in out and "R^2: undefined (one row: no spread to explain)" in out and "nan" not in out
    train = tmp_path / "train.csv"
    train.write_text("a,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20)))
    flat = tmp_path / "flat.csv"
    flat.write_text("a,y\n1,2.5\n2,2.5\n3,2.5\n")
    out = ok(xpnet_cli("train", "--data", train, "--test-data", flat, "--epochs", "3", "--quiet")).stdout
    assert "R^2: undefined (a constant target: no spread to explain)" in out


def test_a_diverging_run_saves_the_epochs_it_keeps(tmp_path):
    """The message said the network keeps the last finite epoch's weights,
    and the process then ended with them: --save wrote nothing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    np.savez(tmp_path / "reg.npz", X=X, y=X @ [1.0, 2.0, 3.0] + 5)
    run = ["train", "--data", tmp_path / "reg.npz", "--optimizer", "sgd", "--lr", "0.01", "--lr-schedule", "exp:1.3",
           "--epochs", "100", "--patience", "0", "--quiet", "--backend", "numpy"]  # fmt: skip
    saved = tmp_path / "div.safetensors"
    line = one_line_error(xpnet_cli(*run, "--save", saved))
    kept = int(re.search(r"keeps the weights of epoch (\d+)", line).group(1))
    assert kept > 0 and f"saved them to {saved}" in line and "pass a smaller --lr" in line
    net = xpnet.load(saved, backend="numpy")
    assert net.info["epochs"] == kept and all(np.isfinite(xpnet.to_numpy(p)).all() for p in net._params())
    assert "they were not saved (no --save)" in one_line_error(xpnet_cli(*run))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_holds_its_rows_in_the_network_dtype(tmp_path, monkeypatch, dtype):
    """The standardised matrix stayed float64 through a float32 run, which
    fit then copied to float32: on 500 000 x 50 the rows alive during
    training took 2.09x the float32 data (1.09x now) and fit's peak 1.76x more (0.96x)."""
    from xpnet.cli import main
    from xpnet.network import Network

    data = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    data.write_text("a,b,y\n" + "".join(f"{a:.3f},{b:.3f},{int(a > b)}\n" for a, b in rng.normal(size=(40, 2))))
    test = tmp_path / "test.csv"
    test.write_text("a,b,y\n0.5,0.25,1\n-1,2,0\n")
    seen, fit, predict = [], Network.fit, Network.predict
    monkeypatch.setattr(Network, "fit", lambda net, X, *a, **k: seen.append(("fit", X.dtype)) or fit(net, X, *a, **k))
    monkeypatch.setattr(Network, "predict", lambda net, X, *a: seen.append(("predict", X.dtype)) or predict(net, X, *a))
    for extra in ([], ["--test-data", str(test)]):
        seen.clear()
        assert main(["train", "--data", str(data), "--dtype", dtype, "--epochs", "1", "--quiet", "--backend", "numpy",
                     *extra]) == 0  # fmt: skip
        assert seen == [("fit", np.dtype(dtype)), ("predict", np.dtype(dtype))], extra


def test_a_run_diverging_in_its_first_epoch_says_it_saved_nothing(tmp_path):
    """It kept the initial weights, wrote no --save file, and did not say so."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    np.savez(tmp_path / "reg.npz", X=X, y=X @ [1.0, 2.0, 3.0] + 5)
    saved = tmp_path / "div.safetensors"
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "reg.npz", "--optimizer", "sgd", "--lr", "1e5",
                                    "--epochs", "5", "--patience", "0", "--quiet", "--save", saved))
    assert "keeps the weights of epoch 0" in line and f"nothing was saved to {saved}" in line and not saved.exists()


def test_a_rate_near_float64s_limit_diverges_without_a_warning_about_adams_step(tmp_path):
    """--lr 1e308 warned that Adam's lr "never reaches xpnet._kernels.update": its scalar lr / (1 - beta1) was inf
    for the rate and for the probe's, so the two looked alike. One error line, the divergence, is all."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", X=rng.normal(size=(40, 2)), y=np.arange(40) % 2)
    line = one_line_error(xpnet_cli("train", "--data", tmp_path / "c.npz", "--lr", "1e308", "--epochs", "1",
                                    "--patience", "0", "--quiet"))
    assert "became NaN or infinite" in line and "pass a smaller --lr" in line


def test_weight_decay_is_refused_only_for_an_optimizer_that_cannot_take_it(monkeypatch):
    """An optimizer whose ``__init__`` takes ``**settings`` may take a
    weight decay: only one without that setting is a usage error."""
    import argparse

    from xpnet.cli import UsageError, _check_weight_decay
    from xpnet.optimizers import OPTIMIZERS, SGD

    class Open(SGD):
        def __init__(self, lr=0.01, **settings):
            super().__init__(lr, **settings)

    class Closed(SGD):
        def __init__(self, lr=0.01):
            super().__init__(lr)

    monkeypatch.setitem(OPTIMIZERS._classes, "open_settings", Open)
    monkeypatch.setitem(OPTIMIZERS._classes, "closed_settings", Closed)
    _check_weight_decay(argparse.Namespace(optimizer="open_settings", weight_decay=0.1))
    _check_weight_decay(argparse.Namespace(optimizer="closed_settings", weight_decay=None))
    with pytest.raises(UsageError, match="--weight-decay: the optimizer 'closed_settings' has no weight_decay"):
        _check_weight_decay(argparse.Namespace(optimizer="closed_settings", weight_decay=0.1))
