"""xpnet.sklearn on every backend of the suite (CuPy and CUDA torch on a GPU):
NumPy in gives NumPy out while training on the backend's device, and under
scikit-learn's ``array_api_dispatch`` an input of another library stays in
that library and on its device (issue 12, point 5)."""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's Array API dispatch needs it before SciPy loads

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

import array_api_compat as compat  # noqa: E402
import sklearn  # noqa: E402
from helpers import jax_x64  # noqa: E402

from xpnet import to_numpy  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SKLEARN_VERSION = tuple(int(n) for n in sklearn.__version__.split(".")[:2])

RNG = np.random.default_rng(7)
X = RNG.normal(size=(40, 5))
LABELS = np.array(["a", "b", "c", "d"])[RNG.integers(0, 4, size=40)]
VALUES = X[:, 0] - 2 * X[:, 1]


def _on(backend) -> dict:
    return {"backend": backend.name, "device": backend.device}


def test_numpy_in_numpy_out_while_training_on_the_backend(backend):
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, **_on(backend)).fit(X, LABELS)
    assert clf._net.backend.name == backend.name
    assert str(compat.device(clf._net._params()[0])) == str(backend.device)
    labels, proba = clf.predict(X), clf.predict_proba(X)
    assert type(labels) is np.ndarray and labels.dtype == LABELS.dtype and set(labels) <= set(LABELS)
    assert type(proba) is np.ndarray and proba.shape == (40, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert type(clf.coefs_[0]) is np.ndarray and isinstance(clf.score(X, LABELS), float)
    here = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="numpy").fit(X, LABELS)
    np.testing.assert_allclose(proba, here.predict_proba(X), rtol=1e-7, atol=1e-9)  # float64 on every backend


def test_dispatch_keeps_the_inputs_library_and_device(backend):
    """Under dispatch a CuPy or torch input (on the backend's device) trains
    there and its predictions come back in that library, on that device."""
    library = backend.name
    if library not in ("cupy", "torch"):
        pytest.skip(f"the dispatch case covers CuPy and torch inputs, not {library}")
    xp = backend.xp
    Xd = xp.asarray(X, device=backend.device)
    yd = xp.asarray(VALUES, device=backend.device)
    with sklearn.config_context(array_api_dispatch=True):
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(Xd, yd)
        out = reg.predict(Xd)
    assert reg._net.backend.name == library
    assert compat.array_namespace(out) is compat.array_namespace(Xd)
    assert str(compat.device(out)) == str(compat.device(Xd)) and out.shape == (40,)
    host = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="numpy").fit(X, VALUES)
    np.testing.assert_allclose(compat.to_device(out, "cpu") if library == "torch" else out.get(), host.predict(X),
                               rtol=1e-7, atol=1e-9)  # fmt: skip


def test_regression_early_stopping_scores_r2_on_every_backend(backend):
    """The R² of early stopping in the backend's namespace (array-api-strict
    refuses ``where`` between two Python scalars): scikit-learn's scores,
    also for a constant output column (1 when predicted exactly, else 0)."""
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor as SkRegressor

    from xpnet.sklearn._objective import score_for

    Y = np.stack([VALUES, X[:, 2]], axis=1)
    params = dict(hidden_layer_sizes=(8,), max_iter=6, random_state=0, early_stopping=True, validation_fraction=0.3)
    ours = MLPRegressor(**params, **_on(backend)).fit(X, Y)
    theirs = SkRegressor(**params).fit(X, Y)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-7)
    truth = np.stack([VALUES, np.full(40, 2.0)], axis=1)
    guess = np.stack([VALUES + 0.5, np.full(40, 2.0) + (np.arange(40) == 3)], axis=1)
    got = score_for("identity")(backend.asarray(truth), backend.asarray(guess))
    assert float(got) == pytest.approx(r2_score(truth, guess, force_finite=True))


