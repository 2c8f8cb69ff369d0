"""The named metrics against scikit-learn's, on every backend, and in fit."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace, device

import xpnet
from xpnet.metrics import METRICS, get_metric

sk_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for the metrics")

REFERENCE = {
    "mean_squared_error": sk_metrics.mean_squared_error,
    "mean_absolute_error": sk_metrics.mean_absolute_error,
    "r2": sk_metrics.r2_score,
}


def _pairs():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((40, 3))
    yield "three outputs", t, t + 0.3 * rng.standard_normal((40, 3))
    yield "one output", t[:, :1], t[:, :1] * 0.5
    constant = np.full(40, 2.0)
    yield "a constant output predicted exactly", np.c_[t[:, 0], constant], np.c_[t[:, 0] + 0.1, constant]
    yield "a constant output missed", np.c_[t[:, 0], np.full(40, 2.0)], np.c_[t[:, 0], np.full(40, 2.5)]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_a_regression_metric_equals_scikit_learns_on_every_backend(backend, name):
    metric = get_metric(name)
    for what, t, p in _pairs():
        t_dev = backend.asarray(t, "float64")
        got = metric(t_dev, backend.asarray(p, "float64"))
        assert got.shape == () and array_namespace(got) is array_namespace(t_dev), what
        assert device(got) == device(t_dev), what  # computed where the data is, fetched with the losses
        np.testing.assert_allclose(backend.to_numpy(got), REFERENCE[name](t, p), rtol=1e-9, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_integer_targets_are_compared_as_numbers_on_every_backend(backend, name):
    """torch's mean of integers and array-api-strict's mixed promotion failed."""
    t = np.arange(12) % 4
    p = t + np.linspace(-0.5, 0.5, 12)
    got = get_metric(name)(backend.asarray(t), backend.asarray(p, "float64"))
    np.testing.assert_allclose(backend.to_numpy(got), REFERENCE[name](t, p), rtol=1e-9)


def test_the_short_names_lead_to_the_same_metrics_and_say_which_way_is_better():
    assert get_metric("mse").name == "mean_squared_error" and get_metric("mae").name == "mean_absolute_error"
    assert get_metric("r2_score").name == "r2"
    assert [METRICS[n].greater_is_better for n in ("mse", "mae", "r2")] == [False, False, True]


def test_a_vector_of_targets_is_compared_row_by_row_not_broadcast():
    t, p = np.arange(5.0), np.arange(5.0)[:, None] + 1.0
    assert float(get_metric("mse")(t, p)) == 1.0
    with pytest.raises(ValueError, match="r2 compares y_true and y_pred of the same shape"):
        get_metric("r2")(np.ones((5, 2)), np.ones((5, 3)))


@pytest.mark.parametrize("compile", [False, "auto"])
def test_fit_reports_r2_and_early_stopping_maximises_it(backend, compile):
    X = np.linspace(-1.0, 1.0, 64).reshape(32, 2)
    y = X @ np.array([[1.5], [-0.5]]) + 0.1
    net = xpnet.MLP([2, 8, 1], backend=backend, dtype="float64", seed=0)
    stop = xpnet.EarlyStopping(monitor="val_r2", patience=2)
    history = net.fit(X, y, epochs=30, lr=0.05, seed=0, validation_split=0.25, metrics=("r2", "mae"),
                      callbacks=[stop], compile=compile)  # fmt: skip
    assert len(history.metrics["val_r2"]) == len(history.metrics["val_mean_absolute_error"]) > 0
    assert max(history.metrics["val_r2"]) > 0.5
    best = int(np.argmax(history.metrics["val_r2"]))
    assert history.best_epoch == best  # the highest R², not the lowest


def test_multi_label_accuracy_of_hard_float_predictions_is_scikit_learns(backend):
    """Multi-hot targets are multi-label even where every predicted row holds
    one 1.0 (``(P > 0.5).astype(float)``): those rows sum to 1, so accuracy
    compared argmaxes and read 0.75 where scikit-learn's subset accuracy
    (and the same predictions as integers) read 0.5."""
    t = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=float)
    p = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=float)
    got = get_metric("accuracy")(backend.asarray(t, "float64"), backend.asarray(p, "float64"))
    assert float(backend.to_numpy(got)) == sk_metrics.accuracy_score(t, p) == 0.5


def test_a_mean_is_the_sum_over_the_count_on_every_backend(backend):
    """JAX's mean multiplies by the count's reciprocal: 34 of 38 right read
    0.894736842105263, one unit in the last place below scikit-learn's."""
    t = np.eye(2)[[0] * 38]
    p = t.copy()
    p[:4] = p[:4, ::-1]
    got = get_metric("accuracy")(backend.asarray(t, "float64"), backend.asarray(p, "float64"))
    assert float(backend.to_numpy(got)) == 34 / 38


