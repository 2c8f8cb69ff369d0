"""Optimizers: pure updates matching reference formulas and torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_on, host, try_import

import xpnet
from xpnet.optimizers import OPTIMIZERS, AdamW, RMSprop, get_optimizer


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
    for opt in (xpnet.SGD(0.1), xpnet.SGD(0.1, 0.9), xpnet.Adam(), xpnet.SGD(0.1, 0.9, nesterov=True, weight_decay=0.1),
                xpnet.Adam(weight_decay=0.1), AdamW(), RMSprop(), RMSprop(momentum=0.5, centered=True, weight_decay=0.1)):
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
    (lambda: xpnet.SGD(0.1, weight_decay=-0.1), "weight_decay"),
    (lambda: xpnet.SGD(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: xpnet.Adam(weight_decay=-1.0), "weight_decay"),
    (lambda: AdamW(weight_decay=float("nan")), "weight_decay"),
    (lambda: AdamW(weight_decay=float("inf")), "weight_decay"),
    (lambda: RMSprop(alpha=1.0), "alpha"),
    (lambda: RMSprop(alpha=-0.1), "alpha"),
    (lambda: RMSprop(momentum=1.0), "momentum"),
    (lambda: RMSprop(eps=-1e-8), "eps"),
    (lambda: RMSprop(weight_decay=-1e-4), "weight_decay"),
    (lambda: RMSprop(lr=0.0), "lr"),
])
def test_invalid_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_invalid_lr_type():
    with pytest.raises(TypeError, match="lr must be a positive number, got '0.1'"):
        xpnet.SGD("0.1")
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        xpnet.SGD(0.1, 0.9, nesterov="yes")
    with pytest.raises(TypeError, match="centered must be True or False"):
        RMSprop(centered=1)


# -- torch.optim, 20 steps, two parameter groups -------------------------------

#: (xpnet name, xpnet settings); torch gets the same settings (betas as a pair).
TORCH_CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.05}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.5}),
    ("adamw", {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1}),
]
DECAY = [True, False, True, False]  # W1, b1, W2, b2: weights decay, biases do not


def two_layer_problem(steps=20, seed=3):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (4, 2), (2,)]
    p = [rng.normal(size=s) for s in shapes]
    gs = [[rng.normal(size=s) for s in shapes] for _ in range(steps)]
    return p, gs


def torch_steps(name, settings, p, gs, groups=True):
    """Parameters after ``len(gs)`` torch.optim steps; with ``groups`` the
    biases sit in a second parameter group without weight decay."""
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    kw = dict(settings)
    if "beta1" in kw or "beta2" in kw:
        kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "adamw": torch.optim.AdamW}[name]
    tp = [torch.tensor(a, requires_grad=True) for a in p]
    if groups:
        decayed = [t for t, d in zip(tp, DECAY) if d]
        plain = [t for t, d in zip(tp, DECAY) if not d]
        opt = cls([{"params": decayed}, {"params": plain, "weight_decay": 0.0}], **kw)
    else:
        opt = cls(tp, **kw)
    for g in gs:
        for t, gi in zip(tp, g):
            t.grad = torch.tensor(gi)
        opt.step()
    return [t.detach().numpy() for t in tp]


def xpnet_steps(backend, opt, p, gs, decay):
    """Parameters after ``len(gs)`` steps, checking at each one that nothing
    was written in place and that the state keeps its keys and a host ``t``."""
    params = [backend.asarray(a, "float64") for a in p]
    state = opt.init_state(params)
    keys = set(state)
    for g in gs:
        before = [host(a).copy() for a in params]
        old_state = {k: [host(a).copy() for a in v] for k, v in state.items() if isinstance(v, list)}
        params_new, state_new = opt.step(params, [backend.asarray(a, "float64") for a in g], state, decay=decay)
        for a, b in zip(params, before):
            np.testing.assert_array_equal(host(a), b)
        for k, arrays in old_state.items():
            for a, b in zip(state[k], arrays):
                np.testing.assert_array_equal(host(a), b)
        params, state = params_new, state_new
        assert set(state) == keys
        if "t" in state:
            assert type(state["t"]) is int
    for a, shape in zip(params, [np.shape(a) for a in p]):
        assert_on(a, backend, "float64", shape)
    return [host(a) for a in params]


@pytest.mark.parametrize(("name", "settings"), TORCH_CASES, ids=lambda x: x if isinstance(x, str) else
                         "-".join(f"{k}={v}" for k, v in x.items()))
def test_twenty_steps_match_torch_with_parameter_groups(backend, name, settings):
    p, gs = two_layer_problem()
    want = torch_steps(name, settings, p, gs)
    opt = get_optimizer({"name": name, "config": settings})
    assert type(opt)(**opt.config()) == opt
    got = xpnet_steps(backend, opt, p, gs, DECAY)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("name", "settings"), [c for c in TORCH_CASES if c[1].get("weight_decay", c[0] == "adamw")],
                         ids=lambda x: x if isinstance(x, str) else "-".join(f"{k}={v}" for k, v in x.items()))
def test_decay_none_decays_every_parameter_as_one_torch_group(name, settings):
    p, gs = two_layer_problem(steps=5)
    want = torch_steps(name, settings, p, gs, groups=False)
    got = xpnet_steps(xpnet.get_backend("numpy"), get_optimizer({"name": name, "config": settings}), p, gs, None)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    # ...and the mask matters: the biases differ when they are spared
    spared = xpnet_steps(xpnet.get_backend("numpy"), get_optimizer({"name": name, "config": settings}), p, gs, DECAY)
    assert not np.allclose(spared[1], got[1]) and not np.allclose(spared[3], got[3])


def test_adamw_shrinks_only_the_decayed_parameters(backend):
    """With zero gradients Adam's update is 0, so only the decoupled decay acts."""
    opt = AdamW(lr=0.1, weight_decay=0.5)
    params = [backend.asarray(np.full((2, 2), 2.0), "float64"), backend.asarray(np.ones(2), "float64")]
    zeros = [backend.asarray(np.zeros((2, 2)), "float64"), backend.asarray(np.zeros(2), "float64")]
    new, _ = opt.step(params, zeros, opt.init_state(params), decay=[True, False])
    np.testing.assert_array_equal(host(new[0]), np.full((2, 2), 2.0 * (1 - 0.1 * 0.5)))
    np.testing.assert_array_equal(host(new[1]), np.ones(2))


