"""An epoch's minibatches as one JAX program (``jax.lax.scan``), issue 14.

On JAX each call of a program from Python is a dispatch, and the step's
scalars (Adam's corrections) were a transfer per step: an epoch of equal
minibatches, then its short last one, now runs as one program with all its
steps' scalars sent at once. These tests hold it to the eager step's
numbers wherever the loop's state changes from step to step: the
optimizer's host state, a schedule's rate, layer buffers, the
scikit-learn estimator's L2 bookkeeping, and a run resumed mid-epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import StopAfter, host

jax = pytest.importorskip("jax", reason="jax is not installed: these tests run JAX's epoch program")

import xpnet  # noqa: E402
from xpnet import _programs  # noqa: E402
from xpnet.training import TrainingInterrupted  # noqa: E402


def _data(n=45, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] - X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)


def _scans(monkeypatch) -> list[int]:
    """Record the step counts of every epoch program the loop runs."""
    counts: list[int] = []
    original = _programs._JaxStep.scan_rows

    def counting(self, params, buffers, state, rows, count, total, **kw):
        out = original(self, params, buffers, state, rows, count, total, **kw)
        if out is not None:
            counts.append(count + bool(kw.get("tail")))
        return out

    monkeypatch.setattr(_programs._JaxStep, "scan_rows", counting)
    return counts


def _pair(layers, fit_kw):
    """The same fit eager (compile=False: op by op) and compiled on JAX."""
    X, y = _data()
    out = []
    for mode in (False, True):
        net = xpnet.Network(layers(), backend="jax", dtype="float64", seed=0)
        hist = net.fit(X, y, loss="cross_entropy", compile=mode, seed=0, validation_data=(X[:9], y[:9]), **fit_kw)
        out.append((net, hist))
    return out


def _mlp():
    return [xpnet.Dense(5, 7, "tanh"), xpnet.Dense(7, 3, "softmax")]


def _with_dropout():
    return [xpnet.Dense(5, 7, "tanh"), xpnet.Dropout(0.3), xpnet.Dense(7, 3, "softmax")]


def _with_batchnorm():
    return [xpnet.Dense(5, 7), xpnet.BatchNorm(7), xpnet.ActivationLayer("relu"), xpnet.Dense(7, 3, "softmax")]


CASES = {
    "adam": (_mlp, dict(optimizer="adam", lr=0.01, epochs=4, batch_size=8)),
    "schedule": (_mlp, dict(optimizer="momentum", lr=0.1, epochs=4, batch_size=8,
                            lr_schedule={"name": "StepLR", "config": {"step_size": 1, "gamma": 0.5}})),  # fmt: skip
    "batchnorm": (_with_batchnorm, dict(optimizer="adam", lr=0.01, epochs=3, batch_size=10)),
    "no_tail": (_mlp, dict(optimizer="rmsprop", lr=0.01, epochs=3, batch_size=9)),
    # each minibatch's weights scaled to average 1 inside the program, as the eager loop scales them
    "sample_weight": (_mlp, dict(optimizer="adam", lr=0.01, epochs=3, batch_size=8,
                                 sample_weight=np.linspace(0.0, 3.0, 45) ** 2)),  # fmt: skip
    # each step's Dropout masks from its own key words, scanned with its scalars
    "dropout": (_with_dropout, dict(optimizer="adam", lr=0.01, epochs=3, batch_size=8)),
    "class_weight": (_mlp, dict(optimizer="sgd", lr=0.1, epochs=3, batch_size=8, shuffle=False,
                                class_weight={0: 2.0, 2: 0.5})),  # fmt: skip
}


@pytest.mark.parametrize("case", CASES)
def test_an_epoch_program_trains_as_the_eager_steps_do(case, monkeypatch):
    layers, fit_kw = CASES[case]
    scans = _scans(monkeypatch)
    (eager, h0), (compiled, h1) = _pair(layers, fit_kw)
    steps = -(-45 // fit_kw["batch_size"])
    assert scans == [steps] * fit_kw["epochs"], "each epoch ran as one program"
    for a, b in zip([*compiled._params(), *compiled._buffers()], [*eager._params(), *eager._buffers()]):
        # atol: the bias before BatchNorm has no gradient but rounding (about 1e-10 either way)
        np.testing.assert_allclose(host(a), host(b), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h1.loss, h0.loss, rtol=1e-9)
    np.testing.assert_allclose(h1.val_loss, h0.val_loss, rtol=1e-9)
    assert h1.lr == h0.lr


def test_no_epoch_program_for_epochs_of_one_minibatch(monkeypatch):
    scans = _scans(monkeypatch)
    X, y = _data()
    net = xpnet.MLP([5, 7, 3], "tanh", "softmax", backend="jax", dtype="float64", seed=0)
    net.fit(X, y, loss="cross_entropy", epochs=2)
    assert scans == []


def test_with_an_interrupt_an_epoch_runs_in_programs_of_at_most_64_steps_and_resumes_mid_epoch(tmp_path, monkeypatch):
    """`xpnet train` always passes an interrupt (its Ctrl-C): the loop looks
    at it after every 64 steps (75 steps per epoch here: 64, then 11). Set
    at the third look, in epoch 2 after its step 64, the run stops there;
    resumed, the epoch's remaining steps run as one program from the saved
    row on, and the run ends where one that never stopped ends."""
    scans = _scans(monkeypatch)
    X, y = _data(150)
    kw = dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, batch_size=2, seed=2)
    make = lambda seed=0: xpnet.MLP([5, 7, 3], "tanh", "softmax", backend="jax", dtype="float64",  # noqa: E731
                                    seed=seed)  # fmt: skip
    ref = make()
    h_ref = ref.fit(X, y, **kw)
    assert scans == [75] * 3
    ck = tmp_path / "ck.safetensors"
    scans.clear()
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 64"):
        make().fit(X, y, checkpoint=ck, interrupt=StopAfter(2), **kw)
    assert scans == [64, 11, 64]
    resumed = make(seed=5)
    h = resumed.fit(X, y, resume=ck, **kw)
    assert scans == [64, 11, 64, 11, 75]  # the rest of epoch 2, then epoch 3 whole (no interrupt)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-12)
    for a, b in zip(resumed._params(), ref._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_the_scikit_learn_estimator_on_jax_trains_as_on_numpy():
    """Adam with scikit-learn's L2 term (its per-batch rates and the epoch's
    summed squares ride in the program's scalars): JAX's epoch programs
    give NumPy's loss curve and weights."""
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from xpnet.sklearn import MLPClassifier

    X, y = _data(230)
    fits = [MLPClassifier(hidden_layer_sizes=(9,), alpha=1e-2, max_iter=6, tol=0.0, random_state=0, backend=b).fit(X, y)
            for b in ("numpy", "jax")]  # fmt: skip
    np.testing.assert_allclose(fits[1].loss_curve_, fits[0].loss_curve_, rtol=1e-10)
    for a, b in zip(fits[1].coefs_, fits[0].coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_component_that_reads_values_on_the_host_falls_back_to_steps(monkeypatch):
    """The epoch program cannot trace a ``float()`` of an array: the fit runs
    op by op, with the numbers NumPy gives."""

    class HostReading(xpnet.Activation):  # unregistered, a class of its own: a program key of its own
        name = "host_reading_in_an_epoch_program"

        def _forward(self, xp, v):
            return v / max(float(xp.max(v)), 1.0)  # a value on the host: no program can hold this

        def _derivative(self, xp, v):
            return xp.ones_like(v) / max(float(xp.max(v)), 1.0)

    X, y = _data()
    fits = []
    for backend in ("numpy", "jax"):
        net = xpnet.Network([xpnet.Dense(5, 3, HostReading())], backend=backend, dtype="float64", seed=0)
        fits.append(net.fit(X, np.eye(3)[y], epochs=2, batch_size=8, seed=0))
    np.testing.assert_allclose(fits[1].loss, fits[0].loss, rtol=1e-10)


class _LateDouble(xpnet.SGD):
    """Two SGD updates a step from the third step on: 3 scalars, then 6."""

    compilable = True
    name = "late_double_epoch_program"

    def init_state(self, params):
        return {"t": 0, **super().init_state(params)}

    def step(self, params, grads, state, decay=None):
        t = state["t"] + 1
        new, inner = super().step(params, grads, {k: v for k, v in state.items() if k != "t"}, decay)
        if t > 2:
            new, inner = super().step(new, grads, inner, decay)
        return new, {**inner, "t": t}


def test_an_optimizer_whose_scalars_change_in_number_trains_step_by_step():
    """No table holds a varying number of scalars per step: JAX runs it step
    by step, as it did, with NumPy's numbers."""
    X = np.random.default_rng(0).standard_normal((64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    hists = [xpnet.Network([xpnet.Dense(3, 1)], backend=b, dtype="float64", seed=0).fit(
        X, y, loss="mse", optimizer=_LateDouble(lr=0.05), epochs=3, batch_size=16, compile=c, seed=0)
        for b, c in (("numpy", False), ("jax", "auto"))]  # fmt: skip
    np.testing.assert_allclose(hists[1].loss, hists[0].loss, rtol=1e-12)


def test_after_a_step_that_cannot_be_a_program_the_loop_stops_asking(monkeypatch):
    """A loss that reads a value on the host: the epoch program fails to
    trace once, and the loop runs step by step without asking again (it
    asked before every step, walking the rest of the epoch each time)."""

    class HostReadingMSE(xpnet.losses.MSE):
        name = "host_reading_mse_epoch_program"

        def _value(self, xp, t, y):
            float(xp.max(y))  # a value on the host
            return super()._value(xp, t, y)

    asked = []
    real = xpnet.training._Run._scan
    monkeypatch.setattr(xpnet.training._Run, "_scan", lambda self, *a: asked.append(1) or real(self, *a))
    X = np.random.default_rng(1).standard_normal((40, 3))
    net = xpnet.Network([xpnet.Dense(3, 1)], backend="jax", dtype="float64", seed=0)
    h = net.fit(X, X[:, :1], loss=HostReadingMSE(), epochs=3, batch_size=2)
    assert len(h.loss) == 3 and len(asked) == 1


def test_with_an_interrupt_a_program_holds_at_most_64_steps_the_short_last_one_too(monkeypatch):
    scans = _scans(monkeypatch)
    X, y = _data(129)  # batches of 2: 64 full, then one of 1 row
    net = xpnet.MLP([5, 7, 3], "tanh", "softmax", backend="jax", dtype="float64", seed=0)
    net.fit(X, y, loss="cross_entropy", epochs=1, batch_size=2, interrupt=StopAfter(10**6))
    assert scans == [64]  # the short last batch alone after it
    scans.clear()
    net.fit(X, y, loss="cross_entropy", epochs=1, batch_size=2)
    assert scans == [65]


def test_validation_rows_beyond_one_chunk_are_sliced_inside_the_program(monkeypatch):
    """The report's program predicts the validation rows in chunks; row_range
    sent each chunk's start to the array's sharding, which a tracer has not
    (AttributeError in every fit whose validation rows passed one chunk)."""
    monkeypatch.setattr(xpnet.network, "CHUNK_VALUES", 8 * 16)
    monkeypatch.setattr(xpnet.network, "GPU_CHUNK_FACTOR", 1)  # 8 rows a chunk on a GPU too
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), rng.integers(0, 3, 60)
    net = xpnet.MLP([2, 16, 3], "tanh", "softmax", backend="jax", seed=0)
    hist = net.fit(X[:20], y[:20], loss="cross_entropy", epochs=2, batch_size=8, validation_data=(X[20:], y[20:]),
                   metrics=("accuracy",))  # fmt: skip
    assert net.chunk_rows() == 8
    assert hist.val_loss[-1] == pytest.approx(net.evaluate(X[20:], y[20:], "cross_entropy"), rel=1e-6)
    assert hist.metrics["val_accuracy"][-1] == pytest.approx(np.mean(host(net.predict(X[20:])).argmax(1) == y[20:]))
