"""Losses: definitions, gradients, fused deltas, shapes, and seed 000's figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_on, central_diff, host, ref_loss, try_import

import xpnet
from xpnet.losses import LOSSES

EPS64 = np.finfo(np.float64).eps


def sample(name, shape=(6, 3), seed=0):
    rng = np.random.default_rng(seed)
    if name == "cross_entropy":
        logits = rng.normal(size=shape)
        y = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        t = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    elif name == "binary_cross_entropy":
        y = rng.uniform(0.05, 0.95, shape)
        t = rng.integers(0, 2, shape).astype(float)
    else:
        y, t = rng.normal(size=shape), rng.normal(size=shape)
    return t, y


def test_registry():
    assert set(LOSSES) == {"mse", "sse", "binary_cross_entropy", "cross_entropy", "mae", "huber"}
    assert xpnet.get_loss("MSE").name == "mse"
    with pytest.raises(ValueError, match="unknown loss 'hinge'") as e:
        xpnet.get_loss("hinge")
    for name in LOSSES:
        assert name in str(e.value)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_value_matches_definition(backend, name, dtype):
    t, y = sample(name)
    ta, ya = backend.asarray(t, dtype), backend.asarray(y, dtype)
    before = host(ya).copy(), host(ta).copy()
    v = xpnet.get_loss(name).value(ta, ya)
    assert_on(v, backend, dtype, ())
    rtol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(float(host(v)), ref_loss(name, t, y), rtol=rtol)
    np.testing.assert_array_equal(host(ya), before[0])
    np.testing.assert_array_equal(host(ta), before[1])


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_matches_central_differences(backend, name):
    t, y = sample(name)
    loss = xpnet.get_loss(name)
    g = loss.gradient(backend.asarray(t, "float64"), backend.asarray(y, "float64"))
    assert_on(g, backend, "float64", y.shape)
    fd = central_diff(lambda yy: ref_loss(name, t, yy), y)
    np.testing.assert_allclose(host(g), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("name", "activation"), [("binary_cross_entropy", "sigmoid"), ("cross_entropy", "softmax")])
def test_fused_delta_equals_chain_rule_where_unclipped(backend, name, activation):
    t, _ = sample(name)
    v = np.random.default_rng(3).normal(size=t.shape)
    act, loss = xpnet.get_activation(activation), xpnet.get_loss(name)
    assert loss.fused_with == activation
    ta, va = backend.asarray(t, "float64"), backend.asarray(v, "float64")
    y = act.forward(va)
    chain = act.backward(va, y, loss.gradient(ta, y))
    fused = loss._fused_delta(backend.xp, ta, y)
    np.testing.assert_allclose(host(fused), host(chain), rtol=1e-10, atol=1e-14)


def test_saturated_sigmoid_still_learns_through_fused_delta():
    """At y == 1 (saturated, clipped) the chain rule gives 0; the fused delta
    still pushes a wrong output back."""
    net = xpnet.Network([xpnet.Dense(1, 1, "sigmoid")], backend="numpy", dtype="float64")
    net.layers[0].weights = [[100.0]]
    (dW, db), = net.gradients([[1.0]], [0.0], "binary_cross_entropy")
    assert dW[0, 0] > 0.5 and db[0] > 0.5


def test_seed000_mse_list():
    t = np.arange(-10, 10, 1)
    yout = np.zeros(np.size(t))
    L = [float(xpnet.loss_fcn("MSE", x, y)) for x, y in zip(t, yout)]
    assert L == [100.0, 81.0, 64.0, 49.0, 36.0, 25.0, 16.0, 9.0, 4.0, 1.0, 0.0, 1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0, 64.0, 81.0]


def test_seed000_bce_list_finite_at_zero():
    yout = np.arange(0, 1, 0.1)
    t = np.ones(np.size(yout))
    L = [float(xpnet.loss_fcn("binary_cross_entropy", x, y)) for x, y in zip(t, yout)]
    # The seed printed nan at y = 0; xpnet clips to eps, so the value is -log(eps).
    assert np.isfinite(L[0]) and L[0] == pytest.approx(-np.log(EPS64))
    printed = [2.3025850929940455, 1.6094379124341003, 1.203972804325936,  # seed misprinted ...9714977279636
               0.916290731874155, 0.6931471805599453, 0.5108256237659905,
               0.3566749439387323, 0.2231435513142097, 0.1053605156578242]
    np.testing.assert_allclose(L[1:], printed, rtol=1e-13)
    np.testing.assert_allclose(L[1:], -np.log(yout[1:]), rtol=1e-15)


def test_seed002_mse():
    assert float(xpnet.loss_fcn("mse", [4, 9, 6], [4, 8, 6])) == pytest.approx(1 / 3, abs=1e-16)


def test_cross_entropy_accepts_labels_and_one_hot(backend):
    y = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    loss = xpnet.get_loss("cross_entropy")
    ya = backend.asarray(y, "float64")
    by_label = loss.value(backend.asarray(np.array([0, 2])), ya)
    by_onehot = loss.value(backend.asarray(np.eye(3)[[0, 2]], "float64"), ya)
    expected = -(np.log(0.7) + np.log(0.8)) / 2
    assert float(host(by_label)) == pytest.approx(expected)
    assert float(host(by_onehot)) == pytest.approx(expected)
    assert float(host(loss.value([0, 2], ya))) == pytest.approx(expected)


def test_cross_entropy_finite_at_zero_probability(backend):
    loss = xpnet.get_loss("cross_entropy")
    y = backend.asarray([[0.0, 1.0], [1.0, 0.0]], "float32")
    v = float(host(loss.value(backend.asarray([[1.0, 0.0], [1.0, 0.0]], "float32"), y)))
    assert np.isfinite(v) and v == pytest.approx(-np.log(np.finfo(np.float32).eps) / 2, rel=1e-5)
    assert np.all(np.isfinite(host(loss.gradient(backend.asarray([0, 0]), y))))


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.5, 1.0]])
def test_cross_entropy_rejects_bad_labels(labels):
    with pytest.raises(ValueError, match="label"):
        xpnet.get_loss("cross_entropy").value(np.array(labels), np.full((2, 3), 1 / 3))


def test_bce_finite_at_extremes(backend):
    loss = xpnet.get_loss("binary_cross_entropy")
    y = backend.asarray([0.0, 1.0, 0.0, 1.0], "float32")
    t = backend.asarray([0.0, 1.0, 1.0, 0.0], "float32")
    assert np.isfinite(float(host(loss.value(t, y))))
    assert np.all(np.isfinite(host(loss.gradient(t, y))))


def test_column_and_flat_targets_are_matched():
    loss = xpnet.get_loss("mse")
    y = np.array([[1.0], [2.0], [3.0]])
    assert float(loss.value(np.array([1.0, 2.0, 4.0]), y)) == pytest.approx(1 / 3)
    assert loss.gradient(np.array([1.0, 2.0, 4.0]), y).shape == (3, 1)


def test_mismatched_shapes_are_refused_not_broadcast():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        xpnet.loss_fcn("mse", np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        xpnet.loss_fcn("sse", np.zeros(4), np.zeros((4, 2)))


def test_loss_takes_namespace_from_outputs(backend):
    y = backend.asarray([[0.5], [0.25]], "float32")
    v = xpnet.loss_fcn("mse", [[0.0], [0.0]], y)  # a list as expected
    assert_on(v, backend, "float32", ())
    assert float(host(v)) == pytest.approx((0.25 + 0.0625) / 2)


def test_loss_value_float32_stays_float32(backend):
    t, y = sample("mse")
    v = xpnet.get_loss("mse").value(backend.asarray(t, "float32"), backend.asarray(y, "float32"))
    assert v.dtype == backend.dtype("float32")


@pytest.mark.parametrize(("name", "config"), [("mae", {}), ("huber", {}), ("huber", {"delta": 0.3}), ("huber", {"delta": 2.5})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mae_and_huber_match_torch(backend, name, config, dtype):
    """Value and gradient against torch.nn.L1Loss / HuberLoss, with equal
    elements (sign 0) and errors either side of delta in the batch."""
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    t, y = sample("mse", (8, 3), seed=5)
    y = y * 2.0
    y[0] = t[0]  # zero error: gradient 0 for both
    y = y.astype(dtype)
    t = t.astype(dtype)
    ty = torch.tensor(y, requires_grad=True)
    module = torch.nn.L1Loss() if name == "mae" else torch.nn.HuberLoss(**config)
    want = module(ty, torch.tensor(t))
    want.backward()
    loss = xpnet.get_loss({"name": name, "config": config} if config else name)
    ta, ya = backend.asarray(t, dtype), backend.asarray(y, dtype)
    v, g = loss.value(ta, ya), loss.gradient(ta, ya)
    assert_on(v, backend, dtype, ())
    assert_on(g, backend, dtype, y.shape)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(float(host(v)), want.item(), rtol=rtol)
    np.testing.assert_allclose(host(g), ty.grad.numpy(), rtol=rtol, atol=rtol / y.size)
    np.testing.assert_array_equal(host(g)[0], 0.0)


def test_huber_config_and_bad_delta():
    h = xpnet.get_loss({"name": "huber", "config": {"delta": 0.5}})
    assert h.config() == {"delta": 0.5} and type(h)(**h.config()) == h
    assert h != xpnet.get_loss("huber") and xpnet.get_loss("huber").config() == {"delta": 1.0}
    # delta sets where the quadratic ends: an error of 2 costs 0.5 * (2 - 0.25)
    assert float(h.value([0.0], [2.0])) == pytest.approx(0.875)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="delta"):
            xpnet.get_loss({"name": "huber", "config": {"delta": bad}})


def test_mae_is_linear_and_huber_is_mse_like_near_zero():
    y, t = np.array([[3.0, -0.5]]), np.zeros((1, 2))
    assert float(xpnet.loss_fcn("mae", t, y)) == pytest.approx(1.75)
    assert float(xpnet.loss_fcn("huber", t, y)) == pytest.approx((2.5 + 0.125) / 2)
    np.testing.assert_array_equal(xpnet.get_loss("huber").gradient(t, y), [[0.5, -0.25]])


class _PositiveWeightedBCE(xpnet.losses.BinaryCrossEntropy):
    """Unregistered: binary cross-entropy with the positive class counted 3x.
    It changes the value and gradient and declares no fusion of its own."""

    def _value(self, xp, t, y):
        return xp.mean(self._terms(xp, t, y))

    def _gradient(self, xp, t, y):
        eps = 1e-12
        return (-3.0 * t / (y + eps) + (1.0 - t) / (1.0 - y + eps)) / math.prod(y.shape)

    def _terms(self, xp, t, y):
        eps = 1e-12
        return -(3.0 * t * xp.log(y + eps) + (1.0 - t) * xp.log(1.0 - y + eps))


def test_a_subclass_that_changes_the_gradient_trains_on_it_not_on_its_parents_fused_delta():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, (16, 1)).astype(float)
    net = xpnet.Network([xpnet.Dense(3, 4, "tanh"), xpnet.Dense(4, 1, "sigmoid")], backend="numpy", dtype="float64",
                        seed=0)  # fmt: skip
    assert xpnet.gradcheck(net, X, y, _PositiveWeightedBCE()) < 1e-5  # 1.46 with the parent's (y - t) delta
    assert xpnet.gradcheck(net, X, y, "binary_cross_entropy") < 1e-5  # the built-in still fuses, and is right


def test_a_loss_that_overflows_is_inf_without_numpys_warning():
    """pytest here turns RuntimeWarning into errors, as a user's strict
    settings may: the seeds' loss_fcn on huge values gave NumPy's overflow warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(xpnet.loss_fcn("mse", [1e200], [-1e200]))
        assert np.isinf(xpnet.get_loss("sse").gradient(np.array([1e308]), np.array([-1e308]))).all()