def test_a_mean_is_the_sum_over_the_count_in_a_jax_program():
    """fit's epoch report on JAX is one jax.jit program, where XLA turns a
    division by a constant into a product with its reciprocal: val_accuracy
    read 0.42000000000000004 for 126 of 300 rows, the metric called
    directly (and NumPy, scikit-learn) 0.42."""
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 4)), rng.integers(0, 3, 300)
    t = np.eye(2)[[0] * 300]
    p = t.copy()
    p[:174] = p[:174, ::-1]
    compiled = jax.jit(get_metric("accuracy"))(jax.numpy.asarray(t), jax.numpy.asarray(p))
    assert float(compiled) == 126 / 300
    net = xpnet.Network([xpnet.Dense(4, 3, "softmax")], backend="jax", dtype="float64", seed=0)
    history = net.fit(X[:30], y[:30], loss="cross_entropy", epochs=1, validation_data=(X, y), metrics=("accuracy",))
    hits = int((xpnet.to_numpy(net.predict(X)).argmax(axis=1) == y).sum())
    assert history.metrics["val_accuracy"][-1] == hits / 300


def test_a_mean_divides_on_torch_as_on_cuda(monkeypatch):
    """torch on CUDA divides a tensor by a host number as a product with its
    reciprocal; the CPU divides. With that stand-in for CUDA's kernel,
    accuracy and scikit-learn's early-stopping score still read 34/38 (the
    GPU read 0.894736842105263)."""
    torch = pytest.importorskip("torch")
    from xpnet.sklearn._objective import score_for

    divide = torch.Tensor.__truediv__

    def as_on_cuda(self, other):
        return self * (1.0 / other) if isinstance(other, int | float) else divide(self, other)

    monkeypatch.setattr(torch.Tensor, "__truediv__", as_on_cuda)
    t = np.eye(2)[[0] * 38]
    p = t.copy()
    p[:4] = p[:4, ::-1]
    tt, pp = torch.asarray(t), torch.asarray(p)
    assert float(get_metric("accuracy")(tt, pp)) == 34 / 38
    assert float(score_for("softmax")(tt, pp)) == 34 / 38


@pytest.mark.parametrize("name", sorted(REFERENCE) + ["accuracy"])
@pytest.mark.parametrize("kind", ["integer", "bool"])
def test_predicted_labels_are_compared_as_labels_on_every_backend(backend, name, kind):
    """Integer or bool predictions (a classifier's ``predict``) are labels:
    accuracy thresholded them at 0.5 (labels 1 and 3 agreed, 1.0 where
    scikit-learn says 0.0), and the error metrics failed deep in torch's
    mean or array-api-strict's division."""
    if kind == "integer":
        t, p = np.array([1, 3, 0, 2, 2, 1]), np.array([3, 1, 0, 2, 1, 1])
    else:
        t, p = np.array([True, False, True, True, False, False]), np.array([True, True, False, True, False, True])
    reference = sk_metrics.accuracy_score if name == "accuracy" else REFERENCE[name]
    got = get_metric(name)(backend.asarray(t), backend.asarray(p))
    assert got.shape == () and device(got) == device(backend.asarray(t))
    np.testing.assert_allclose(float(backend.to_numpy(got)), reference(t, p), rtol=1e-6)


def test_predicted_labels_become_a_float_their_device_holds():
    """array-api-strict's 'no_float64' device has no float64 to cast labels to."""
    xs = pytest.importorskip("array_api_strict")
    on = xs.Device("no_float64")
    t, p = xs.asarray([1, 3, 0, 2], device=on), xs.asarray([3, 3, 0, 2], device=on)
    assert float(get_metric("accuracy")(t, p)) == 0.75 and float(get_metric("mae")(t, p)) == 0.5


