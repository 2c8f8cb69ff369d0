"""xpnet.sklearn against scikit-learn's MLP: the same training step for step
(same initial weights, same early-stopping split, same shuffled minibatches),
the targets, attributes and dtypes, partial_fit's optimizer state, sample
weights, scikit-learn's tools, and the Array API contract (torch on CPU)."""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's Array API dispatch needs it before SciPy loads

import io  # noqa: E402
import pickle  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402
from contextlib import redirect_stdout  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

import sklearn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import xpnet  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RNG = np.random.RandomState(0)
X = RNG.normal(size=(23, 4))
TARGETS = {
    "multiclass": (MLPClassifier, SkClassifier, RNG.randint(0, 3, 23)),
    "binary": (MLPClassifier, SkClassifier, np.array(["no", "yes"])[RNG.randint(0, 2, 23)]),
    "multilabel": (MLPClassifier, SkClassifier, RNG.randint(0, 2, (23, 3))),
    "regression": (MLPRegressor, SkRegressor, RNG.normal(size=(23, 2))),
    "poisson": (MLPRegressor, SkRegressor, RNG.poisson(2.0, 23).astype(float)),
}
#: scikit-learn before 1.9 fails some comparisons itself (pyproject allows
#: 1.8): its early-stopping score runs isnan on string labels, and zero
#: validation weights raise ZeroDivisionError, not its ValueError.
SKLEARN_OWN_BUGS = tuple(int(n) for n in sklearn.__version__.split(".")[:2]) < (1, 9)


def skip_where_sklearn_fails(what: str) -> None:
    if SKLEARN_OWN_BUGS:
        pytest.skip(f"scikit-learn {sklearn.__version__} fails this itself ({what}; fixed in 1.9)")


# Minibatches of 5 rows and a last one of 3 (the L2 term is per minibatch), shuffled: the same
# random_state gives the same initial weights and the same minibatches as scikit-learn.
STEPWISE = dict(hidden_layer_sizes=(5,), random_state=1, max_iter=6, batch_size=5, alpha=0.3)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def both(target, **params):
    ours, theirs, y = TARGETS[target]
    if target == "poisson":
        params["loss"] = "poisson"
    return ours(**params).fit(X, y), theirs(**params).fit(X, y), y


def assert_same_weights(a, b, rtol):
    assert len(a.coefs_) == len(b.coefs_)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert p.dtype == q.dtype and p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_the_same_training_as_sklearn(target, solver):
    """Same initial weights, same loss, L2 term and update: the same weights
    after 6 epochs (SGD with Nesterov momentum) or L-BFGS's iterations."""
    lr = {"learning_rate_init": 0.01 if target in ("regression", "poisson") else 0.1}
    ours, theirs, y = both(target, solver=solver, **lr, **STEPWISE)
    assert_same_weights(ours, theirs, rtol=1e-9)
    assert ours.n_iter_ == theirs.n_iter_ and ours.out_activation_ == theirs.out_activation_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    if solver != "lbfgs":
        assert ours.t_ == theirs.t_
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if isinstance(ours, MLPClassifier):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


def test_lbfgs_with_several_outputs_as_sklearn():
    """scikit-learn hands L-BFGS the squared error averaged over the outputs
    with its gradient summed over them; the line search follows that pair,
    and so does xpnet's: the same 60 iterations, then an early ABNORMAL stop
    at 66 iterations in scikit-learn. Where that stop comes, one iteration
    either way, rests on the last bits of the products (67 on some CPUs)."""
    from sklearn.datasets import make_regression

    Xr, Yr = make_regression(200, 5, n_targets=4, noise=5, random_state=1)
    params = dict(solver="lbfgs", max_iter=60, alpha=1.0, random_state=0, hidden_layer_sizes=(20,))
    ours, theirs = MLPRegressor(**params).fit(Xr / 3, Yr / 100), SkRegressor(**params).fit(Xr / 3, Yr / 100)
    assert ours.n_iter_ == theirs.n_iter_ == 60 and ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert_same_weights(ours, theirs, rtol=1e-7)
    params["max_iter"] = 500
    ours, theirs = MLPRegressor(**params).fit(Xr / 3, Yr / 100), SkRegressor(**params).fit(Xr / 3, Yr / 100)
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 1 and theirs.n_iter_ < 100
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)


@pytest.mark.parametrize("target", ["multiclass", "multilabel", "regression"])
def test_adam_as_sklearn(target):
    """Adam in the paper's order (epsilon added to sqrt(v) before the bias
    correction), as scikit-learn's: the same run, even at a high rate on
    minibatches of 5 rows, where the two orders drift apart."""
    ours, theirs, _ = both(target, solver="adam", learning_rate_init=0.05, **{**STEPWISE, "max_iter": 20})
    assert_same_weights(ours, theirs, rtol=1e-8)


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_learning_rate_schedules_as_sklearn(schedule):
    ours, theirs, _ = both(
        "regression", solver="sgd", momentum=0.0, learning_rate=schedule, learning_rate_init=0.01, tol=10.0,
        n_iter_no_change=1, **{**STEPWISE, "max_iter": 8},
    )  # fmt: skip
    assert_same_weights(ours, theirs, rtol=1e-9)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)
    assert ours._optimizer.learning_rate < 0.01


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_momentum_with_a_changing_rate_as_sklearn(schedule, nesterov):
    """scikit-learn's velocity holds the step (``v = m v - lr g``), so a rate
    that changes between epochs acts on new steps only: the same loss curve
    as scikit-learn's in fit and in partial_fit (torch's form, ``v = m v + g``
    and ``p -= lr v``, rescales the whole velocity and departs at once)."""
    params = dict(
        STEPWISE, solver="sgd", momentum=0.9, nesterovs_momentum=nesterov, learning_rate=schedule,
        learning_rate_init=0.05, tol=10.0 if schedule == "adaptive" else 1e-4, n_iter_no_change=1, max_iter=12,
    )  # fmt: skip
    y = TARGETS["multiclass"][2]
    ours, theirs = MLPClassifier(**params).fit(X, y), SkClassifier(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and ours._optimizer.learning_rate < 0.05
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert_same_weights(ours, theirs, rtol=1e-9)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    for _ in range(6):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)
    assert ours._optimizer.learning_rate < 0.05