class _HalfMSE(xpnet.losses.MSE):
    """Changes the formulas and inherits MSE's combined value-and-delta and per-row form."""

    def _value(self, xp, t, y):
        return 0.5 * super()._value(xp, t, y)

    def _gradient(self, xp, t, y):
        return 0.5 * super()._gradient(xp, t, y)


class _HalfSSE(xpnet.losses.SSE):
    def _value(self, xp, t, y):
        return 0.5 * super()._value(xp, t, y)

    def _gradient(self, xp, t, y):
        return 0.5 * super()._gradient(xp, t, y)


class _SmoothedCE(xpnet.losses.CrossEntropy):
    """Label smoothing: inherits CrossEntropy's label shortcut and fusion, declares neither."""

    def _value(self, xp, t, y):
        return super()._value(xp, 0.9 * t + 0.1 / t.shape[1], y)

    def _gradient(self, xp, t, y):
        return super()._gradient(xp, 0.9 * t + 0.1 / t.shape[1], y)


@pytest.mark.parametrize("weights", [None, "ones"])
@pytest.mark.parametrize("loss", [_HalfMSE, _HalfSSE], ids=["mse", "sse"])
def test_a_subclass_of_a_loss_with_a_combined_form_trains_on_its_own_formulas(backend, loss, weights):
    """fit used MSE's (and SSE's) combined value and delta, and their
    per-row form under weights: twice the subclass's loss and gradient."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    net = xpnet.Network([xpnet.Dense(3, 2)], backend=backend, dtype="float64", seed=0)
    w = None if weights is None else np.ones(20)
    first = net.fit(X, Y, loss=loss(), optimizer="sgd", lr=1e-12, epochs=1, sample_weight=w).loss[0]
    assert first == pytest.approx(net.evaluate(X, Y, loss()), rel=1e-9)
    assert first == pytest.approx(0.5 * net.evaluate(X, Y, loss.__mro__[1]()), rel=1e-9)
    g = [host(a) for a in net.gradients(X, Y, loss())[0]]
    g_parent = [host(a) for a in net.gradients(X, Y, loss.__mro__[1]())[0]]
    np.testing.assert_allclose(g[0], 0.5 * g_parent[0], rtol=1e-12)


def test_weights_of_one_keep_a_subclass_off_its_parents_fused_delta():
    """The weighted wrapper copied the parent's fused_with onto itself, so a
    BCE subclass with weights of 1 trained as plain BCE."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, (16, 1)).astype(float)

    def weights_after(**kw):
        net = xpnet.Network([xpnet.Dense(3, 1, "sigmoid")], backend="numpy", dtype="float64", seed=0)
        net.fit(X, y, loss=_PositiveWeightedBCE(), optimizer="sgd", lr=1.0, epochs=1, **kw)
        return host(net.layers[0].weights)

    plain = weights_after()
    np.testing.assert_allclose(weights_after(sample_weight=np.ones(16)), plain, rtol=1e-12)
    np.testing.assert_allclose(weights_after(class_weight={0: 1.0, 1: 1.0}), plain, rtol=1e-12)


