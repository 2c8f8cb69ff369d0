"""Sample and class weights: the batch loss is ``sum(w_i l_i) / sum(w_i)``
and its gradient follows, for every loss (torch's ``reduction="none"``
values and autograd as the reference), training equals torch's weighted
training, ``"balanced"`` equals scikit-learn's, and the weights are checked
at the door in the inputs' one transfer."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host, jax_x64, try_import

import xpnet
from xpnet.losses import Loss

LOSSES = ["mse", "sse", "mae", "huber", "binary_cross_entropy", "cross_entropy"]


def torch_or_skip():
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    return torch


def torch_per_sample(torch, name, t, y):
    """Per-sample losses from torch's elementwise losses (reduction='none')."""
    F = torch.nn.functional
    if name == "cross_entropy":
        return -(t * torch.log(torch.clamp(y, min=torch.finfo(y.dtype).eps))).sum(1)
    eps = torch.finfo(y.dtype).eps
    elementwise = {
        "mse": lambda: F.mse_loss(y, t, reduction="none"),
        "sse": lambda: F.mse_loss(y, t, reduction="none"),
        "mae": lambda: F.l1_loss(y, t, reduction="none"),
        "huber": lambda: F.huber_loss(y, t, reduction="none", delta=1.0),
        "binary_cross_entropy": lambda: F.binary_cross_entropy(torch.clamp(y, eps, 1 - eps), t, reduction="none"),
    }[name]()
    return elementwise.sum(1) if name == "sse" else elementwise.mean(1)


def case(name, rng, n=7, k=3):
    if name == "cross_entropy":
        y = rng.dirichlet(np.ones(k), size=n)
        t = np.eye(k)[rng.integers(0, k, n)]
    elif name == "binary_cross_entropy":
        y, t = rng.uniform(0.05, 0.95, (n, k)), rng.integers(0, 2, (n, k)).astype(float)
    else:
        y, t = rng.normal(size=(n, k)) * 2, rng.normal(size=(n, k))
    return t, y


@pytest.mark.parametrize("name", LOSSES)
def test_weighted_loss_and_gradient_equal_torch(backend, name):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    t, y = case(name, rng)
    w = rng.uniform(0, 3, len(y))
    w[2] = 0.0
    scaled = w * len(w) / w.sum()  # fit scales a batch's weights to average 1
    loss = xpnet.get_loss(name)
    xp = backend.xp
    weighted = loss.weighted(backend.asarray(scaled, "float64"))
    td, yd = backend.asarray(t, "float64"), backend.asarray(y, "float64")
    value, grad = weighted._value(xp, td, yd), weighted._gradient(xp, td, yd)
    tt, yt = torch.tensor(t), torch.tensor(y, requires_grad=True)
    per = torch_per_sample(torch, name, tt, yt)
    want = (torch.tensor(w) * per).sum() / w.sum()
    if name == "sse":  # a sum over samples stays one: weights of 1 change nothing
        want = want * len(w)
    want.backward()
    np.testing.assert_allclose(float(host(value)), want.item(), rtol=1e-12)
    np.testing.assert_allclose(host(grad), yt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["cross_entropy", "binary_cross_entropy"])
def test_fused_deltas_are_weighted_too(name):
    rng = np.random.default_rng(1)
    t, y = case(name, rng)
    w = rng.uniform(0.5, 2, len(y))
    loss = xpnet.get_loss(name)
    xp = xpnet.get_backend("numpy").xp
    np.testing.assert_allclose(loss.weighted(w)._fused_delta(xp, t, y), loss._fused_delta(xp, t, y) * w[:, None])