@pytest.mark.parametrize("name", sorted(REFERENCE) + ["accuracy"])
def test_a_metric_of_no_rows_is_refused_not_nan_or_a_perfect_score(name):
    """scikit-learn refuses 0 samples, as xpnet's losses do; the metrics gave
    NaN (with NumPy's warning) and r2 a perfect 1.0."""
    with pytest.raises(ValueError, match=r"of shape \(0, 2\) hold no row"):
        get_metric(name)(np.zeros((0, 2)), np.zeros((0, 2)))


@pytest.mark.parametrize("name", sorted(REFERENCE) + ["accuracy"])
def test_half_precision_outputs_are_summed_in_float32_not_to_nan(backend, name):
    """float16 holds no number above 65504: its sum over 70 000 rows was inf,
    and the count (cast to float16) inf too, so every metric of float16
    outputs, a perfect accuracy included, was NaN. They are computed in
    float32 at least, as scikit-learn computes them in float64."""
    try:
        t = backend.asarray(np.eye(2, dtype=np.float16)[np.arange(70_000) % 2])
    except TypeError:
        pytest.skip(f"{backend.name} has no float16")
    p = t + backend.asarray(np.float16(0.25))
    reference = sk_metrics.accuracy_score if name == "accuracy" else REFERENCE[name]
    t_host, p_host = (backend.to_numpy(a).astype(np.float64) for a in (t, p))
    want = reference(t_host.argmax(1), p_host.argmax(1)) if name == "accuracy" else reference(t_host, p_host)
    got = get_metric(name)(t, p)
    assert got.shape == () and device(got) == device(t)
    np.testing.assert_allclose(float(backend.to_numpy(got)), want, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(REFERENCE) + ["accuracy"])
def test_host_targets_beside_device_outputs_are_moved_to_the_outputs(backend, name):
    """``metric(y, net.predict(X))`` with ``y`` a NumPy array or a list, as
    predict takes host data: it failed in array-api-compat's words ("Multiple
    namespaces for array inputs", "list is not a supported array type").
    The targets move to the outputs' device once; the figure is computed there."""
    labels = np.array([0, 2, 1, 1, 0, 2])
    outputs = backend.asarray(np.eye(3)[[0, 2, 2, 1, 1, 2]] * 0.8 + 0.2 / 3, "float64")
    want = get_metric(name)(backend.asarray(labels), outputs)
    for y in (labels, labels.tolist()):
        got = get_metric(name)(y, outputs)
        assert got.shape == () and device(got) == device(outputs)
        assert array_namespace(got) is array_namespace(outputs)
        assert float(backend.to_numpy(got)) == float(backend.to_numpy(want))


def test_targets_and_outputs_of_two_libraries_are_named_not_combined():
    """Two device arrays of different libraries are not moved behind the
    caller's back (through the host, each call): the error names both, not
    array-api-compat's list of module paths."""
    strict = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    p = strict.asarray([[0.9, 0.1], [0.2, 0.8]], device=strict.Device("device1"))
    with pytest.raises(TypeError, match=r"accuracy: y_true is a torch array and y_pred an array_api_strict one"):
        get_metric("accuracy")(torch.tensor([0, 1]), p)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_host_float64_targets_reach_outputs_on_a_device_without_float64(name):
    """array-api-strict's 'no_float64' device (as torch's MPS): NumPy's
    float64 targets cannot land there as they are; they are compared in the
    outputs' dtype anyway, so they are cast to it on the host first."""
    strict = pytest.importorskip("array_api_strict")
    t = np.linspace(-1.0, 2.0, 8)
    p = strict.asarray(np.sin(t), dtype=strict.float32, device=strict.Device("no_float64"))
    got = get_metric(name)(t, p)
    assert got.device == strict.Device("no_float64") and got.dtype == strict.float32
    np.testing.assert_allclose(float(got), REFERENCE[name](t, np.sin(t)), rtol=1e-5, atol=1e-6)