def test_a_cross_entropy_subclass_given_labels_trains_on_its_own_formulas(backend):
    """Labels switched the loss to the built-in cross-entropy's label form."""
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)

    def first_loss(y):
        net = xpnet.Network([xpnet.Dense(4, 3, "softmax")], backend=backend, dtype="float64", seed=0)
        return net.fit(X, y, loss=_SmoothedCE(), optimizer="sgd", lr=1.0, epochs=2).loss

    np.testing.assert_allclose(first_loss(labels), first_loss(np.eye(3)[labels]), rtol=1e-12)


class _Halved:
    """A mixin that halves MSE's formulas; it is no subclass of MSE."""

    def _value(self, xp, t, y):
        return 0.5 * xpnet.losses.MSE._value(self, xp, t, y)

    def _gradient(self, xp, t, y):
        return 0.5 * xpnet.losses.MSE._gradient(self, xp, t, y)


class _MixedHalfMSE(_Halved, xpnet.losses.MSE):
    pass


def test_formulas_from_a_mixin_before_the_loss_keep_it_off_its_shortcuts():
    from xpnet.losses import per_sample, value_and_delta

    t, y = np.zeros((2, 1)), np.ones((2, 1))
    value, delta = value_and_delta(_MixedHalfMSE(), np, t, y, False)
    assert float(value) == 0.5 and np.all(delta == 0.5)
    assert np.all(per_sample(_MixedHalfMSE(), np, t, y) == 0.5)