@pytest.mark.parametrize("target", ["binary", "multiclass", "regression"])
def test_early_stopping_as_sklearn(target):
    """The same held-out rows (stratified for one output), the same scores,
    and the best epoch's weights at the end."""
    if target == "binary":
        skip_where_sklearn_fails("isnan of string labels in its early-stopping score")
    params = dict(STEPWISE, solver="sgd", learning_rate_init=0.05, early_stopping=True, validation_fraction=0.3)
    ours, theirs, _ = both(target, **{**params, "max_iter": 30, "n_iter_no_change": 3})
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    assert ours.best_loss_ is None and ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-9)


def test_diverging_early_stopping_keeps_consistent_attributes_and_warns():
    """A loss that overflows stops training (scikit-learn trains on in NaN):
    one validation score per iteration, a ConvergenceWarning, and the best
    epoch's weights, which are scikit-learn's."""
    params = dict(solver="sgd", learning_rate_init=1.0, max_iter=20, random_state=0, early_stopping=True)
    Xb, yb = X * 1e3, TARGETS["regression"][2][:, 0] * 1e6
    with pytest.warns(ConvergenceWarning, match="non-finite"):
        ours = MLPRegressor(**params).fit(Xb, yb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = SkRegressor(**params).fit(Xb, yb)
    assert 0 < ours.n_iter_ == len(ours.loss_curve_) == len(ours.validation_scores_) < theirs.n_iter_
    assert np.all(np.isfinite(ours.loss_curve_))
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_[: ours.n_iter_], rtol=1e-9)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-9)
    assert_same_weights(ours, theirs, rtol=1e-9)


def test_early_stopping_diverging_in_the_first_epoch_still_has_a_loss():
    """No epoch was finite: loss_ was never set (AttributeError), and the
    warning spoke of a best validation score there never was."""
    Xs, ys = np.random.default_rng(0).random((40, 3)), np.full(40, 1e160)
    with pytest.warns(ConvergenceWarning, match="after 0 iterations with the weights it started from"):
        ours = MLPRegressor(early_stopping=True, max_iter=5, random_state=0).fit(Xs, ys)
    assert ours.n_iter_ == 0 and ours.loss_curve_ == [] and ours.loss_ == np.inf
    assert np.isfinite(ours.predict(Xs)).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_early_stopping_switched_on_under_warm_start_falls_back_to_the_weights_it_started_from(solver):
    """A warm-started fit that switches early_stopping on and diverges in its
    first epoch said it kept "the weights it started from", but restored the
    first fit's random initial weights: the trained model was thrown away."""
    y = TARGETS["regression"][2][:, 0]
    est = MLPRegressor(solver=solver, max_iter=30, warm_start=True, random_state=0).fit(X, y)
    trained = [w.copy() for w in (*est.coefs_, *est.intercepts_)]
    est.set_params(solver="sgd", early_stopping=True, learning_rate_init=1e200, max_iter=3, batch_size=5)
    with pytest.warns(ConvergenceWarning, match="after 0 iterations with the weights it started from"):
        est.fit(X, y)
    for got, want in zip((*est.coefs_, *est.intercepts_), trained):
        np.testing.assert_array_equal(got, want)


def test_tol_and_n_iter_no_change_stop_on_the_training_loss():
    ours = MLPClassifier(solver="sgd", tol=0.5, max_iter=3000, random_state=0).fit(X, TARGETS["binary"][2])
    assert ours.n_iter_ < 3000 and ours._no_improvement_count == ours.n_iter_no_change + 1
    assert ours.best_loss_ == min(ours.loss_curve_) and ours.validation_scores_ is None
    never = MLPClassifier(solver="sgd", tol=1e9, max_iter=20, n_iter_no_change=np.inf, random_state=0)
    with pytest.warns(ConvergenceWarning):
        never.fit(X, TARGETS["binary"][2])
    assert never.n_iter_ == 20


# -- partial_fit and its optimizer state -------------------------------------------