def test_a_user_loss_without_per_sample_values_is_weighted_too():
    """The base class's row-by-row default: equal to a vectorised one."""

    class Cubic(Loss):
        name = "cubic_test"

        def _value(self, xp, t, y):
            d = xp.abs(y - t)
            return xp.sum(d * d * d) / (y.shape[0] * y.shape[1])

        def _gradient(self, xp, t, y):
            d = y - t
            return 3 * d * xp.abs(d) / (y.shape[0] * y.shape[1])

    rng = np.random.default_rng(2)
    t, y = case("mse", rng)
    w = rng.uniform(0, 2, len(y))
    xp = xpnet.get_backend("numpy").xp
    got = Cubic().weighted(w)._value(xp, t, y)
    want = np.sum(w * np.mean(np.abs(y - t) ** 3, axis=1)) / len(y)
    np.testing.assert_allclose(float(got), want, rtol=1e-12)


def data(n=21, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)


def test_weighted_training_equals_torch(backend):
    torch = torch_or_skip()
    X, y = data()
    w = np.random.default_rng(5).uniform(0, 2, len(y))
    net = xpnet.MLP([3, 6, 2], "tanh", "softmax", backend=backend, dtype="float64", seed=0)
    start = [host(p) for p in net._params()]
    h = net.fit(X, y, loss="cross_entropy", optimizer="sgd", lr=0.3, epochs=5, batch_size=8, shuffle=False,
                sample_weight=w)  # fmt: skip
    W1, b1, W2, b2 = (torch.tensor(a, requires_grad=True) for a in start)
    opt = torch.optim.SGD([W1, b1, W2, b2], lr=0.3)
    Xt, Tt, wt = torch.tensor(X), torch.tensor(np.eye(2)[y]), torch.tensor(w)
    losses = []
    for _ in range(5):
        parts = []
        for s in range(0, len(X), 8):
            logits = torch.tanh(Xt[s : s + 8] @ W1 + b1) @ W2 + b2
            per = torch.nn.functional.cross_entropy(logits, Tt[s : s + 8], reduction="none")
            loss = (wt[s : s + 8] * per).sum() / wt[s : s + 8].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            parts.append(loss.item())
        losses.append(np.mean(parts))
    np.testing.assert_allclose(h.loss, losses, rtol=1e-10)
    for got, want in zip(net._params(), (W1, b1, W2, b2)):
        np.testing.assert_allclose(host(got), want.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_integer_weights_equal_repeated_rows():
    X, y = data()
    w = np.arange(len(y)) % 3  # 0, 1 or 2 copies of each row
    kw = dict(loss="cross_entropy", optimizer="adam", lr=0.05, epochs=6)
    a = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", dtype="float64", seed=1)
    h = a.fit(X, y, sample_weight=w, **kw)
    rows = np.repeat(np.arange(len(y)), w)
    b = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", dtype="float64", seed=1)
    h2 = b.fit(X[rows], y[rows], **kw)
    np.testing.assert_allclose(h.loss, h2.loss, rtol=1e-12)
    for p, q in zip(a._params(), b._params()):
        np.testing.assert_allclose(p, q, rtol=1e-10)


def test_unit_weights_change_nothing():
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="adam", lr=0.05, epochs=3, batch_size=5, seed=1)
    h = xpnet.MLP([3, 2], output_activation="softmax", backend="numpy", dtype="float64", seed=1).fit(X, y, **kw)
    hw = xpnet.MLP([3, 2], output_activation="softmax", backend="numpy", dtype="float64", seed=1).fit(
        X, y, sample_weight=np.ones(len(y)), **kw
    )
    np.testing.assert_allclose(hw.loss, h.loss, rtol=1e-14)


def test_balanced_class_weights_equal_scikit_learn(backend):
    sklearn = try_import("sklearn")
    if sklearn is None:
        pytest.skip("scikit-learn is not installed")
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.array([0] * 25 + [1] * 10 + [3] * 5)  # class 2 absent
    present = np.unique(y)
    per_class = dict(zip(present, compute_class_weight("balanced", classes=present, y=y)))
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=3, batch_size=16, seed=0)
    a = xpnet.MLP([3, 4], output_activation="softmax", backend=backend, dtype="float64", seed=0)
    h = a.fit(X, y, class_weight="balanced", **kw)
    b = xpnet.MLP([3, 4], output_activation="softmax", backend=backend, dtype="float64", seed=0)
    h2 = b.fit(X, y, sample_weight=np.array([per_class[c] for c in y]), **kw)
    np.testing.assert_allclose(h.loss, h2.loss, rtol=1e-12)