@pytest.mark.parametrize("decay", [[True], [True, False, True], [1, 0], "yes", [None, None]])
def test_malformed_decay_mask_is_refused(decay):
    params = [np.ones((2, 2)), np.ones(2)]
    for opt in (xpnet.SGD(0.1), xpnet.SGD(0.1, weight_decay=0.1), AdamW(), RMSprop(weight_decay=0.1)):
        with pytest.raises(ValueError, match="decay must be a sequence of 2 Python bools"):
            opt.step(params, params, opt.init_state(params), decay=decay)


MISFITS = {  # gradients for params of shapes (3, 2) and (2,)
    "one gradient too few": [(3, 2)],
    "one gradient too many": [(3, 2), (2,), (4,)],
    "a row for a matrix": [(2,), (2,)],  # broadcast into a (3, 2) update: silently
    "a matrix for a vector": [(3, 2), (3, 2)],  # made the (2,) bias a (3, 2) matrix
}


@pytest.mark.parametrize("misfit", sorted(MISFITS))
@pytest.mark.parametrize("opt", [xpnet.SGD(0.1), xpnet.SGD(0.1, momentum=0.9), xpnet.Adam(), AdamW(),
                                 RMSprop(centered=True, momentum=0.5)], ids=repr)  # fmt: skip
def test_gradients_that_do_not_fit_the_parameters_are_refused(backend, opt, misfit):
    """``step`` zipped parameters with gradients: one gradient too few
    returned one parameter fewer, one too many was dropped, and a gradient
    of another shape broadcast into a parameter of a new shape, all without
    a word (a hand-written loop's slip, which a plain ``step`` call allows)."""
    params = [backend.asarray(np.ones(shape), "float64") for shape in [(3, 2), (2,)]]
    grads = [backend.asarray(np.ones(shape), "float64") for shape in MISFITS[misfit]]
    with pytest.raises(ValueError, match=r"gradient") as err:
        opt.step(params, grads, opt.init_state(params))
    assert "(3, 2)" in str(err.value) or "2 parameters" in str(err.value)


