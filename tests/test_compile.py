"""xpnet._compile: elementwise update kernels run pure, in place (donated
NumPy and torch arrays) or fused (CuPy; its generated source is compiled
here with a C compiler), with the same results; the training step donates
only what it owns, so committed weights survive a diverging epoch."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from helpers import host, try_import
from test_optimizers import DECAY, TORCH_CASES, two_layer_problem

import xpnet
from xpnet import _compile
from xpnet._compile import Donated, Kernel, TrainStep, update
from xpnet.layers import Context
from xpnet.losses import get_loss
from xpnet.optimizers import get_optimizer

CASE_IDS = ["-".join([name, *(f"{k}={v}" for k, v in s.items())]) for name, s in TORCH_CASES]


def _donated_steps(backend, opt, p, gs, donate=True):
    """``len(gs)`` optimizer steps, each donating what the previous one returned."""
    params = [backend.asarray(a, "float64") for a in p]
    state = opt.init_state(params)
    scratch: dict = {}
    for k, g in enumerate(gs):
        grads = [backend.asarray(a, "float64") for a in g]
        if donate and k > 0:
            params = Donated(params, scratch)
            state = {key: Donated(v, scratch) if isinstance(v, list) else v for key, v in state.items()}
        writable = backend.name in ("numpy", "torch") and all(_compile._writable(a) for a in params)
        new, state = opt.step(params, grads, state, decay=DECAY)
        if donate and k > 0:
            assert all(a is b for a, b in zip(new, params)) == writable
        params = new
    return [host(a) for a in params]


@pytest.mark.parametrize(("name", "settings"), TORCH_CASES, ids=CASE_IDS)
def test_donated_updates_equal_pure_ones_to_the_bit(backend, name, settings):
    """Where arrays are donated (NumPy, torch) the update writes into them;
    elsewhere (JAX, array-api-strict, read-only NumPy) it stays pure. Same
    numbers either way."""
    p, gs = two_layer_problem(steps=6)
    opt = get_optimizer({"name": name, "config": settings})
    pure = _donated_steps(backend, opt, p, gs, donate=False)
    donated = _donated_steps(backend, opt, p, gs)
    for a, b in zip(donated, pure):
        np.testing.assert_array_equal(a, b)


def test_a_plain_call_writes_nothing(backend):
    p, gs = two_layer_problem(steps=1)
    params = [backend.asarray(a, "float64") for a in p]
    opt = xpnet.Adam(0.1)
    state = opt.init_state(params)
    new, new_state = opt.step(params, [backend.asarray(a, "float64") for a in gs[0]], state)
    assert not any(a is b for a, b in zip(new, params))
    for a, b in zip(params, p):
        np.testing.assert_array_equal(host(a), b)
    assert all(np.all(host(m) == 0) for m in state["m"])


def test_read_only_donated_arrays_are_not_written():
    params = [np.ones(3)]
    params[0].flags.writeable = False
    kernel = Kernel(lambda xp, p, g, lr: (p - lr * g,), 2, 1, "sgd_test")
    (new,) = update([kernel], [Donated(params), [np.full(3, 2.0)]], (0.5,))
    assert new[0] is not params[0] and np.all(params[0] == 1.0) and np.all(new[0] == 0.0)


def test_in_place_needs_no_fresh_arrays_after_the_first_step():
    """An in-place Adam step allocates no parameter-sized array: its
    temporaries live in the donor's scratch pool, kept between steps."""
    kernel = get_optimizer("adam")
    p, gs = two_layer_problem(steps=3)
    params = [np.asarray(a) for a in p]
    state = kernel.init_state(params)
    scratch: dict = {}
    counts = []
    original = _compile._empty_like

    def counting(a):
        counts[-1] += 1
        return original(a)

    _compile._empty_like = counting
    try:
        for g in gs:
            counts.append(0)
            params, state = kernel.step(
                Donated(params, scratch), g, {k: Donated(v, scratch) if isinstance(v, list) else v
                                              for k, v in state.items()})  # fmt: skip
    finally:
        _compile._empty_like = original
    assert counts[0] > 0 and counts[1:] == [0, 0], counts


def test_kernel_outputs_must_be_computed():
    with pytest.raises(TypeError, match="computed"):
        Kernel(lambda xp, p, g: (p,), 2, 0, "identity_test").tape


# -- the generated CUDA source, compiled as C on the host ------------------------