def test_partial_fit_continues_the_optimizer_state():
    """Three partial_fit calls are three epochs of one fit (Adam's moments and
    step count carry over), also across a pickle; a fresh state would differ."""
    params = dict(solver="adam", learning_rate_init=0.05, shuffle=False, batch_size=5, random_state=3, tol=0)
    y = TARGETS["regression"][2]
    one = MLPRegressor(max_iter=3, n_iter_no_change=99, **params).fit(X, y)
    steps = MLPRegressor(**params)
    steps.partial_fit(X, y)
    steps = pickle.loads(pickle.dumps(steps))
    steps.partial_fit(X, y)
    steps.partial_fit(X, y)
    assert_same_weights(steps, one, rtol=1e-12)
    assert steps.t_ == one.t_ == 3 * len(X) and steps.n_iter_ == 1
    theirs = SkRegressor(**params)
    for _ in range(3):
        theirs.partial_fit(X, y)
    assert_same_weights(steps, theirs, rtol=1e-9)
    # fit() starts a fresh optimizer, as scikit-learn's does: warm_start only keeps the weights
    warm = MLPRegressor(max_iter=1, warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    assert not np.allclose(warm.coefs_[0], one.coefs_[0]) or not np.allclose(warm.coefs_[1], one.coefs_[1])


@pytest.mark.parametrize("warm_start", [False, True])
def test_the_weights_dtype_stays_after_the_first_fit(warm_start):
    """After a float32 first fit, float64 input is cast to float32 for
    partial_fit and warm-started fits (scikit-learn keeps float32 coefs_):
    the same run as all-float32 input, Adam's step count continuing."""
    y = TARGETS["multiclass"][2]
    params = dict(random_state=0, max_iter=3, warm_start=warm_start, learning_rate_init=0.05)
    runs = {}
    for name, second in (("float32", X.astype(np.float32)), ("mixed", X)):
        for Est in (MLPClassifier, SkClassifier):
            est = Est(**params)
            for data in (X.astype(np.float32), second):
                est.fit(data, y) if warm_start else est.partial_fit(data, y, classes=[0, 1, 2])
            runs[name, Est] = est
    mixed = runs["mixed", MLPClassifier]
    assert mixed.coefs_[0].dtype == runs["mixed", SkClassifier].coefs_[0].dtype == np.float32
    assert mixed._net.dtype == "float32"
    np.testing.assert_array_equal(mixed.loss_curve_, runs["float32", MLPClassifier].loss_curve_)
    if not warm_start:
        assert mixed._net._fit_state[1]["t"] == 2


def test_a_new_backend_between_partial_fits_continues_the_run():
    """set_params(backend=...) between partial_fit calls moves the weights and
    the optimizer state (Adam's moments and step count) to the new backend."""
    pytest.importorskip("torch")
    y = TARGETS["regression"][2]
    params = dict(random_state=0, learning_rate_init=0.05, batch_size=5)
    here, moved = MLPRegressor(**params), MLPRegressor(**params)
    for i in range(3):
        moved.set_params(backend="numpy" if i < 2 else "torch")
        for est in (here, moved):
            est.partial_fit(X, y)
    assert moved._net.backend.name == "torch" and moved._net._fit_state[1]["t"] == 3 * 5
    np.testing.assert_allclose(moved.loss_curve_, here.loss_curve_, rtol=1e-12)
    assert_same_weights(moved, here, rtol=1e-12)


def test_continued_fits_refuse_new_hidden_layer_sizes():
    """warm_start and partial_fit continue the fitted layers; a changed
    hidden_layer_sizes is refused with both sizes named, not silently ignored
    (scikit-learn's own fit fails there with an AttributeError)."""
    y = TARGETS["multiclass"][2]
    warm = MLPClassifier(hidden_layer_sizes=(5,), warm_start=True, max_iter=2, random_state=0).fit(X, y)
    warm.set_params(hidden_layer_sizes=(7, 3))
    with pytest.raises(ValueError, match=r"hidden_layer_sizes are \(5,\).*now \(7, 3\).*warm_start=False"):
        warm.fit(X, y)
    with pytest.raises(ValueError, match=r"partial_fit .*\(5,\).*\(7, 3\).*call fit") as refused:
        warm.partial_fit(X, y)
    assert "set warm_start=False" not in str(refused.value)  # partial_fit continues whatever warm_start says
    with pytest.raises(ValueError, match=r"partial_fit .*\(5,\)"):
        warm.set_params(warm_start=False).partial_fit(X, y)
    fresh = warm.set_params(warm_start=False).fit(X, y)
    assert [c.shape[1] for c in fresh.coefs_] == [7, 3, 3]


def test_partial_fit_classes():
    clf = MLPClassifier(solver="sgd", random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, TARGETS["multiclass"][2])
    clf.partial_fit(X[:3], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    clf.partial_fit(X[3:4], ["d"])
    assert list(clf.classes_) == ["a", "b", "c", "d"] and clf.predict_proba(X).shape == (23, 4)
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X[:1], ["e"])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPRegressor(early_stopping=True).partial_fit(X, TARGETS["regression"][2])


def test_assigned_coefficients_are_used():
    """coefs_/intercepts_ are the fitted state: new arrays assigned to them
    are what predict and partial_fit use."""
    reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0).fit(X, TARGETS["regression"][2])
    reg.coefs_ = [np.zeros_like(c) for c in reg.coefs_]
    reg.intercepts_ = [np.zeros_like(b) for b in reg.intercepts_[:-1]] + [np.array([1.0, -2.0])]
    np.testing.assert_allclose(reg.predict(X), np.tile([1.0, -2.0], (23, 1)))


# -- targets, attributes, dtypes -------------------------------------------------------


def test_fitted_attributes():
    clf = MLPClassifier(hidden_layer_sizes=(7, 5), max_iter=4, random_state=0).fit(X, TARGETS["multiclass"][2])
    assert [c.shape for c in clf.coefs_] == [(4, 7), (7, 5), (5, 3)] and [b.shape for b in clf.intercepts_] == [(7,), (5,), (3,)]
    assert all(isinstance(a, np.ndarray) for a in clf.coefs_ + clf.intercepts_)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax" and clf.n_features_in_ == 4
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4 and clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None and clf.best_validation_score_ is None
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))
    assert 0.0 <= clf.score(X, TARGETS["multiclass"][2]) <= 1.0


def test_targets():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    words = pd.Series(np.array(["cat", "dog", "emu"])[TARGETS["multiclass"][2]])
    clf = MLPClassifier(max_iter=3, random_state=0).fit(frame, words)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"] and set(clf.predict(frame)) <= {"cat", "dog", "emu"}
    binary = MLPClassifier(max_iter=3, random_state=0).fit(X, TARGETS["binary"][2])
    assert binary.out_activation_ == "logistic" and binary.predict_proba(X).shape == (23, 2)
    multilabel = MLPClassifier(max_iter=3, random_state=0).fit(X, TARGETS["multilabel"][2])
    assert multilabel.predict(X).shape == (23, 3) and set(np.unique(multilabel.predict(X))) <= {0, 1}
    with pytest.warns(DataConversionWarning):
        column = MLPClassifier(max_iter=3, random_state=0).fit(X, TARGETS["multiclass"][2][:, None])
    np.testing.assert_array_equal(column.coefs_[0], MLPClassifier(max_iter=3, random_state=0).fit(X, TARGETS["multiclass"][2]).coefs_[0])
    reg = MLPRegressor(max_iter=3, random_state=0).fit(X, TARGETS["regression"][2])
    assert reg.predict(X).shape == (23, 2) and MLPRegressor(max_iter=3).fit(X, X[:, 0]).predict(X).shape == (23,)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_regression_targets_that_are_no_numbers_are_refused_in_words(method):
    """Dates and durations trained silently as their raw counts (seconds
    since 1970), and words failed deep inside array-api-compat; strings of
    numbers convert, as scikit-learn converts object and pandas string targets."""
    y = TARGETS["poisson"][2]
    dates, durations = np.array(y, dtype="datetime64[s]"), np.array(y, dtype="timedelta64[s]")
    for bad, what in [(dates, "datetime64"), (durations, "timedelta64"), (np.array(["a", "b"] * 11 + ["c"]), "'a'")]:
        with pytest.raises(ValueError, match=f"MLPRegressor.{method} needs numeric targets y.*{what}"):
            getattr(MLPRegressor(max_iter=2), method)(X, bad)
    numbers = getattr(MLPRegressor(max_iter=2, random_state=0), method)(X, y.astype(str))
    same = getattr(MLPRegressor(max_iter=2, random_state=0), method)(X, y)
    np.testing.assert_array_equal(numbers.coefs_[0], same.coefs_[0])


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_follow_the_input_dtype(Estimator, dtype):
    y = TARGETS["multiclass"][2]
    est = Estimator(max_iter=3, random_state=0).fit(X.astype(dtype), y)
    assert all(a.dtype == dtype for a in est.coefs_ + est.intercepts_)
    assert est._net.dtype == np.dtype(dtype).name
    if Estimator is MLPRegressor:
        assert est.predict(X.astype(dtype)).dtype == dtype
    forced = Estimator(max_iter=3, random_state=0, dtype="float32").fit(X, y)
    assert forced.coefs_[0].dtype == np.float32