def test_coefs_are_writable_and_in_place_edits_reach_predict(backend):
    """On JAX coefs_ were read-only views; and where they are host copies of
    device weights (CuPy, JAX) an in-place edit must not be ignored by the
    cached network, as scikit-learn's predict would see it."""
    import pickle

    from xpnet._backend import device_spec

    on = {"backend": backend.name, "device": device_spec(backend)}  # a string: JAX's Device objects do not pickle
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, **on).fit(X, LABELS)
    assert all(a.flags.writeable for a in clf.coefs_ + clf.intercepts_)
    again = pickle.loads(pickle.dumps(clf))
    for est in (clf, again):
        est.coefs_[-1][:] = 0.0
        est.intercepts_[-1][:] = 0.0
        np.testing.assert_allclose(est.predict_proba(X), 1.0 / len(est.classes_), rtol=1e-6)


def test_a_shallow_copy_trained_on_leaves_the_originals_predictions_alone(backend):
    import copy

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, **_on(backend)).fit(X, LABELS)
    before = clf.predict_proba(X)
    copy.copy(clf).partial_fit(X, LABELS)  # shares the cached network, and trains it
    np.testing.assert_allclose(clf.predict_proba(X), before, rtol=1e-6)


def test_pickling_leaves_the_live_estimator_as_it_was(backend):
    """__getstate__ edited the estimator's own __dict__ (scikit-learn hands
    it over for classes outside sklearn), dropping its cache key."""
    import pickle

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, backend=backend.name).fit(X, LABELS)
    before = dict(vars(clf))
    pickle.dumps(clf)
    assert set(vars(clf)) == set(before) and clf._cache_holds()


def test_a_host_view_of_the_weights_is_not_hashed_on_every_predict(monkeypatch):
    """predict hashed every weight array on every call (3.5 ms for 1.9M
    weights): on NumPy, coefs_ are views of the network's memory, and an
    edit shows without one."""
    import xpnet.sklearn._base as base

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, backend="numpy").fit(X, LABELS)
    calls = []
    monkeypatch.setattr(base.zlib, "crc32", lambda *a: calls.append(1) or 0)
    clf.predict(X[:1])
    assert not calls


def test_float64_input_to_a_float32_model_on_a_device_without_float64_answers_float64_on_the_host():
    """scikit-learn answers float64 input in float64; array-api-strict's
    ``no_float64`` device has none (predict failed asking for it), so the
    NumPy answer is widened on the host."""
    pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0, backend="array_api_strict",
                       device="no_float64", dtype="float32").fit(X, y)  # fmt: skip
    wide, narrow = reg.predict(X), reg.predict(X.astype(np.float32))
    assert wide.dtype == np.float64 and narrow.dtype == np.float32
    np.testing.assert_array_equal(wide, narrow)


def test_dispatch_keeps_classes_in_the_inputs_namespace_for_metrics_and_cross_val_predict(backend):
    """Under dispatch ``classes_`` of numeric labels is in the input's namespace
    and device, as scikit-learn's Array API classifiers keep it: its metrics
    (``log_loss(labels=clf.classes_)``) and ``cross_val_predict(method=
    "predict_proba")`` mix it with the predictions, which failed on a NumPy
    ``classes_`` ("Multiple namespaces for array inputs")."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import cross_val_predict

    if backend.name not in ("cupy", "torch", "array_api_strict"):
        pytest.skip(f"the dispatch case covers CuPy, torch and array-api-strict inputs, not {backend.name}")
    xp = backend.xp
    labels = RNG.integers(0, 3, size=40)
    Xd, yd = xp.asarray(X, device=backend.device), xp.asarray(labels, device=backend.device)
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(Xd, yd)
        assert compat.array_namespace(clf.classes_) is compat.array_namespace(Xd)
        assert str(compat.device(clf.classes_)) == str(backend.device)
        if backend.name != "array_api_strict" or SKLEARN_VERSION >= (1, 9):  # 1.8's log_loss sums booleans there
            assert 0 < float(log_loss(yd, clf.predict_proba(Xd), labels=clf.classes_)) < 10
        proba = cross_val_predict(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), Xd, yd,
                                  cv=2, method="predict_proba")  # fmt: skip
        assert tuple(proba.shape) == (40, 3) and str(compat.device(proba)) == str(backend.device)
        clf.set_params(warm_start=True).fit(Xd, yd)  # the warm start compares the classes on the host
        predicted = to_numpy(clf.predict(Xd))
        again = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        again.partial_fit(Xd, yd, classes=yd).partial_fit(Xd, yd, classes=yd)
        assert compat.array_namespace(again.classes_) is compat.array_namespace(Xd)
    here = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="numpy").fit(X, labels)
    np.testing.assert_array_equal(predicted, here.set_params(warm_start=True).fit(X, labels).predict(X))


def test_float64_numpy_input_gets_float64_and_int64_answers_from_jax_in_its_32_bit_mode():
    """NumPy in, scikit-learn's dtypes out: float64 input to a float32 model
    answers float64 (widened on the host, JAX's 32-bit mode having no
    float64), and multilabel predictions are int64, not JAX's int32."""
    pytest.importorskip("jax", reason="JAX not installed")
    labels = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1).astype(np.int64)
    with jax_x64(False):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="jax", dtype="float32")
        proba, predicted = clf.fit(X, labels).predict_proba(X), clf.predict(X)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="jax", dtype="float32")
        values = reg.fit(X, VALUES).predict(X)
        assert clf.coefs_[0].dtype == np.float32  # the model is float32 there
    assert proba.dtype == np.float64 and values.dtype == np.float64 and predicted.dtype == np.int64
    here = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="numpy", dtype="float32")
    np.testing.assert_allclose(proba, here.fit(X, labels).predict_proba(X), rtol=1e-5)
    np.testing.assert_array_equal(predicted, here.predict(X))


