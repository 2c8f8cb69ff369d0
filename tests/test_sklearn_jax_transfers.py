"""No hidden transfers in xpnet.sklearn on JAX: ``fit``, ``partial_fit`` and
the predictions run under ``jax.transfer_guard("disallow")``, as
``Network.fit`` and ``predict`` do (tests/test_jax_transfers.py). The input
moves to the device once per call, explicitly; nothing moves implicitly per
step or per epoch (an eager operation's Python number, a host array or
number handed to a program). NumPy inputs with ``backend="jax"``, and JAX
arrays under scikit-learn's ``array_api_dispatch``.

``score`` of JAX arrays under dispatch scores on the host: scikit-learn's
own metrics ran eagerly on them (``type_of_target`` indexes them with
Python numbers), and ``r2_score`` writes into its arrays, which JAX's are not.

On JAX's CPU device a host read is zero-copy, so the guard never sees one
there: the suite refuses implicit reads as a GPU does (conftest's
``_reads_refused_as_on_a_gpu``), or the CPU suite passes what a GPU refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's Array API dispatch needs it before SciPy loads

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
jax = pytest.importorskip("jax", reason="jax.transfer_guard needs JAX")

import sklearn  # noqa: E402
from helpers import child_env, compiled_names  # noqa: E402

import xpnet  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4)).astype(np.float32)
TWO = (X[:, 0] > 0).astype(np.int32)
THREE = RNG.integers(0, 3, size=60).astype(np.int32)
MULTILABEL = np.stack([TWO, 1 - TWO, (X[:, 1] > 0).astype(np.int32)], axis=1)
VALUES = X[:, 1] - X[:, 2]
WEIGHTS = np.linspace(0.5, 2.0, 60)

SETTINGS = {
    "adam": {"solver": "adam"},
    "sgd": {"solver": "sgd", "learning_rate": "invscaling"},
    "adam without alpha": {"solver": "adam", "alpha": 0.0},
    "early stopping": {"solver": "adam", "early_stopping": True},
    "lbfgs": {"solver": "lbfgs"},
}
TARGETS = {"two classes": TWO, "three classes": THREE, "multilabel": MULTILABEL, "values": VALUES}


def _estimator(target: str, settings: str, **params):
    cls = MLPRegressor if target == "values" else MLPClassifier
    return cls(hidden_layer_sizes=(8,), max_iter=4, random_state=0, **SETTINGS[settings], **params)


def _predictions(est, X):
    est.predict(X)
    if isinstance(est, MLPClassifier):
        est.predict_proba(X)
        est.predict_log_proba(X)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("settings", list(SETTINGS))
@pytest.mark.parametrize("target", list(TARGETS))
def test_numpy_inputs_on_jax_move_explicitly(target, settings, weighted):
    y, weights = TARGETS[target], WEIGHTS if weighted else None
    est = _estimator(target, settings, backend="jax")
    with jax.transfer_guard("disallow"):
        est.fit(X, y, sample_weight=weights)
        _predictions(est, X)
        est.score(X, y, sample_weight=weights)  # NumPy in: scikit-learn's metric runs on the host
        if settings != "lbfgs" and not est.early_stopping:
            est.partial_fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("settings", list(SETTINGS))
@pytest.mark.parametrize("target", ["two classes", "three classes", "values"])
def test_jax_inputs_under_dispatch_move_nothing_implicitly(target, settings):
    Xj, yj = jax.device_put(X), jax.device_put(TARGETS[target])
    est = _estimator(target, settings)
    with sklearn.config_context(array_api_dispatch=True), jax.transfer_guard("disallow"):
        est.fit(Xj, yj)
        _predictions(est, Xj)
        if settings != "lbfgs" and not est.early_stopping:
            est.partial_fit(Xj, yj)
    assert est._net.backend.name == "jax"


def test_weighted_early_stopping_scores_each_fits_own_weights():
    """The weighted validation score is compiled into the epoch report, its
    weights an argument: a second fit of other weights scores with its own."""
    first = _estimator("values", "early stopping", backend="jax").fit(X, VALUES, sample_weight=WEIGHTS)
    second = _estimator("values", "early stopping", backend="jax").fit(X, VALUES, sample_weight=WEIGHTS[::-1])
    on_numpy = _estimator("values", "early stopping", backend="numpy", dtype="float32")
    on_numpy.fit(X, VALUES, sample_weight=WEIGHTS[::-1])
    assert first.validation_scores_ != second.validation_scores_
    np.testing.assert_allclose(second.validation_scores_, on_numpy.validation_scores_, rtol=1e-4)


def test_fits_of_other_validation_weights_run_the_same_report_program():
    """The validation rows' weights reach the epoch report's program as an
    argument. Baked in as a constant, JAX read them to the host to lower the
    program (refused under the guard on a GPU), and each fit's weights
    compiled a program of their own."""
    fit = lambda w: _estimator("values", "early stopping", backend="jax").fit(X, VALUES, sample_weight=w)  # noqa: E731
    fit(WEIGHTS)
    assert "figures" not in compiled_names(lambda: fit(WEIGHTS[::-1]))


def test_the_compiled_weighted_validation_score_is_scikit_learns():
    """Two fits of one report program, each scored with its own weights as ``r2_score`` weighs them."""
    from sklearn.metrics import r2_score

    from xpnet.sklearn._objective import score_for

    rng = np.random.default_rng(1)
    Xv, Tv = X[:12], VALUES[:12, None]
    for w in (rng.uniform(0.1, 2.0, 12).astype(np.float32), WEIGHTS[:12].astype(np.float32)):
        net = xpnet.MLP([4, 8, 1], "tanh", "identity", backend="jax", dtype="float32", seed=0)
        history = net.fit(X, VALUES[:, None], loss="mse", optimizer="adam", epochs=1, batch_size=60, seed=0,
                          validation_data=(Xv, Tv), metrics=(score_for("identity", net.backend.asarray(w)),))
        expected = r2_score(Tv, np.asarray(net.predict(Xv)), sample_weight=w)
        assert history.metrics["val_validation_score"][0] == pytest.approx(expected, rel=1e-5)


def test_the_guard_would_see_one():
    """The tests above can fail: an eager operation with a Python number is refused."""
    with pytest.raises(Exception, match="Disallowed host-to-device transfer"), jax.transfer_guard("disallow"):
        jax.device_put(X) * 2.0


@pytest.mark.parametrize("settings", ["adam", "early stopping", "lbfgs"])
@pytest.mark.parametrize("target", ["two classes", "values"])
def test_jax_weights_under_dispatch_move_nothing_implicitly(target, settings):
    """Row weights are checked as NumPy, copied over explicitly: scikit-learn's
    checks moved them to X's device and read them back with ``bool()``."""
    Xj, yj = jax.device_put(X), jax.device_put(TARGETS[target])
    with sklearn.config_context(array_api_dispatch=True), jax.transfer_guard("disallow"):
        _estimator(target, settings).fit(Xj, yj, sample_weight=jax.device_put(WEIGHTS.astype(np.float32)))
        _estimator(target, settings).fit(Xj, yj, sample_weight=WEIGHTS)