@pytest.mark.parametrize("target", ["binary", "multiclass", "regression"])
def test_answers_take_the_dtype_of_the_input_and_the_weights(target):
    """float64 input to float32 weights answers in float64, as scikit-learn's
    (the input and the weights promoted); float32 input stays float32."""
    Est, SkEst, y = TARGETS[target]
    X32 = X.astype(np.float32)
    ours, theirs = Est(max_iter=3, random_state=0).fit(X32, y), SkEst(max_iter=3, random_state=0).fit(X32, y)
    methods = ["predict_proba", "predict_log_proba"] if Est is MLPClassifier else ["predict"]
    for method in methods:
        for data in (X, X32):
            got, want = getattr(ours, method)(data), getattr(theirs, method)(data)
            assert got.dtype == want.dtype == data.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# -- sample weights ------------------------------------------------------------------------


def test_lbfgs_weights_equal_repeated_rows():
    w = RNG.randint(0, 3, 23)
    weighted = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(4,), random_state=0, max_iter=50, tol=0)
    weighted.fit(X, TARGETS["regression"][2], sample_weight=w)
    repeated = clone(weighted).fit(np.repeat(X, w, axis=0), np.repeat(TARGETS["regression"][2], w, axis=0))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6, atol=1e-8)


def test_equal_and_zero_weights_with_adam():
    """Equal weights c scale only the L2 term (by 1/c); rows of weight 0 stay
    in the minibatches and the early-stopping split, as in scikit-learn (so
    many zeros no longer make the validation set too small); a minibatch of
    zero weights changes nothing but the optimizer's momentum."""
    y = TARGETS["multiclass"][2]
    base = dict(max_iter=4, random_state=0, alpha=0.2)
    doubled = MLPClassifier(**base).fit(X, y, sample_weight=np.full(23, 2.0))
    halved = MLPClassifier(**{**base, "alpha": 0.1}).fit(X, y)
    assert_same_weights(doubled, halved, rtol=1e-12)
    zeros = np.where(np.arange(23) % 4 == 0, 0.0, 1.0)
    sgd = dict(STEPWISE, batch_size=7, solver="sgd", learning_rate_init=0.1)
    for params in (sgd, dict(sgd, early_stopping=True, validation_fraction=0.3)):
        ours = MLPClassifier(**params).fit(X, y, sample_weight=zeros)
        theirs = SkClassifier(**params).fit(X, y, sample_weight=zeros)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert_same_weights(ours, theirs, rtol=1e-9)
    few = np.r_[np.ones(3), np.zeros(20)]  # 3 rows left would make the validation set too small
    params = dict(early_stopping=True, max_iter=3, random_state=0, validation_fraction=0.3)
    ours = MLPRegressor(**params).fit(X, X[:, 0], sample_weight=few)
    theirs = SkRegressor(**params).fit(X, X[:, 0], sample_weight=few)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    idle = MLPClassifier(**base, batch_size=5, shuffle=False).fit(X, y, sample_weight=np.r_[np.zeros(5), np.ones(18)])
    assert np.all(np.isfinite(idle.loss_curve_)) and np.all(np.isfinite(idle.coefs_[0]))  # scikit-learn: 0-division
    with pytest.raises(ValueError, match="non-negative"):
        MLPClassifier(**base).fit(X, y, sample_weight=-np.ones(23))


@pytest.mark.parametrize(
    "target, params",
    [
        ("multiclass", dict(solver="sgd", learning_rate_init=0.1)),
        ("multilabel", dict(solver="adam", learning_rate_init=0.05)),
        ("regression", dict(solver="sgd", learning_rate_init=0.01)),
        ("binary", dict(solver="adam", learning_rate_init=0.05, early_stopping=True, validation_fraction=0.3)),
    ],
)
def test_unequal_weights_as_sklearn(target, params):
    """Row weights in every minibatch's loss, its L2 term divided by the
    minibatch's sum of weights, the validation score weighted: scikit-learn's run."""
    if target == "binary":
        skip_where_sklearn_fails("isnan of string labels in its early-stopping score")
    w = np.random.RandomState(5).uniform(0.2, 3.0, 23)
    ours, theirs, y = TARGETS[target][0](**STEPWISE, **params), TARGETS[target][1](**STEPWISE, **params), TARGETS[target][2]
    ours.fit(X, y, sample_weight=w)
    theirs.fit(X, y, sample_weight=w)
    assert_same_weights(ours, theirs, rtol=1e-9)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)


# -- scikit-learn's tools ----------------------------------------------------------------


def test_pipeline_grid_search_cross_validation_clone_pickle():
    from sklearn.datasets import load_iris

    Xi, yi = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=60, random_state=0)
    )
    scores = cross_val_score(pipe, Xi, yi, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2, n_jobs=2).fit(Xi, yi)
    assert grid.best_score_ > 0.7 and grid.best_estimator_.predict(Xi).shape == (150,)
    fitted = grid.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(Xi), fitted.predict_proba(Xi))
    assert clone(fitted[-1]).get_params() == fitted[-1].get_params() and not hasattr(clone(fitted[-1]), "coefs_")


# -- the Array API contract ----------------------------------------------------------------


def _dispatch_usable():
    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except RuntimeError as exc:  # SciPy imported before SCIPY_ARRAY_API=1 was set
        pytest.skip(f"scikit-learn's Array API dispatch is not usable in this process: {exc}")