def _c_kernel(kernel: Kernel, dtype: str, tmp_path):
    """The ElementwiseKernel body of ``kernel`` in a C loop, built with the
    host compiler: the same text CuPy compiles, checked without a GPU."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler here")
    ins, outs, body = _compile.cuda_source(kernel)
    ctype = {"float32": "float", "float64": "double"}[dtype]
    arrays = [f"const T *A{i}" for i in range(kernel.n_arrays)]
    scalars = [f"T s{i}" for i in range(kernel.n_scalars)]
    n_out = len(kernel.tape.outputs)
    src = "\n".join([
        "#include <math.h>", f"typedef {ctype} T;",
        "static T max(T a, T b) { return a > b ? a : b; }", "static T min(T a, T b) { return a < b ? a : b; }",
        f"void run(long n, {', '.join(arrays + scalars + [f'T *O{j}' for j in range(n_out)])}) {{",
        "  for (long i = 0; i < n; i++) {",
        *(f"    T a{i} = A{i}[i];" for i in range(kernel.n_arrays)),
        f"    {outs.replace(', T ', '; T ')};", body, *(f"    O{j}[i] = o{j};" for j in range(n_out)), "  }", "}",
    ])  # fmt: skip
    (tmp_path / "k.c").write_text(src)
    lib = tmp_path / "k.so"
    subprocess.run([cc, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(tmp_path / "k.c"), "-o", str(lib), "-lm"],
                   check=True, capture_output=True)  # fmt: skip
    fn = ctypes.CDLL(str(lib)).run
    ct = ctypes.c_float if dtype == "float32" else ctypes.c_double

    def call(arrays, scalars):
        outs = [np.empty_like(arrays[0]) for _ in range(n_out)]
        ptrs = [a.ctypes.data_as(ctypes.c_void_p) for a in [*arrays]]
        fn(ctypes.c_long(arrays[0].size), *ptrs, *(ct(s) for s in scalars), *(o.ctypes.data_as(ctypes.c_void_p) for o in outs))
        return outs

    return call


@pytest.mark.parametrize(("name", "settings"), TORCH_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_cuda_source_computes_the_kernel(name, settings, dtype, tmp_path, monkeypatch):
    """Each optimizer kernel's generated source, run as C, gives the pure
    kernel's numbers (one step, decayed parameters)."""
    opt = get_optimizer({"name": name, "config": settings})
    seen = []
    real = _compile.update
    monkeypatch.setattr("xpnet.optimizers.update", lambda k, c, s: seen.append((k, c, s)) or real(k, c, s))
    rng = np.random.default_rng(0)
    params = [rng.normal(size=100).astype(dtype)]
    state = opt.init_state(params)
    state = {k: [np.abs(rng.normal(size=100)).astype(dtype) for _ in v] if isinstance(v, list) else v
             for k, v in state.items()}  # fmt: skip
    pure_p, pure_state = opt.step(params, [rng.normal(size=100).astype(dtype)], state, decay=[True])
    (kernel,), columns, scalars = seen[0]
    got = _c_kernel(kernel, dtype, tmp_path)([np.ascontiguousarray(c[0]) for c in columns], scalars)
    want = [pure_p[0], *(v[0] for v in pure_state.values() if isinstance(v, list))]
    tol = 1e-6 if dtype == "float32" else 1e-14
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# -- the training step: donates only what it owns -------------------------------


def _regression(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1


def test_train_step_never_donates_what_the_network_holds():
    X, y = _regression()
    net = xpnet.MLP([3, 4, 1], backend="numpy", dtype="float64", seed=0)
    opt = xpnet.Adam(0.01)
    params, buffers = net._params(), net._buffers()
    state = opt.init_state(params)
    step = TrainStep(net, get_loss("mse"), opt, net._decay_mask(), Context(training=True), state)
    committed = [p.copy() for p in params]
    params, buffers, state, _ = step(params, buffers, state, X, y)  # the network's arrays: new ones come back
    assert not any(a is b for a, b in zip(params, net._params()))
    mine = list(params)
    params, buffers, state, _ = step(params, buffers, state, X, y)  # its own: written in place
    assert all(a is b for a, b in zip(params, mine))
    net._commit(params, buffers)  # now the network holds them
    held = [p.copy() for p in params]
    params, buffers, state, _ = step(params, buffers, state, X, y)
    assert not any(a is b for a, b in zip(params, net._params()))
    for a, b in zip(net._params(), held):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(committed, held))  # it did train


class _Exploding(xpnet.Adam):
    """Adam whose learning rate becomes huge after ``calm`` steps: the run
    diverges in the middle of an epoch, after in-place steps."""

    def __init__(self, calm: int) -> None:
        super().__init__(0.01)
        self.calm, self.steps = calm, 0

    def step(self, params, grads, state, decay=None):
        self.steps += 1
        self.lr = 0.01 if self.steps <= self.calm else 1e30
        return super().step(params, grads, state, decay)


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_nan_guard_keeps_the_last_committed_weights_under_in_place_updates(backend_name):
    """Epoch 1 trains in place and is committed; epoch 2 diverges after
    several in-place steps. The network keeps epoch 1's weights bit for bit,
    and weights a caller held from before ``fit`` are untouched."""
    if backend_name == "torch" and try_import("torch") is None:
        pytest.skip("torch is not installed")
    X, y = _regression(n=32)
    kw = dict(loss="mse", epochs=3, batch_size=4, shuffle=False)
    net = xpnet.MLP([3, 8, 1], backend=backend_name, dtype="float32", seed=0)
    before = net._params()
    before_values = [host(p).copy() for p in before]
    with pytest.raises(FloatingPointError, match="epoch 2"):
        net.fit(X, y, optimizer=_Exploding(calm=8 + 3), **kw)
    twin = xpnet.MLP([3, 8, 1], backend=backend_name, dtype="float32", seed=0)
    twin.fit(X, y, optimizer=_Exploding(calm=10**9), **(kw | {"epochs": 1}))
    for a, b in zip(net._params(), twin._params()):
        np.testing.assert_array_equal(host(a), host(b))
    for a, b in zip(before, before_values):
        np.testing.assert_array_equal(host(a), b)


def test_fit_gives_the_same_weights_with_and_without_in_place_updates(monkeypatch):
    X, y = _regression()
    kw = dict(loss="mse", optimizer="adam", lr=0.01, epochs=3, batch_size=5, seed=1)
    net = xpnet.MLP([3, 4, 1], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, **kw)
    monkeypatch.setattr(TrainStep, "_donate", lambda self, params, state: (params, state))
    pure = xpnet.MLP([3, 4, 1], backend="numpy", dtype="float64", seed=0)
    pure.fit(X, y, **kw)
    for a, b in zip(net._params(), pure._params()):
        np.testing.assert_array_equal(a, b)