@pytest.mark.parametrize("where", ["X", "y", "sample_weight", "predict"])
def test_non_finite_jax_inputs_under_dispatch_get_scikit_learns_error(where):
    """The finite check of JAX inputs runs on the device, with scikit-learn's error."""
    bad = {"X": X.copy(), "y": VALUES.copy(), "sample_weight": WEIGHTS.astype(np.float32)}
    bad["y" if where == "y" else "sample_weight" if where == "sample_weight" else "X"][3, ...] = np.nan
    fit = {"X": X, "y": VALUES, "sample_weight": None} if where == "predict" else bad
    with pytest.raises(ValueError) as on_numpy:
        est = _estimator("values", "adam").fit(**fit)
        est.predict(bad["X"])
    with sklearn.config_context(array_api_dispatch=True), jax.transfer_guard("disallow"):
        est = _estimator("values", "adam")
        with pytest.raises(ValueError) as on_jax:
            est.fit(**{k: None if v is None else jax.device_put(v) for k, v in fit.items()})
            est.predict(jax.device_put(bad["X"]))
    assert str(on_jax.value) == str(on_numpy.value)
    assert f"Input {'X' if where == 'predict' else where} contains NaN" in str(on_jax.value)


def test_a_fresh_process_fits_jax_inputs_under_dispatch_and_the_guard():
    """scikit-learn's vendored array-api-compat looks up JAX's namespace with
    ``jnp.empty(0)`` (a transfer) the first time it sees a JAX array. In a
    fresh process, since this one's tests may have done it already."""
    code = (
        "import jax, numpy as np, sklearn\n"
        "from xpnet.sklearn import MLPClassifier\n"
        "X = jax.device_put(np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32))\n"
        "y = jax.device_put((np.arange(20) % 2).astype(np.int32))\n"
        "with sklearn.config_context(array_api_dispatch=True), jax.transfer_guard('disallow'):\n"
        "    MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y).predict(X)\n"
    )
    root = Path(xpnet.__file__).resolve().parents[1]
    env = {**child_env(root), "SCIPY_ARRAY_API": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("target", ["two classes", "three classes", "values"])
def test_score_of_jax_inputs_under_dispatch(target, weighted):
    """scikit-learn's score of the same predictions, from NumPy copies, as a
    Python float; under the guard (the copies are explicit transfers)."""
    from sklearn.metrics import accuracy_score, r2_score

    Xj, yj = jax.device_put(X), jax.device_put(TARGETS[target])
    weights = jax.device_put(WEIGHTS.astype(np.float32)) if weighted else None
    est = _estimator(target, "adam")
    with sklearn.config_context(array_api_dispatch=True):
        est.fit(Xj, yj)
        predicted = np.asarray(est.predict(Xj))
        with jax.transfer_guard("disallow"):
            got = est.score(Xj, yj, sample_weight=weights)
    metric = r2_score if target == "values" else accuracy_score
    expected = metric(TARGETS[target], predicted, sample_weight=WEIGHTS.astype(np.float32) if weighted else None)
    assert type(got) is float
    assert got == pytest.approx(float(expected), rel=1e-6)


def test_the_jax_probe_reads_its_answer_explicitly():
    """A process whose first use of JAX is inside transfer_guard("disallow")
    on a GPU found JAX "not installed or not working": the probe read its
    test program's result implicitly."""
    with jax.transfer_guard("disallow"):
        status = xpnet._backend._probe_jax()
    assert status.usable, status.reason


def test_a_fitted_estimator_pickles_under_the_guard():
    """The L2 term's scale, a device array the optimizer keeps between
    epochs, was pickled with the fit's state as it was: an implicit read,
    refused on a GPU. It is not state (sent again when needed), so it is left out."""
    import pickle

    est = _estimator("three classes", "adam", backend="jax", warm_start=True).fit(X, THREE)
    with jax.transfer_guard("disallow"):
        copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    copy.fit(X, THREE)  # the warm start goes on, its scale sent again
