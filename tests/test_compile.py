"""Compiled and in-place training (xpnet._compile, _kernels, _trainstep,
_programs, _graphstep): elementwise update kernels run pure, in place
(donated NumPy and torch arrays) or fused (CuPy; its generated source is
compiled here with a C compiler), with the same results; the training step
donates only what it owns, so committed weights survive a diverging epoch."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import shutil
import subprocess
import types
import warnings

import numpy as np
import pytest
from helpers import host, try_import
from test_losses import _NextWeights, _OutputWeighted, _WeightsInDict
from test_optimizers import DECAY, TORCH_CASES, two_layer_problem

import xpnet
from xpnet import _compile, _foreach, _fused, _graphstep, _inplace, _kernels, _programs, _trainstep
from xpnet._kernels import Donated, Kernel, update
from xpnet._trainstep import TrainStep
from xpnet.layers import Context
from xpnet.losses import get_loss
from xpnet.optimizers import get_optimizer

CASE_IDS = ["-".join([name, *(f"{k}={v}" for k, v in s.items())]) for name, s in TORCH_CASES]


@pytest.fixture(autouse=True)
def in_place_at_any_size():
    """The tests' arrays are small: let donated ones be updated in place
    anyway (by default only arrays of IN_PLACE_MIN elements or more are)."""
    with _kernels._mode(in_place_min=0):
        yield


def test_small_donated_arrays_are_replaced_not_written():
    params = [np.ones(3)]
    kernel = Kernel(lambda xp, p, g, lr: (p - lr * g,), 2, 1, "sgd_small")
    with _kernels._mode(in_place_min=_kernels.IN_PLACE_MIN):
        (new,) = update([kernel], [Donated(params), [np.full(3, 2.0)]], (0.5,))
    assert new[0] is not params[0] and np.all(params[0] == 1.0)
    (new,) = update([kernel], [Donated(params), [np.full(3, 2.0)]], (0.5,))
    assert new[0] is params[0] and np.all(params[0] == 0.0)


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
        writable = backend.name in ("numpy", "torch") and all(_inplace._writable(a) for a in params)
        writable = writable and not _foreach._foreach_applies(params[0], None, (0.5,))  # CUDA: all at once, pure
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
    original = _inplace._empty_like

    def counting(a):
        counts[-1] += 1
        return original(a)

    _inplace._empty_like = counting
    try:
        for g in gs:
            counts.append(0)
            params, state = kernel.step(
                Donated(params, scratch), g, {k: Donated(v, scratch) if isinstance(v, list) else v
                                              for k, v in state.items()})  # fmt: skip
    finally:
        _inplace._empty_like = original
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
    ins, outs, body = _fused.cuda_source(kernel)
    ctype = {"float32": "float", "float64": "double"}[dtype]
    arrays = [f"const T *A{i}" for i in range(kernel.n_arrays)]
    scalars = [f"T s{i}" for i in range(kernel.n_scalars)]
    n_out = len(kernel.tape.outputs)
    src = "\n".join([
        "#include <math.h>", f"typedef {ctype} T;",
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
    real = _kernels.update
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
    params, buffers, state, _ = step(params, buffers, state, X, y, donate=True)  # the network's: new ones come back
    assert not any(a is b for a, b in zip(params, net._params()))
    mine = list(params)
    params, buffers, state, _ = step(params, buffers, state, X, y, donate=True)  # its own: written in place
    assert all(a is b for a, b in zip(params, mine))
    params, buffers, state, _ = step(params, buffers, state, X, y)  # not donated (the loop keeps them): new ones
    assert not any(a is b for a, b in zip(params, mine))
    net._commit(params, buffers)  # now the network holds them, and a careless loop donates them anyway
    held = [p.copy() for p in params]
    params, buffers, state, _ = step(params, buffers, state, X, y, donate=True)
    assert not any(a is b for a, b in zip(params, net._params()))
    for a, b in zip(net._params(), held):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(committed, held))  # it did train


class _Exploding(xpnet.Adam):
    """Adam whose learning rate becomes huge after ``calm`` steps (its own
    step count, which compiled steps replay on the host): the run diverges
    in the middle of an epoch, after in-place steps."""

    def __init__(self, calm: int) -> None:
        super().__init__(0.01)
        self.calm = calm

    def step(self, params, grads, state, decay=None):
        self.lr = 0.01 if state["t"] < self.calm else 1e30
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
    monkeypatch.setattr(TrainStep, "_donate", lambda self, params, state, donate, held: (params, state))
    monkeypatch.setattr(_trainstep, "_own_arrays", lambda arrays, held: False)  # nor into the gradients
    pure = xpnet.MLP([3, 4, 1], backend="numpy", dtype="float64", seed=0)
    pure.fit(X, y, **kw)
    for a, b in zip(net._params(), pure._params()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend_name, compile_mode", [("numpy", False), ("numpy", True), ("torch", False)])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_full_batch_fit_reuses_superseded_epochs_never_committed_ones(backend_name, compile_mode, opt, monkeypatch):
    """Full batch, a report every few epochs: the weights of the epochs a
    report passes over become later epochs' arrays (no fresh memory per
    epoch, which made malloc return and refault pages), while weights ever
    committed to the network are never written again; and the weights equal
    those of a run without reuse, to the bit."""
    if backend_name == "torch" and try_import("torch") is None:
        pytest.skip("torch is not installed")
    from xpnet import _pending
    from xpnet.network import Network

    X, y = _regression(n=16)
    kw = dict(loss="mse", optimizer=opt, lr=0.01, epochs=40, batch_size=None, seed=1, compile=compile_mode)
    monkeypatch.setattr(_pending, "EVERY", 8)
    epochs, committed = [], []
    add, commit = _pending.PendingEpochs.add, Network._commit
    monkeypatch.setattr(
        _pending.PendingEpochs, "add", lambda self, f, p, b: epochs.append(list(p)) or add(self, f, p, b)
    )
    monkeypatch.setattr(Network, "_commit", lambda self, p, b: committed.append(
        (len(epochs), list(p), [host(a).copy() for a in p])) or commit(self, p, b))  # fmt: skip
    backend = xpnet.get_backend("torch", "cpu") if backend_name == "torch" else backend_name  # CUDA: pure updates
    net = xpnet.MLP([3, 8, 1], backend=backend, dtype="float64", seed=0)
    net.fit(X, y, **kw)
    seen = [{id(a) for a in params} for params in epochs]
    assert any(seen[i] & seen[j] for i in range(len(seen)) for j in range(i + 1, len(seen)))  # reused
    for at, arrays, values in committed:
        later = set().union(*seen[at:]) if seen[at:] else set()
        assert not {id(a) for a in arrays} & later  # a committed array is never an epoch's again
        for a, v in zip(arrays, values):
            np.testing.assert_array_equal(host(a), v)
    monkeypatch.setattr(TrainStep, "reuse", lambda self, arrays: None)
    fresh = xpnet.MLP([3, 8, 1], backend=backend, dtype="float64", seed=0)
    fresh.fit(X, y, **kw)
    for a, b in zip(net._params(), fresh._params()):
        np.testing.assert_array_equal(host(a), host(b))


# -- compiled steps: fit(compile=...) -----------------------------------------------

COMPILED_OPTIMIZERS = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
]


def _classification(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def _fit_twice(backend, opt_spec, compile_modes=(False, True), **kw):
    X, y = _classification()
    out = []
    for mode in compile_modes:
        net = xpnet.MLP([4, 8, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)
        hist = net.fit(X, y, loss="cross_entropy", optimizer=get_optimizer(opt_spec), compile=mode, seed=0,
                       validation_data=(X[:10], y[:10]), **kw)  # fmt: skip
        out.append((net, hist))
    return out


@pytest.mark.parametrize(("name", "settings"), COMPILED_OPTIMIZERS, ids=[n for n, _ in COMPILED_OPTIMIZERS])
@pytest.mark.parametrize("batch_size", [7, None])
def test_compiled_training_equals_eager_to_rounding(backend, name, settings, batch_size):
    """fit(compile=True) (jax.jit on JAX, a CUDA graph on torch with CUDA,
    fused kernels on CuPy, eager elsewhere) trains to the eager weights and
    History; 40 rows in batches of 7 leave a short last batch (a second
    trace or graph)."""
    (eager, h0), (compiled, h1) = _fit_twice(backend, {"name": name, "config": settings}, epochs=3,
                                             batch_size=batch_size)  # fmt: skip
    for a, b in zip(compiled._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-9)
    np.testing.assert_allclose(h1.val_loss, h0.val_loss, rtol=1e-9)


def test_the_step_fit_compiles_per_backend(backend):
    net = xpnet.MLP([4, 3], backend=backend, dtype="float64", seed=0)
    opt = xpnet.Adam()
    step = _compile.training_step(net, get_loss("mse"), opt, None, Context(training=True), opt.init_state(net._params()))
    on_cuda = backend.name == "torch" and getattr(backend.device, "type", "") == "cuda"
    want = {"jax": "jax.jit"}.get(backend.name, "cuda graph" if on_cuda else "eager")
    if backend.name == "numpy" and type(backend) is xpnet.Backend:  # NumPy's own arrays (not the read-only fixture's)
        want = "numpy tape"
    if backend.name == "cupy" and _compile._torch_cuda():  # CuPy's step as a torch graph where torch has CUDA
        want = _graphstep.BridgedGraphStep.mode
    assert step.mode == want
    off = _compile.training_step(net, get_loss("mse"), opt, None, Context(training=True), compile=False)
    assert off.mode == "eager" and not off.fuse


@pytest.mark.parametrize("bad", ["yes", 1, None, "jit"])
def test_compile_must_be_auto_true_or_false(bad):
    with pytest.raises(ValueError, match="compile must be"):
        xpnet.MLP([2, 1], backend="numpy").fit(np.zeros((2, 2)), np.zeros(2), compile=bad)


def test_host_scalars_replay_the_optimizers_scalars():
    """One call on no parameters gives the scalars a real step would use
    and advances the host state (Adam's step count) as a real step does."""
    opt = xpnet.Adam(0.01, beta1=0.8)
    seen, host_state = _kernels.host_scalars(opt, {"t": 4, "m": [], "v": []})
    assert host_state == {"t": 5}
    assert seen[:2] == [0.8, 1.0 - 0.8] and seen[4] == pytest.approx(0.01 / (1 - 0.8**5))
    assert _kernels.host_scalars(xpnet.SGD(0.1), {})[0] == [0.1, 0.0, 0.0]


# -- the CUDA-graph step's bookkeeping, on torch's CPU with a stand-in graph ------


class IllegalInCapture(AssertionError):
    """An operation a CUDA graph capture refuses (cudaErrorStreamCaptureInvalidated on the GPU)."""


#: Tensor methods that read a value on the host (a synchronisation; inside a
#: CUDA capture the next call fails "operation failed due to a previous error during capture").
_HOST_READS = {"item", "tolist", "numpy", "cpu", "nonzero", "masked_select", "unique", "unique_consecutive",
               "__bool__", "__float__", "__int__", "__index__", "__complex__", "__array__", "__format__", "__repr__"}
#: Functions that copy host data (a Python number or list, an ndarray) to the device from pageable memory.
_HOST_COPIES = {"tensor", "as_tensor", "asarray", "new_tensor"}


def _host_index(index):
    """Does ``index`` need a host copy or a synchronisation (a list, an ndarray, a boolean mask)?"""
    import torch

    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) or (isinstance(p, torch.Tensor) and p.dtype == torch.bool)
               for p in parts)  # fmt: skip