def test_state_that_does_not_fit_the_parameters_is_refused(backend):
    params = [backend.asarray(np.ones(shape), "float64") for shape in [(3, 2), (2,)]]
    opt = xpnet.Adam()
    state = opt.init_state(params[:1])  # one parameter's moments
    with pytest.raises(ValueError, match="2 parameters"):
        opt.step(params, params, state)


def test_new_optimizers_by_name_and_config():
    assert get_optimizer("rmsprop", 0.3) == RMSprop(0.3)
    assert get_optimizer("AdamW", 0.3) == AdamW(0.3)
    assert AdamW().weight_decay == 0.01 and RMSprop().alpha == 0.99 and RMSprop().eps == 1e-8
    assert AdamW() != xpnet.Adam(weight_decay=0.01)  # decoupled is not coupled
    nesterov = get_optimizer({"name": "sgd", "config": {"lr": 0.1, "momentum": 0.9, "nesterov": True}})
    assert nesterov.config() == {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}
    assert set(OPTIMIZERS) >= {"sgd", "adam", "rmsprop", "adamw"}
    assert RMSprop(momentum=0.5, centered=True).config() == {
        "lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.5, "centered": True, "weight_decay": 0.0}
    params = [np.ones((2, 2))]
    assert set(RMSprop().init_state(params)) == {"square_avg"}
    assert set(RMSprop(momentum=0.5, centered=True).init_state(params)) == {"square_avg", "grad_avg", "momentum_buffer"}
    assert set(AdamW().init_state(params)) == {"t", "m", "v"}


def test_read_only_numpy_catches_in_place_state_updates():
    """The read-only NumPy backend freezes every array the library makes
    (``zeros_like`` state, operator results), so an optimizer that updates
    its velocity in place fails there, as it would on JAX."""
    from conftest import make_backend

    class InPlaceMomentum(xpnet.SGD):
        def step(self, params, grads, state, decay=None):
            for v, g in zip(state["velocity"], grads):
                v *= self.momentum
                v += g
            return [p - self.lr * v for p, v in zip(params, state["velocity"])], state

    backend = make_backend("numpy_readonly")
    params = [backend.asarray(np.ones((2, 2)), "float64")]
    opt = InPlaceMomentum(0.1, momentum=0.9)
    state = opt.init_state(params)
    with pytest.raises(ValueError, match="read-only"):
        opt.step(params, [backend.asarray(np.ones((2, 2)), "float64")], state)
    # and the same update written purely passes
    pure = xpnet.SGD(0.1, momentum=0.9)
    new, _ = pure.step(params, [backend.asarray(np.ones((2, 2)), "float64")], pure.init_state(params))
    assert np.allclose(new[0], 0.9)


def test_numpy_scalars_are_numbers_to_every_setting():
    """A hyper-parameter grid of NumPy scalars: momentum=np.float32(0.9)
    was refused as 'not a number in [0, 1)'."""
    assert xpnet.SGD(0.1, momentum=np.float32(0.5), weight_decay=np.int64(0)).momentum == 0.5
    assert xpnet.Adam(beta1=np.float32(0.5), weight_decay=np.float64(0.25)).config()["weight_decay"] == 0.25
    assert xpnet.RMSprop(alpha=np.float64(0.5)).alpha == 0.5
    for bad in (np.float32(1.0), np.bool_(True), np.float64("nan")):
        with pytest.raises(ValueError, match="momentum must be a number in"):
            xpnet.SGD(0.1, momentum=bad)


def test_a_preset_name_builds_in_a_spec_and_a_name_missing_arguments_is_named():
    """{"name": "momentum"} was 'unknown optimizer' though "momentum" works;
    lr_schedule="StepLR" was a bare TypeError from deep in the registry."""
    assert get_optimizer({"name": "momentum"}) == xpnet.SGD(0.01, momentum=0.9)
    assert get_optimizer({"name": "momentum", "config": {"lr": 0.5, "momentum": 0.5}}) == xpnet.SGD(0.5, momentum=0.5)
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match=r"schedule 'StepLR' cannot be built from config \{\}: .*step_size"):
        xpnet.MLP([2, 1], backend="numpy").fit(X, y, lr_schedule="StepLR")


