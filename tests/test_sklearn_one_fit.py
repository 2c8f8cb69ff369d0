"""xpnet.sklearn's stochastic solvers run as one ``Network.fit`` call per
``fit`` (scikit-learn's per-epoch logic is a callback inside it), and that
call takes the compiled step where ``fit`` would: the CUDA-graph step,
checked on torch's CPU with the stand-in graph of test_compile, trains as
the eager NumPy run does, L2 term, row weights and schedules included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from test_compile import _FakeGraph, _with_bridged_fake_graph  # noqa: E402

from xpnet import MLP, Callback, _graphstep  # noqa: E402
from xpnet._trainstep import TrainStep  # noqa: E402
from xpnet.network import Network  # noqa: E402
from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RNG = np.random.RandomState(0)
X = RNG.normal(size=(23, 4))
Y_CLASS = RNG.randint(0, 3, 23)
Y_REG = RNG.normal(size=(23, 2))
W = RNG.uniform(0.5, 2.0, 23)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _counting_fit(monkeypatch):
    calls = []
    real = Network.fit

    def fit(self, *args, **kwargs):
        calls.append(kwargs.get("epochs"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Network, "fit", fit)
    return calls


@pytest.mark.parametrize("early_stopping", [False, True])
def test_one_fit_call_for_all_epochs(monkeypatch, early_stopping):
    calls = _counting_fit(monkeypatch)
    clf = MLPClassifier((5,), max_iter=7, batch_size=5, random_state=0, tol=0, n_iter_no_change=99,
                        early_stopping=early_stopping, backend="numpy").fit(X, Y_CLASS)  # fmt: skip
    assert calls == [7] and clf.n_iter_ == 7 and len(clf.loss_curve_) == 7


def test_stopping_inside_the_one_call(monkeypatch):
    """tol stops the run inside fit's loop: fewer epochs than max_iter, one call."""
    from sklearn.neural_network import MLPRegressor as SkRegressor

    calls = _counting_fit(monkeypatch)
    params = dict(hidden_layer_sizes=(5,), max_iter=200, tol=10.0, n_iter_no_change=2, random_state=0)
    clf = MLPRegressor(backend="numpy", **params).fit(X, Y_REG)
    theirs = SkRegressor(**params).fit(X, Y_REG)
    assert calls == [200] and clf.n_iter_ == theirs.n_iter_ == len(clf.loss_curve_) < 200


def _graphed(monkeypatch):
    def factory(net, loss, opt, decay, ctx, state=None, compile="auto"):
        eager = TrainStep(net, loss, opt, decay, ctx, state)
        return eager if compile is False else _graphstep.GraphStep(eager, _FakeGraph)

    monkeypatch.setattr("xpnet.training.training_step", factory)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", alpha=0.3),
        dict(solver="sgd", alpha=0.1, learning_rate="invscaling", momentum=0.5),
        dict(solver="sgd", alpha=0.1, learning_rate="adaptive", tol=10.0, n_iter_no_change=1),
    ],
    ids=["adam", "sgd-invscaling", "sgd-adaptive"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("bridged", [False, True], ids=["torch", "bridged"])
def test_the_compiled_step_trains_as_eager(monkeypatch, params, weighted, bridged):
    """On torch (the CUDA graph) and bridged (CuPy's step as a torch graph
    through DLPack; NumPy stands in for CuPy here)."""
    pytest.importorskip("torch", reason="torch is not installed")
    settings = dict(hidden_layer_sizes=(5,), max_iter=6, batch_size=5, random_state=1, dtype="float64", **params)
    weights = W if weighted else None
    eager = MLPRegressor(backend="numpy", **settings).fit(X, Y_REG, sample_weight=weights)
    _with_bridged_fake_graph(monkeypatch) if bridged else _graphed(monkeypatch)
    _FakeGraph.captures = 0
    graphed = MLPRegressor(backend="numpy" if bridged else "torch", **settings).fit(X, Y_REG, sample_weight=weights)
    assert _FakeGraph.captures == 2  # a full and a short batch, the weights one more input where weighted
    if bridged:  # the loop holds the outer library's arrays, weighted or not
        assert all(type(a) is np.ndarray for a in graphed._net._params())
    for a, b in zip([*graphed.coefs_, *graphed.intercepts_], [*eager.coefs_, *eager.intercepts_]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, rtol=1e-9)


def _eager(monkeypatch):
    def factory(net, loss, opt, decay, ctx, state=None, compile="auto"):
        return TrainStep(net, loss, opt, decay, ctx, state)

    monkeypatch.setattr("xpnet.training.training_step", factory)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_a_first_minibatch_of_zero_weights_keeps_the_l2_term_in_the_compiled_step(monkeypatch, solver, library):
    """The L2 rate of a minibatch whose weights are all 0 is 0: its kernels
    were those without the term, and a step compiled there (NumPy's
    recording, the CUDA graph, JAX's program) kept them for every later
    minibatch, in silence (the weights 27% off with Adam, 127% with SGD).
    The recording's one check against the eager step ran at the second
    such minibatch and saw nothing."""
    if library == "torch":
        pytest.importorskip("torch", reason="torch is not installed")
    settings = dict(hidden_layer_sizes=(5,), max_iter=4, batch_size=1, shuffle=False, alpha=0.3, solver=solver,
                    random_state=0, dtype="float64")  # fmt: skip
    weights = np.r_[np.zeros(3), W[3:]]
    if library == "torch":
        _graphed(monkeypatch)
    compiled = MLPRegressor(backend=library, **settings).fit(X, Y_REG, sample_weight=weights)
    _eager(monkeypatch)
    eager = MLPRegressor(backend="numpy", **settings).fit(X, Y_REG, sample_weight=weights)
    tol = 0 if library == "numpy" else 1e-9
    for a, b in zip([*compiled.coefs_, *compiled.intercepts_], [*eager.coefs_, *eager.intercepts_]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 1e-3)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=tol)


