"""Dropout: the identity outside fit, inverted dropout inside it with masks
drawn on the device (the same training on every backend), one stream per
layer, bit-identical resume, no per-step host transfer, bad rates."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import StopAfter, assert_on, host
from test_training import _SyncCounter

import xpnet
from xpnet._device_random import DeviceRandom
from xpnet.layers import Context, walk


def data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)


def net_with(backend, rate=0.5, dtype="float64", seed=0, norm=False):
    layers = [xpnet.Dense(4, 16, "relu"), xpnet.Dropout(rate), xpnet.Dense(16, 12, "tanh")]
    layers += [xpnet.BatchNorm(12)] if norm else []
    layers += [xpnet.Dropout(rate / 2), xpnet.Dense(12, 3, "softmax")]
    return xpnet.Network(layers, backend=backend, dtype=dtype, seed=seed)


def net_without(backend, dtype="float64", seed=0):
    layers = [xpnet.Dense(4, 16, "relu"), xpnet.Dense(16, 12, "tanh"), xpnet.Dense(12, 3, "softmax")]
    return xpnet.Network(layers, backend=backend, dtype=dtype, seed=seed)


FIT = dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=4, batch_size=8, seed=3)


def test_identity_in_predict_evaluate_and_gradients(backend):
    X, y = data()
    a, b = net_with(backend), net_without(backend)  # Dropout draws no weights: the same Dense weights
    np.testing.assert_array_equal(host(a.predict(X)), host(b.predict(X)))
    assert a.evaluate(X, y, "cross_entropy") == b.evaluate(X, y, "cross_entropy")
    ga, gb = a.gradients(X, y, "cross_entropy"), b.gradients(X, y, "cross_entropy")
    for got, want in zip([g for g in ga if g], gb):
        for u, v in zip(got, want):
            np.testing.assert_array_equal(host(u), host(v))
    assert xpnet.gradcheck(a, X[:6], y[:6], "cross_entropy")


def test_training_forward_and_backward_are_inverted_dropout(backend):
    net = net_with(backend, rate=0.3)
    layer = net.layers[1]
    xp = backend.xp
    rng = np.random.default_rng(1)
    X, dY = rng.normal(size=(9, 16)), rng.normal(size=(9, 16))
    source = DeviceRandom(key=77, step=5)
    Y, cache, _ = layer.forward(xp, [], [], backend.asarray(X, "float64"), Context(training=True, rng=source))
    dX, grads = layer.backward(xp, [], cache, backend.asarray(dY, "float64"), True)
    assert_on(Y, backend, "float64", (9, 16))
    keep = host(source.keep(xpnet.get_backend("numpy").xp, (9, 16), 0.7, layer.stream, "cpu"))
    assert 0 < keep.sum() < keep.size
    np.testing.assert_allclose(host(Y), np.where(keep, X / 0.7, 0.0), rtol=1e-15)
    np.testing.assert_allclose(host(dX), np.where(keep, dY / 0.7, 0.0), rtol=1e-15)
    assert grads == []
    # not training, or training without a random source: the identity
    for ctx in (Context(), Context(training=True)):
        Xa = backend.asarray(X, "float64")
        assert layer.forward(xp, [], [], Xa, ctx)[0] is Xa


def test_fit_trains_the_same_on_every_backend(backend):
    """Same seed, same masks: float64 training on any backend equals NumPy's
    to rounding (a different mask would change the weights at once)."""
    X, y = data()
    net = net_with(backend, norm=True)
    history = net.fit(X, y, **FIT)
    ref = net_with("numpy", norm=True)
    want = ref.fit(X, y, **FIT)
    np.testing.assert_allclose(history.loss, want.loss, rtol=1e-10)
    for got, exp in zip(net._params() + net._buffers(), ref._params() + ref._buffers()):
        assert_on(got, backend, "float64")
        np.testing.assert_allclose(host(got), host(exp), rtol=1e-9, atol=1e-12)
    other = net_with("numpy", norm=True)
    other.fit(X, y, **{**FIT, "seed": 4})  # another seed: other masks (and shuffles)
    assert not np.allclose(host(other._params()[0]), host(ref._params()[0]))


def test_dropout_acts_in_fit_and_rate_zero_does_not():
    X, y = data()
    plain = net_without("numpy")
    plain.fit(X, y, **FIT)
    zero, half = net_with("numpy", rate=0.0), net_with("numpy", rate=0.5)
    zero.fit(X, y, **FIT)
    half.fit(X, y, **FIT)
    for a, b in zip(zero._params(), plain._params()):
        np.testing.assert_array_equal(host(a), host(b))
    assert not np.allclose(host(half._params()[0]), host(plain._params()[0]))


def test_every_layer_has_its_own_stream():
    net = net_with("numpy", norm=True)
    streams = [layer.stream for layer in walk(net._root)]
    assert len(set(streams)) == len(streams)
    d1, d2 = net.layers[1], net.layers[4]
    source = DeviceRandom(1, 1)
    xp = net.backend.xp
    X = np.ones((20, 12))
    m1 = d1.forward(xp, [], [], X, Context(True, source))[0]
    m2 = xpnet.Dropout(0.5)
    m2.stream = d2.stream
    m2 = m2.forward(xp, [], [], X, Context(True, source))[0]
    assert 0.4 < ((m1 == 0) == (m2 == 0)).mean() < 0.6  # independent masks, not the same one


@pytest.mark.parametrize("stop_at", ["epoch", "step"])
def test_resume_draws_the_same_masks(tmp_path, backend, stop_at):
    # JAX runs an epoch's steps as programs of up to 64, looking at the interrupt between them: 75 steps an epoch
    fit, X, y = ({**FIT, "batch_size": 2}, *data(150)) if backend.name == "jax" else (FIT, *data())
    whole = net_with(backend, norm=True)
    whole.fit(X, y, **fit)
    path = tmp_path / "run.ckpt"
    first = net_with(backend, norm=True)
    if stop_at == "epoch":
        first.fit(X, y, **{**fit, "epochs": 2}, checkpoint=path)
    elif backend.name == "jax":
        with pytest.raises(xpnet.TrainingInterrupted, match="step 64"):
            first.fit(X, y, **fit, checkpoint=path, interrupt=StopAfter(2))
    else:
        stop, calls = threading.Event(), []
        original = first._loss_and_grads

        def counting(*args):
            calls.append(1)
            if len(calls) == 6:  # mid second epoch (4 steps per epoch)
                stop.set()
            return original(*args)

        first._loss_and_grads = counting
        with pytest.raises(xpnet.TrainingInterrupted):
            first.fit(X, y, **FIT, checkpoint=path, interrupt=stop)
    resumed = net_with(backend, norm=True, seed=1)
    history = resumed.fit(X, y, **fit, resume=path)
    assert len(history.loss) == 4
    for a, b in zip(resumed._params() + resumed._buffers(), whole._params() + whole._buffers()):
        np.testing.assert_array_equal(host(a), host(b))


def test_resume_without_a_seed_takes_the_masks_from_the_checkpoint(tmp_path):
    """seed=None: the masks come from the checkpointed generator state, so two
    resumes from one checkpoint (each with fresh entropy) train alike."""
    X, y = data()
    path = tmp_path / "run.ckpt"
    net_with("numpy").fit(X, y, **{**FIT, "epochs": 1, "seed": None}, checkpoint=path)
    runs = []
    for _ in range(2):
        net = net_with("numpy")
        net.fit(X, y, **{**FIT, "seed": None}, resume=path)
        runs.append([host(p) for p in net._params()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_no_per_step_host_transfer_with_dropout_and_batchnorm(monkeypatch):
    b = xpnet.get_backend("array_api_strict", "device1")
    X, y = data(50)
    net = net_with(b, dtype="float32", norm=True)
    Xd, yd = b.asarray(X, "float32"), b.asarray(y)
    counter = _SyncCounter(monkeypatch)
    epochs = 5
    net.fit(Xd, yd, **{**FIT, "epochs": epochs, "validation_data": (Xd, yd)})  # 7 steps per epoch
    # the inputs' checks, then the epochs' figures in one report at the end
    assert counter.count <= 2, f"{counter.count} device-to-host transfers for {epochs} epochs"
    assert_on(net.layers[3].buffers["running_var"], b, "float32")


def test_no_per_step_host_to_device_copy_with_dropout(monkeypatch):
    """The masks' hash constants are Python ints, not a 0-d array each from
    the host (seven copies a step): the copies from the host are the
    epochs' row orders, whatever the number of steps."""
    import array_api_strict as strict

    b = xpnet.get_backend("array_api_strict", "device1")
    X, y = data(30)
    Array, cpu = type(strict.asarray(0.0)), strict.Device("CPU_DEVICE")

    def copies(batch_size):
        net = net_with(b, dtype="float32")
        Xd, yd = b.asarray(X, "float32"), b.asarray(y)
        count, original = [0], strict.asarray

        def asarray(obj, *a, **k):
            if not isinstance(obj, Array) and k.get("device", cpu) != cpu:
                count[0] += 1
            return original(obj, *a, **k)

        with monkeypatch.context() as m:
            m.setattr(strict, "asarray", asarray)
            net.fit(Xd, yd, **{**FIT, "epochs": 3, "batch_size": batch_size})
        return count[0]

    assert copies(2) == copies(10) == 3  # 15 steps an epoch, then 3: one order an epoch