def test_labels_the_inputs_namespace_cannot_hold_exactly_stay_numpy_and_predict_exactly():
    """Under dispatch with JAX's 32-bit mode, int64 labels past int32 (a
    NumPy ``y`` beside JAX ``X``) became int32 in ``classes_`` and wrapped in
    ``predict`` (2**40 came back as 0): they stay NumPy, and so do the
    predicted labels."""
    jax = pytest.importorskip("jax", reason="JAX not installed")
    labels = np.array([0, 2**40, 5])[np.arange(40) % 3]
    with jax_x64(False), sklearn.config_context(array_api_dispatch=True):
        Xj = jax.numpy.asarray(X.astype(np.float32))
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(Xj, labels)
        predicted, proba = clf.predict(Xj), np.asarray(clf.predict_proba(Xj))
    assert type(clf.classes_) is np.ndarray and clf.classes_.tolist() == [0, 5, 2**40]
    assert type(predicted) is np.ndarray
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])


def test_torch_tensors_that_require_grad_or_hold_bfloat16_train_as_their_values():
    """NumPy's conversion inside scikit-learn's validation failed deep in
    torch on a tensor that requires grad (an ``nn.Parameter``) and on
    bfloat16; xpnet's own ``Network`` took both."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rounded, values = torch.asarray(X).to(torch.bfloat16), torch.asarray(VALUES).to(torch.bfloat16)
    plain = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(rounded.double(), values.double())
    for given in (torch.asarray(X).requires_grad_(), torch.nn.Parameter(torch.asarray(X))):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(given, LABELS)
        here = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, LABELS)
        np.testing.assert_allclose(clf.predict_proba(given), here.predict_proba(X), rtol=1e-12)
        assert given.requires_grad and given.grad is None  # the user's tensor is left as it was
    weights = torch.ones(40, requires_grad=True)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    reg.fit(rounded, values.double().requires_grad_(), sample_weight=weights)
    assert reg.coefs_[0].dtype == np.float64  # bfloat16 is "anything but float32": float64, as float16
    np.testing.assert_allclose(reg.predict(rounded), plain.predict(rounded.double()), rtol=1e-12)


def test_inputs_without_values_or_under_a_jax_trace_are_refused_in_words():
    """A torch 'meta' tensor, a deleted JAX array and a JAX tracer
    (``jax.jit``/``vmap``/``grad`` around ``predict``) failed deep in NumPy's
    conversion, the tracer with JAX's ``TracerArrayConversionError``."""
    jax = pytest.importorskip("jax", reason="JAX not installed")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, LABELS)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, VALUES)
    Xj = jax.numpy.asarray(X)
    with pytest.raises(TypeError, match="MLPClassifier.predict_proba cannot run under jax.jit, grad or vmap"):
        jax.jit(clf.predict_proba)(Xj)
    with pytest.raises(TypeError, match="MLPRegressor.predict cannot run under jax.jit, grad or vmap"):
        jax.grad(lambda a: reg.predict(a).sum())(Xj)
    with pytest.raises(TypeError, match="MLPRegressor.fit cannot run under jax.jit, grad or vmap"):
        jax.jit(lambda a: MLPRegressor(max_iter=1).fit(a, VALUES).n_iter_)(Xj)
    with pytest.raises(TypeError, match="MLPClassifier.partial_fit cannot run under jax.jit, grad or vmap"):
        jax.jit(lambda a: MLPClassifier().partial_fit(a, LABELS, classes=np.unique(LABELS)).n_iter_)(Xj)
    deleted = jax.numpy.asarray(X)
    deleted.delete()
    with pytest.raises(ValueError, match="X is a JAX array whose buffer was deleted"):
        clf.predict(deleted)
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(ValueError, match="y is a torch tensor on the 'meta' device"):
        MLPRegressor().fit(X, torch.empty(40, device="meta"))
    with pytest.raises(TypeError, match="MLPRegressor.predict cannot run under torch.func's transforms"):
        torch.func.grad(lambda a: torch.as_tensor(reg.predict(a)).sum())(torch.asarray(X))