def test_class_weight_dicts_and_binary_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    t = (X[:, 0] > 0.7).astype(float)
    kw = dict(loss="binary_cross_entropy", optimizer="sgd", lr=0.5, epochs=3)
    a = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    h = a.fit(X, t, class_weight={1: 4.0}, **kw)
    b = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    h2 = b.fit(X, t, sample_weight=np.where(t == 1, 4.0, 1.0), **kw)
    np.testing.assert_allclose(h.loss, h2.loss, rtol=1e-12)
    c = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    both = c.fit(X, t, class_weight={0: 0.5, 1: 2.0}, sample_weight=np.linspace(1, 2, 30), **kw)
    d = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    h4 = d.fit(X, t, sample_weight=np.linspace(1, 2, 30) * np.where(t == 1, 2.0, 0.5), **kw)
    np.testing.assert_allclose(both.loss, h4.loss, rtol=1e-12)
    # float labels' keys, as dict(zip(np.unique(t), weights)) makes them (np.float64 0.0, 1.0): classes 0 and 1
    f = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    floats = f.fit(X, t, class_weight=dict(zip(np.unique(t), [0.5, 2.0])), sample_weight=np.linspace(1, 2, 30), **kw)
    np.testing.assert_allclose(floats.loss, h4.loss, rtol=1e-12)
    # several 0/1 outputs (multi-label): a row of no positive label weighed 0 (T @ weights), even with {}
    labels = (X > 0).astype(float)
    e = xpnet.MLP([2, 2], output_activation="sigmoid", backend="numpy", dtype="float64", seed=0)
    for weights in ({}, {0: 1.0, 1: 1.0}, "balanced"):
        with pytest.raises(ValueError, match=r"on 2 outputs takes a 0/1 target per output \(multi-label\)"):
            e.fit(X, labels, class_weight=weights, **kw)


@pytest.mark.parametrize(("kw", "err", "match"), [
    (dict(sample_weight=np.ones(20)), ValueError, "one weight per row"),
    (dict(sample_weight=np.ones((21, 1))), ValueError, "one weight per row"),
    (dict(sample_weight=np.r_[np.ones(20), np.nan]), ValueError, "sample_weight contains NaN"),
    (dict(sample_weight=np.r_[np.ones(20), np.inf]), ValueError, "sample_weight contains inf"),
    (dict(sample_weight=np.r_[np.ones(20), -1.0]), ValueError, "negative"),
    (dict(sample_weight=np.zeros(21)), ValueError, "every weight is zero"),
    (dict(sample_weight=["a"] * 21), TypeError, "sample_weight"),
    (dict(class_weight="even"), TypeError, "class_weight"),
    (dict(class_weight={2: 1.0}), ValueError, "label 2"),
    (dict(class_weight={0.5: 1.0}), ValueError, r"label 0.5 is not a class of this network \(the integers 0..1\)"),
    (dict(class_weight={float("nan"): 1.0}), ValueError, "label nan"),
    (dict(class_weight={"0": 1.0}), ValueError, "label '0'"),
    (dict(class_weight={0: -1.0}), ValueError, "class 0"),
    (dict(class_weight={0: float("nan")}), ValueError, "class 0"),
    (dict(class_weight="balanced", loss="mse"), ValueError, "class targets"),
    (dict(class_weight={0: 0.0, 1: 0.0}), ValueError, "gives every row a weight of zero"),
    (dict(class_weight={0: 0.0}, sample_weight=np.r_[np.zeros(20), 1.0]), ValueError, "every row a weight of zero"),
])  # fmt: skip
def test_bad_weights_are_refused_at_the_door(kw, err, match):
    X, y = data()
    args = dict(loss="cross_entropy", epochs=1)
    args.update(kw)
    net = xpnet.MLP([3, 2], output_activation="softmax", backend="numpy", seed=0)
    before = [p.copy() for p in net._params()]
    with pytest.raises(err, match=match):
        net.fit(X, np.eye(2)[y] if args["loss"] == "mse" else y, **args)
    for p, q in zip(net._params(), before):
        np.testing.assert_array_equal(p, q)  # nothing ran