@pytest.mark.parametrize(
    "params",
    [dict(solver="adam", alpha=1e-4), dict(solver="sgd", alpha=0.1), dict(solver="adam", early_stopping=True)],
    ids=["adam", "sgd", "early-stopping"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("bridged", [False, True], ids=["torch", "bridged"])
def test_a_classifiers_step_is_captured_strictly_and_trains_as_eager(monkeypatch, params, weighted, bridged):
    """scikit-learn's digits settings in small (ten classes, float64, a
    short last minibatch): the classifier's step (labels as one-hot rows,
    the epoch-share loss, the batch L2 term) holds no operation a CUDA
    capture refuses (the stand-in graph captures strictly) and trains as
    the eager NumPy run does."""
    pytest.importorskip("torch", reason="torch is not installed")
    rng = np.random.RandomState(3)
    X10, y10, w10 = rng.normal(size=(47, 6)), np.arange(47) % 10, rng.uniform(0.5, 2.0, 47)
    settings = dict(hidden_layer_sizes=(7,), max_iter=4, batch_size=10, random_state=0, dtype="float64",
                    validation_fraction=0.3, n_iter_no_change=99, **params)  # fmt: skip
    weights = w10 if weighted else None
    eager = MLPClassifier(backend="numpy", **settings).fit(X10, y10, sample_weight=weights)
    _with_bridged_fake_graph(monkeypatch) if bridged else _graphed(monkeypatch)
    _FakeGraph.captures = 0
    graphed = MLPClassifier(backend="numpy" if bridged else "torch", **settings).fit(X10, y10, sample_weight=weights)
    assert _FakeGraph.captures == 2  # a full and a short batch
    for a, b in zip([*graphed.coefs_, *graphed.intercepts_], [*eager.coefs_, *eager.intercepts_]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, rtol=1e-9)


def test_the_estimators_callback_costs_no_walk_of_the_components(monkeypatch):
    """scikit-learn's per-epoch bookkeeping changes no setting but the rate,
    so the loop does not look for changed components after each epoch (about
    270 Python calls an epoch, 1% of the digits benchmark's time); a user's
    callback still makes it look."""
    from xpnet import training

    calls = []
    real = training._Run._settings_now
    monkeypatch.setattr(training._Run, "_settings_now", lambda run: calls.append(1) or real(run))
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0).fit(X, Y_CLASS)
    assert calls == []

    class Counts(Callback):
        def on_epoch_end(self, epoch, logs):
            return False

    net = MLP([4, 5, 3], output_activation="softmax", backend="numpy", seed=0)
    net.fit(X, Y_CLASS, loss="cross_entropy", epochs=3, callbacks=[Counts()])
    assert len(calls) >= 3