def test_torch_inputs_stay_torch_under_dispatch():
    torch = pytest.importorskip("torch")
    _dispatch_usable()
    Xt, yt = torch.asarray(X), torch.asarray(TARGETS["multiclass"][2])
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(max_iter=5, random_state=0).fit(Xt, yt)
        assert clf._net.backend.name == "torch"
        labels, proba = clf.predict(Xt), clf.predict_proba(Xt)
        assert isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.device.type == "cpu"
        assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float64 and proba.shape == (23, 3)
        assert isinstance(clf.score(Xt, yt), float)
        with pytest.raises(ValueError, match=r"MLPClassifier.predict\(\) must use the same namespace"):
            clf.predict(X)
        reg = MLPRegressor(max_iter=5, random_state=0).fit(Xt.to(torch.float32), torch.asarray(X[:, 0]))
        out = reg.predict(Xt.to(torch.float32))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (23,)
    assert isinstance(clf.coefs_[0], np.ndarray) and isinstance(clf.classes_, torch.Tensor)  # as LDA's classes_
    same = MLPClassifier(max_iter=5, random_state=0).fit(X, TARGETS["multiclass"][2])
    np.testing.assert_allclose(proba.numpy(), same.predict_proba(X), rtol=1e-9)
    assert isinstance(same.predict(Xt), np.ndarray)  # without dispatch: NumPy out


def test_a_model_fitted_under_dispatch_answers_numpy_inputs_in_numpy_without_it():
    """classes_ of numeric labels stays a tensor after a fit under dispatch;
    predict indexed it with the host's class indices and gave a tensor for
    NumPy input once dispatch was off (predict_proba gave NumPy)."""
    torch = pytest.importorskip("torch")
    _dispatch_usable()
    y = TARGETS["multiclass"][2]
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(max_iter=5, random_state=0).fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(clf.classes_, torch.Tensor)
    for given in (X, torch.asarray(X)):  # without dispatch every input is read as NumPy
        labels = clf.predict(given)
        assert isinstance(labels, np.ndarray) and labels.dtype == np.int64, type(labels)
        np.testing.assert_array_equal(labels, np.argmax(clf.predict_proba(given), axis=1))


def test_numpy_in_numpy_out_while_training_elsewhere():
    pytest.importorskip("torch")
    clf = MLPClassifier(max_iter=5, random_state=0, backend="torch").fit(X, TARGETS["multiclass"][2])
    assert clf._net.backend.name == "torch"
    assert isinstance(clf.predict(X), np.ndarray) and isinstance(clf.predict_proba(X), np.ndarray)
    np.testing.assert_allclose(
        clf.predict_proba(X), MLPClassifier(max_iter=5, random_state=0).fit(X, TARGETS["multiclass"][2]).predict_proba(X),
        rtol=1e-9,
    )  # fmt: skip
    again = pickle.loads(pickle.dumps(clf))  # the optimizer state travels to the host and back to torch
    assert again._net.backend.name == "torch"
    for est in (clf, again):
        est.partial_fit(X, TARGETS["multiclass"][2])
    np.testing.assert_allclose(again.coefs_[0], clf.coefs_[0], rtol=1e-12)


# -- errors and messages -----------------------------------------------------------------


def test_errors_and_messages():
    y = TARGETS["multiclass"][2]
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(max_iter=3).fit(np.finfo(np.float64).max * RNG.uniform(size=(10, 2)), RNG.normal(size=10))
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(23))
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPRegressor(early_stopping=True).fit(X[:2], y[:2])
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        MLPClassifier(warm_start=True, max_iter=2).fit(X, y).fit(X, (y + 1) % 4)
    out = io.StringIO()
    with redirect_stdout(out):
        MLPClassifier(max_iter=2, verbose=True).fit(X, y)
    assert "Iteration 2, loss = " in out.getvalue()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        warnings.simplefilter("always", ConvergenceWarning)
        MLPClassifier(max_iter=2).fit(X, y)
    assert xpnet.get_backend("numpy")  # the core still imports without scikit-learn (see test_sklearn_optional)


def test_float32_and_float64_agree_as_scikit_learns_do():
    """scikit-learn's test_mlp_classifier_dtypes_casting: the binary
    probabilities in float32 and float64 agree to 1% (they missed by 1.9%
    when the sigmoid lost digits near 1)."""
    from sklearn.datasets import load_digits

    Xd, yd = load_digits(n_class=2, return_X_y=True)
    settings = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=100, tol=1e-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m64 = MLPClassifier(**settings).fit(Xd[:300], yd[:300])
        m32 = MLPClassifier(**settings).fit(Xd[:300].astype(np.float32), yd[:300])
    np.testing.assert_array_equal(m64.predict(Xd[300:]), m32.predict(Xd[300:].astype(np.float32)))
    np.testing.assert_allclose(m64.predict_proba(Xd[300:]), m32.predict_proba(Xd[300:].astype(np.float32)), rtol=1e-2)