@pytest.mark.parametrize("opt", [xpnet.Adam(eps=1e-50), xpnet.RMSprop(eps=1e-50), xpnet.AdamW(eps=1e-46)])
def test_an_eps_that_is_zero_in_the_networks_dtype_is_refused_by_fit(backend, opt):
    """eps=1e-50 is 0 in float32: a weight whose gradient is 0 (here a
    constant input column) took 0 / (sqrt(0) + 0) = NaN, and fit blamed
    the learning rate. It is named before training; float64 holds it."""
    X = np.random.default_rng(0).normal(size=(16, 3))
    X[:, 0] = 0.0
    y = X @ np.ones((3, 1))
    net = xpnet.MLP([3, 1], backend=backend, seed=0)
    with pytest.raises(ValueError, match=rf"eps={opt.eps!r} is 0 in float32 .*float64"):
        net.fit(X, y, loss="mse", optimizer=opt, epochs=2)
    wide = xpnet.MLP([3, 1], backend=backend, seed=0, dtype="float64")
    wide.fit(X, y, loss="mse", optimizer=opt, epochs=2)
    assert all(np.isfinite(host(p)).all() for p in wide._params())


@pytest.mark.parametrize("spec", [{"name": "adam"}, {"name": "adam", "config": {}}, {"name": "momentum"},
                                  {"name": "Adam", "config": {"beta1": 0.8}}], ids=repr)  # fmt: skip
def test_a_spec_without_a_rate_takes_fits_lr_as_a_name_does(spec):
    """fit(optimizer={"name": "adam"}, lr=0.04) was refused as "an optimizer
    object with its own lr=0.001", though the spec set no rate: a spec (or
    its config) without lr is built with fit's lr, as the name is."""
    X = np.random.default_rng(0).normal(size=(16, 3))
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    assert get_optimizer(spec, 0.04).lr == 0.04
    assert get_optimizer(spec, 0.04).config() == {**get_optimizer(spec).config(), "lr": 0.04}
    assert xpnet.MLP([3, 2], backend="numpy", seed=0).fit(X, Y, optimizer=spec, lr=0.04, epochs=1).lr == [0.04]
    with_rate = {"name": spec["name"], "config": {**spec.get("config", {}), "lr": 0.5}}
    assert get_optimizer(with_rate, 0.5).lr == 0.5
    with pytest.raises(ValueError, match="lr=0.04 and an optimizer object with its own lr=0.5"):
        xpnet.MLP([3, 2], backend="numpy", seed=0).fit(X, Y, optimizer=with_rate, lr=0.04)


@pytest.mark.parametrize("opt", [xpnet.SGD(0.1, momentum=0.9), xpnet.Adam(), AdamW(), RMSprop(),
                                 RMSprop(centered=True, momentum=0.5)], ids=repr)  # fmt: skip
def test_a_state_not_from_init_state_is_named_with_the_keys_it_lacks(backend, opt):
    """opt.step(params, grads, {}) (a hand-written loop that skipped
    init_state, or kept another optimizer's state) raised a bare
    KeyError: 't'. It names the keys the state lacks and init_state."""
    params = [backend.asarray(np.ones(shape), "float64") for shape in [(3, 2), (2,)]]
    needed = list(opt.init_state(params))
    for state in ({}, {"velocity": params} if "velocity" not in needed else {"t": 0}):
        with pytest.raises(ValueError, match=r"init_state\(params\)") as err:
            opt.step(params, params, state)
        assert str([k for k in needed if k not in state]) in str(err.value), err.value
    with pytest.raises(ValueError, match=r"a dict from .*init_state\(params\), got list"):
        opt.step(params, params, [])