def test_host_float_targets_beside_predicted_labels_on_a_device_without_float64():
    """Predicted labels (integers) leave no float dtype to follow: the
    targets take the widest float the labels' device holds (float32 on
    'no_float64'), not NumPy's float64, which cannot land there."""
    strict = pytest.importorskip("array_api_strict")
    p = strict.asarray([0, 1, 1, 2], device=strict.Device("no_float64"))
    for name, want in (("accuracy", 0.75), ("mean_absolute_error", 0.25)):
        got = get_metric(name)(np.array([0.0, 1.0, 0.0, 2.0]), p)
        assert got.device == strict.Device("no_float64") and float(got) == want, name


class _OutputWeightedError(xpnet.Metric):
    """The squared error, output ``k`` weighted by ``weights[k]``, held as an
    attribute of its own; the subclasses hold them one level down."""

    name = "test_metrics_output_weighted"
    compilable = True

    def __init__(self, weights):
        self.weights = weights

    def _weights(self):
        return self.weights

    def __call__(self, y_true, y_pred):
        xp = array_namespace(y_true, y_pred)
        return xp.mean(xp.sum(self._weights() * (y_pred - y_true) ** 2, axis=1))


class _ErrorWeightsInDict(_OutputWeightedError):
    name = "test_metrics_weights_in_dict"
    compilable = True

    def __init__(self, weights):
        self.parts = {"w": weights}

    def _weights(self):
        return self.parts["w"]


class _ErrorWeightsInList(_OutputWeightedError):
    name = "test_metrics_weights_in_list"
    compilable = True

    def __init__(self, weights):
        self.parts = [weights]

    def _weights(self):
        return self.parts[0]


@pytest.mark.parametrize("holder", [_ErrorWeightsInDict, _ErrorWeightsInList], ids=["dict", "list"])
def test_a_metric_holding_arrays_one_level_down_reports_with_its_own(backend, holder):
    """Fits with metrics of the same class but other arrays (in a dict or a
    list) report each with their own, as with the arrays held directly: on
    JAX the epoch report's program (keyed by settings) baked the first
    metric's nested arrays in and reported the second fit with them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4)).astype(np.float32)
    Y = (X @ rng.normal(size=(4, 3))).astype(np.float32)
    for values in ([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]):
        w = backend.asarray(np.asarray(values, np.float32))
        net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
        history = net.fit(X, Y, epochs=2, batch_size=8, seed=0, validation_data=(X, Y),
                          metrics=[holder(w), _OutputWeightedError(w)])  # fmt: skip
        got, expected = history.metrics[f"val_{holder.name}"], history.metrics["val_test_metrics_output_weighted"]
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"weights {values}")


def test_accuracy_of_text_labels_is_scikit_learns_and_other_kinds_are_named():
    """Accuracy of string labels (a classifier's ``classes_``, as
    ``accuracy_score`` takes them) raised NumPy's "could not convert string
    to float: np.str_('a')"; a categorical Series too, and strings beside a
    torch array torch's "can't convert np.ndarray of type numpy.str_"."""
    pd = pytest.importorskip("pandas")
    t, p = np.array(["cat", "dog", "cat", "eel"]), np.array(["cat", "dog", "dog", "eel"])
    expected = sk_metrics.accuracy_score(t, p)
    accuracy = get_metric("accuracy")
    assert float(accuracy(t, p)) == expected == 0.75
    assert float(accuracy(t.tolist(), list(p))) == expected
    assert float(accuracy(pd.Series(t, dtype="category"), pd.Series(p, dtype="category"))) == expected
    assert float(accuracy(t[:, None], p)) == expected  # an (N, 1) column beside (N,), as numbers
    assert float(accuracy(np.array([b"a", b"b"]), np.array([b"a", b"a"]))) == 0.5
    with pytest.raises(TypeError, match=r"accuracy: y_true holds text labels \(such as 'cat'\) but y_pred is a numpy "
                                        r"array of dtype float64; compare labels of one kind"):
        accuracy(t, np.eye(4)[:, :3])
    shapes = r"accuracy compares y_true and y_pred of the same shape, got \(4,\) and \(3,\)"
    with pytest.raises(ValueError, match=shapes):
        accuracy(t, p[:3])
    with pytest.raises(TypeError, match=r"mean_squared_error needs numbers, got text labels \(such as '1'\)"):
        get_metric("mse")(np.array(["1", "2"]), np.array([1.0, 2.0]))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="y_pred is a torch array of dtype torch.int64"):
        accuracy(t, torch.tensor([0, 1, 1, 2]))
