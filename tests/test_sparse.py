"""SciPy sparse features on NumPy, trained on as they are (issue 12: the
scikit-learn drop-in took a sparse X by making it dense, 11 GiB for a
TF-IDF table of 11 000 documents by 130 000 terms)."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import xpnet

sp = pytest.importorskip("scipy.sparse", reason="SciPy is not installed: sparse input needs it")

FORMATS = ["csr", "csc", "coo", "csr_array"]


def _sparse(fmt: str, n=120, d=40, density=0.15, seed=0):
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    return sp.csr_array(X) if fmt == "csr_array" else X.asformat(fmt)


def _labels(X, seed=0):
    w = np.random.default_rng(seed).normal(size=(X.shape[1], 3))
    return np.argmax(np.asarray(X @ w), axis=1)


def _never_dense(monkeypatch, n_features=40):
    """From here on, a sparse matrix of ``n_features`` columns made dense
    fails the test (scikit-learn makes its own sparse labels dense)."""

    def refuse(self, *a, **k):
        if self.shape[1] == n_features:
            raise AssertionError("a sparse X was made dense")
        return real[type(self)](self, *a, **k)

    classes = (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.coo_array)
    real = {cls: cls.toarray for cls in classes}
    for cls in classes:
        monkeypatch.setattr(cls, "toarray", refuse)


def _fit(X, y, **kw):
    net = xpnet.MLP([X.shape[1], 9, 3], "relu", "softmax", backend="numpy", dtype="float64", seed=0)
    hist = net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.01, epochs=4, batch_size=16, seed=0, **kw)
    return net, hist


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_sparse_x_trains_as_its_dense_copy_does_and_is_never_made_dense(fmt, monkeypatch):
    X = _sparse(fmt)
    y = _labels(X)
    dense = X.toarray()
    kw = dict(validation_split=0.25, metrics=("accuracy",), sample_weight=np.linspace(0.5, 2, 120))
    want_net, want = _fit(dense, y, **kw)
    want_out = want_net.predict(dense)
    _never_dense(monkeypatch)
    net, got = _fit(X, y, **kw)
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)
    np.testing.assert_allclose(got.val_loss, want.val_loss, rtol=1e-12)
    for a, b in zip(net._params(), want_net._params()):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(net.predict(X), want_out, rtol=1e-12)
    assert net.evaluate(X, y, "cross_entropy") == pytest.approx(want_net.evaluate(dense, y, "cross_entropy"), rel=1e-12)


def test_sparse_validation_data_and_float32(monkeypatch):
    X = _sparse("csr", density=0.2)
    y = _labels(X)
    nets = []
    for data in (X.toarray(), X):
        if data is X:
            _never_dense(monkeypatch)
        net = xpnet.MLP([40, 9, 3], "relu", "softmax", backend="numpy", dtype="float32", seed=0)
        h = net.fit(data, y, loss="cross_entropy", epochs=3, batch_size=20, seed=1, validation_data=(data[:30], y[:30]))
        nets.append((net, h))
    np.testing.assert_allclose(nets[1][1].val_loss, nets[0][1].val_loss, rtol=2e-6)
    assert nets[1][0].predict(X).dtype == np.float32


def test_a_wide_sparse_x_trains_in_a_fraction_of_its_dense_size():
    """20 000 x 200 000 at density 1e-4: 29.8 GiB dense in float64, 4.8 MB
    sparse. The fit's peak (the 200 000 x 8 first layer, its gradient and
    Adam's moments: about 13 MB each) stays far below the dense copy."""
    rng = np.random.default_rng(0)
    nnz = 400_000
    X = sp.csr_matrix((rng.random(nnz), (rng.integers(0, 20_000, nnz), rng.integers(0, 200_000, nnz))),
                      shape=(20_000, 200_000))  # fmt: skip
    y = (np.asarray(X.sum(axis=1)).ravel() > np.median(np.asarray(X.sum(axis=1)))).astype(int)
    net = xpnet.MLP([200_000, 8, 2], "relu", "softmax", backend="numpy", dtype="float64", seed=0)
    tracemalloc.start()
    try:
        h = net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=2000, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(h.loss[0])
    assert peak < 400 * 2**20, f"peak {peak / 2**20:.0f} MiB: was X made dense?"


@pytest.mark.parametrize("name", ["array_api_strict", "torch", "jax"])
def test_other_backends_ask_for_a_dense_array(name):
    pytest.importorskip(name, reason=f"{name} is not installed")
    X = _sparse("csr")
    net = xpnet.MLP([40, 3], backend=name, seed=0)
    with pytest.raises(TypeError, match=rf"X is a SciPy sparse 120 x 40 matrix: the numpy backend .* {name} backend "
                                        r"takes a dense array \(its .toarray\(\)"):  # fmt: skip
        net.fit(X, np.zeros((120, 3)), epochs=1)
    with pytest.raises(TypeError, match="toarray"):
        net.predict(X)