def test_warning_filters_written_for_scikit_learns_messages_silence_ours():
    """Code that silences scikit-learn's MLP warnings by their text (a
    message filter matches the start) must silence the drop-in's too."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    sklearn_texts = ["Stochastic Optimizer: Maximum iterations", "Got `batch_size` less than 1 or larger than sample",
                     "lbfgs failed to converge"]  # fmt: skip
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for text in sklearn_texts:
            warnings.filterwarnings("ignore", message=re.escape(text))
        MLPClassifier(max_iter=2, batch_size=500, random_state=0).fit(X, y)
        MLPClassifier(solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    assert [str(w.message) for w in shown] == []


def _two_partial_fits(cls, solver, between):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    est = cls(solver=solver, random_state=0, hidden_layer_sizes=(7,))
    est.partial_fit(X, y, classes=[0, 1, 2])
    between(est)
    est.partial_fit(X, y)
    return est.coefs_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize(("what", "between"), [
    ("weights assigned (same values)", lambda e: setattr(e, "coefs_", [c.copy() for c in e.coefs_])),
    ("momentum and betas changed", lambda e: e.set_params(momentum=0.1, nesterovs_momentum=False, beta_1=0.1,
                                                          beta_2=0.5, epsilon=1e-3)),
    ("solver changed", lambda e: e.set_params(solver="adam" if e.solver == "sgd" else "sgd")),
])  # fmt: skip
def test_partial_fit_continues_scikit_learns_optimizer_whatever_changed_between_calls(solver, what, between):
    """scikit-learn keeps its optimizer object between partial_fit calls: its
    state goes on with weights the user assigns, and the solver, momentum and
    betas it was built with stay (set_params of them changes nothing)."""
    theirs = _two_partial_fits(SkClassifier, solver, between)
    ours = _two_partial_fits(MLPClassifier, solver, between)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_sparse_multilabel_y_fits_and_predicts_sparse_as_scikit_learn():
    """fit and partial_fit failed on a SciPy sparse indicator y (as
    MultiLabelBinarizer(sparse_output=True) gives)."""
    sp = pytest.importorskip("scipy.sparse")
    from sklearn.datasets import make_multilabel_classification

    Theirs = SkClassifier
    X, Y = make_multilabel_classification(80, 6, n_classes=4, random_state=0)
    for make in (lambda C: C(random_state=0, max_iter=20).fit(X, sp.csr_matrix(Y)),
                 lambda C: C(random_state=0).partial_fit(X, sp.csr_matrix(Y), classes=[0, 1, 2, 3])):  # fmt: skip
        ours, theirs = make(MLPClassifier), make(Theirs)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
        got = ours.predict(X)
        assert sp.issparse(got) and got.dtype == theirs.predict(X).dtype
        np.testing.assert_array_equal(got.toarray(), theirs.predict(X).toarray())


@pytest.mark.parametrize("nesterov", [True, False])
def test_momentum_one_is_accepted_as_scikit_learn_does(nesterov):
    from sklearn.datasets import load_iris

    Theirs = SkClassifier
    X, y = load_iris(return_X_y=True)
    kw = dict(solver="sgd", momentum=1.0, max_iter=3, random_state=0, nesterovs_momentum=nesterov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_allclose(MLPClassifier(**kw).fit(X, y).loss_curve_, Theirs(**kw).fit(X, y).loss_curve_,
                                   rtol=1e-10)  # fmt: skip


def test_partial_fit_with_other_classes_says_what_scikit_learn_says():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    for cls in (MLPClassifier, SkClassifier):
        est = cls(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
        with pytest.raises(ValueError, match=r"is not the same as on last call to partial_fit, was: "):
            est.partial_fit(X, y, classes=[0, 1, 2, 3])


@pytest.mark.parametrize("classes", [3, {0, 1, 2}], ids=["scalar", "set"])
def test_partial_fit_classes_that_are_no_sequence_get_scikit_learns_error(classes):
    """A set or a scalar as classes: scikit-learn's ValueError ("Expected
    array-like ..."), not a TypeError about a 0-d array from deeper down."""
    y = TARGETS["multiclass"][2]
    for cls in (MLPClassifier, SkClassifier):
        with pytest.raises(ValueError, match=r"Expected array-like \(array or non-string sequence\), got"):
            cls(random_state=0).partial_fit(X, y, classes=classes)
        est = cls(random_state=0, max_iter=2).fit(X, y)
        with pytest.raises(ValueError, match=r"Expected array-like \(array or non-string sequence\), got"):
            est.partial_fit(X, y, classes=classes)


def test_sparse_inference_is_dense_a_chunk_of_rows_at_a_time(monkeypatch):
    """predict made all of a sparse X dense at once (a TF-IDF matrix is too
    large for that); chunked, the answers are the dense input's. (On NumPy
    a sparse X is never made dense: tests/test_sparse.py; here torch.)"""
    sp = pytest.importorskip("scipy.sparse")
    pytest.importorskip("torch", reason="torch is not installed: on NumPy a sparse X stays sparse")
    import xpnet.sklearn._base as base

    rng = np.random.default_rng(0)
    Xs = sp.random(300, 50, density=0.1, format="csr", random_state=0)
    labels = rng.integers(0, 3, 300)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, backend="torch").fit(Xs, labels)
    whole = clf.predict_proba(Xs.toarray())
    made_dense = []
    real = sp.csr_matrix.toarray
    monkeypatch.setattr(sp.csr_matrix, "toarray", lambda self, *a, **k: made_dense.append(self.shape[0]) or real(self))
    monkeypatch.setattr(base, "SPARSE_CHUNK_BYTES", 64 * 50 * 8)
    np.testing.assert_allclose(clf.predict_proba(Xs), whole, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(Xs.tocsc()), whole, rtol=1e-12)
    assert made_dense and max(made_dense) == 64


def test_sparse_training_that_cannot_fit_dense_is_a_clear_memory_error(monkeypatch):
    """Off NumPy (here torch) a sparse X trains dense: where that cannot fit,
    the error says so, and that NumPy trains on it as it is."""
    sp = pytest.importorskip("scipy.sparse")
    pytest.importorskip("torch", reason="torch is not installed: on NumPy a sparse X stays sparse")
    import xpnet.sklearn._base as base

    monkeypatch.setattr(base, "_available_memory", lambda: 1000)
    Xs = sp.random(300, 50, density=0.1, format="csr", random_state=0)
    with pytest.raises(MemoryError, match=r"sparse 300 x 50 matrix.*dense array on torch.*backend='numpy'.*reduce"):
        MLPClassifier(max_iter=2, backend="torch").fit(Xs, np.arange(300) % 2)
    assert MLPClassifier(max_iter=2, backend="numpy").partial_fit(Xs, np.arange(300) % 2, classes=[0, 1]).n_iter_ == 1