def test_class_weights_as_a_series_or_an_array_are_refused_in_words():
    """``class_weight == "balanced"`` compared a pandas Series (what
    ``y.value_counts()`` gives) or an array elementwise: "The truth value of
    a Series is ambiguous" came from deep in pandas."""
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    X, y = data()
    net = xpnet.MLP([3, 2], output_activation="softmax", backend="numpy", seed=0)
    weights = 1.0 / pd.Series(y).value_counts()
    with pytest.raises(TypeError, match=r"a dict \{label: weight\}, got an object of type Series \(pass its .to_dict"):
        net.fit(X, y, loss="cross_entropy", epochs=1, class_weight=weights)
    with pytest.raises(TypeError, match=r"or a dict \{label: weight\}, got an object of type ndarray$"):
        net.fit(X, y, loss="cross_entropy", epochs=1, class_weight=np.array([1.0, 2.0]))
    net.fit(X, y, loss="cross_entropy", epochs=1, class_weight=weights.to_dict())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e37, 1e-40, 1e-300])
def test_constant_weights_of_any_size_change_nothing(dtype, scale, backend):
    """What a batch divides by (its weights' sum) must not overflow or be
    subnormal in float32: constant weights of 1e37 trained on a loss of 0,
    1e-40 diverged (NaN), although they change nothing; 1e-300 was refused
    in float32 as "every weight is zero" (it was cast before it was scaled)."""
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=8, seed=0)
    nets = [xpnet.MLP([3, 2], output_activation="softmax", backend=backend, dtype=dtype, seed=0) for _ in range(3)]
    plain = nets[0].fit(X, y, **kw)
    weighted = nets[1].fit(X, y, sample_weight=np.full(len(y), scale), **kw)
    by_class = nets[2].fit(X, y, class_weight={0: scale, 1: scale}, **kw)
    for h in (weighted, by_class):
        np.testing.assert_allclose(h.loss, plain.loss, rtol=1e-6)


def test_integer_weights_beyond_int32_are_weights_on_every_backend(backend):
    """JAX in its 32-bit mode holds no int64: counts of 3e9 were refused
    (they are scaled in float64 on the host, never held as integers)."""
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=8, seed=0)
    nets = [xpnet.MLP([3, 2], output_activation="softmax", backend=backend, dtype="float32", seed=0) for _ in range(2)]
    plain = nets[0].fit(X, y, **kw)
    counted = nets[1].fit(X, y, sample_weight=np.full(len(y), 3_000_000_000, dtype=np.int64), **kw)
    np.testing.assert_allclose(counted.loss, plain.loss, rtol=1e-6)


def test_integer_weights_beyond_int32_in_jaxs_default_32_bit_mode():
    pytest.importorskip("jax", reason="jax not installed")
    with jax_x64(False):  # the suite's conftest turns the mode on
        test_integer_weights_beyond_int32_are_weights_on_every_backend(xpnet.get_backend("jax"))


def test_constant_device_weights_of_any_size_change_nothing_too(backend):
    """Weights already on the device are scaled there (no transfer)."""
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=8, seed=0)
    nets = [xpnet.MLP([3, 2], output_activation="softmax", backend=backend, dtype="float32", seed=0) for _ in range(2)]
    plain = nets[0].fit(X, y, **kw)
    weighted = nets[1].fit(X, y, sample_weight=backend.asarray(np.full(len(y), 1e38, "float32")), **kw)
    np.testing.assert_allclose(weighted.loss, plain.loss, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e300, 1e-50])