def test_a_network_that_does_not_start_with_dense_asks_for_a_dense_array():
    X = _sparse("csr")
    net = xpnet.Network([xpnet.LayerNorm(40), xpnet.Dense(40, 3, "softmax")], backend="numpy", seed=0)
    with pytest.raises(TypeError, match=r"only a Dense first layer .* LayerNorm: pass it dense \(its .toarray\(\)"):
        net.fit(X, _labels(X), loss="cross_entropy", epochs=1)


def test_bad_stored_values_are_named():
    X = _sparse("csr")
    y = _labels(X)
    net = xpnet.MLP([40, 3], "softmax", backend="numpy", seed=0)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        net.fit(bad, y, loss="cross_entropy", epochs=1)
    bad.data[3] = np.inf
    with pytest.raises(ValueError, match="X contains inf"):
        net.predict(bad)
    with pytest.raises(TypeError, match="must hold real numbers, got a sparse matrix of dtype complex128"):
        net.predict(X.astype(np.complex128))
    with pytest.raises(ValueError, match="X has 39 features, but the network expects 40"):
        net.predict(X[:, :39])
    big = X.copy()
    big.data[0] = 1e300
    for fmt in ("csr", "lil", "dok"):  # LIL and DOK keep their values elsewhere than .data
        with pytest.raises(ValueError, match="beyond the float32 range"):
            xpnet.MLP([40, 3], backend="numpy", dtype="float32", seed=0).predict(big.asformat(fmt))
    padded = sp.dia_matrix((np.array([[1e300, 2.0, 1.0]]), [1]), shape=(3, 3))  # offset 1: its first value is padding
    net3 = xpnet.MLP([3, 2], backend="numpy", dtype="float32", seed=0)
    np.testing.assert_allclose(net3.predict(padded), net3.predict(padded.toarray()), rtol=1e-6)


def test_the_scikit_learn_estimators_train_on_sparse_x_as_on_its_dense_copy(monkeypatch):
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from sklearn.exceptions import ConvergenceWarning

    from xpnet.sklearn import MLPClassifier, MLPRegressor

    X = _sparse("csr", n=200, density=0.05)  # denser ones train dense (below)
    y = _labels(X)
    dense = X.toarray()
    kw = dict(hidden_layer_sizes=(7,), max_iter=5, tol=0.0, random_state=0, backend="numpy")  # sparse stays on NumPy
    warnings.simplefilter("ignore", ConvergenceWarning)  # 5 iterations: scikit-learn says so
    refs = [MLPClassifier(**kw).fit(dense, y), MLPClassifier(solver="lbfgs", **kw).fit(dense, y),
            MLPRegressor(**kw).fit(dense, y.astype(float))]  # fmt: skip
    _never_dense(monkeypatch)
    fits = [MLPClassifier(**kw).fit(X, y), MLPClassifier(solver="lbfgs", **kw).fit(X, y),
            MLPRegressor(**kw).fit(X, y.astype(float))]  # fmt: skip
    for got, want in zip(fits, refs):
        np.testing.assert_allclose(getattr(got, "loss_curve_", got.loss_), getattr(want, "loss_curve_", want.loss_),
                                   rtol=1e-12)  # fmt: skip
        for a, b in zip(got.coefs_, want.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(got.predict(X), want.predict(dense), rtol=1e-12)


def test_the_numpy_namespace_multiplies_sparse_operands_on_either_side():
    """A custom layer may multiply the other way round (``dY @ X``)."""
    from xpnet._numpy_namespace import xp

    X, W, D = _sparse("csr"), np.arange(120.0).reshape(40, 3), np.arange(240.0).reshape(2, 120)
    dense = X.toarray()
    for got, want in ((xp.matmul(X, W), dense @ W), (xp.matmul(D, X), D @ dense), (xp.matmul(X.T, D.T), dense.T @ D.T),
                      (xp.matmul(X.T, X), dense.T @ dense)):  # fmt: skip
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_wide_sparse_inference_is_not_chunked_by_the_input_width(monkeypatch):
    """Rows per inference chunk follow the widest dense layer output; the
    sparse input's 200 000 columns are never made dense, so they do not
    count (they made chunks of 2 rows, 14x slower)."""
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random(50_000), (rng.integers(0, 5000, 50_000), rng.integers(0, 200_000, 50_000))),
                      shape=(5000, 200_000))  # fmt: skip
    net = xpnet.MLP([200_000, 16, 2], "relu", "softmax", backend="numpy", seed=0)
    assert net.chunk_rows(sparse_input=True) >= 5000 > net.chunk_rows()
    import xpnet.network as network

    calls, real = [], network.inference
    counted = lambda forward: lambda *a: calls.append(1) or forward(*a)  # noqa: E731
    monkeypatch.setattr(network, "inference", lambda net, ctx: counted(real(net, ctx)))
    assert net.predict(X).shape == (5000, 2)
    assert len(calls) == 1, f"{len(calls)} chunks"