@pytest.mark.parametrize("opt", [xpnet.SGD(0.1), xpnet.Adam(), RMSprop(centered=True, momentum=0.5)], ids=repr)
def test_gradients_as_network_gradients_gives_them_are_named_not_an_attribute_error(opt):
    """A hand-written loop that passed ``Network.gradients``' per-layer
    tuples to ``step``, or kept the ``None`` of a layer without a bias,
    failed with "'tuple' object has no attribute 'shape'" (or 'NoneType')."""
    X, y = xpnet.datasets.xor()
    net = xpnet.Network([xpnet.Dense(2, 3, "tanh", bias=False), xpnet.Dense(3, 1, "sigmoid")], dtype="float64")
    params = [p for layer in net.layers for p in layer.parameters.values()]
    per_layer = net.gradients(X, y, "binary_cross_entropy")
    flat = [g for grads in per_layer for g in grads]
    with pytest.raises(ValueError, match=r"gradient 0 is a tuple, not an array.*Network.gradients.*None"):
        opt.step(params, per_layer, opt.init_state(params))
    with pytest.raises(ValueError, match=r"gradient 1 is a NoneType, not an array.*Network.gradients.*None"):
        opt.step(params, flat, opt.init_state(params))
    with pytest.raises(ValueError, match=r"parameter 0 is a str, not an array"):
        opt.step(list(net.layers[1].parameters), flat[1:], opt.init_state(params[1:]))
    new, _ = opt.step(params, [g for g in flat if g is not None], opt.init_state(params))
    assert [p.shape for p in new] == [p.shape for p in params]


@pytest.mark.parametrize("t", [None, "3", [1]])
def test_an_adam_step_count_that_is_no_number_is_named(t):
    """A state whose step count was not a number ({**state, "t": None})
    failed with "unsupported operand type(s) for +: 'NoneType' and 'int'"."""
    params = [np.ones((3, 2)), np.ones(2)]
    opt = xpnet.Adam()
    with pytest.raises(ValueError, match=r"optimizer state t must be an int in 0..2\*\*53, got"):
        opt.step(params, params, {**opt.init_state(params), "t": t})


@pytest.mark.parametrize("spec", [{"name": "adam", "lr": 0.1}, {"name": "adam", "cfg": {"lr": 0.1}},
                                  {"name": "momentum", "configs": {"momentum": 0.5}}], ids=repr)  # fmt: skip
def test_an_optimizer_spec_with_keys_beside_name_and_config_is_refused(spec):
    """{"name": "adam", "lr": 0.1} (a setting beside the name) or a misspelt
    "config" built the optimizer with its defaults, the setting ignored."""
    with pytest.raises(ValueError, match=r"optimizer spec .* holds \['(lr|cfg|configs)'\] beside 'name' and 'config'"):
        get_optimizer(spec, 0.01)


@pytest.mark.parametrize("opt", [xpnet.SGD(0.1), xpnet.Adam()], ids=repr)
def test_gradients_of_another_library_than_the_parameters_are_named(opt):
    """torch gradients for NumPy parameters (a hand-written loop that mixed
    two networks' arrays) failed in the libraries' words: "unsupported
    operand type(s) for -: 'numpy.ndarray' and 'Tensor'", or torch's
    "Concatenation operation is not implemented for NumPy arrays"."""
    torch = pytest.importorskip("torch")
    params = [np.ones((3, 2)), np.ones(2)]
    grads = [torch.ones(3, 2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)]
    with pytest.raises(ValueError, match=r"gradient 0 is a torch Tensor, parameter 0 a numpy ndarray"):
        opt.step(params, grads, opt.init_state(params))


def test_fit_names_a_custom_step_that_returns_a_state_without_its_keys():
    """A custom optimizer whose step returned {} for a state of "sum_sq"
    failed at fit's second step, in its own step, as a bare KeyError:
    'sum_sq'. fit compares the keys at the first update, once."""

    class Forgets(xpnet.Optimizer):
        def __init__(self, lr=0.01):
            self.lr = lr

        def config(self):
            return {"lr": self.lr}

        def init_state(self, params):
            return {"sum_sq": [p * 0.0 for p in params]}

        def step(self, params, grads, state, decay=None):
            return [p - self.lr * g for p, g in zip(params, grads)], {}

    X = np.random.default_rng(0).normal(size=(16, 3))
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    with pytest.raises(ValueError, match=r"Forgets.step returned a state of keys \[\] for one of \['sum_sq'\]"):
        xpnet.MLP([3, 2], backend="numpy", seed=0).fit(X, Y, optimizer=Forgets(), epochs=1, batch_size=4)


def test_a_missing_state_is_named_even_where_the_parameters_are_no_arrays():
    """The missing keys were found by calling init_state(params), which
    failed on parameters that are no arrays before naming them."""
    with pytest.raises(ValueError, match=r"Adam.step's state lacks \['t', 'm', 'v'\]"):
        xpnet.Adam().step(["a"], ["b"], {})