@pytest.mark.parametrize(("ours", "theirs"), [(MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)])
def test_lbfgs_on_float32_input_answers_in_float64_as_sklearn(ours, theirs):
    """scikit-learn's L-BFGS hands the weights to SciPy's float64 minimiser:
    its ``coefs_`` and answers are float64 for float32 X (the initial weights
    drawn in float32). xpnet kept float32 there; ``dtype="float32"`` still does."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    y = y if ours is MLPClassifier else y.astype(np.float32)
    params = dict(solver="lbfgs", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = ours(**params).fit(X, y), theirs(**params).fit(X, y)
        kept = ours(dtype="float32", **params).fit(X, y)
    answer = "predict_proba" if ours is MLPClassifier else "predict"
    assert [c.dtype for c in (*a.coefs_, *a.intercepts_)] == [c.dtype for c in (*b.coefs_, *b.intercepts_)]
    assert a.coefs_[0].dtype == np.float64 and getattr(a, answer)(X).dtype == getattr(b, answer)(X).dtype
    np.testing.assert_allclose(getattr(a, answer)(X), getattr(b, answer)(X), atol=1e-6)
    assert kept.coefs_[0].dtype == np.float32 and getattr(kept, answer)(X).dtype == np.float32


@pytest.mark.parametrize(("sizes", "err", "match"), [
    ((10.0,), TypeError, r"must hold integers .* got \[10.0\]"),  # was "must be > 0, got [10.0]"
    ((True,), TypeError, r"must hold integers .* got \[True\]"),  # was a 1-unit layer, silently
    ((np.bool_(True), 3), TypeError, "must hold integers"),
    ((5, 0), ValueError, r"must be > 0, got \[5, 0\]"),  # scikit-learn's words
])  # fmt: skip
def test_hidden_layer_sizes_that_are_no_widths_are_refused_by_what_is_wrong(sizes, err, match):
    y = TARGETS["multiclass"][2]
    with pytest.raises(err, match=match):
        MLPClassifier(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)
    with pytest.raises(err):  # scikit-learn refuses each too (a float or a bool is no width)
        SkClassifier(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)


def test_the_classifier_names_its_loss_as_sklearn():
    """scikit-learn's classifier has ``loss == "log_loss"`` (not a parameter); generic code reads it."""
    assert MLPClassifier().loss == SkClassifier().loss == "log_loss"
    assert "loss" not in MLPClassifier().get_params() and "loss" not in vars(MLPClassifier())


def test_validation_rows_that_all_weigh_zero_are_refused_as_scikit_learn_does():
    """Every early-stopping score was 0/0 = NaN, none beat -inf, and fit
    handed back the untrained initial weights without a word."""
    skip_where_sklearn_fails("ZeroDivisionError for validation rows of zero weight")
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    w = np.zeros(40)
    w[:4] = 1.0  # none of these rows is held out for random_state=0
    for ours, theirs in ((MLPRegressor, SkRegressor), (MLPClassifier, SkClassifier)):
        y = X[:, 0] if ours is MLPRegressor else (X[:, 0] > 0).astype(int)
        with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
            theirs(random_state=0, max_iter=5, early_stopping=True).fit(X, y, sample_weight=w)
        with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
            ours(random_state=0, max_iter=5, early_stopping=True).fit(X, y, sample_weight=w)


def test_one_class_early_stopping_scores_every_row_right_as_its_score_does():
    """The logistic threshold compared the outputs with the all-zero target
    of a single class, where predict (and scikit-learn's score) always
    names that class: 0.5 in place of 1.0, another stop and other weights."""
    skip_where_sklearn_fails("isnan of string labels in its early-stopping score")
    X = np.random.RandomState(0).randn(40, 3)
    y = np.full(40, "only")
    fitted = [cls(random_state=0, early_stopping=True, max_iter=50, n_iter_no_change=2).fit(X, y)
              for cls in (SkClassifier, MLPClassifier)]  # fmt: skip
    assert fitted[1].validation_scores_ == fitted[0].validation_scores_ == [1.0] * fitted[0].n_iter_
    assert fitted[1].n_iter_ == fitted[0].n_iter_
    np.testing.assert_allclose(fitted[1].predict_proba(X[:3]), fitted[0].predict_proba(X[:3]), atol=1e-6)


def test_a_sparse_label_column_gets_scikit_learns_message():
    sp = pytest.importorskip("scipy.sparse", reason="scipy is not installed")
    X = np.random.RandomState(0).randn(40, 3)
    y = sp.csr_matrix(np.random.RandomState(1).randint(0, 2, (40, 1)))
    with pytest.raises(TypeError, match="Sparse data was passed for y, but dense data is required"):
        MLPClassifier(max_iter=5).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_follows_a_changed_solver_or_early_stopping():
    """scikit-learn (and xpnet before) failed with an AttributeError or
    TypeError: the records of the new settings did not exist yet."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 4), rng.randint(0, 3, 50)
    est = MLPClassifier(max_iter=3, warm_start=True, random_state=0).fit(X, y)
    est.set_params(early_stopping=True).fit(X, y)
    assert len(est.validation_scores_) == 3 and est.best_loss_ is None and len(est.loss_curve_) == 6
    est.set_params(early_stopping=False).fit(X, y)
    assert est.validation_scores_ is None and est.best_loss_ == min(est.loss_curve_[-3:])
    est = MLPClassifier(max_iter=3, warm_start=True, solver="lbfgs", random_state=0).fit(X, y)
    est.set_params(solver="adam").fit(X, y)
    assert len(est.loss_curve_) == 3 and est.best_loss_ == min(est.loss_curve_)


def test_set_params_activation_after_a_fit_changes_the_forward_pass_as_in_scikit_learn():
    """scikit-learn reads ``activation`` at every forward pass; the cached
    network kept relu, for predict and for a warm-started fit."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    est.set_params(activation="tanh")
    (W0, W1), (b0, b1) = est.coefs_, est.intercepts_
    z = np.tanh(X @ W0 + b0) @ W1 + b1
    want = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), want / want.sum(axis=1, keepdims=True), rtol=1e-6)