def _strict_capture():
    """A torch function mode raising :class:`IllegalInCapture` on what a CUDA
    capture forbids, so the CPU stand-in graph sees what the GPU would:
    host reads, host data copied in (the first argument not a tensor), list
    or mask indexing; ``torch.from_numpy`` and ``torch.cuda.synchronize`` do
    not pass through a mode, and are replaced while it is on."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Strict(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in _HOST_READS:
                raise IllegalInCapture(f"{name} reads a tensor on the host inside a CUDA graph capture")
            data = args[1 if name == "new_tensor" else 0] if len(args) > (name == "new_tensor") else None
            if name in _HOST_COPIES and not isinstance(data, torch.Tensor):
                raise IllegalInCapture(f"torch.{name} copies host data to the device inside a CUDA graph capture")
            if name in ("__getitem__", "__setitem__", "index_put", "index_put_") and _host_index(args[1]):
                raise IllegalInCapture(f"{name} with {type(args[1]).__name__} index needs the host in a capture")
            return func(*args, **(kwargs or {}))

    def refuse(what):
        def call(*args, **kwargs):
            raise IllegalInCapture(f"{what} inside a CUDA graph capture")

        return call

    @contextlib.contextmanager
    def strict():
        saved = torch.from_numpy, torch.cuda.synchronize
        torch.from_numpy, torch.cuda.synchronize = refuse("torch.from_numpy"), refuse("torch.cuda.synchronize")
        try:
            with Strict():
                yield
        finally:
            torch.from_numpy, torch.cuda.synchronize = saved

    return strict()


class _FakeGraph:
    """What GraphStep needs of torch.cuda.CUDAGraph, on the CPU: capture
    leaves the static tensors as they were (CUDA capture runs nothing);
    replay runs the captured body again. Both run it strictly
    (:func:`_strict_capture`): an operation a CUDA capture refuses fails
    here as on the GPU, where the CPU tests would not see it otherwise."""

    captures = 0

    def capture(self, fn, static):
        snapshot = _graphstep._snapshot(static)
        with _strict_capture():
            fn()
        _graphstep._restore(static, snapshot)
        self.fn = fn
        type(self).captures += 1

    def replay(self):
        with _strict_capture():
            self.fn()


def test_a_cuda_capture_collects_dead_cycles_first_and_none_while_it_captures(monkeypatch):
    """A garbage collection inside a CUDA capture runs the finalizers of
    objects that died in reference cycles earlier (an earlier fit's
    CUDAGraph, kept by a failed test's traceback): their CUDA calls fail the
    capture, which then fails at an innocent operation of the step (the
    likely cause of the H200 run's scikit-learn digits failure: that test
    passes alone there). torch no longer collects before a capture: the
    graph step collects, then holds the collector. torch.cuda stands in."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    capturing, seen = [False], []

    class Stream:
        def wait_stream(self, other):
            pass

    @contextlib.contextmanager
    def graph(cuda_graph):
        capturing[0] = True
        try:
            yield
        finally:
            capturing[0] = False

    for name, value in [("Stream", Stream), ("current_stream", Stream), ("CUDAGraph", object), ("graph", graph),
                        ("stream", lambda s: contextlib.nullcontext())]:  # fmt: skip
        monkeypatch.setattr(torch.cuda, name, value)

    class DeadGraph:  # its finalizer would call CUDA
        def __del__(self):
            seen.append(("finalized while capturing", capturing[0]))

    def body():
        if capturing[0]:
            seen.append(("collector on while capturing", gc.isenabled()))

    static = {"params": [torch.zeros(2)], "buffers": [], "state": {}}
    was = gc.isenabled()
    try:
        gc.disable()  # the cycle waits for a collection, which could come at any allocation
        dead = DeadGraph()
        dead.cycle = dead
        del dead
        _graphstep._CudaGraph().capture(body, static)
        assert seen[0] == ("finalized while capturing", False)
        gc.enable()
        seen.clear()
        _graphstep._CudaGraph().capture(body, static)
        assert seen == [("collector on while capturing", False)] and gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def _CPU_TORCH():  # noqa: N802 - a constant, made when torch is known to be there
    """The stand-in tests run on torch's CPU, also on a machine with CUDA
    (where torch's default device would be the GPU)."""
    return xpnet.get_backend("torch", "cpu")


def _with_fake_graph(monkeypatch):
    def factory(net, loss, opt, decay, ctx, state=None, compile="auto"):
        eager = TrainStep(net, loss, opt, decay, ctx, state)
        return eager if compile is False else _graphstep.GraphStep(eager, _FakeGraph)

    monkeypatch.setattr("xpnet.training.training_step", factory)


def test_the_stand_in_graph_refuses_what_a_cuda_capture_refuses():
    """A host read or a host-to-device copy inside a CUDA capture fails the
    capture on the GPU (the next call: "operation failed due to a previous
    error during capture"); the stand-in refuses them too, and lets the
    device's own factories and Python numbers as kernel arguments pass."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    t = torch.ones(3, dtype=torch.float64)
    s = t.sum()
    refused = [s.item, lambda: bool(s), lambda: float(s), lambda: [1, 2][s.long()], t.tolist, t.numpy, t.cpu,
               lambda: torch.tensor([1.0]), lambda: torch.as_tensor(np.ones(2)), lambda: t.new_tensor([1.0]),
               lambda: torch.from_numpy(np.ones(2)), lambda: t[[0, 1]], lambda: t[t > 0], lambda: f"{s:.2f}",
               lambda: torch.cuda.synchronize(), t.nonzero]  # fmt: skip
    for fn in refused:
        with pytest.raises(IllegalInCapture):
            _FakeGraph().capture(fn, {"params": [t], "buffers": [], "state": {}})
    allowed = [lambda: torch.zeros(2), lambda: torch.full((2,), 3.0), lambda: t * 2.0, lambda: t[1:],
               lambda: torch.clamp(t, min=1e-9), lambda: torch.as_tensor(t), lambda: t.new_zeros(2), lambda: len(t)]
    for fn in allowed:
        _FakeGraph().capture(fn, {"params": [t], "buffers": [], "state": {}})
    assert torch.from_numpy(np.ones(1)).shape == (1,)  # put back after the capture


@pytest.mark.parametrize(("name", "settings"), COMPILED_OPTIMIZERS, ids=[n for n, _ in COMPILED_OPTIMIZERS])
def test_graph_step_trains_like_eager(monkeypatch, name, settings):
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)
    _FakeGraph.captures = 0
    (eager, h0), (graphed, h1) = _fit_twice(_CPU_TORCH(), {"name": name, "config": settings}, epochs=3, batch_size=7)
    assert _FakeGraph.captures == 2  # a full batch of 7 rows and the short last one
    for a, b in zip(graphed._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)


def test_a_graph_step_trains_on_from_weights_a_callback_wrote_in_place(monkeypatch):
    """A callback's in-place edit (``w.mul_(0.5)``) is the next epoch's
    start, as eagerly: the graph took the weights it had handed out at the
    epoch's end as equal to its static ones, and trained on without it."""
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)

    class Halve(xpnet.Callback):
        def on_train_begin(self, network):
            self.net = network

        def on_epoch_end(self, epoch, logs):
            self.net.layers[0].weights.mul_(0.5)

    (eager, h0), (graphed, h1) = _fit_twice(_CPU_TORCH(), {"name": "adam", "config": {"lr": 0.01}}, epochs=3,
                                            batch_size=7, callbacks=[Halve()])  # fmt: skip
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)
    for a, b in zip(graphed._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_a_dropout_steps_key_words_reach_a_cuda_graph_through_pinned_memory(monkeypatch):
    """On CUDA the key words are copied from pinned host memory; torch
    refuses to pin a tensor made by torch.tensor(ndarray, pin_memory=True),
    which failed every Dropout fit of the H200 run. Pinning stands in as a
    copy here (this CPU has no CUDA to pin for)."""
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *args, **kwargs: self.clone())

    class CudaLike:  # a static tensor as GraphStep sees one on the GPU
        is_cuda = True

        def __init__(self):
            self.tensor = torch.zeros((2, 4), dtype=torch.int64)

        def copy_(self, src, non_blocking=False):
            self.tensor.copy_(src, non_blocking=non_blocking)

    words = np.array([[2807685155, 3543534580, 1, 2], [458478852, 3777423771, 3, 4]], dtype=np.uint32)
    dst = CudaLike()
    _graphstep._TorchArrays.put_words(dst, words)
    assert dst.tensor.tolist() == words.astype(np.int64).tolist()


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
def test_a_weighted_graph_step_is_captured_and_trains_like_eager(monkeypatch, weights):
    """Row weights enter the graph as a static input like X and T (each
    minibatch's share, scaled to average 1 inside it): the weighted step
    is captured, once per batch shape, not run eagerly."""
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)
    _FakeGraph.captures = 0
    w = {"sample_weight": np.random.default_rng(3).uniform(0.1, 3.0, size=40),
         "class_weight": {0: 0.5, 1: 2.0, 2: 1.5}}[weights]  # fmt: skip
    (eager, h0), (graphed, h1) = _fit_twice(_CPU_TORCH(), {"name": "adam", "config": {"lr": 0.01}}, epochs=3,
                                            batch_size=7, **{weights: w})  # fmt: skip
    assert _FakeGraph.captures == 2  # a full batch of 7 rows and the short last one
    for a, b in zip(graphed._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("bridged", [False, True], ids=["torch", "bridged"])
def test_a_dropout_graph_step_is_captured_and_trains_like_eager(monkeypatch, weighted, bridged):
    """A Dropout step's random source enters the graph as its key words (a
    static input, int64 on torch): captured once per batch shape, the same
    masks as the eager step's (torch's int32 words; bridged, NumPy's uint32
    ones outside)."""
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    _with_bridged_fake_graph(monkeypatch) if bridged else _with_fake_graph(monkeypatch)
    _FakeGraph.captures = 0
    X, y = _classification()
    w = np.random.default_rng(3).uniform(0.1, 3.0, size=40) if weighted else None
    fitted = []
    for compile in (False, True):
        layers = [xpnet.Dense(4, 8, "relu"), xpnet.Dropout(0.3), xpnet.Dense(8, 3, "softmax")]
        net = xpnet.Network(layers, backend="numpy" if bridged else _CPU_TORCH(), dtype="float64", seed=0)
        hist = net.fit(X, y, loss="cross_entropy", optimizer="adam", compile=compile, seed=0, epochs=3, batch_size=7,
                       sample_weight=w)  # fmt: skip
        fitted.append((net, hist))
    assert _FakeGraph.captures == 2  # a full batch of 7 rows and the short last one
    (eager, h0), (graphed, h1) = fitted
    for a, b in zip(graphed._params(), eager._params()):
        assert type(a) is type(b)
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)