def test_early_stopping_holds_out_sparse_rows(monkeypatch):
    """scikit-learn's validation split took rows with xp.take, which NumPy
    cannot apply to a SciPy matrix."""
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from xpnet.sklearn import MLPClassifier, MLPRegressor

    X = _sparse("csr", n=200, density=0.05)
    y = _labels(X)
    for est, target in ((MLPClassifier, y), (MLPRegressor, y.astype(float))):
        kw = dict(early_stopping=True, max_iter=6, tol=0.0, n_iter_no_change=100, random_state=0)
        want = est(**kw).fit(X.toarray(), target)
        got = est(**kw).fit(X, target)
        np.testing.assert_allclose(got.validation_scores_, want.validation_scores_, rtol=1e-12)
        np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=1e-12)


def test_the_scikit_learn_estimators_train_a_small_dense_enough_sparse_x_dense(monkeypatch):
    """On NumPy, BLAS and the recorded step beat SciPy's products where a
    tenth or more of the values are stored and the dense copy is small (the
    digits as CSR trained 1.6x slower sparse); the results are the same."""
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from xpnet.sklearn import MLPClassifier

    made_dense = []
    real = sp.csr_matrix.toarray
    monkeypatch.setattr(sp.csr_matrix, "toarray", lambda self, *a, **k: made_dense.append(self.shape) or real(self))
    for density, dense in ((0.15, True), (0.05, False)):
        made_dense.clear()
        X = _sparse("csr", n=200, density=density)
        y = _labels(X)
        kw = dict(hidden_layer_sizes=(7,), max_iter=3, random_state=0, backend="numpy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = MLPClassifier(**kw).fit(X, y)
            want = MLPClassifier(**kw).fit(real(X), y)
        assert ((200, 40) in made_dense) is dense
        np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=1e-12)


def test_sparse_regression_targets_are_made_dense():
    """A sparse Y (n x outputs, small) is made dense, on every backend;
    it failed with "setting an array element with a sequence" (scikit-learn's
    own MLPRegressor fails on it too)."""
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from xpnet.sklearn import MLPRegressor

    X = np.random.default_rng(0).normal(size=(100, 6))
    Y = sp.random(100, 3, density=0.5, format="csr", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = MLPRegressor(max_iter=3, random_state=0).fit(X, Y)
        want = MLPRegressor(max_iter=3, random_state=0).fit(X, Y.toarray())
    np.testing.assert_allclose(got.loss_curve_, want.loss_curve_, rtol=1e-12)


def test_a_torch_sparse_tensor_is_refused_with_what_to_pass():
    """Slicing a torch sparse tensor into chunks or minibatches failed deep
    in torch (``as_strided``), or worked for some layouts and sizes only."""
    torch = pytest.importorskip("torch", reason="torch sparse tensors")
    dense = torch.tensor(np.eye(6, 3))
    for backend in xpnet.available_backends():
        net = xpnet.MLP([3, 4, 1], backend=backend, seed=0)
        for sparse in (dense.to_sparse(), dense.to_sparse_csr()):
            with pytest.raises(TypeError, match=r"X is a torch sparse tensor .*pass X.to_dense\(\)"):
                net.predict(sparse)
            with pytest.raises(TypeError, match=r"X is a torch sparse tensor"):
                net.fit(sparse, np.zeros(6), epochs=1)


def test_a_sparse_y_is_named_and_to_numpy_makes_a_sparse_matrix_dense():
    """``Network.fit`` with a sparse y said "y must hold real numbers, got
    Python objects"; ``xpnet.to_numpy`` of a sparse matrix (scikit-learn's
    multilabel predictions) or of None gave a 0-d object array."""
    Y = sp.csr_matrix(np.eye(6, 2))
    net = xpnet.MLP([3, 4, 2], backend="numpy", seed=0)
    with pytest.raises(TypeError, match=r"y is a SciPy sparse matrix; .*pass y.toarray\(\)"):
        net.fit(np.ones((6, 3)), Y, epochs=1)
    np.testing.assert_array_equal(xpnet.to_numpy(Y), np.eye(6, 2))
    with pytest.raises(TypeError, match="to_numpy takes an array"):
        xpnet.to_numpy(None)


def test_compile_true_with_a_sparse_x_says_it_runs_eagerly():
    """compile=True says why a step it asked for cannot be recorded (a
    component that reads values on the host, an optimizer it cannot
    replay); a sparse X ran the eager step without a word. 'auto' stays
    quiet, and compile=True on a dense X says nothing."""
    X = _sparse("csr")
    y = _labels(X)
    says = r"compile=True cannot record this step on NumPy \(X is a SciPy sparse"
    with pytest.warns(RuntimeWarning, match=says) as got:
        _fit(X, y, compile=True)
    assert len(got) == 1 and got[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(X, y, compile="auto")
        _fit(X.toarray(), y, compile=True)
