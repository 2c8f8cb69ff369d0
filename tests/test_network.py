"""Network and MLP: forward, gradients for every activation/loss pairing,
conversion between backends, and input checking."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import REF_ACTIVATIONS, assert_on, central_diff, host, ref_loss, try_import

import xpnet
from xpnet.activations import ACTIVATIONS
from xpnet.losses import LOSSES


def ref_forward(params, acts, X):
    a = X
    for (W, b), f in zip(params, acts):
        a = REF_ACTIVATIONS[f](a @ W + (0 if b is None else b))
    return a


def targets_for(loss, out_act, n, k, rng):
    if loss == "cross_entropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


PAIRINGS = [(h, o, loss) for loss in LOSSES for o in ACTIVATIONS for h in ("tanh", "relu")]
PAIRINGS = [p for p in PAIRINGS if p[2] not in ("binary_cross_entropy", "cross_entropy") or p[1] in ("sigmoid", "softmax")]


@pytest.mark.parametrize(("hidden", "out", "loss"), PAIRINGS)
def test_gradients_match_central_differences(backend, hidden, out, loss):
    rng = np.random.default_rng(0)
    net = xpnet.Network(
        [xpnet.Dense(3, 4, hidden), xpnet.Dense(4, 2, out, bias=False)], backend=backend, dtype="float64", seed=1
    )
    X = rng.normal(size=(5, 3))
    T = targets_for(loss, out, 5, 2, rng)
    grads = net.gradients(X, T, loss)
    params = [(host(l.weights), None if l.bias is None else host(l.bias)) for l in net.layers]
    acts = [hidden, out]

    def L_of(i, j):
        def f(p):
            ps = [list(x) for x in params]
            ps[i][j] = p
            return ref_loss(loss, T, ref_forward(ps, acts, X))

        return f

    for i, (dW, db) in enumerate(grads):
        assert_on(dW, backend, "float64", params[i][0].shape)
        np.testing.assert_allclose(host(dW), central_diff(L_of(i, 0), params[i][0]), rtol=1e-5, atol=1e-8)
        if params[i][1] is None:
            assert db is None
        else:
            assert_on(db, backend, "float64", params[i][1].shape)
            np.testing.assert_allclose(host(db), central_diff(L_of(i, 1), params[i][1]), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("out", "loss"), [("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy"),
                                           ("identity", "mse"), ("softmax", "mse"), ("tanh", "sse")])
def test_gradients_match_torch_autograd(out, loss):
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    rng = np.random.default_rng(4)
    net = xpnet.MLP([3, 5, 4, 2], "relu", out, backend="numpy", dtype="float64", seed=3)
    X = rng.normal(size=(6, 3))
    T = targets_for(loss, out, 6, 2, rng)
    ours = net.gradients(X, T, loss)
    tparams = [(torch.tensor(host(l.weights), requires_grad=True), torch.tensor(host(l.bias), requires_grad=True)) for l in net.layers]
    a = torch.tensor(X)
    fns = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda v: v,
           "softmax": lambda v: torch.softmax(v, dim=1)}
    for i, (W, b) in enumerate(tparams):
        a = fns["relu" if i < 2 else out](a @ W + b)
    t = torch.tensor(T)
    if loss == "mse":
        L = torch.mean((a - t) ** 2)
    elif loss == "sse":
        L = torch.sum((a - t) ** 2)
    elif loss == "binary_cross_entropy":
        L = torch.nn.functional.binary_cross_entropy(a, t)
    else:
        L = torch.mean(-torch.sum(t * torch.log(a), dim=1))
    L.backward()
    assert net.evaluate(X, T, loss) == pytest.approx(L.item(), rel=1e-12)
    for (dW, db), (W, b) in zip(ours, tparams):
        np.testing.assert_allclose(dW, W.grad.numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_forward_predict_call_agree_and_live_on_backend(backend):
    net = xpnet.MLP([3, 8, 2], "relu", "softmax", backend=backend, seed=0)
    X = np.random.default_rng(0).normal(size=(4, 3))
    Xa = backend.asarray(X, "float32")
    before = host(Xa).copy()
    out = net.forward(Xa)
    assert_on(out, backend, "float32", (4, 2))
    np.testing.assert_array_equal(host(net.predict(X)), host(out))
    np.testing.assert_array_equal(host(net(X.tolist())), host(out))
    np.testing.assert_allclose(host(out).sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(host(Xa), before)


def test_evaluate_returns_python_float(backend):
    net = xpnet.MLP([2, 3, 1], backend=backend, dtype="float64", seed=0)
    X, y = xpnet.datasets.xor()
    v = net.evaluate(X, y, "mse")
    assert type(v) is float
    expected = np.mean((host(net.predict(X))[:, 0] - y) ** 2)
    assert v == pytest.approx(expected, rel=1e-12)


def test_evaluate_in_chunks_and_an_overflow_is_predicts_error(backend):
    """Past a chunk's rows evaluate gives one chunk's figure; outputs that
    overflow raise predict's FloatingPointError (evaluate returned nan)."""
    net = xpnet.MLP([4, 8, 2], output_activation="softmax", backend=backend, dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 2, 50)
    whole = net.evaluate(X, y, "cross_entropy")
    assert net.evaluate(X, y, "cross_entropy", batch_size=7) == pytest.approx(whole, rel=1e-5)  # a short last one
    net.chunk_rows = lambda sparse_input=False: 7  # the default chunks too
    assert net.evaluate(X, y, "cross_entropy") == pytest.approx(whole, rel=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        net.evaluate(X, y, "cross_entropy", batch_size=0)
    with pytest.raises(FloatingPointError, match="outputs contain NaN or inf"):
        net.evaluate(np.full((3, 4), 3e38), [0, 1, 0], "cross_entropy")


def test_gradients_take_labels_for_cross_entropy(backend):
    net = xpnet.MLP([2, 3, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)
    X = np.array([[0.1, 0.2], [0.3, -0.1]])
    by_labels = net.gradients(X, np.array([2, 0]), "cross_entropy")
    by_onehot = net.gradients(X, np.eye(3)[[2, 0]], "cross_entropy")
    for (a, b), (c, d) in zip(by_labels, by_onehot):
        np.testing.assert_allclose(host(a), host(c))
        np.testing.assert_allclose(host(b), host(d))


def test_class_labels_as_a_column(backend):
    """(N, 1) integer labels mean the same as (N,) labels in fit, evaluate and gradients."""
    X = np.array([[0.1, 0.2], [0.3, -0.1], [-0.2, 0.4], [0.0, 0.1]])
    labels = np.array([2, 0, 1, 2])
    flat, column = (xpnet.MLP([2, 3, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0) for _ in "ab")
    assert column.evaluate(X, labels[:, None], "cross_entropy") == pytest.approx(flat.evaluate(X, labels, "cross_entropy"))
    for (a, b), (c, d) in zip(flat.gradients(X, labels, "cross_entropy"), column.gradients(X, labels[:, None], "cross_entropy")):
        np.testing.assert_allclose(host(a), host(c))
        np.testing.assert_allclose(host(b), host(d))
    h1 = flat.fit(X, labels, loss="cross_entropy", epochs=3, lr=0.1)
    h2 = column.fit(X, labels[:, None], loss="cross_entropy", epochs=3, lr=0.1)
    np.testing.assert_allclose(h1.loss, h2.loss)
    with pytest.raises(ValueError, match="class labels must lie in 0..2"):
        column.fit(X, np.array([[0], [1], [3], [2]]), loss="cross_entropy")


def test_mlp_builds_layers():
    net = xpnet.MLP([64, 128, 10], output_activation="softmax", backend="numpy")
    assert [(l.n_in, l.n_out, l.activation.name) for l in net.layers] == [(64, 128, "relu"), (128, 10, "softmax")]
    assert net.n_in == 64 and net.n_out == 10 and net.dtype == "float32"
    with pytest.raises(ValueError, match="at least"):
        xpnet.MLP([3])
    for sizes in (5, "64,10"):  # MLP(5) said "'int' object is not iterable"; a string iterated into characters
        with pytest.raises(TypeError, match=r"a list of layer sizes, input first \(e.g. \[64, 128, 10\]\), got"):
            xpnet.MLP(sizes)


def test_layer_sizes_must_chain():
    with pytest.raises(ValueError, match="layer 1 expects 4 inputs but layer 0 gives 3"):
        xpnet.Network([xpnet.Dense(2, 3), xpnet.Dense(4, 1)], backend="numpy")
    with pytest.raises(ValueError, match="at least one layer"):
        xpnet.Network([], backend="numpy")
    with pytest.raises(TypeError, match="Dense"):
        xpnet.Network([42], backend="numpy")


def test_a_layer_belongs_to_one_network():
    d = xpnet.Dense(2, 2)
    xpnet.Network([d], backend="numpy")
    with pytest.raises(ValueError, match="already belongs"):
        xpnet.Network([d], backend="numpy")


def test_unknown_dtype():
    with pytest.raises(ValueError, match="float16"):
        xpnet.MLP([2, 1], backend="numpy", dtype="float16")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_round_trips_between_all_backends(backend, dtype):
    from conftest import make_backend, usable_backend_params

    net = xpnet.MLP([3, 5, 2], "tanh", "sigmoid", backend=backend, dtype=dtype, seed=7)
    net.info["note"] = "kept"
    X = np.random.default_rng(0).normal(size=(4, 3))
    ref = host(net.predict(X))
    for other in usable_backend_params():
        target = make_backend(other)
        moved = net.to(target)
        assert moved is not net and moved.backend == target and moved.dtype == dtype
        for layer in moved.layers:
            assert_on(layer.weights, target, dtype)
        np.testing.assert_allclose(host(moved.predict(X)), ref, rtol=1e-6 if dtype == "float32" else 1e-14)
        back = moved.to(backend)
        for a, b in zip(back._params(), net._params()):
            np.testing.assert_array_equal(host(a), host(b))
        assert moved.info == {"note": "kept"}
    # the original is untouched by training the copy
    copy = net.to(backend)
    copy.fit(X, np.zeros((4, 2)), epochs=2, lr=0.5)
    np.testing.assert_array_equal(host(net.predict(X)), ref)


# -- input checks ---------------------------------------------------------------


@pytest.fixture
def small(backend):
    return xpnet.MLP([3, 4, 2], "relu", "softmax", backend=backend, dtype="float64", seed=0)


@pytest.mark.parametrize("method", ["predict", "evaluate", "gradients", "fit"])
def test_wrong_feature_count_names_both_numbers(small, method):
    X, y = np.zeros((5, 4)), np.zeros(5, dtype=int)
    call = {"predict": lambda: small.predict(X), "evaluate": lambda: small.evaluate(X, y, "cross_entropy"),
            "gradients": lambda: small.gradients(X, y, "cross_entropy"),
            "fit": lambda: small.fit(X, y, loss="cross_entropy")}[method]
    with pytest.raises(ValueError, match="X has 4 features, but the network expects 3"):
        call()


@pytest.mark.parametrize("method", ["evaluate", "gradients", "fit"])
def test_sample_count_mismatch(small, method):
    X, y = np.zeros((5, 3)), np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        getattr(small, method)(X, y, **({"loss": "cross_entropy"} if method == "fit" else {"loss": "cross_entropy"}))


@pytest.mark.parametrize(("bad", "word"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
@pytest.mark.parametrize("where", ["X", "y"])
def test_non_finite_inputs(small, bad, word, where):
    X, y = np.zeros((5, 3)), np.eye(2)[[0, 1, 0, 1, 0]]
    if where == "X":
        X[2, 1] = bad
    else:
        y[3, 0] = bad
    for call in (lambda: small.fit(X, y, loss="cross_entropy"), lambda: small.evaluate(X, y, "mse"),
                 lambda: small.gradients(X, y, "mse")):
        with pytest.raises(ValueError, match=f"{where} contains {word}"):
            call()
    if where == "X":
        with pytest.raises(ValueError, match=f"X contains {word}"):
            small.predict(X)


@pytest.mark.parametrize("labels", [[0, 1, 2, 0, 1], [0, -1, 1, 0, 1], [0, 0.5, 1, 0, 1]])
def test_labels_out_of_range_or_non_integral(small, labels):
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match="class labels must"):
        small.fit(X, np.array(labels), loss="cross_entropy")
    with pytest.raises(ValueError, match="class labels must"):
        small.evaluate(X, np.array(labels), "cross_entropy")


def test_shape_errors(small):
    with pytest.raises(ValueError, match="must be 2-D"):
        small.predict(np.zeros(3))
    with pytest.raises(ValueError, match="must be 2-D"):
        small.predict(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="empty"):
        small.predict(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="y has 3 columns, but the network has 2 outputs"):
        small.evaluate(np.zeros((5, 3)), np.zeros((5, 3)), "mse")
    with pytest.raises(ValueError, match="one value per sample"):
        small.evaluate(np.zeros((5, 3)), np.zeros(5), "mse")
    with pytest.raises(TypeError, match="strings"):
        small.predict([["a", "b", "c"]])


def test_arrays_of_other_backends_are_converted(backend):
    from conftest import make_backend, usable_backend_params

    net = xpnet.MLP([2, 3, 1], backend=backend, dtype="float64", seed=0)
    X, y = xpnet.datasets.xor()
    ref = host(net.predict(X))
    for other in usable_backend_params():
        Xo = make_backend(other).asarray(X, "float32")
        out = net.predict(Xo)
        assert_on(out, backend, "float64")
        np.testing.assert_allclose(host(out), ref, rtol=1e-6)


def test_summary_and_repr():
    net = xpnet.MLP([4, 3, 2], backend="numpy")
    assert "total parameters: 23" in net.summary()
    assert "Dense(4, 3" in repr(net)


def test_a_layer_listed_twice_is_refused():
    """Two places of one layer object would be two parameter slots written
    into one layer: one place's update lost, not shared weights."""
    d = xpnet.Dense(3, 3, "tanh")
    for layers in ([xpnet.Dense(3, 3), d, d], [xpnet.Dense(3, 3), xpnet.Sequential([d, d])]):
        with pytest.raises(ValueError, match=r"appears twice in this network; layers do not share weights"):
            xpnet.Network(layers)
    assert not d.built
    act = xpnet.ActivationLayer("relu")  # no weights, no buffers: several places are fine
    net = xpnet.Network([xpnet.Dense(2, 4), act, xpnet.Dense(4, 4), act, xpnet.Dense(4, 1)], backend="numpy", seed=0)
    assert net.predict(np.ones((3, 2))).shape == (3, 1)


def test_a_networks_layers_cannot_change_in_place():
    """net.layers.append(relu) showed in repr, summary and the saved file,
    but predict ran without it (the slices were fixed at build) and fit
    failed with an IndexError deep in the container."""
    net = xpnet.Network([xpnet.Dense(3, 4), xpnet.Sequential([xpnet.Dense(4, 2)])], backend="numpy", seed=0)
    changes = [
        lambda: net.layers.append(xpnet.ActivationLayer("relu")),
        lambda: net.layers.__setitem__(1, xpnet.Dense(4, 2)),
        lambda: net.layers.pop(),
        lambda: net.layers[1].layers.insert(0, xpnet.ActivationLayer("relu")),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="layers cannot be changed in place"):
            change()
    with pytest.raises(AttributeError):
        net.layers = []
    assert len(net.layers) == 2 and len(net.layers[1].layers) == 1
    assert isinstance(net.layers, list) and net.layers[:1] == [net.layers[0]]
    X = np.ones((2, 3))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).predict(X), net.predict(X))


def test_to_moves_a_network_into_another_dtype():
    """There was no public way to change a trained network's dtype (a
    float64 network could not move to JAX in its 32-bit mode)."""
    net = xpnet.MLP([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(np.ones((4, 3)), np.zeros((4, 2)), optimizer="adam", epochs=2)
    moved = net.to("numpy", dtype="float32")
    assert moved.dtype == "float32" and net.dtype == "float64"
    assert all(p.dtype == np.float32 for p in moved._params())
    X = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(moved.predict(X), net.predict(X), rtol=1e-6)
    moved.fit(np.ones((4, 3)), np.zeros((4, 2)), optimizer="adam", epochs=1, warm_start=True)  # its state moved too
    assert moved.summary().startswith("MLP on numpy (cpu, float32)")


@pytest.mark.parametrize("target", ["numpy", "torch", "array_api_strict"])
def test_to_a_narrower_dtype_refuses_values_beyond_its_range(target):
    """A float64 BatchNorm fitted on inputs near 1e20 holds running
    variances near 1e40: to(dtype="float32") made them inf, and the copy
    predicted every row from the bias alone (accuracy 0.98 -> 0.5), without
    an error (on torch without a warning either)."""
    pytest.importorskip(target, reason=f"{target} is not installed")
    from xpnet.layers import BatchNorm

    net = xpnet.Network([BatchNorm(2), xpnet.Dense(2, 1)], dtype="float64", seed=0)
    net.fit(np.array([[1e20, 0.0], [-1e20, 1.0], [3e20, 2.0]]), np.zeros(3), epochs=1)
    with pytest.raises(ValueError, match=r"buffer 'layers\.0\.running_var' has values beyond the float32 range"):
        net.to(target, dtype="float32")
    big = xpnet.MLP([2, 1], dtype="float64", seed=0)
    big.layers[0].weights = np.array([[1e39], [1.0]])
    with pytest.raises(ValueError, match=r"parameter 'layers\.0\.weight' has values beyond the float32 range"):
        big.to(target, dtype="float32")
    assert net.to(target).dtype == "float64"  # the same dtype: nothing narrows


def _read_halfway_through_a_commit(monkeypatch, net, new_params, read):
    """What ``read()`` returns while another thread's commit of
    ``new_params`` has set the first layer and not yet the second."""
    import threading
    import time

    from xpnet.layers.dense import Dense

    halfway = threading.Event()
    real_set = Dense._set

    def slow_set(self, params, buffers):
        real_set(self, params, buffers)
        halfway.set()
        time.sleep(0.2)  # the next layer's arrays are still the old ones

    monkeypatch.setattr(Dense, "_set", slow_set)
    committer = threading.Thread(target=net._commit, args=(new_params,))
    committer.start()
    halfway.wait(5)
    seen = read()
    committer.join()
    monkeypatch.setattr(Dense, "_set", real_set)
    return seen


def test_a_predict_during_another_threads_commit_sees_one_set_of_weights(monkeypatch):
    """A commit replaces the layers' arrays one layer after another: a
    predict in another thread read the first layer's new weights with the
    second's old ones, outputs of a network that never existed."""
    net = xpnet.MLP([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    X = np.arange(6.0).reshape(2, 3)
    old = net.predict(X)
    seen = _read_halfway_through_a_commit(monkeypatch, net, [p * 2.0 for p in net._params()], lambda: net.predict(X))
    new = net.predict(X)
    assert not np.array_equal(old, new)
    assert np.array_equal(seen, new) or np.array_equal(seen, old)


@pytest.mark.parametrize("read", ["deepcopy", "pickle", "to", "save", "gradients"])
def test_a_copy_or_save_during_another_threads_commit_takes_one_set_of_weights(monkeypatch, tmp_path, read):
    """As predict: a copy, a pickle, a move or a saved file taken while
    another thread's fit commits held the first layer's new weights with
    the second's old ones (they read the layers without the commit's lock)."""
    import copy
    import pickle

    net = xpnet.MLP([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    X, y = np.arange(6.0).reshape(2, 3), np.ones((2, 2))
    old = [p.copy() for p in net._params()]
    new_params = [p * 2.0 for p in net._params()]
    readers = {
        "deepcopy": lambda: copy.deepcopy(net)._params(),
        "pickle": lambda: pickle.loads(pickle.dumps(net))._params(),
        "to": lambda: net.to("numpy")._params(),
        "save": lambda: (net.save(tmp_path / "m.safetensors"),
                         xpnet.load(tmp_path / "m.safetensors", "numpy"))[1]._params(),  # fmt: skip
        "gradients": lambda: [g for pair in net.gradients(X, y, "mse") for g in pair],
    }
    seen = _read_halfway_through_a_commit(monkeypatch, net, new_params, readers[read])
    if read == "gradients":  # those of the weights before or after, never of a mix
        net._commit(old)
        before = readers[read]()
        net._commit(new_params)
        wants = (before, readers[read]())
    else:
        wants = (old, new_params)
    assert any(all(np.array_equal(a, b) for a, b in zip(seen, want)) for want in wants)


def test_a_second_fit_of_a_network_while_one_runs_is_refused_and_the_first_goes_on():
    """Two fits of one network at once (two threads, or a callback) each
    commit their own epochs: the last one silently won. The second is
    refused; the first trains as if alone."""
    import threading

    X = np.linspace(-1.0, 1.0, 12).reshape(6, 2)
    y = X[:, :1] * 2.0
    alone = xpnet.MLP([2, 3, 1], backend="numpy", dtype="float64", seed=0)
    alone.fit(X, y, epochs=4, lr=0.1, shuffle=False)
    net = xpnet.MLP([2, 3, 1], backend="numpy", dtype="float64", seed=0)
    inside, go_on, errors = threading.Event(), threading.Event(), []

    class Pause(xpnet.callbacks.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                inside.set()
                go_on.wait(5)

    fit = dict(epochs=4, lr=0.1, shuffle=False, callbacks=[Pause()])
    first = threading.Thread(target=net.fit, args=(X, y), kwargs=fit)
    first.start()
    inside.wait(5)
    try:
        with pytest.raises(RuntimeError, match="already being trained.*copy"):
            net.fit(X, y, epochs=1, lr=0.5)
    finally:
        go_on.set()
        first.join()
    np.testing.assert_array_equal(net.predict(X), alone.predict(X))

    class Refit(xpnet.callbacks.Callback):
        def on_epoch_end(self, epoch, logs):
            try:
                net.fit(X, y, epochs=1)
            except RuntimeError as e:
                errors.append(e)

    net.fit(X, y, epochs=1, callbacks=[Refit()])
    assert len(errors) == 1 and "already being trained" in str(errors[0])
    net.fit(X, y, epochs=1)  # the lock was released: training goes on as usual


def test_a_networks_layer_deep_copies_and_pickles_alone(backend):
    """A built layer holds its backend, whose namespace is a module: ``copy.
    deepcopy(net.layers[0])`` and ``pickle.dumps`` of it failed with "cannot
    pickle 'module' object". The copy has the same arrays on the same
    backend, and its own: editing it leaves the network alone."""
    import copy

    net = xpnet.MLP([3, 4, 2], backend=backend, dtype="float32", seed=0)
    layer = net.layers[0]
    weights = host(layer.weights).copy()
    for copied in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert copied._backend.name == backend.name and copied.config() == layer.config()
        np.testing.assert_array_equal(host(copied.weights), weights)
        copied.weights = np.zeros_like(weights)
        np.testing.assert_array_equal(host(layer.weights), weights)
    assert copy.deepcopy(backend) is backend and pickle.loads(pickle.dumps(backend)).name == backend.name


@pytest.mark.parametrize("attribute", [
    "Network.n_in", "Network.n_out", "Dense.weights", "Dense.bias", "Neuron.weights", "Neuron.bias", "Layer.built",
    "History.epochs", "History.to_dict", "History.from_dict",
])  # fmt: skip
def test_the_everyday_public_attributes_have_help_text(attribute):
    """help(net) and an editor's hover showed nothing for these."""
    import inspect

    cls, name = attribute.split(".")
    assert inspect.getdoc(inspect.getattr_static(getattr(xpnet, cls), name))


def test_a_built_containers_layers_cannot_be_reassigned():
    """``block.layers = [...]`` on a Sequential or Residual was accepted: repr
    and saved files showed the new layers, and predict then failed on the old
    slices with a shape error naming neither."""
    block = xpnet.Residual([xpnet.Dense(4, 4, "tanh")])
    net = xpnet.Network([block, xpnet.Sequential([xpnet.Dense(4, 2)])], backend="numpy", seed=0)
    for container in (block, net.layers[1]):
        with pytest.raises(AttributeError, match="layers cannot be changed in place"):
            container.layers = [xpnet.Dense(4, 4)]
    assert net.predict(np.ones((2, 4))).shape == (2, 2)
    assert len(pickle.loads(pickle.dumps(net)).layers[0].layers) == 1
    assert len(pickle.loads(pickle.dumps(block)).layers) == 1
