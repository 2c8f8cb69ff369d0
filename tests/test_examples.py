"""Every script in examples/ runs on NumPy in seconds and prints the seeds' figures."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env, try_import

import xpnet
from xpnet._backend import backend_status

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Examples import the xpnet this test imported, installed or not.
XPNET_HOME = str(Path(xpnet.__file__).resolve().parent.parent)


def run_example(name: str, *args: str, cwd: Path, timeout: float = 120, check: bool = True, unset: tuple = ()):
    env = {k: v for k, v in child_env(XPNET_HOME).items() if k not in ("XPNET_BACKEND", *unset)}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # BLAS threads that spin-wait slow a busy small machine down ~5x
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )
    if check:
        assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    return result


def value_after(label: str, text: str) -> str:
    match = re.search(rf"^{re.escape(label)}\s*(.+)$", text, re.M)
    assert match, f"{label!r} not in:\n{text}"
    return match.group(1).strip()


def test_every_example_is_tested():
    tested = {"neuron.py", "regression_1000_100_1.py", "symbolic_2_2_1.py", "xor_train.py", "xor_infer.py",
              "digits.py", "cpu_or_gpu.py", "custom_layer.py"}
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == tested  # _options.py: a helper


def test_neuron(tmp_path):
    out = run_example("neuron.py", cwd=tmp_path).stdout
    assert value_after("ReLU neuron:", out) == "19.0"
    assert value_after("sigmoid neuron:", out) == "1.0"
    assert value_after("sigmoid(126):", out) == "1.0"
    assert value_after("4-3-1 network:", out) == "1.0"
    assert math.isclose(float(value_after("MSE:", out)), 1 / 3, rel_tol=1e-15)
    mse_list, bce_list = (eval(line[4:]) for line in out.splitlines() if line.startswith("L = "))  # noqa: S307
    assert mse_list == [float(t * t) for t in range(-10, 10)]
    y = np.arange(0, 1, 0.1)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(bce_list, -np.log(np.clip(y, eps, 1 - eps)), rtol=1e-12)
    assert "'activation_function': 'tanh'" in out and "'activation_potential': None" in out


def test_regression_1000_100_1(tmp_path):
    out = run_example("regression_1000_100_1.py", "--plot", "loss.png", cwd=tmp_path).stdout
    steps = [(int(m[1]), float(m[2])) for m in re.finditer(r"^(\d+): ([0-9.]+)$", out, re.M)]
    assert [s for s, _ in steps] == [*range(0, 101, 10), 200, 300, 400]
    losses = [v for _, v in steps]
    assert losses[0] > 1e5  # N(0, 1) weights on 1000 inputs: predictions in the hundreds
    assert all(b < a for a, b in zip(losses, losses[1:]))
    final = float(re.search(r"final loss: ([0-9.]+) after 500 steps", out)[1])
    assert final < losses[-1] and final < losses[0] / 1e3
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_regression_plot_numbers_steps_as_printed(tmp_path, monkeypatch, capsys):
    """The loss printed as "i: loss" is drawn at x = i (it was at i + 1, under the label "step")."""
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    import runpy

    from matplotlib.figure import Figure

    drawn = {}

    def savefig(fig, *args, **kwargs):
        drawn["x"], drawn["y"] = fig.axes[0].lines[0].get_data()

    monkeypatch.setattr(Figure, "savefig", savefig)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # its argparse types, examples/_options.py
    monkeypatch.setattr(sys, "argv", ["regression_1000_100_1.py", "--steps", "21", "--plot", str(tmp_path / "l.png")])
    runpy.run_path(str(EXAMPLES / "regression_1000_100_1.py"), run_name="__main__")
    printed = re.findall(r"^(\d+): ([0-9.]+)$", capsys.readouterr().out, re.M)
    assert [int(i) for i, _ in printed] == [0, 10, 20] and list(drawn["x"]) == list(range(21))
    assert all(f"{drawn['y'][int(i)]:.2f}" == loss for i, loss in printed)


@pytest.mark.parametrize("args", [
    ("regression_1000_100_1.py", "--seed", "-1"), ("regression_1000_100_1.py", "--steps", "0"),
    ("regression_1000_100_1.py", "--plot", "missing/loss.png"), ("xor_train.py", "--epochs", "0"),
    ("xor_train.py", "--lr", "0"), ("xor_train.py", "--model", "missing/xor.safetensors"),
    ("digits.py", "--epochs", "-3"), ("digits.py", "--save", "missing/"), ("cpu_or_gpu.py", "--hidden", "0"),
    ("custom_layer.py", "--model", "missing/custom.safetensors"), ("neuron.py", "--backend", "bogus"),
    ("xor_infer.py", "--backend", "tensorflow"), ("regression_1000_100_1.py", "--plot", "loss.txt"),
    ("xor_train.py", "--plot", "loss"),
])  # fmt: skip
def test_a_bad_option_is_refused_in_one_line_before_any_work(tmp_path, args):
    """Tracebacks from NumPy or xpnet (--seed -1 did not say which option), or
    from matplotlib after all the training (--plot into a missing folder, or
    named loss.txt; --plot loss wrote loss.png and said "wrote loss")."""
    name, option, value = args
    result = run_example(name, option, value, cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""  # refused before anything ran
    last = result.stderr.splitlines()[-1]  # after argparse's usage lines
    assert last.startswith(f"{name}: error: argument {option}: ") and value.split("/")[0] in last, result.stderr


@pytest.mark.parametrize("name", ["regression_1000_100_1.py", "symbolic_2_2_1.py", "xor_train.py", "xor_infer.py",
                                  "digits.py", "cpu_or_gpu.py", "custom_layer.py"])  # fmt: skip
def test_a_device_the_backend_lacks_is_refused_in_one_line(tmp_path, name):
    """--device cuda on NumPy ended in get_backend's ValueError traceback
    (cpu_or_gpu.py caught only BackendUnavailable)."""
    (tmp_path / "xor.safetensors").write_bytes(b"")  # xor_infer's --model exists; the device is refused first
    result = run_example(name, "--device", "cuda", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"{name}: error: argument --device: ") and "'cuda'" in last, result.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")))
def test_an_unusable_backend_is_refused_in_one_line(tmp_path, name):
    """--backend cupy without a GPU ended in BackendUnavailable's traceback
    in every example but cpu_or_gpu.py."""
    if backend_status("cupy").usable:
        pytest.skip("CuPy works here")
    (tmp_path / "xor.safetensors").write_bytes(b"")
    result = run_example(name, "--backend", "cupy", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"{name}: error: argument --backend: ") and "'cupy' is not usable here" in last


@pytest.mark.parametrize("args", [
    ("--model", "missing.safetensors"), ("ROW", "1,x"), ("ROW", "1"), ("ROW", "1,0,1"), ("ROW", "1,inf"),
])  # fmt: skip
def test_xor_infer_refuses_a_bad_row_or_model_in_one_line(tmp_path, args):
    """xor_infer.py's rows and --model ended in a traceback (float('x'), the
    network's n_in check, FileNotFoundError) after loading, where the other
    options are refused by argparse, in one line naming them."""
    (tmp_path / "xor.safetensors").write_bytes(b"")  # the default --model exists; nothing gets to read it
    name, value = args
    result = run_example("xor_infer.py", *([name, value] if name.startswith("--") else [value]),
                         cwd=tmp_path, check=False)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"xor_infer.py: error: argument {name}: ") and value in last, result.stderr


@pytest.mark.parametrize("model", ["empty", "digits", "two_outputs", "unregistered"])
def test_xor_infer_refuses_a_model_it_cannot_use_in_one_line(tmp_path, model):
    """A --model that exists but is no XOR model ended in a traceback from
    deep inside xpnet: an empty or corrupt file, a model of 64 inputs (the
    network's n_in check at predict), one with an activation this process
    has not registered; a 2-2 model printed column 0 as the class, silently."""
    path = tmp_path / "other.safetensors"
    if model == "empty":
        path.write_bytes(b"")
    elif model == "unregistered":
        net = xpnet.Network([xpnet.Dense(2, 1, "sigmoid")], backend="numpy", seed=0)
        net.save(path)
        path.write_bytes(path.read_bytes().replace(b"sigmoid", b"sigmoix"))  # same length: header intact
    else:
        sizes = [64, 10] if model == "digits" else [2, 2]
        xpnet.MLP(sizes, backend="numpy", seed=0).save(path)
    result = run_example("xor_infer.py", "--model", path.name, cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("xor_infer.py: error: argument --model: ") and path.name in last, result.stderr


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
def test_symbolic_2_2_1(tmp_path, backend_name):
    out = run_example("symbolic_2_2_1.py", "--backend", backend_name, cwd=tmp_path).stdout
    assert value_after("output before training:", out) == "0.649864477526152"
    assert value_after("sympy output:", out) == "0.649864477526152"
    assert float(value_after("largest relative difference:", out)) < 1e-12
    # the seed's trained figure, from its own procedure (one weight at a time) with backpropagation's gradients
    assert value_after("output after the seed's 999 rounds of one-weight-at-a-time updates (lr 0.3):", out) == (
        "0.999453185534398")  # fmt: skip
    final = re.search(r"output after (\d+) steps of gradient descent \(lr 0.3\): ([0-9.]+)", out)
    assert final and 0.99 < float(final[2]) < 1.0 and int(final[1]) > 1


def test_xor_train_then_infer(tmp_path):
    trained = run_example("xor_train.py", "--model", "xor.safetensors", cwd=tmp_path).stdout
    assert value_after("all four right:", trained) == "True"
    train_outputs = [float(v) for v in re.findall(r"^  \[\d, \d\] -> ([0-9.]+)$", trained, re.M)]
    inferred = run_example("xor_infer.py", "--model", "xor.safetensors", cwd=tmp_path).stdout
    rows = re.findall(r"^  \[.*\] -> ([0-9.]+) -> class (\d)$", inferred, re.M)
    assert [int(c) for _, c in rows] == [0, 1, 1, 0]
    assert [float(v) for v, _ in rows] == train_outputs  # the saved model is the trained one
    one = run_example("xor_infer.py", "--model", "xor.safetensors", "1,0", cwd=tmp_path).stdout
    assert one.rstrip().endswith("class 1")


def test_digits(tmp_path):
    out = run_example("digits.py", "--save", "d.safetensors", cwd=tmp_path).stdout
    assert float(value_after("test accuracy:", out)) >= 0.95
    matrix = [list(map(int, line.split(":")[1].split())) for line in out.splitlines() if re.match(r"^  \d: ", line)]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == 359
    assert "applies the stored scaling" in out
    # ... and it does: xpnet predict on the raw pixels scores as the example's scaled test rows did
    X, y = xpnet.datasets.load_digits()
    np.savez(tmp_path / "raw.npz", X=X)
    cli = subprocess.run([sys.executable, "-m", "xpnet", "predict", "d.safetensors", "raw.npz"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env=child_env(XPNET_HOME))  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    predicted = np.array([int(line) for line in cli.stdout.split()[1:]])
    assert np.mean(predicted == y) >= 0.95  # unscaled, it was 0.75


def test_cpu_or_gpu_on_the_cpu(tmp_path):
    out = run_example("cpu_or_gpu.py", "--epochs", 5, "--hidden", 64, cwd=tmp_path).stdout
    assert out.startswith("backend: numpy, device: cpu")
    assert float(re.search(r"test accuracy ([0-9.]+)", out)[1]) >= 0.9
    assert "same predictions: True" in out


def test_cpu_or_gpu_float64_on_jax(tmp_path):
    """JAX computes float64 only in its 64-bit mode, which the example switches on (it ended in a traceback).
    Without the suite's JAX_ENABLE_X64=1, as a user runs it."""
    if not backend_status("jax").usable:
        pytest.skip(f"jax: {backend_status('jax').reason}")
    out = run_example("cpu_or_gpu.py", "--backend", "jax", "--dtype", "float64", "--epochs", 5, "--hidden", 64,
                      cwd=tmp_path, unset=("JAX_ENABLE_X64",)).stdout  # fmt: skip
    assert out.startswith("backend: jax, device: ") and "dtype: float64" in out.splitlines()[0]
    assert float(re.search(r"test accuracy ([0-9.]+)", out)[1]) >= 0.9
    assert "same predictions: True" in out


def test_cpu_or_gpu_names_an_unusable_gpu(tmp_path):
    if backend_status("cupy").usable:
        pytest.skip("CuPy works here; the example would run on the GPU")
    result = run_example("cpu_or_gpu.py", "--backend", "cupy", cwd=tmp_path, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'cupy' is not usable here" in result.stderr


#: The example's Mish derivative on a grid, in a child process: importing the
#: example registers "mish", which would leak into registries other tests enumerate.
MISH_DERIVATIVE = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import custom_layer, xpnet
v = np.linspace(-100.0, 100.0, 20001)
mish = xpnet.get_activation("mish")
np.savez(sys.argv[2], f32=mish.derivative(v.astype(np.float32)), f64=mish.derivative(v))
"""


def test_custom_layer_mish_derivative_matches_torch_autograd(tmp_path):
    """Over [-100, 100] in float32 and float64, against torch autograd of
    F.mish in float64 (torch's own float32 backward underflows its sigmoid
    below -88.7 and turns positive there). Below about -17 the example's old
    sigmoid, 1 - 1/(1 + exp(v)), cancelled to the wrong sign in float32."""
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch: not installed (the reference is torch autograd)")
    result = subprocess.run([sys.executable, "-c", MISH_DERIVATIVE, str(EXAMPLES), str(tmp_path / "d.npz")],
                            capture_output=True, text=True, timeout=120, env=child_env(XPNET_HOME))  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = np.load(tmp_path / "d.npz")
    for key, dtype in (("f32", np.float32), ("f64", np.float64)):
        v = np.linspace(-100.0, 100.0, 20001).astype(dtype)
        tv = torch.tensor(v.astype(np.float64), requires_grad=True)
        torch.nn.functional.mish(tv).sum().backward()
        want, mine = tv.grad.numpy(), got[key].astype(np.float64)
        assert got[key].dtype == dtype
        eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
        # rounding of the sum tanh(sp) + v (1 - tanh(sp)^2) sigmoid(v), whose terms |v| sigmoid(v) bounds
        # where they cancel (the root at v = -1.19; 1 - tanh^2 above v = 15), and of results below tiny
        scale = np.abs(want) + np.abs(v) * torch.sigmoid(tv.detach()).numpy()
        tolerance = 8 * eps * scale + tiny
        bad = np.abs(mine - want) > tolerance
        assert not bad.any(), f"{key}: {bad.sum()} off, e.g. v={v[bad][-3:]}: {mine[bad][-3:]}, torch {want[bad][-3:]}"


@pytest.mark.parametrize("where", [("numpy", None), ("array_api_strict", "device1")])
def test_custom_layer_trains_saves_and_reloads_in_a_fresh_process(tmp_path, where):
    name, device = where
    if not backend_status(name).usable:
        pytest.skip(f"{name}: {backend_status(name).reason}")
    args = ["--backend", name, "--model", str(tmp_path / "custom.safetensors")] + (["--device", device] if device else [])
    out = run_example("custom_layer.py", *args, cwd=tmp_path, timeout=300).stdout
    assert "ResBlock" in out
    assert float(value_after("test accuracy:", out)) > 0.9
    assert value_after("same predictions in a fresh process (NumPy):", out) == "True"