@xpnet.register
class StepReadingLayer(xpnet.layers.Layer):
    """A layer that reads its random source's step index, which a graph's key
    words do not hold (test_tape.py uses it too)."""

    name = "test_compile_step_scale"
    uses_rng = True

    def forward(self, xp, params, buffers, X, ctx):
        return (X * (1.0 + ctx.rng.step % 2) if ctx.training and ctx.rng is not None else X), None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY, []


def test_a_layer_reading_its_random_sources_step_runs_eagerly_beside_a_graph(monkeypatch):
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)
    _FakeGraph.captures = 0
    X, y = _classification()
    fitted = []
    for compile in (False, True):
        net = xpnet.Network([xpnet.Dense(4, 8, "tanh"), StepReadingLayer(), xpnet.Dense(8, 3, "softmax")],
                            backend=_CPU_TORCH(), dtype="float64", seed=0)  # fmt: skip
        net.fit(X, y, loss="cross_entropy", compile=compile, seed=0, epochs=2, batch_size=8)
        fitted.append(net)
    assert _FakeGraph.captures == 0
    for a, b in zip(fitted[0]._params(), fitted[1]._params()):
        np.testing.assert_array_equal(host(a), host(b))


def test_compile_true_says_a_layer_reading_its_random_sources_step_runs_eagerly_beside_a_graph(monkeypatch):
    """compile=True says why the step runs eagerly, as on NumPy and JAX: the
    CUDA graph fell back without a word. 'auto' stays quiet."""
    if try_import("torch") is None:
        pytest.skip("torch is not installed")

    def factory(net, loss, opt, decay, ctx, state=None, compile="auto"):
        eager = TrainStep(net, loss, opt, decay, ctx, state)
        return _graphstep.GraphStep(eager, _FakeGraph, warn=compile is True)

    monkeypatch.setattr("xpnet.training.training_step", factory)
    X, y = _classification()

    def fit(compile):
        net = xpnet.Network([xpnet.Dense(4, 8, "tanh"), StepReadingLayer(), xpnet.Dense(8, 3, "softmax")],
                            backend=_CPU_TORCH(), dtype="float64", seed=0)  # fmt: skip
        net.fit(X, y, loss="cross_entropy", compile=compile, seed=0, epochs=2, batch_size=8)

    with pytest.warns(RuntimeWarning, match=r"cannot capture this step in a CUDA graph \(.*step index") as got:
        fit(True)
    assert len(got) == 1 and got[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit("auto")


def test_graph_step_never_changes_what_the_loop_keeps(monkeypatch):
    """The graph updates its static tensors in place: arrays returned with
    ``keep`` (an epoch's end) and arrays passed in (the network's) are
    copies the next replays leave alone; the optimizer's host step count
    advances once per step."""
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    X, y = _regression()
    net = xpnet.MLP([3, 4, 1], backend="torch", dtype="float64", seed=0)
    Xd, yd = net.backend.asarray(X, "float64"), net.backend.asarray(y, "float64")
    opt = xpnet.Adam(0.01)
    params, buffers = net._params(), net._buffers()
    committed = [host(p).copy() for p in params]
    state = opt.init_state(params)
    step = _graphstep.GraphStep(TrainStep(net, get_loss("mse"), opt, None, Context(training=True), state), _FakeGraph)
    params, buffers, state, _ = step(params, buffers, state, Xd, yd, keep=True)
    kept = params
    kept_values = [host(p).copy() for p in kept]
    for _ in range(3):
        params, buffers, state, _ = step(params, buffers, state, Xd, yd, donate=True)
    assert state["t"] == 4
    for a, b in zip(kept, kept_values):
        np.testing.assert_array_equal(host(a), b)
    for a, b in zip(net._params(), committed):
        np.testing.assert_array_equal(host(a), b)
    assert not np.array_equal(host(params[0]), kept_values[0])


def test_nan_guard_with_a_graph_step(monkeypatch):
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)
    X, y = _regression(n=32)
    kw = dict(loss="mse", epochs=3, batch_size=4, shuffle=False)
    net = xpnet.MLP([3, 8, 1], backend="torch", dtype="float32", seed=0)
    with pytest.raises(FloatingPointError, match="epoch 2"):
        net.fit(X, y, optimizer=_Exploding(calm=8 + 3), **kw)
    twin = xpnet.MLP([3, 8, 1], backend="torch", dtype="float32", seed=0)
    twin.fit(X, y, optimizer=_Exploding(calm=10**9), **(kw | {"epochs": 1}))
    for a, b in zip(net._params(), twin._params()):
        np.testing.assert_array_equal(host(a), host(b))