def test_no_sample_is_named_and_a_label_column_is_labels_as_in_fit():
    """cross_entropy on empty outputs raised a bare ZeroDivisionError (the
    others gave NaN); loss_fcn refused the (N, 1) label column fit takes."""
    from xpnet.losses import get_loss

    for name in ("cross_entropy", "mse", "binary_cross_entropy"):
        with pytest.raises(ValueError, match=rf"{name}: outputs of shape \(0, 3\) hold no sample"):
            xpnet.loss_fcn(name, np.zeros((0, 3)), np.zeros((0, 3)))
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    ce = get_loss("cross_entropy")
    assert float(ce.value(np.array([[0], [2]]), P)) == float(ce.value(np.array([0, 2]), P))
    np.testing.assert_array_equal(ce.gradient(np.array([[0], [2]]), P), ce.gradient(np.array([0, 2]), P))


class _OutputWeighted(xpnet.Loss):
    """The squared error, output ``k`` weighted by ``weights[k]``, held as an
    attribute of its own; the subclasses hold them one level down."""

    name = "test_losses_output_weighted"

    def __init__(self, weights):
        self.weights = weights

    def _weights(self):
        return self.weights

    def _value(self, xp, t, y):
        return xp.sum(self._weights() * (y - t) ** 2) / y.shape[0]

    def _gradient(self, xp, t, y):
        return 2.0 * self._weights() * (y - t) / y.shape[0]