def test_jax_bfloat16_targets_train_as_their_values():
    """A JAX bfloat16 ``y`` reached scikit-learn's numeric check as
    ml_dtypes' bfloat16 and failed there (``dtype argument must be a NumPy dtype``)."""
    jax = pytest.importorskip("jax", reason="JAX not installed")
    values = jax.numpy.asarray(VALUES, dtype=jax.numpy.bfloat16)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, values)
    plain = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, np.asarray(values, np.float64))
    np.testing.assert_allclose(reg.predict(X), plain.predict(X), rtol=1e-12)


def test_torch_float8_and_negative_views_predict_as_their_values():
    """Beside bfloat16, the float8s and a tensor with its negative bit set
    failed in torch's ``numpy()`` inside scikit-learn's validation."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, LABELS)
    rounded = torch.asarray(X).to(torch.float8_e4m3fn)
    np.testing.assert_array_equal(clf.predict_proba(rounded), clf.predict_proba(rounded.double()))
    np.testing.assert_array_equal(clf.predict_proba(torch._neg_view(torch.asarray(-X))), clf.predict_proba(X))


def test_score_reads_torch_targets_and_weights_as_fit_does():
    """``score`` handed ``y`` and ``sample_weight`` to scikit-learn's metrics
    as they came, which failed deep in torch on a tensor that requires grad
    and on bfloat16, where ``fit`` took both."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, LABELS == "a")
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, VALUES)
    weights = torch.ones(40, requires_grad=True)
    flags = torch.asarray(LABELS == "a").double().requires_grad_()
    assert clf.score(torch.asarray(X).requires_grad_(), flags, sample_weight=weights) == clf.score(X, LABELS == "a")
    assert reg.score(X, torch.asarray(VALUES).requires_grad_()) == reg.score(X, VALUES)
    rounded = torch.asarray(VALUES).to(torch.bfloat16)
    assert reg.score(X, rounded) == reg.score(X, rounded.double().numpy())