def test_a_torch_training_step_moves_no_python_number_to_the_device(monkeypatch):
    """On a GPU, array-api-compat's ``torch.asarray(0.0, device=...)`` for
    ``maximum(v, 0.0)`` is a host-to-device copy that waits for the stream
    and cannot be captured in a CUDA graph: xpnet's torch namespace passes
    numbers as kernel arguments. Counted here, on the CPU, for every
    activation and loss a step may use."""
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    from array_api_compat.torch import _aliases

    moved = []
    original = _aliases._scalar_to_tensor

    def spy(x, other):
        if isinstance(x, int | float):
            moved.append(x)
        return original(x, other)

    monkeypatch.setattr(_aliases, "_scalar_to_tensor", spy)
    X, y = _classification()
    hidden = ["relu", "sigmoid", "tanh", "leaky_relu", "gelu", "elu", "softplus", "silu"]
    layers = [xpnet.Dense(4, 6, hidden[0])] + [xpnet.Dense(6, 6, a) for a in hidden[1:]]
    for out, loss, target in (("softmax", "cross_entropy", y), ("sigmoid", "binary_cross_entropy", y[:, None] > 0),
                              ("identity", "huber", y[:, None] * 1.0)):  # fmt: skip
        net = xpnet.Network([*(type(l)(l.n_in, l.n_out, l.activation) for l in layers), xpnet.Dense(6, 3 if out ==
                             "softmax" else 1, out)], backend="torch", seed=0)  # fmt: skip
        net.fit(X, target * 1.0 if loss != "cross_entropy" else target, loss=loss,
                optimizer=xpnet.RMSprop(centered=True), epochs=1, batch_size=8)  # fmt: skip
    assert moved == []