def test_float64_device_weights_are_scaled_before_the_cast_to_float32(backend, scale):
    """float64 weights on the device of a float32 network were cast first:
    1e300 became inf ("sample_weight contains inf") and 1e-50 zero ("every
    weight is zero"), where the same weights from the host train as any
    constant weights do."""
    try:
        backend.dtype("float64")
    except ValueError:
        pytest.skip(f"{backend} holds no float64 array")
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=8, seed=0)
    nets = [xpnet.MLP([3, 2], output_activation="softmax", backend=backend, dtype="float32", seed=0) for _ in range(2)]
    plain = nets[0].fit(X, y, **kw)
    weighted = nets[1].fit(X, y, sample_weight=backend.asarray(np.full(len(y), scale), "float64"), **kw)
    np.testing.assert_allclose(weighted.loss, plain.loss, rtol=1e-6)


def test_float64_device_weights_reach_a_device_without_float64():
    """array-api-strict's 'no_float64' device (as torch's MPS): float64
    weights from its CPU device failed in array_api_strict's words ("does not
    support dtype float64"), where X and y of that dtype train."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device")
    narrow = xpnet.get_backend("array_api_strict", strict.Device("no_float64"))
    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=8, seed=0)
    w = np.linspace(1, 2, len(y))
    want = xpnet.MLP([3, 2], output_activation="softmax", backend=narrow, seed=0).fit(X, y, sample_weight=w, **kw)
    for scale in (1.0, 1e300):
        net = xpnet.MLP([3, 2], output_activation="softmax", backend=narrow, seed=0)
        got = net.fit(strict.asarray(X), strict.asarray(y), sample_weight=strict.asarray(w * scale), **kw)
        np.testing.assert_allclose(got.loss, want.loss, rtol=1e-6)


def test_weight_checks_ride_in_the_inputs_transfer(monkeypatch):
    from test_training import _SyncCounter, strict_device1_run

    net, Xd, yd = strict_device1_run()
    b = net.backend
    w = b.asarray(np.linspace(0.5, 2, Xd.shape[0]), "float32")
    counter = _SyncCounter(monkeypatch)
    net.fit(Xd, yd, loss="cross_entropy", optimizer="adam", epochs=7, batch_size=8, seed=0, sample_weight=w,
            class_weight="balanced")  # fmt: skip
    assert counter.count <= 2
    with pytest.raises(ValueError, match="negative"):
        net.fit(Xd, yd, loss="cross_entropy", sample_weight=b.asarray(-np.ones(Xd.shape[0]), "float32"))


def test_weights_with_resume_are_bit_identical(tmp_path):
    X, y = data()
    w = np.random.default_rng(3).uniform(0, 2, len(y))
    kw = dict(loss="cross_entropy", optimizer="adam", lr=0.05, batch_size=4, seed=1, sample_weight=w,
              class_weight="balanced")  # fmt: skip
    ref = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", dtype="float64", seed=1)
    h_ref = ref.fit(X, y, epochs=6, **kw)
    ck = tmp_path / "ck.safetensors"
    xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", dtype="float64", seed=1).fit(
        X, y, epochs=2, checkpoint=ck, **kw
    )
    net = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", dtype="float64", seed=4)
    h = net.fit(X, y, epochs=6, resume=ck, **kw)
    assert h.loss == h_ref.loss
    for p, q in zip(net._params(), ref._params()):
        np.testing.assert_array_equal(p, q)


def test_a_validation_split_that_takes_every_weighed_row_is_refused():
    """The all-zero check ran before the split: with the one weighed row
    held out, fit trained on nothing and reported a loss of 0.0."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    w = np.zeros(10)
    w[0] = 1.0
    outcomes = set()
    for seed in range(6):
        net = xpnet.Network([xpnet.Dense(3, 1)], backend="numpy", seed=0)
        try:
            history = net.fit(X, y, loss="mse", epochs=2, seed=seed, validation_split=0.3, sample_weight=w)
        except ValueError as exc:
            assert "the validation split left every training row a sample_weight of zero" in str(exc)
            outcomes.add("refused")
        else:
            assert min(history.loss) > 0
            outcomes.add("trained")
    assert outcomes == {"refused", "trained"}  # both ways occur among these seeds
