"""LayerNorm and BatchNorm against torch.nn (float64, every backend): values,
gradients, running statistics after 10 training steps; central differences;
buffers in model files and checkpoints; weight decay skips them; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_on, central_diff, host, try_import

import xpnet
from xpnet.layers import INFERENCE, Context

TRAIN = Context(training=True)


def needs_torch():
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    torch.set_default_dtype(torch.float64)
    return torch


def built(backend, layer, seed=0):
    """``layer`` with parameters and buffers set to non-trivial values."""
    xpnet.Network([xpnet.Dense(layer.n, layer.n), layer], backend=backend, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed + 1)
    n = layer.n
    params = [backend.asarray(rng.normal(1.0, 0.3, n), "float64"), backend.asarray(rng.normal(0.0, 0.3, n), "float64")]
    buffers = [backend.asarray(rng.normal(0.0, 0.5, n), "float64"), backend.asarray(rng.uniform(0.5, 2.0, n), "float64")]
    layer._set(params, buffers[: len(layer.buffer_shapes())])
    return layer


def torch_twin(torch, layer):
    """The torch module with the same parameters and running statistics."""
    if isinstance(layer, xpnet.LayerNorm):
        m = torch.nn.LayerNorm(layer.n, eps=layer.eps)
    else:
        m = torch.nn.BatchNorm1d(layer.n, momentum=layer.momentum, eps=layer.eps)
        m.running_mean.copy_(torch.tensor(host(layer.buffers["running_mean"])))
        m.running_var.copy_(torch.tensor(host(layer.buffers["running_var"])))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(host(layer.parameters["weight"])))
        m.bias.copy_(torch.tensor(host(layer.parameters["bias"])))
    return m


LAYERS = {
    "layernorm": lambda: xpnet.LayerNorm(6),
    "layernorm_eps": lambda: xpnet.LayerNorm(6, eps=0.3),
    "batchnorm": lambda: xpnet.BatchNorm(6),
    "batchnorm_momentum": lambda: xpnet.BatchNorm(6, momentum=0.35, eps=1e-3),
}


@pytest.mark.parametrize("which", list(LAYERS))
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_backward_match_torch(backend, which, training):
    torch = needs_torch()
    layer = built(backend, LAYERS[which]())
    rng = np.random.default_rng(3)
    X, dY = rng.normal(2.0, 3.0, (7, 6)), rng.normal(size=(7, 6))
    Xa = backend.asarray(X, "float64")
    xp = backend.xp
    params, buffers = layer._all_params(), layer._all_buffers()
    Y, cache, new_buffers = layer.forward(xp, params, buffers, Xa, TRAIN if training else INFERENCE)
    dX, grads = layer.backward(xp, params, cache, backend.asarray(dY, "float64"), True)

    m = torch_twin(torch, layer)
    m.train(training)
    Xt = torch.tensor(X, requires_grad=True)
    Yt = m(Xt)
    Yt.backward(torch.tensor(dY))
    assert_on(Y, backend, "float64", (7, 6))
    assert_on(dX, backend, "float64", (7, 6))
    np.testing.assert_allclose(host(Y), Yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(dX), Xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(grads[0]), m.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(grads[1]), m.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
    if isinstance(layer, xpnet.BatchNorm):
        np.testing.assert_allclose(host(new_buffers[0]), m.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(host(new_buffers[1]), m.running_var.numpy(), rtol=1e-12, atol=1e-14)
        if not training:
            assert new_buffers is buffers  # inference leaves the statistics alone
    # pure: the committed arrays did not change
    np.testing.assert_array_equal(host(layer.parameters["weight"]), host(params[0]))


@pytest.mark.parametrize("which", ["layernorm", "batchnorm"])
def test_backward_matches_central_differences(backend, which):
    layer = built(backend, LAYERS[which]())
    xp = backend.xp
    rng = np.random.default_rng(4)
    X, dY = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    params = layer._all_params()
    w, b = host(params[0]), host(params[1])
    buffers = layer._all_buffers()

    def f(x, w=w, b=b):
        pa = [backend.asarray(w, "float64"), backend.asarray(b, "float64")]
        Y = layer.forward(xp, pa, buffers, backend.asarray(x, "float64"), TRAIN)[0]
        return float(np.sum(dY * host(Y)))

    _, cache, _ = layer.forward(xp, params, buffers, backend.asarray(X, "float64"), TRAIN)
    dX, (dw, db) = layer.backward(xp, params, cache, backend.asarray(dY, "float64"), True)
    np.testing.assert_allclose(host(dX), central_diff(f, X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host(dw), central_diff(lambda v: f(X, w=v), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host(db), central_diff(lambda v: f(X, b=v), b), rtol=1e-6, atol=1e-8)


# -- ten training steps against torch -------------------------------------------


def make_net(backend, seed=0):
    layers = [
        xpnet.Dense(5, 8), xpnet.BatchNorm(8, momentum=0.2), "relu",
        xpnet.Dense(8, 8), xpnet.LayerNorm(8), "tanh",
        xpnet.Dense(8, 3, "softmax"),
    ]  # fmt: skip
    return xpnet.Network(layers, backend=backend, dtype="float64", seed=seed)


def torch_model(torch, net):
    lin = [layer for layer in net.layers if isinstance(layer, xpnet.Dense)]
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8, momentum=0.2), torch.nn.ReLU(),
        torch.nn.Linear(8, 8), torch.nn.LayerNorm(8), torch.nn.Tanh(), torch.nn.Linear(8, 3),
    )  # fmt: skip
    with torch.no_grad():
        for t, d in zip([model[0], model[3], model[6]], lin):
            t.weight.copy_(torch.tensor(host(d.weights).T))
            t.bias.copy_(torch.tensor(host(d.bias)))
    return model


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 2.0, size=(n, 5))
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1.5)


def test_ten_training_steps_match_torch(backend):
    """SGD with momentum, minibatches of 8 in order: 10 steps. Losses, weights,
    running statistics and the trained network's outputs as torch's."""
    torch = needs_torch()
    X, y = data()
    net = make_net(backend)
    model = torch_model(torch, net)
    history = net.fit(X, y, loss="cross_entropy", optimizer="momentum", lr=0.1, epochs=2, batch_size=8, shuffle=False)

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    losses = []
    for _ in range(2):
        for s in range(0, 40, 8):
            loss = torch.nn.functional.cross_entropy(model(Xt[s : s + 8]), yt[s : s + 8])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    np.testing.assert_allclose(history.loss, [np.mean(losses[:5]), np.mean(losses[5:])], rtol=1e-10)
    bn, ln = net.layers[1], net.layers[4]
    for got, want in [
        (bn.buffers["running_mean"], model[1].running_mean), (bn.buffers["running_var"], model[1].running_var),
        (bn.parameters["weight"], model[1].weight), (bn.parameters["bias"], model[1].bias),
        (ln.parameters["weight"], model[4].weight), (ln.parameters["bias"], model[4].bias),
        (net.layers[3].weights, model[3].weight.T),
    ]:  # fmt: skip
        assert_on(got, backend, "float64")
        np.testing.assert_allclose(host(got), want.detach().numpy(), rtol=1e-9, atol=1e-12)
    model.eval()
    want = torch.softmax(model(Xt), dim=1).detach().numpy()
    np.testing.assert_allclose(host(net.predict(X)), want, rtol=1e-9, atol=1e-12)


def test_network_gradients_use_batch_statistics_like_torch(backend):
    torch = needs_torch()
    X, y = data(12)
    net = make_net(backend)
    model = torch_model(torch, net)
    grads = net.gradients(X, y, "cross_entropy")
    torch.nn.functional.cross_entropy(model(torch.tensor(X)), torch.tensor(y)).backward()
    np.testing.assert_allclose(host(grads[1][0]), model[1].weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(host(grads[4][1]), model[4].bias.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(host(grads[0][0]), model[0].weight.grad.numpy().T, rtol=1e-9, atol=1e-12)
    # gradients() does not train: the running statistics stay where they were
    np.testing.assert_array_equal(host(net.layers[1].buffers["running_mean"]), np.zeros(8))


def test_gradcheck_passes_through_the_norms(backend):
    X, y = data(9)
    assert xpnet.gradcheck(make_net(backend), X, y, "cross_entropy")


# -- buffers: files, checkpoints, weight decay ----------------------------------------


def test_running_statistics_are_saved_and_loaded(tmp_path, backend):
    X, y = data()
    net = make_net(backend)
    net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, batch_size=8, seed=2)
    net.save(tmp_path / "m.safetensors")
    from safetensors.numpy import load_file

    tensors = load_file(str(tmp_path / "m.safetensors"))
    assert {"layers.1.running_mean", "layers.1.running_var", "layers.4.weight"} <= set(tensors)
    back = xpnet.load(tmp_path / "m.safetensors", backend=backend)
    assert isinstance(back.layers[1], xpnet.BatchNorm) and back.layers[1].momentum == 0.2
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(host(back.layers[1].buffers[name]), host(net.layers[1].buffers[name]))
    np.testing.assert_array_equal(host(back.predict(X)), host(net.predict(X)))
    assert not np.allclose(host(net.layers[1].buffers["running_var"]), 1.0)  # they did move


@pytest.mark.parametrize("stop_at", ["epoch", "step"])
def test_resume_with_batchnorm_is_bit_identical(tmp_path, backend, stop_at):
    import threading

    X, y = data()
    kw = dict(loss="cross_entropy", optimizer="adam", lr=0.01, batch_size=8, seed=5)
    whole = make_net(backend)
    whole.fit(X, y, epochs=4, **kw)

    path = tmp_path / "run.ckpt"
    first = make_net(backend)
    if stop_at == "epoch":
        first.fit(X, y, epochs=2, checkpoint=path, **kw)
    else:  # stopped mid-epoch by an interrupt set after the 7th step's loss
        kw["compile"] = False  # the count below needs Python to run each step (a jax.jit step runs it once)
        whole = make_net(backend)
        whole.fit(X, y, epochs=4, **kw)
        stop, calls = threading.Event(), []
        original = first._loss_and_grads

        def counting(*args):
            calls.append(1)
            if len(calls) == 7:
                stop.set()
            return original(*args)

        first._loss_and_grads = counting
        with pytest.raises(xpnet.TrainingInterrupted):
            first.fit(X, y, epochs=4, checkpoint=path, interrupt=stop, **kw)
    resumed = make_net(backend, seed=99)  # other initial weights: all of it comes from the file
    history = resumed.fit(X, y, epochs=4, resume=path, **kw)
    assert len(history.loss) == 4
    for a, b in zip(resumed._params() + resumed._buffers(), whole._params() + whole._buffers()):
        np.testing.assert_array_equal(host(a), host(b))


def test_weight_decay_skips_normalisation_parameters():
    assert xpnet.LayerNorm(4).decayed() == () and xpnet.BatchNorm(4).decayed() == ()
    net = make_net("numpy")
    mask = dict(zip(net._parameter_names(), net._decay_mask()))
    assert mask["layers.0.weight"] and not mask["layers.0.bias"]
    assert not any(v for k, v in mask.items() if k.startswith(("layers.1.", "layers.4.")))


# -- input checks ---------------------------------------------------------------------


def test_batchnorm_refuses_a_one_row_training_batch():
    X, y = data(17)
    net = make_net("numpy")
    with pytest.raises(ValueError, match="at least 2 rows in each training minibatch to estimate a variance, got 1"):
        net.fit(X, y, loss="cross_entropy", epochs=1, batch_size=8)  # 8, 8, 1
    assert net.predict(X[:1]).shape == (1, 3)  # inference takes one row


def test_batchnorm_refuses_one_row_in_gradients_and_gradcheck_saying_why():
    """``gradients`` and ``gradcheck`` normalise with the batch's statistics,
    as ``fit`` does: one row is refused there too, but the message told the
    caller to "pick a batch_size", which neither takes."""
    X, y = data(17)
    net = make_net("numpy")
    for call in (lambda: net.gradients(X[:1], y[:1], "cross_entropy"),
                 lambda: xpnet.gradcheck(net, X[:1], y[:1], "cross_entropy")):  # fmt: skip
        with pytest.raises(ValueError, match=r"got 1 .*Network.gradients and gradcheck .*give them 2 rows or more"):
            call()
    assert np.isfinite(net.evaluate(X[:1], y[:1], "cross_entropy"))  # evaluate uses the running statistics


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda: xpnet.LayerNorm(0), ValueError, "n"),
        (lambda: xpnet.LayerNorm(3, eps=0), ValueError, "eps must be a positive finite number, got 0"),
        (lambda: xpnet.LayerNorm(3, eps="1e-5"), TypeError, "eps must be a positive number"),
        (lambda: xpnet.BatchNorm(3, momentum=1.5), ValueError, r"momentum must be a number in \[0, 1\], got 1.5"),
        (lambda: xpnet.BatchNorm(3, momentum=True), TypeError, "momentum"),
        (lambda: xpnet.BatchNorm(3, momentum="0.1"), TypeError, "momentum must be a number"),
        (lambda: xpnet.BatchNorm(3, eps=float("nan")), ValueError, "eps"),
    ],
)
def test_bad_settings_are_refused(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_width_mismatch_is_named():
    with pytest.raises(ValueError, match="layer 1 expects 4 inputs but layer 0 gives 3 outputs"):
        xpnet.Network([xpnet.Dense(2, 3), xpnet.BatchNorm(4)])


@pytest.mark.parametrize("layer", [lambda: xpnet.LayerNorm(4), lambda: xpnet.BatchNorm(4)])
def test_a_variance_that_overflows_is_an_error_not_zeros(layer, backend):
    """LayerNorm gave [[0, 0, 0, 0]] for inputs near 1e19 in float32 (d * 0),
    and BatchNorm a zero gradient: predict's overflow error now, as torch's NaN."""
    net = xpnet.Network([layer()], backend=backend, dtype="float32", seed=0)
    X = np.array([[1e19, -2e19, 3e19, 5e18], [1.0, 2.0, 3.0, 4.0]])
    if isinstance(net.layers[0], xpnet.LayerNorm):
        with pytest.raises(FloatingPointError, match="overflowed"):
            net.predict(X)
    with pytest.raises(FloatingPointError):
        net.fit(X, np.zeros((2, 4)), epochs=1)


# -- public state: weight, bias, running_mean, running_var -------------------------------------------------------


def torch_trained_norm(torch, kind, n=5, momentum=0.35):
    """A torch BatchNorm1d (three training steps: running statistics moved)
    or LayerNorm with random affine parameters, in eval mode."""
    torch.manual_seed(0)
    if kind == "batchnorm":
        m = torch.nn.BatchNorm1d(n, momentum=momentum, eps=1e-3)
        for _ in range(3):
            m(torch.randn(8, n) * 2.0 + 1.5)
    else:
        m = torch.nn.LayerNorm(n, eps=1e-3)
    with torch.no_grad():
        m.weight.copy_(torch.randn(n))
        m.bias.copy_(torch.randn(n))
    return m.eval()


def norm_net(backend, kind, n=5, momentum=0.35, dtype="float64"):
    layer = xpnet.BatchNorm(n, momentum=momentum, eps=1e-3) if kind == "batchnorm" else xpnet.LayerNorm(n, eps=1e-3)
    return xpnet.Network([layer], backend=backend, dtype=dtype, seed=0), layer


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_pretrained_torch_values_set_through_properties_predict_as_torch(backend, kind):
    """torch's BatchNorm1d/LayerNorm state loads through public setters (they
    had none: writing into layer.parameters[...] was silently ignored)."""
    torch = needs_torch()
    m = torch_trained_norm(torch, kind)
    net, layer = norm_net(backend, kind)
    layer.weight = m.weight  # a Parameter that requires grad, as torch holds it
    layer.bias = m.bias.detach().numpy().astype(np.float32)  # host data of another dtype: converted
    if kind == "batchnorm":
        layer.running_mean = m.running_mean
        layer.running_var = m.running_var.tolist()
        np.testing.assert_array_equal(host(layer.running_var), m.running_var.numpy())
        assert_on(layer.running_mean, backend, "float64", (5,))
    assert_on(layer.weight, backend, "float64", (5,))
    assert_on(layer.bias, backend, "float64", (5,))
    X = np.random.default_rng(1).normal(1.0, 2.0, (7, 5))
    with torch.no_grad():
        want = m(torch.tensor(X)).numpy()
    np.testing.assert_allclose(host(net.predict(X)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "value", "err", "match"),
    [
        ("weight", np.ones(4), ValueError, r"BatchNorm.weight must have shape \(5,\), got \(4,\)"),
        ("bias", np.ones((5, 1)), ValueError, r"BatchNorm.bias must have shape \(5,\), got \(5, 1\)"),
        ("weight", [1.0, np.nan, 1.0, 1.0, 1.0], ValueError, "BatchNorm.weight contains NaN"),
        ("running_mean", [0.0, np.inf, 0.0, 0.0, 0.0], ValueError, "BatchNorm.running_mean contains inf"),
        ("running_var", [1.0, 1.0, -0.5, 1.0, 1.0], ValueError, "BatchNorm.running_var holds negative values"),
        ("running_var", np.ones(6), ValueError, r"BatchNorm.running_var must have shape \(5,\), got \(6,\)"),
        ("running_mean", ["a"] * 5, TypeError, "strings"),
    ],
)
def test_norm_setters_refuse_bad_values_and_keep_the_old_ones(backend, name, value, err, match):
    net, layer = norm_net(backend, "batchnorm")
    before = host(getattr(layer, name)).copy()
    with pytest.raises(err, match=match):
        setattr(layer, name, value)
    np.testing.assert_array_equal(host(getattr(layer, name)), before)


def test_layernorm_setters_check_too_and_have_no_running_statistics(backend):
    net, layer = norm_net(backend, "layernorm", n=3)
    with pytest.raises(ValueError, match=r"LayerNorm.weight must have shape \(3,\), got \(2,\)"):
        layer.weight = [1.0, 2.0]
    with pytest.raises(ValueError, match="LayerNorm.bias contains NaN"):
        layer.bias = [0.0, float("nan"), 0.0]
    assert not hasattr(layer, "running_var")


def test_norm_setters_need_a_network_and_copy_their_value():
    layer = xpnet.BatchNorm(3)
    assert layer.weight is None and layer.running_var is None
    with pytest.raises(RuntimeError, match="Network"):
        layer.running_var = np.ones(3)
    net = xpnet.Network([layer], backend="numpy", dtype="float64")
    var = np.full(3, 2.0)
    layer.running_var = var
    var[0] = 42.0
    assert host(layer.running_var)[0] == 2.0
    layer.running_var = np.zeros(3)  # zero is a variance (a constant feature); eps keeps it finite
    assert np.all(np.isfinite(host(net.predict(np.ones((2, 3))))))


def test_a_fit_starts_from_set_statistics_and_a_callback_edit_is_adopted(backend):
    """fit's first running update starts from the set values; values set by
    a callback between epochs are the next epoch's start (as Dense.weights)."""
    X = np.random.default_rng(0).normal(3.0, 2.0, (8, 4))
    net, layer = norm_net(backend, "batchnorm", n=4, momentum=0.5)
    layer.running_mean = np.full(4, 10.0)
    net.fit(X, np.zeros((8, 4)), optimizer="sgd", lr=1e-12, epochs=1, batch_size=8, shuffle=False)
    np.testing.assert_allclose(host(layer.running_mean), 0.5 * 10.0 + 0.5 * X.mean(axis=0), rtol=1e-12)

    class Edit(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                layer.running_mean = np.full(4, -20.0)
                layer.weight = np.full(4, 3.0)

    net.fit(X, np.zeros((8, 4)), optimizer="sgd", lr=1e-12, epochs=2, batch_size=8, shuffle=False, callbacks=[Edit()])
    np.testing.assert_allclose(host(layer.running_mean), 0.5 * -20.0 + 0.5 * X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(host(layer.weight), np.full(4, 3.0), rtol=1e-9)


def test_set_statistics_are_saved_and_loaded(tmp_path, backend):
    net, layer = norm_net(backend, "batchnorm", n=3)
    layer.running_var = [0.5, 2.0, 4.0]
    layer.bias = [1.0, 2.0, 3.0]
    net.save(tmp_path / "m.safetensors")
    back = xpnet.load(tmp_path / "m.safetensors", backend=backend)
    np.testing.assert_array_equal(host(back.layers[0].running_var), [0.5, 2.0, 4.0])
    np.testing.assert_array_equal(host(back.layers[0].bias), [1.0, 2.0, 3.0])



def test_writing_into_the_parameters_mapping_is_refused_naming_the_setter():
    net, layer = norm_net("numpy", "batchnorm", n=3)
    with pytest.raises(TypeError, match=r"read-only.*BatchNorm.running_var"):
        layer.buffers["running_var"] = np.ones(3)
    with pytest.raises(TypeError, match=r"read-only.*BatchNorm.weight"):
        layer.parameters["weight"] = np.ones(3)
    with pytest.raises(TypeError, match=r"read-only.*Dense.weights"):
        xpnet.Network([xpnet.Dense(2, 2)]).layers[0].parameters["weight"] = np.ones((2, 2))
    assert dict(layer.parameters).keys() == {"weight", "bias"}
    with pytest.raises(TypeError, match="read-only"):
        del layer.buffers["running_mean"]
    assert "running_mean" in layer.buffers and len(layer.buffers) == 2