def test_cupy_updates_run_as_one_fused_kernel_each(backend):
    """On CuPy every optimizer's update is one generated kernel per
    parameter, equal to the unfused operations (a failed build would warn,
    which the suite turns into an error). Runs where CuPy has a GPU
    (tools/gpu_check)."""
    if backend.name != "cupy":
        pytest.skip("CuPy only: the fused kernels need a GPU")
    for name, settings in TORCH_CASES:
        p, gs = two_layer_problem(steps=3)
        opt = get_optimizer({"name": name, "config": settings})
        fused = _donated_steps(backend, opt, p, gs, donate=False)
        with _kernels._mode(fuse=False):
            plain = _donated_steps(backend, opt, p, gs, donate=False)
        for a, b in zip(fused, plain):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert _fused._cupy_elementwise.cache_info().currsize >= len({n for n, _ in TORCH_CASES})
    assert not _fused._CUPY_FAILED


class _OnDevice(np.ndarray):
    """A NumPy array that, like a CuPy array, has a device to enter."""

    @property
    def device(self):
        return contextlib.nullcontext()


def _as_if_on_cupy(monkeypatch, fused):
    """Route :func:`update` as for CuPy arrays, with ``fused`` standing in
    for the generated kernel: the CuPy path's Python runs on the CPU."""
    monkeypatch.setattr(_kernels, "_namespace", lambda a: (np, True))
    monkeypatch.setattr(_kernels, "compat", types.SimpleNamespace(is_cupy_array=lambda a: True))
    monkeypatch.setattr(_kernels, "_cupy_kernel", lambda kernel, dtype: fused)
    monkeypatch.setattr(_fused, "_CUPY_FAILED", set())