class _WeightsInList(_OutputWeighted):
    name = "test_losses_weights_in_list"

    def __init__(self, weights):
        self.parts = [weights]

    def _weights(self):
        return self.parts[0]


class _WeightsInTuple(_OutputWeighted):
    name = "test_losses_weights_in_tuple"

    def __init__(self, weights):
        self.parts = (1.0, weights)

    def _weights(self):
        return self.parts[1]


class _WeightsInDict(_OutputWeighted):
    name = "test_losses_weights_in_dict"

    def __init__(self, weights):
        self.parts = {"w": weights}

    def _weights(self):
        return self.parts["w"]


class _WrappingLoss(_OutputWeighted):
    """A loss that holds another loss, which holds the weights."""

    name = "test_losses_wrapping"

    def __init__(self, weights):
        self.inner = _OutputWeighted(weights)

    def _weights(self):
        return self.inner.weights


def _regression(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, (X @ rng.normal(size=(4, 3))).astype(np.float32)


@pytest.mark.parametrize("holder", [_WeightsInList, _WeightsInTuple, _WeightsInDict, _WrappingLoss],
                         ids=["list", "tuple", "dict", "nested loss"])  # fmt: skip
def test_a_loss_holding_arrays_one_level_down_trains_and_reports_with_its_own(backend, holder):
    """Fits with losses of the same class but other arrays, held in a list,
    tuple or dict or by a loss the loss holds, train, report and evaluate
    each with their own arrays, as with the arrays held directly: on JAX the
    programs (keyed by settings) baked the first loss's nested arrays in and
    ran the second fit with them."""
    X, Y = _regression()
    for values in ([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]):
        w = backend.asarray(np.asarray(values, np.float32))
        figures = []
        for loss in (holder(w), _OutputWeighted(w)):
            net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
            history = net.fit(X, Y, loss=loss, optimizer="sgd", epochs=2, batch_size=8, seed=0,
                              validation_data=(X, Y))  # fmt: skip
            rows = [net.evaluate(X, Y, loss=loss, batch_size=b) for b in (None, 8)]
            figures.append(np.array([*history.loss, *history.val_loss, *rows]))
        np.testing.assert_allclose(figures[0], figures[1], rtol=1e-5, err_msg=f"weights {values}")


def test_evaluate_of_a_weighted_custom_loss_reads_the_base_losss_arrays(backend):
    """``loss.weighted(w)`` holds ``loss``, whose own arrays (the outputs'
    weights) are one level down: evaluated with other output weights, on
    JAX the program of the first weights gave the first one's value."""
    X, Y = _regression()
    net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
    host = net.to("numpy")
    rows = np.linspace(0.0, 2.0, 20, dtype=np.float32)
    for values in ([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]):
        w = np.asarray(values, np.float32)
        loss = _OutputWeighted(backend.asarray(w)).weighted(backend.asarray(rows))
        expected = host.evaluate(X, Y, loss=_OutputWeighted(w).weighted(rows))
        for b in (None, 8):
            assert net.evaluate(X, Y, loss=loss, batch_size=b) == pytest.approx(expected, rel=1e-5), (values, b)


def test_a_losss_nested_arrays_are_found_and_bound_in_copies_the_callers_left_as_they_are():
    """What a program takes as arguments and binds in: each array in a
    list, (named) tuple or dict attribute, or in a loss the loss holds, by
    where it is, through cycles; binding copies the containers on the way."""
    import collections

    from xpnet._programs import held_arrays, holding

    pair = collections.namedtuple("pair", "a b")
    a, b, c, d = (np.full(3, v) for v in (1.0, 2.0, 3.0, 4.0))
    loss = _OutputWeighted(a)
    loss.parts = {"x": [b, pair(1.0, c)], 2: (loss,)}  # a cycle through the loss itself
    loss.inner = _OutputWeighted(d)
    held = held_arrays(xpnet.get_backend("numpy"), loss)
    assert list(held) == ["weights", "parts['x'][0]", "parts['x'][1][1]", "inner.weights"]
    assert all(held[k] is v for k, v in zip(held, (a, b, c, d)))
    bound = holding(loss, {k: v + 10.0 for k, v in held.items()})
    assert [float(v[0]) for v in (bound.weights, bound.parts["x"][0], bound.parts["x"][1].b, bound.inner.weights)] \
        == [11.0, 12.0, 13.0, 14.0]  # fmt: skip
    assert type(bound.parts["x"][1]) is pair and bound.parts[2][0] is loss
    assert loss.weights is a and loss.parts["x"][0] is b and loss.parts["x"][1].b is c and loss.inner.weights is d


class _ScaledSquares(xpnet.Loss):
    """The squared error times ``scale``, a setting kept outside ``config()``."""

    name = "test_losses_scaled_squares"

    def __init__(self, scale):
        self.scale = scale

    def _value(self, xp, t, y):
        return self.scale * xp.sum((y - t) ** 2) / y.shape[0]

    def _gradient(self, xp, t, y):
        return 2.0 * self.scale * (y - t) / y.shape[0]


class _Wrapped(xpnet.Loss):
    """``inner``'s value and gradient: a loss that holds another."""

    name = "test_losses_wrapped"

    def __init__(self, inner):
        self.inner = inner

    def _value(self, xp, t, y):
        return self.inner._value(xp, t, y)

    def _gradient(self, xp, t, y):
        return self.inner._gradient(xp, t, y)


def test_the_settings_of_a_loss_a_loss_holds_name_its_programs(backend):
    """A loss's programs are keyed by its plain settings; those of a loss it
    holds (``loss.weighted(w)``'s base, a user's wrapper) were left out, so
    on JAX a second wrapper of another ``scale`` evaluated and trained with
    the first one's."""
    X, Y = _regression()
    rows = backend.asarray(np.linspace(0.0, 2.0, 20, dtype=np.float32))
    net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
    host = net.to("numpy")
    for scale in (1.0, 3.0):
        expected = host.evaluate(X, Y, loss=_ScaledSquares(scale).weighted(xpnet.to_numpy(rows)))
        assert net.evaluate(X, Y, loss=_ScaledSquares(scale).weighted(rows)) == pytest.approx(expected, rel=1e-5)
        fits = []
        for loss in (_Wrapped(_ScaledSquares(scale)), _ScaledSquares(scale)):
            again = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
            history = again.fit(X, Y, loss=loss, optimizer="sgd", epochs=2, batch_size=8, seed=0,
                                validation_data=(X, Y))  # fmt: skip
            fits.append([*history.loss, *history.val_loss, again.evaluate(X, Y, loss=loss)])
        np.testing.assert_allclose(fits[0], fits[1], rtol=1e-5, err_msg=f"scale {scale}")


class _NextWeights(xpnet.Callback):
    """Gives the loss other output weights after each epoch: rebinds its
    attribute, and sets the dict entry of a loss that holds them in a dict."""

    def __init__(self, loss, to_array):
        self.loss, self.to_array = loss, to_array

    def on_epoch_end(self, epoch, logs):
        w = self.to_array(np.asarray([1.0 + epoch, 0.5, 2.0 - epoch], np.float32))
        if isinstance(self.loss, _WeightsInDict):
            self.loss.parts["w"] = w
        else:
            self.loss.weights = w
        return False


@pytest.mark.parametrize("scans", [True, False], ids=["epoch program", "step by step"])
@pytest.mark.parametrize("holder", [_OutputWeighted, _WeightsInDict], ids=["attribute", "dict"])
def test_a_callback_that_gives_the_loss_other_arrays_trains_the_next_epoch_with_them(backend, holder, scans,
                                                                                     monkeypatch):  # fmt: skip
    """The loss's arrays are read again each epoch: a compiled step that
    kept the first ones (its program's arguments) would train every epoch
    with them, where the eager step reads the loss as it is."""
    from xpnet import _programs

    if not scans:  # one program per minibatch: the loss's arrays go with each step
        monkeypatch.setattr(_programs._JaxStep, "scans", property(lambda self: False))
    X, Y = _regression()
    w = np.ones(3, np.float32)
    net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
    host = net.to("numpy")
    runs = []
    for model, to_array in ((net, backend.asarray), (host, np.asarray)):
        loss = holder(to_array(w))
        history = model.fit(X, Y, loss=loss, optimizer="sgd", epochs=3, batch_size=8, seed=0,
                            callbacks=[_NextWeights(loss, to_array)])  # fmt: skip
        runs.append(history.loss)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)
