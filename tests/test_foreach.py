"""Updates over all parameters at once (torch's ``_foreach_*`` operations),
the eager update on CUDA: one launch per operation instead of one per
operation and parameter. On a GPU that launch count is the step's cost at
small and medium sizes; here the same code runs on the CPU, forced on, and
must give every optimizer's numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host, torch_dispatched
from test_optimizers import DECAY, TORCH_CASES, two_layer_problem

from xpnet._foreach import _foreach_applies
from xpnet._kernels import Kernel, _mode, update
from xpnet.optimizers import get_optimizer

torch = pytest.importorskip("torch", reason="the multi-tensor updates are torch's (pip install torch)")


def assert_same(a, b, on_cuda: bool, steps: int = 1) -> None:
    """Bit for bit on the CPU. On CUDA within a few roundings per step: a
    compiler may contract a multi-tensor functor's arithmetic (not yet run
    on a GPU)."""
    if on_cuda:
        np.testing.assert_allclose(a, b, rtol=4 * steps * np.finfo(a.dtype).eps, atol=1e-30)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def torch_backend():
    """torch on its default device: the CPU here, CUDA in ``tools/gpu_check``."""
    import xpnet

    return xpnet.get_backend("torch")


def steps(backend, opt, foreach: bool, n: int = 5) -> list[np.ndarray]:
    p, gs = two_layer_problem(steps=n)
    params = [backend.asarray(a, "float32") for a in p]
    state = opt.init_state(params)
    with _mode(foreach=foreach):
        for g in gs:
            params, state = opt.step(params, [backend.asarray(a, "float32") for a in g], state, decay=DECAY)
    return [host(a) for a in params]


@pytest.mark.parametrize(("name", "settings"), TORCH_CASES, ids=lambda x: x if isinstance(x, str) else
                         "-".join(f"{k}={v}" for k, v in x.items()))  # fmt: skip
def test_every_optimizer_gives_the_per_tensor_numbers_to_the_bit(torch_backend, name, settings):
    opt = get_optimizer({"name": name, "config": settings})
    for a, b in zip(steps(torch_backend, opt, True), steps(torch_backend, opt, False)):
        assert_same(a, b, "cuda" in str(torch_backend.device), steps=20)


def _every_operation(xp, a, b, c, s, t):
    """Each operation a kernel may use, numbers on either side (two outputs:
    a parameter's and a state's)."""
    u = (2.0 - a) * s + b / (1.5 + xp.sqrt(b * b)) - (-a) / t
    v = xp.maximum(a, 0.25) + xp.minimum(0.5, b) + xp.maximum(a, b) - xp.minimum(c, b) + 3.0 / (c * c + 1.0)
    return u - 1.0, v * t + s


def test_every_operation_of_a_kernel_matches_including_nan(torch_backend):
    kernel = Kernel(_every_operation, 3, 2, "every_operation")
    rng = np.random.default_rng(0)
    a, b, c = ([rng.normal(size=(3, 4)), rng.normal(size=(5,))] for _ in range(3))
    a[0][1, 2], b[1][3] = np.nan, np.nan  # maximum, minimum and clamp propagate NaN alike
    cols = [[torch_backend.asarray(x, "float64") for x in col] for col in (a, b, c)]
    with _mode(foreach=True):
        got = update([kernel, kernel], cols, (0.3, 1.7))
    with _mode(foreach=False):
        want = update([kernel, kernel], cols, (0.3, 1.7))
    for g, w in zip(got, want):
        for x, y in zip(g, w):
            assert_same(host(x), host(y), "cuda" in str(torch_backend.device))
    assert np.isnan(host(got[1][0])[1, 2]) and np.isnan(host(got[0][1])[3])


def test_an_sgd_step_is_two_operations_whatever_the_number_of_parameters(torch_backend):
    p, gs = two_layer_problem(steps=1)
    params = [torch_backend.asarray(a, "float32") for a in p]
    grads = [torch_backend.asarray(a, "float32") for a in gs[0]]
    opt = get_optimizer({"name": "sgd", "config": {"lr": 0.1}})
    with _mode(foreach=True), torch_dispatched() as ops:
        opt.step(params, grads, {}, decay=None)
    assert ops == {"_foreach_mul": 1, "_foreach_sub": 1}
    with _mode(foreach=False), torch_dispatched() as ops:
        opt.step(params, grads, {}, decay=None)
    assert sum(ops.values()) == 2 * len(params)


def test_only_cuda_tensors_with_host_scalars_take_it_unless_forced():
    cpu = torch.zeros(3)
    assert not _foreach_applies(cpu, None, (0.1,))
    assert _foreach_applies(cpu, True, (0.1, 2))
    assert not _foreach_applies(cpu, True, (torch.tensor(0.1),))  # a compiled step's scalars: per tensor
    assert not _foreach_applies(np.zeros(3), True, (0.1,))
    meta = torch.zeros(3, device="meta")
    assert not _foreach_applies(meta, None, (0.1,))


def test_cuda_tensors_take_it_by_default():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (tools/gpu_check runs this on one)")
    assert _foreach_applies(torch.zeros(3, device="cuda"), None, (0.1,))


@pytest.mark.parametrize("in_place_min", [None, 0], ids=["small-pure", "donated"])
def test_a_fit_with_it_equals_a_fit_without(torch_backend, in_place_min):
    """Both as a small network (pure updates) and with every array donated
    (what a large one gets: the multi-tensor path takes donated lists too)."""
    import xpnet

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    nets = []
    size = {} if in_place_min is None else {"in_place_min": in_place_min}
    for foreach in (True, False):
        net = xpnet.MLP([5, 40, 3], activation="relu", output_activation="softmax", backend=torch_backend, seed=2)
        with _mode(foreach=foreach, **size):
            net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.01, epochs=4, batch_size=16, seed=0)
        nets.append(net)
    for a, b in zip(nets[0].layers, nets[1].layers):
        assert_same(host(a.weights), host(b.weights), "cuda" in str(torch_backend.device), steps=1000)


def test_each_intermediate_is_dropped_after_its_last_use():
    from xpnet._foreach import _dead_after
    from xpnet.optimizers import _adam_kernel

    kernel = _adam_kernel(True, "coupled")
    tape = kernel.tape
    dead = _dead_after(kernel)
    outputs = {ref[1] for ref in tape.outputs}
    read = {ref[1] for _, refs in tape.ops for ref in refs if ref[0] == "v"}
    assert sorted(j for d in dead for j in d) == sorted(read - outputs)  # each once, outputs never
    for k, d in enumerate(dead):
        for j in d:
            assert any(r == ("v", j) for r in tape.ops[k][1])
            assert not any(("v", j) in refs for _, refs in tape.ops[k + 1 :])


def test_an_all_at_once_update_gets_no_donation_bookkeeping(torch_backend, monkeypatch):
    """It writes nothing in place, so the step neither wraps arrays as
    donated nor keeps spare arrays for it (per-step work for nothing)."""
    import xpnet
    from xpnet import _trainstep

    wrapped = []
    monkeypatch.setattr(_trainstep, "Donated", lambda *a: wrapped.append(a) or list(a[0]))
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, 5)), rng.integers(0, 3, 32)
    net = xpnet.MLP([5, 40, 3], activation="relu", output_activation="softmax", backend=torch_backend, seed=2)
    eager = dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, seed=0, compile=False)  # CUDA: no graph
    with _mode(foreach=True, in_place_min=0):
        net.fit(X, y, batch_size=None, **eager)
    assert wrapped == []
    with _mode(foreach=False, in_place_min=0):  # the per-tensor path does donate: the check above can fail
        net.fit(X, y, batch_size=8, **eager)
    assert wrapped