def test_saved_and_loaded_with_its_rate(tmp_path):
    net = net_with("numpy", rate=0.25)
    net.save(tmp_path / "m.safetensors")
    back = xpnet.load(tmp_path / "m.safetensors")
    assert isinstance(back.layers[1], xpnet.Dropout) and back.layers[1].rate == 0.25
    assert back.config() == net.config() and repr(back.layers[1]) == "Dropout(0.25)"


@pytest.mark.parametrize(
    "rate, err, match",
    [
        (1.0, ValueError, r"Dropout rate must be in \[0, 1\) \(the share of elements set to zero\), got 1.0"),
        (-0.1, ValueError, "got -0.1"),
        (float("nan"), ValueError, "got nan"),
        ("0.5", TypeError, "Dropout rate must be a number in \\[0, 1\\), got '0.5'"),
        (True, TypeError, "got True"),
        (None, TypeError, "got None"),
    ],
)
def test_bad_rates_are_refused(rate, err, match):
    with pytest.raises(err, match=match):
        xpnet.Dropout(rate)


def test_numpy_float_rate_is_taken():
    assert xpnet.Dropout(np.float32(0.5)).rate == 0.5


def test_readme_example_beats_the_plain_mlp_on_digits():
    """README, "Dropout and normalisation": BatchNorm + Dropout(0.2) against
    the MLP of "The Python API", same split, optimizer and seeds."""
    X, y = xpnet.datasets.load_digits()
    rows = np.random.default_rng(0).permutation(len(y))
    train, test = rows[:1400], rows[1400:]
    kw = dict(loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=30, batch_size=32, seed=0)
    plain = xpnet.MLP([64, 128, 10], output_activation="softmax", seed=0, backend="numpy")
    layers = [xpnet.Dense(64, 128), xpnet.BatchNorm(128), "relu", xpnet.Dropout(0.2), xpnet.Dense(128, 10, "softmax")]
    net = xpnet.Network(layers, seed=0, backend="numpy")
    accuracy = {}
    for name, model in (("plain", plain), ("regularised", net)):
        model.fit(X[train], y[train], **kw)
        accuracy[name] = float((host(model.predict(X[test])).argmax(1) == y[test]).mean())
    assert accuracy["regularised"] > accuracy["plain"] and accuracy["regularised"] >= 0.99, accuracy


def test_fit_gives_a_random_source_only_to_networks_that_draw(monkeypatch):
    """Layers say ``uses_rng``; without one, every step shares one context
    and no key is derived (a plain network trains as fast as before)."""
    from xpnet.layers import Layer

    seen = []

    class Probe(Layer):  # not registered: never saved
        name = "Probe"

        def forward(self, xp, params, buffers, X, ctx):
            seen.append(ctx.rng)
            return X, None, buffers

        def backward(self, xp, params, cache, dY, need_dx):
            return dY, []

    X, y = data(16)
    for draws in (False, True):
        seen.clear()
        monkeypatch.setattr(Probe, "uses_rng", draws)
        net = xpnet.Network([xpnet.Dense(4, 5), Probe(), xpnet.Dense(5, 3, "softmax")], backend="numpy", seed=0)
        assert net._uses_rng is draws
        net.fit(X, y, **{**FIT, "epochs": 2})
        assert len(seen) == 4  # 2 steps per epoch
        if draws:
            assert all(isinstance(r, DeviceRandom) for r in seen) and len({(r.key, r.step) for r in seen}) == 4
            assert [r.step for r in seen] == [0, 1, 2, 3]  # the global step index
        else:
            assert seen == [None] * 4