def test_predictions_follow_the_dtype_and_backend_set_after_a_fit_whatever_the_cache_holds():
    """set_params(dtype=...) after a fit: predict kept the cached float64
    network until coefs_ happened to be assigned, then followed the new
    dtype: two answers for one estimator, by its history."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    before = est.predict_proba(X)
    est.set_params(dtype="float32")
    now = est.predict_proba(X)
    est.coefs_ = list(est.coefs_)  # the cache rebuilt from the weights: the same answer
    np.testing.assert_array_equal(est.predict_proba(X), now)
    assert not np.array_equal(now, before)  # computed in float32
    np.testing.assert_allclose(now, before, rtol=1e-5)


def test_convergence_warning_points_at_the_callers_fit():
    """It named a line of xpnet/sklearn/_stochastic.py (a fixed stacklevel
    from the solver's depth): the report's "file:line" is the user's fit."""
    X, y = RNG.normal(size=(30, 3)), np.arange(30) % 2
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as seen:
        warnings.simplefilter("always", ConvergenceWarning)
        MLPClassifier(max_iter=2).fit(X, y)
        MLPRegressor(max_iter=2, solver="lbfgs").fit(X, y.astype(float))
    assert {w.filename for w in seen} == {__file__}


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("target", ["regression", "multilabel"])
def test_continued_fits_refuse_targets_of_another_width(solver, target):
    """warm_start and partial_fit continue the fitted output layer: y of
    another width is refused before anything changes ('lbfgs' broadcast one
    column over the outputs in silence, leaving n_outputs_ at odds with
    coefs_; scikit-learn trains on and fails in predict)."""
    ours, _, y = TARGETS[target]
    y = y[:, :2]  # two outputs; the first column alone: one (for labels, the same classes 0 and 1)
    est = ours(hidden_layer_sizes=(5,), solver=solver, warm_start=True, max_iter=3, random_state=0).fit(X, y)
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match=r"warm_start=True continues the fitted network, which has 2 output"):
        est.fit(X, y[:, 0])
    if solver != "lbfgs":
        with pytest.raises(ValueError, match=r"partial_fit continues the fitted network, which has 2 output"):
            est.partial_fit(X, y[:, 0])
    assert est.n_outputs_ == 2 and all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))
    assert est.predict(X).shape == y.shape


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_loss_attributes_are_numpy_float64_as_scikit_learns(solver, dtype):
    """loss_, loss_curve_'s entries and best_loss_ are NumPy float64, as in
    scikit-learn 1.9 with NumPy 2.4 (for float32 input too), not Python
    floats. With NumPy 2.5 scikit-learn gives float32 for float32 input."""
    y = TARGETS["multiclass"][2]
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0)
    ours, theirs = MLPClassifier(**params).fit(X.astype(dtype), y), SkClassifier(**params).fit(X.astype(dtype), y)
    for name in ("loss_", "best_loss_"):
        if hasattr(theirs, name):
            assert type(getattr(ours, name)) is np.float64 and isinstance(getattr(theirs, name), np.floating), name
    if solver != "lbfgs":
        assert {type(v) for v in ours.loss_curve_} == {np.float64}
        assert all(isinstance(v, np.floating) for v in theirs.loss_curve_)


def test_poisson_regressor_declares_the_positive_targets_its_fit_requires():
    """fit refuses negative targets with loss='poisson': the tags say so, so
    that scikit-learn's tools (estimator checks) hand it valid targets; they
    said any target, and ten of scikit-learn's checks failed on the refusal."""
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import check_fit_idempotent, check_n_features_in

    assert get_tags(MLPRegressor(loss="poisson")).target_tags.positive_only is True
    assert get_tags(MLPRegressor()).target_tags.positive_only is False
    for check in (check_n_features_in, check_fit_idempotent):
        check("MLPRegressor", MLPRegressor(loss="poisson", max_iter=5))


@pytest.mark.parametrize("as_given", [list, tuple, "series"])
def test_sample_weight_as_a_list_or_series_with_torch_inputs_under_dispatch(as_given):
    """scikit-learn moves sample_weight to X's namespace under dispatch, which
    failed for torch on anything but an array ("'list' object has no
    attribute 'strides'") in fit and score, though both take any array-like."""
    torch = pytest.importorskip("torch")
    _dispatch_usable()
    y, w = TARGETS["multiclass"][2], RNG.uniform(0.5, 2.0, 23)
    given = pytest.importorskip("pandas").Series(w) if as_given == "series" else as_given(w)
    with sklearn.config_context(array_api_dispatch=True):
        Xt, yt = torch.asarray(X), torch.asarray(y)
        clf = MLPClassifier(max_iter=5, random_state=0).fit(Xt, yt, sample_weight=given)
        weighted = clf.score(Xt, yt, sample_weight=given)
    same = MLPClassifier(max_iter=5, random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(clf.predict_proba(X), same.predict_proba(X), rtol=1e-9)
    assert weighted == pytest.approx(same.score(X, y, sample_weight=w))


@pytest.mark.parametrize("target", ["multiclass", "regression"])
@pytest.mark.parametrize("as_given", [list, "series"])
def test_score_reads_a_list_or_series_y_with_torch_inputs_under_dispatch(target, as_given):
    """fit reads y as a list or Series beside torch X under dispatch; score
    failed on it inside scikit-learn's metric, which moves y_true to the
    predictions' namespace ("'list' object has no attribute 'strides'")."""
    torch = pytest.importorskip("torch")
    _dispatch_usable()
    Estimator, _, y = TARGETS[target]
    y = y if y.ndim == 1 else y[:, 0]
    given = pytest.importorskip("pandas").Series(y) if as_given == "series" else as_given(y.tolist())
    with sklearn.config_context(array_api_dispatch=True):
        est = Estimator(max_iter=5, random_state=0).fit(torch.asarray(X), given)
        score = est.score(torch.asarray(X), given)
    assert score == pytest.approx(Estimator(max_iter=5, random_state=0).fit(X, y).score(X, y))


@pytest.mark.parametrize("incremental", [False, True])
def test_a_fit_refused_before_training_leaves_the_estimator_as_it_was(incremental):
    """An unknown backend was refused after the fit had set ``classes_`` and
    ``n_features_in_``: an unfitted estimator then failed in predict with
    AttributeError ('coefs_'), not NotFittedError, and a fitted one held the
    new classes beside the old weights (three classes, one output)."""
    from sklearn.exceptions import NotFittedError

    y2, y3 = np.arange(23) % 2, np.arange(23) % 3
    def fit(est, y):
        return est.partial_fit(X, y, classes=np.unique(y)) if incremental else est.fit(X, y)

    fresh = MLPClassifier(backend="no_such_backend", max_iter=3)
    with pytest.raises(ValueError, match="unknown backend"):
        fit(fresh, y2)
    assert not hasattr(fresh, "classes_") and not hasattr(fresh, "n_features_in_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(max_iter=3, random_state=0).fit(X, y2)
    proba = fitted.predict_proba(X)
    fitted.set_params(backend="no_such_backend", warm_start=False)
    with pytest.raises(ValueError, match="unknown backend"):
        fitted.fit(X, y3)
    fitted.set_params(backend="auto")
    assert fitted.classes_.tolist() == [0, 1] and fitted.n_outputs_ == 1
    np.testing.assert_array_equal(fitted.predict_proba(X), proba)
