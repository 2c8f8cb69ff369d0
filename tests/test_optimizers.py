"""Optimizers: pure updates matching reference formulas and torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_on, host, try_import

import xpnet
from xpnet.optimizers import get_optimizer


def params_and_grads(backend, seed=0):
    rng = np.random.default_rng(seed)
    p = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]
    gs = [[rng.normal(size=(3, 2)), rng.normal(size=(2,))] for _ in range(5)]
    return p, gs


def run(backend, opt, p, gs):
    params = [backend.asarray(a, "float64") for a in p]
    before = [host(a).copy() for a in params]
    state = opt.init_state(params)
    for g in gs:
        new, state = opt.step(params, [backend.asarray(a, "float64") for a in g], state)
        for a, b in zip(params, before):  # the old parameters are untouched
            np.testing.assert_array_equal(host(a), b)
        params, before = new, [host(a).copy() for a in new]
    for a in params:
        assert_on(a, backend, "float64")
    return [host(a) for a in params]


def test_sgd_matches_formula(backend):
    p, gs = params_and_grads(backend)
    got = run(backend, xpnet.SGD(0.1), p, gs)
    want = [a.copy() for a in p]
    for g in gs:
        want = [w - 0.1 * gi for w, gi in zip(want, g)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_momentum_matches_formula(backend):
    p, gs = params_and_grads(backend)
    got = run(backend, xpnet.SGD(0.1, momentum=0.9), p, gs)
    want, vel = [a.copy() for a in p], [np.zeros_like(a) for a in p]
    for g in gs:
        vel = [0.9 * v + gi for v, gi in zip(vel, g)]
        want = [w - 0.1 * v for w, v in zip(want, vel)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_adam_matches_formula(backend):
    p, gs = params_and_grads(backend)
    got = run(backend, xpnet.Adam(0.01), p, gs)
    want = [a.copy() for a in p]
    m = [np.zeros_like(a) for a in p]
    v = [np.zeros_like(a) for a in p]
    for t, g in enumerate(gs, 1):
        m = [0.9 * mi + 0.1 * gi for mi, gi in zip(m, g)]
        v = [0.999 * vi + 0.001 * gi**2 for vi, gi in zip(v, g)]
        want = [w - 0.01 * (mi / (1 - 0.9**t)) / (np.sqrt(vi / (1 - 0.999**t)) + 1e-8) for w, mi, vi in zip(want, m, v)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("which", ["sgd", "momentum", "adam"])
def test_matches_torch_optim(which):
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    p, gs = params_and_grads(None)
    tp = [torch.tensor(a, requires_grad=True) for a in p]
    topt = {"sgd": lambda: torch.optim.SGD(tp, lr=0.05), "momentum": lambda: torch.optim.SGD(tp, lr=0.05, momentum=0.9),
            "adam": lambda: torch.optim.Adam(tp, lr=0.05)}[which]()
    for g in gs:
        for t, gi in zip(tp, g):
            t.grad = torch.tensor(gi)
        topt.step()
    got = run(xpnet.get_backend("numpy"), get_optimizer(which, 0.05), p, gs)
    for a, t in zip(got, tp):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_float32_stays_float32(backend):
    params = [backend.asarray(np.ones((2, 2)), "float32")]
    grads = [backend.asarray(np.ones((2, 2)), "float32")]
    for opt in (xpnet.SGD(0.1), xpnet.SGD(0.1, 0.9), xpnet.Adam()):
        new, _ = opt.step(params, grads, opt.init_state(params))
        assert_on(new[0], backend, "float32")


def test_get_optimizer_names_and_objects():
    assert get_optimizer("sgd", 0.3) == xpnet.SGD(0.3)
    assert get_optimizer("Momentum", 0.3) == xpnet.SGD(0.3, momentum=0.9)
    assert get_optimizer("adam", 0.3) == xpnet.Adam(0.3)
    obj = xpnet.Adam(1e-4)
    assert get_optimizer(obj, 0.5) is obj
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'.*sgd, adam"):
        get_optimizer("nadam")


@pytest.mark.parametrize(("make", "match"), [
    (lambda: xpnet.SGD(0.0), "lr must be a positive"),
    (lambda: xpnet.SGD(-1.0), "lr must be a positive"),
    (lambda: xpnet.SGD(float("nan")), "lr must be a positive"),
    (lambda: xpnet.SGD(0.1, momentum=1.0), "momentum"),
    (lambda: xpnet.Adam(beta1=1.5), "beta1"),
    (lambda: xpnet.Adam(eps=0), "eps"),
])
def test_invalid_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_invalid_lr_type():
    with pytest.raises(TypeError, match="lr must be a positive number, got '0.1'"):
        xpnet.SGD("0.1")