def test_the_cupy_route_calls_the_fused_kernel_with_typed_scalars(monkeypatch):
    """The CuPy path's own Python, run on the CPU with a stand-in kernel (on
    the H100 a wrong call into it failed every CuPy update; the CPU suite had
    no test that ran it)."""
    kernel = Kernel(lambda xp, p, g, lr: (p - lr * g,), 2, 1, "sgd_test")
    calls = []

    def fused(p, g, lr):
        calls.append(type(lr))
        return kernel.fn(np, p, g, lr)[0]

    _as_if_on_cupy(monkeypatch, fused)
    params = [np.arange(3.0).view(_OnDevice)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (new,) = update([kernel], [params, [np.full(3, 2.0)]], (0.5,))
    assert calls == [np.float64]
    np.testing.assert_array_equal(new[0], [-1.0, 0.0, 1.0])


def test_a_cupy_kernel_that_fails_to_launch_falls_back_to_its_operations(monkeypatch):
    kernel = Kernel(lambda xp, p, g, lr: (p - lr * g,), 2, 1, "sgd_test")

    def fused(*args):
        raise RuntimeError("no launch")

    _as_if_on_cupy(monkeypatch, fused)
    params = [np.arange(3.0).view(_OnDevice)]
    with pytest.warns(RuntimeWarning, match="sgd_test .*no launch.*separate operations"):
        (new,) = update([kernel], [params, [np.full(3, 2.0)]], (0.5,))
    np.testing.assert_array_equal(new[0], [-1.0, 0.0, 1.0])
    assert ("sgd_test", "float64") in _fused._CUPY_FAILED


def test_without_cupy_no_launch_failure_is_a_device_failure(monkeypatch):
    """The fallback's own test runs where CuPy is not installed (a fresh
    ``pip install '.[test]'``): telling device failures apart must not need it."""
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    assert _fused._device_failure(RuntimeError("no launch")) is False


def test_a_device_failure_in_a_fused_launch_is_raised_not_hidden(monkeypatch):
    """Out of memory (or an earlier launch's CUDA error) is not the fused
    kernel's fault: running it unfused would need more memory, and turning
    fusion off for good would hide the real error."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (its error classes are the test's)")
    kernel = Kernel(lambda xp, p, g, lr: (p - lr * g,), 2, 1, "sgd_oom_test")

    def fused(*args):
        raise cupy.cuda.memory.OutOfMemoryError(1 << 30, 1 << 20, 0)

    _as_if_on_cupy(monkeypatch, fused)
    with pytest.raises(cupy.cuda.memory.OutOfMemoryError):
        update([kernel], [[np.arange(3.0).view(_OnDevice)], [np.full(3, 2.0)]], (0.5,))
    assert not _fused._CUPY_FAILED


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_source_spells_infinite_and_nan_constants_in_c(dtype, tmp_path):
    """``repr`` gives ``inf``/``nan``, which are not C: NVRTC would refuse the kernel."""
    kernel = Kernel(lambda xp, a: (xp.minimum(a, float("inf")), xp.maximum(a, float("-inf")) + 0.0 * float("nan")),
                    1, 0, "nonfinite_test")  # fmt: skip
    a = np.array([1.0, -2.0, 3.0], dtype=dtype)
    got = _c_kernel(kernel, dtype, tmp_path)([a], [])
    want = kernel.fn(np, a)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_generated_maximum_and_minimum_propagate_nan_as_numpy(tmp_path):
    kernel = Kernel(lambda xp, a, b: (xp.maximum(a, 0.0) + b, xp.minimum(a, b)), 2, 0, "nan_test")
    a = np.array([np.nan, -1.0, 2.0, 1.0])
    b = np.array([1.0, np.nan, 0.5, 3.0])
    got = _c_kernel(kernel, "float64", tmp_path)([a, b], [])
    want = kernel.fn(np, a, b)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_an_optimizer_outside_the_kernels_runs_eagerly():
    """A custom optimizer's numbers (a schedule, a step count) would be
    frozen into a traced or captured step: fit runs it eagerly."""

    class Halving(xpnet.Optimizer):
        name = "halving_test"

        def step(self, params, grads, state, decay=None):
            return [p - 0.5 * g for p, g in zip(params, grads)], state

    net = xpnet.MLP([4, 3], backend="numpy", seed=0)
    step = _compile.training_step(net, get_loss("mse"), Halving(), None, Context(training=True), {})
    assert not _compile._replayable(Halving(), {}) and step.mode == "eager"
    assert not _compile._replayable(_Exploding(3), {"t": 0, "m": [], "v": []})  # a subclass: not vouched for
    assert _compile._replayable(xpnet.AdamW(), {"t": 0, "m": [], "v": []})

    class Vouched(_Exploding):
        compilable = True

        def step(self, params, grads, state, decay=None):
            return super().step(params, grads, state, decay)

    assert _compile._replayable(Vouched(3), {"t": 0, "m": [], "v": []})


@pytest.mark.parametrize("backend_name", ["numpy", "jax"])
def test_compile_true_that_cannot_compile_says_why_at_the_users_line(backend_name):
    """``compile=True`` asked for a compiled step by name; with an optimizer
    that does not vouch for replay, or Dropout, it ran eagerly in silence."""
    if backend_name == "jax":
        pytest.importorskip("jax", reason="jax is not installed")

    class Halving(xpnet.Optimizer):
        name = "halving_warn_test"

        def step(self, params, grads, state, decay=None):
            return [p - 0.5 * g for p, g in zip(params, grads)], state

    X = np.random.default_rng(0).normal(size=(12, 4))
    cases = [(xpnet.MLP([4, 3], backend=backend_name, seed=0), Halving(), "Halving does not declare compilable")]
    # Dropout compiles on both: a step's random key words are an input of JAX's program and NumPy's recording
    for net, opt, why in cases:
        with pytest.warns(RuntimeWarning, match=rf"xpnet: compile=True cannot compile this step \({why}") as caught:
            net.fit(X, X[:, :3], loss="mse", optimizer=opt, epochs=1, compile=True)
        assert {w.filename for w in caught} == {__file__}  # the user's fit call, not xpnet's inside
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            net.fit(X, X[:, :3], loss="mse", optimizer=opt, epochs=1)  # "auto": eager without a word


def test_compile_true_does_not_tell_an_optimizer_that_declares_compilable_it_does_not():
    """An optimizer with ``compilable = True`` whose rate never reaches
    ``update`` runs eagerly; compile=True's warning said "Baked does not
    declare compilable = True", contradicting the line before it."""
    from xpnet.optimizers import SGD

    class Baked(SGD):
        compilable = True

        def step(self, params, grads, state, decay=None):
            return [p - self.lr * g for p, g in zip(params, grads)], state

    X = np.random.default_rng(0).normal(size=(12, 4))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        xpnet.MLP([4, 3], backend="numpy", seed=0).fit(X, X[:, :3], loss="mse", optimizer=Baked(0.1), epochs=1,
                                                       compile=True)  # fmt: skip
    why = [str(w.message) for w in seen if "compile=True cannot compile this step" in str(w.message)]
    assert len(why) == 1 and "Baked declares compilable = True, but not every number" in why[0], why
    assert not any("does not declare compilable" in str(w.message) for w in seen)


@pytest.mark.parametrize("opt_spec", [{"name": "adam", "config": {"lr": 0.02}}, {"name": "sgd", "config": {"lr": 0.1}}])
def test_a_schedules_rate_reaches_the_compiled_step(backend, opt_spec):
    """A schedule gives each epoch an optimizer with another rate: the
    compiled step takes it as a scalar, so training equals eager's."""
    (eager, h0), (compiled, h1) = _fit_twice(backend, opt_spec, epochs=4, batch_size=10,
                                             lr_schedule={"name": "ExponentialLR", "config": {"gamma": 0.5}})  # fmt: skip
    for a, b in zip(compiled._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-9, atol=1e-12)
    assert h1.lr == h0.lr and h1.lr[-1] < h1.lr[0]


def test_a_schedules_rate_reaches_the_graph_step(monkeypatch):
    if try_import("torch") is None:
        pytest.skip("torch is not installed")
    _with_fake_graph(monkeypatch)
    spec = {"name": "adam", "config": {"lr": 0.02}}
    (eager, h0), (graphed, h1) = _fit_twice(_CPU_TORCH(), spec, epochs=4, batch_size=10,
                                            lr_schedule={"name": "ExponentialLR", "config": {"gamma": 0.5}})  # fmt: skip
    for a, b in zip(graphed._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_auto_replays_a_cuda_graph_only_where_it_pays():
    """On an H100 the CUDA graph made the large network's step 1.26x slower
    (its copies cost more than the launches it saves) and the small one's
    4.5x faster: "auto" graphs small networks only, True always."""
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from xpnet._compile import GRAPH_MAX_PARAMS, compiled_kind

    cuda = SimpleNamespace(name="torch", device=torch.device("cuda", 0))
    assert compiled_kind(cuda, "auto", 10_000) == "graph"
    assert compiled_kind(cuda, "auto", GRAPH_MAX_PARAMS + 1) is None
    assert compiled_kind(cuda, True, 37_000_000) == "graph"
    assert compiled_kind(cuda, False, 10) is None
    assert compiled_kind(SimpleNamespace(name="torch", device=torch.device("cpu")), True, 10) is None
    assert compiled_kind(SimpleNamespace(name="jax", device=None), "auto", 10**9) == "jax"
    assert compiled_kind(SimpleNamespace(name="cupy", device=0), True, 10, torch_cuda=False) is None


@pytest.mark.parametrize("shuffle", [True, False])
def test_jax_takes_each_minibatch_inside_one_program(shuffle):
    """On JAX every operation outside a program is a dispatch (about 0.25 ms
    on an H100) and a compile per new shape: the compiled step takes its
    rows and adds its loss inside the program, and an epoch's minibatches
    run as one program (a scan of the equal ones, then the short last), so
    a fit of 40 rows in batches of 16 compiles one program, whatever the
    epochs, runs no step alone, and trains as eager does."""
    pytest.importorskip("jax", reason="jax is not installed")
    _programs._JAX_PROGRAMS.clear()
    (eager, h0), (compiled, h1) = _fit_twice("jax", "sgd", epochs=3, batch_size=16, shuffle=shuffle)
    programs = [p for key, p in _programs._JAX_PROGRAMS.items() if key[0] not in ("inference", "figures")]
    assert len(programs) == 1
    step, rows, _, epoch = programs[0][:4]  # then the sizes it compiled for
    assert (epoch._cache_size(), rows._cache_size(), step._cache_size()) == (1, 0, 0)
    for a, b in zip(compiled._params(), eager._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-9)
    inference = [p for key, p in _programs._JAX_PROGRAMS.items() if key[0] == "inference"]
    assert len(inference) == 1 and inference[0][0]._cache_size() == 1  # the 10 validation rows: one program


# -- CuPy's step as a torch CUDA graph, through DLPack: NumPy and CPU torch stand in ------


def _with_bridged_fake_graph(monkeypatch):
    torch = pytest.importorskip("torch", reason="torch is not installed")

    def factory(net, loss, opt, decay, ctx, state=None, compile="auto"):
        eager = TrainStep(net, loss, opt, decay, ctx, state)
        if compile is False:
            return eager
        inner = type(net)._assemble(net.config(), _CPU_TORCH(), net.dtype,
                                    [torch.from_dlpack(p) for p in net._params()])  # fmt: skip
        return _graphstep.BridgedGraphStep(eager, inner, _FakeGraph, torch.from_dlpack, np.from_dlpack)

    monkeypatch.setattr("xpnet.training.training_step", factory)


@pytest.mark.parametrize(("name", "settings"), COMPILED_OPTIMIZERS, ids=[n for n, _ in COMPILED_OPTIMIZERS])
def test_bridged_graph_step_trains_like_eager(monkeypatch, name, settings):
    """The outer library's arrays (NumPy here, CuPy on a GPU) reach the
    torch graph as views and come back as views: the loop sees its own
    library only, and training equals eager to rounding."""
    _with_bridged_fake_graph(monkeypatch)
    _FakeGraph.captures = 0
    (eager, h0), (graphed, h1) = _fit_twice("numpy", {"name": name, "config": settings}, epochs=3, batch_size=7)
    assert _FakeGraph.captures == 2  # a full batch of 7 rows and the short last one
    for a, b in zip(graphed._params(), eager._params()):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-12)
    np.testing.assert_allclose(h1.val_loss, h0.val_loss, rtol=1e-12)


def test_bridged_graph_step_never_changes_what_the_loop_keeps(monkeypatch):
    """Each epoch's end keeps copies: later replays, which write the static
    tensors the loop's views share, leave every kept epoch as it was."""
    _with_bridged_fake_graph(monkeypatch)
    X, y = _classification()
    kept = []

    class Keep(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            kept.append([np.array(p) for p in net._params()])

    net = xpnet.MLP([4, 8, 3], "tanh", "softmax", backend="numpy", dtype="float64", seed=0)
    held = []
    net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=4, batch_size=7, seed=0,
            callbacks=[Keep(), type("Hold", (xpnet.Callback,), {"on_epoch_end": lambda s, e, l: held.append(net._params())})()])  # fmt: skip
    for snapshot, arrays in zip(kept, held):
        for a, b in zip(snapshot, arrays):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(kept[0][0], kept[-1][0])


def test_cupy_compiles_to_a_torch_graph_where_torch_has_cuda():
    from types import SimpleNamespace

    from xpnet._compile import GRAPH_MAX_PARAMS, compiled_kind

    cupy = SimpleNamespace(name="cupy", device=0)
    assert compiled_kind(cupy, "auto", 10_000, torch_cuda=True) == "bridge"
    assert compiled_kind(cupy, "auto", 10_000, torch_cuda=False) is None  # fused update kernels
    assert compiled_kind(cupy, "auto", GRAPH_MAX_PARAMS + 1, torch_cuda=True) is None
    assert compiled_kind(cupy, True, GRAPH_MAX_PARAMS + 1, torch_cuda=True) == "bridge"
    assert compiled_kind(cupy, False, 10, torch_cuda=True) is None


def test_a_step_updates_into_its_own_gradients_and_nothing_else():
    """Full-batch training passes parameters the loop keeps (never donated):
    a large parameter's new value goes into the gradient backprop just made
    (no fresh array; W1's update 2 x 32 us -> ~2 x 15 us). A gradient that is
    a held array (a custom layer may return its parameter: an L2 term's
    gradient) or a view of one is never written."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 300)), rng.normal(size=(50, 1))
    net = xpnet.MLP([300, 200, 1], backend="numpy", dtype="float64", seed=0)  # 60 000 weights: written in place
    loss, opt = get_loss("mse"), xpnet.SGD(0.01)
    step = TrainStep(net, loss, opt, None, Context(training=True), {})
    params = net._params()
    kept = [p.copy() for p in params]
    _, grads, _ = net._loss_and_grads(params, X, y, loss)
    expected = [p - 0.01 * g for p, g in zip(params, grads)]
    new, _ = step.update(params, grads, {})
    assert new[0] is grads[0]  # the large one: into its gradient
    for a, b in zip(new, expected):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(params, kept):
        np.testing.assert_array_equal(a, b)  # what the loop keeps is untouched
    for odd in ([params[0], *grads[1:]], [params[0][:, :], *grads[1:]]):  # a held parameter, a view of one
        _, fresh, _ = net._loss_and_grads(params, X, y, loss)
        odd = [odd[0], *fresh[1:]]
        new, _ = step.update(params, odd, {})
        assert new[0] is not odd[0]
        for a, b in zip(params, kept):
            np.testing.assert_array_equal(a, b)


class _UnregisteredDense(xpnet.Dense):
    """Keeps Dense's name: a network rebuilt from names would hold a Dense."""


def test_a_cupy_network_that_its_names_would_not_rebuild_is_not_bridged_to_torch():
    """The CuPy route's torch graph runs a torch network rebuilt from the
    config; with a component whose name leads to another class it would run
    that class's code, so the step stays eager (decided before any GPU call)."""
    net = xpnet.Network([_UnregisteredDense(3, 2)], backend="numpy", seed=0)
    eager = TrainStep(net, get_loss("mse"), get_optimizer("sgd"), None, Context(training=True))
    assert _graphstep.bridged_step(eager) is eager


def test_a_cupy_step_on_a_users_stream_is_not_bridged(monkeypatch):
    """The bridge orders CuPy's and torch's work only on the default stream."""
    monkeypatch.setattr(_graphstep, "_on_default_streams", lambda: False)
    net = xpnet.Network([xpnet.Dense(3, 2)], backend="numpy", seed=0)
    eager = TrainStep(net, get_loss("mse"), get_optimizer("sgd"), None, Context(training=True))
    assert _graphstep.bridged_step(eager) is eager


def _eager_and_auto_under_a_schedule(backend: str, make_opt) -> list[list[np.ndarray]]:
    """The weights after 3 epochs with ``compile=False`` and ``"auto"``
    under a decaying schedule; asserts that ``"auto"`` warned of a baked rate."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    runs = []
    for compile in (False, "auto"):
        net = xpnet.MLP([3, 4, 1], backend=backend, dtype="float64", seed=0)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            net.fit(X, y, optimizer=make_opt(), epochs=3, batch_size=5, compile=compile, seed=0,
                    lr_schedule=lambda e: 0.1 * 0.01**e)  # fmt: skip
        runs.append([np.asarray(p) for p in net._params()])
    baked = [w for w in seen if "declares compilable = True, but its lr never reaches" in str(w.message)]
    assert baked and all(w.filename == __file__ for w in baked)  # the caller's fit, not a line of xpnet
    return runs


def test_an_optimizer_that_says_compilable_but_bakes_its_rate_trains_eagerly_and_is_named():
    """Its schedule was ignored on JAX: every step used the first rate."""
    pytest.importorskip("jax", reason="jax is not installed: the JAX step is the one that would keep the rate")
    from xpnet.optimizers import SGD

    class Baked(SGD):
        compilable = True

        def step(self, params, grads, state, decay=None):
            return [p - self.lr * g for p, g in zip(params, grads)], state

    eager, auto = _eager_and_auto_under_a_schedule("jax", lambda: Baked(lr=0.1))
    for a, b in zip(auto, eager):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_an_optimizer_that_scales_by_its_rate_in_python_is_baked_too():
    """Some scalars through update, the rate in Python (``g * self.lr``):
    the compiled step kept the first rate, silently, on NumPy and JAX."""
    from xpnet._kernels import update
    from xpnet.optimizers import SGD, _per_parameter, _sgd_kernel

    class Scaled(SGD):
        compilable = True

        def step(self, params, grads, state, decay=None):
            grads = [g * self.lr for g in grads]
            kernels = _per_parameter(_sgd_kernel, params, decay, 0.0, True, False)
            new, v = update(kernels, [params, grads, state["velocity"]], (1.0, self.momentum, 0.0))
            return new, {"velocity": v}

    eager, auto = _eager_and_auto_under_a_schedule("numpy", lambda: Scaled(lr=0.1, momentum=0.5))
    for a, b in zip(auto, eager):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("holder", [_OutputWeighted, _WeightsInDict], ids=["attribute", "dict"])
@pytest.mark.parametrize("path", ["numpy tape", "torch graph"])
def test_a_recorded_step_trains_with_the_arrays_a_callback_gave_the_loss(path, holder, monkeypatch):
    """A recorded step (NumPy's tape; a CUDA graph, here the stand-in on
    torch's CPU) holds the loss's arrays as they were when it was made:
    after a callback gave the loss others between epochs, it trained on
    with the old ones (the tape noticed at its next check, if any). Its
    recordings are made again, and kept (no eager fallback, no warning)."""
    if path == "torch graph":
        pytest.importorskip("torch", reason="torch is not installed")
        _with_fake_graph(monkeypatch)
        backend = _CPU_TORCH()
    else:
        backend = xpnet.get_backend("numpy")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4)).astype(np.float32)
    Y = (X @ rng.normal(size=(4, 3))).astype(np.float32)
    runs, captures = [], []
    for compile, given in ((True, True), (False, True), (True, False)):
        net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
        loss = holder(backend.asarray(np.ones(3, np.float32)))
        before = _FakeGraph.captures
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            history = net.fit(X, Y, loss=loss, optimizer="sgd", epochs=3, batch_size=8, seed=0, compile=compile,
                              callbacks=[_NextWeights(loss, backend.asarray)] if given else [])  # fmt: skip
        runs.append(history.loss)
        captures.append(_FakeGraph.captures - before)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    if path == "torch graph":  # the stand-in replays the step's Python, which reads the loss as it is: counted
        assert captures[0] > captures[2] > 0, f"captures with other arrays given, and without: {captures}"