def test_ml_dtypes_targets_float8_and_int4_train_as_their_values():
    """Beside JAX's bfloat16, its float8s and int4s (and NumPy arrays of
    ml_dtypes' types) failed in scikit-learn's numeric check of ``y``: ``dtype
    argument must be a NumPy dtype, but it is a <class 'numpy.dtype[float8_e4m3fn]'>``."""
    jax = pytest.importorskip("jax", reason="JAX not installed")
    jnp = jax.numpy
    flags = (X[:, 0] > 0).astype(np.int64)
    for given in (jnp.asarray(flags).astype(jnp.int4), np.asarray(flags).astype(jnp.uint4)):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, given)
        assert clf.classes_.tolist() == [0, 1] and clf.classes_.dtype == np.int64
    values = jnp.asarray(VALUES).astype(jnp.float8_e4m3fn)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, values)
    plain = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, np.asarray(values, np.float64))
    np.testing.assert_allclose(reg.predict(X), plain.predict(X), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_torch_nested_and_sparse_tensors_are_refused_as_the_network_refuses_them():
    """A nested tensor failed inside scikit-learn's validation with torch's
    "Internal error: NestedTensorImpl doesn't support sizes. Please file an issue."."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, LABELS)
    pieces = torch.asarray(X)
    with pytest.raises(TypeError, match="X is a torch nested tensor"):
        clf.predict(torch.nested.nested_tensor([pieces[:2], pieces[2:5]]))
    with pytest.raises(TypeError, match=r"X is a torch sparse tensor \(torch.sparse_coo\)"):
        clf.predict(pieces.to_sparse())


@pytest.mark.parametrize("out_activation", ["softmax", "logistic", "identity"])
def test_early_stopping_scores_are_sums_over_counts_on_every_backend(backend, out_activation):
    """scikit-learn's score divides a sum by the count; JAX's mean multiplies
    by the count's reciprocal, so on JAX validation_scores_ read
    0.5526315789473684 where scikit-learn (and NumPy, torch) had ...685."""
    from sklearn.metrics import r2_score

    from xpnet.sklearn._objective import score_for

    truth = np.eye(2)[[0] * 38]
    guess = truth.copy()
    guess[:4] = guess[:4, ::-1]
    want = r2_score(truth, guess, force_finite=True) if out_activation == "identity" else 34 / 38
    got = score_for(out_activation)(backend.asarray(truth, "float64"), backend.asarray(guess, "float64"))
    assert float(backend.to_numpy(got)) == want


def test_one_class_predicts_under_dispatch_on_the_inputs_device(backend):
    """One class in y: predict takes its only label for every row. The row
    indices were made on the namespace's default device, so an input on
    another (array-api-strict's second device, CUDA torch, a second GPU)
    failed with 'Arrays from two different devices'."""
    if backend.name not in ("cupy", "torch", "array_api_strict"):
        pytest.skip(f"the dispatch case covers CuPy, torch and array-api-strict inputs, not {backend.name}")
    xp = backend.xp
    Xd, yd = xp.asarray(X, device=backend.device), xp.asarray(np.full(40, 3), device=backend.device)
    with sklearn.config_context(array_api_dispatch=True):
        labels = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(Xd, yd).predict(Xd)
    assert str(compat.device(labels)) == str(backend.device)
    np.testing.assert_array_equal(to_numpy(labels), np.full(40, 3))


@pytest.mark.parametrize("continued", ["warm_start", "partial_fit"])
def test_a_continued_fit_on_another_namespace_moves_classes_with_the_model(continued):
    """Under dispatch a warm-started fit or a partial_fit on another library's
    input moves the model there (its weights, its predictions): classes_
    stayed in the first library, and scikit-learn's metrics, which mix it
    with the predictions (log_loss(labels=clf.classes_)), failed inside
    array-api-strict. Without dispatch it comes back to NumPy the same way."""
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    from sklearn.metrics import log_loss

    labels = RNG.integers(0, 3, size=40)
    on_device1 = [xps.asarray(a, device=xps.Device("device1")) for a in (X, labels)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, warm_start=continued == "warm_start")
    with sklearn.config_context(array_api_dispatch=True):
        clf.partial_fit(torch.asarray(X), torch.asarray(labels), classes=[0, 1, 2])
        getattr(clf, "fit" if continued == "warm_start" else "partial_fit")(*on_device1)
        proba = clf.predict_proba(on_device1[0])
        assert compat.array_namespace(clf.classes_) is compat.array_namespace(proba)
        assert str(compat.device(clf.classes_)) == str(compat.device(proba)) == "array_api_strict.Device('device1')"
        assert 0 < float(log_loss(on_device1[1], proba, labels=clf.classes_)) < 10
    getattr(clf, "fit" if continued == "warm_start" else "partial_fit")(X, labels)
    assert type(clf.classes_) is np.ndarray and clf.classes_.tolist() == [0, 1, 2]
