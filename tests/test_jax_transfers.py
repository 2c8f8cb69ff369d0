"""No hidden transfers on JAX: with the inputs already on the device,
``predict``, ``evaluate`` and ``fit`` run under ``jax.transfer_guard("disallow")``,
which refuses every implicit host-to-device and device-to-host transfer (an
eager operation's Python number, a host array given to a program). What xpnet
must move, it moves with ``jax.device_put`` and ``jax.device_get``.

Steps that run operation by operation (``compile=False``) are left out:
there JAX's eager dispatch sends each Python number. Row weights
(``sample_weight``, ``class_weight``) are taken inside the compiled step, and
Dropout's random key words are sent to it explicitly."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env

jax = pytest.importorskip("jax", reason="jax.transfer_guard needs JAX")

import xpnet  # noqa: E402
from xpnet.schedules import CosineAnnealingLR, ExponentialLR, LinearWarmup, ReduceLROnPlateau, StepLR  # noqa: E402


def _data(n=70):
    rng = np.random.default_rng(0)
    X = jax.device_put(rng.normal(size=(n, 4)).astype(np.float32))
    labels = jax.device_put(rng.integers(0, 3, size=n).astype(np.int32))
    Y = jax.device_put(rng.normal(size=(n, 3)).astype(np.float32))
    return X, labels, jax.nn.one_hot(labels, 3, dtype=X.dtype), Y


def _net():
    return xpnet.MLP([4, 8, 3], output_activation="softmax", backend="jax", dtype="float32", seed=0)


def _fit(net, X, y, loss="cross_entropy", **options):
    return net.fit(X, y, epochs=3, batch_size=32, optimizer="adam", loss=loss, seed=0, **options)


CALLS = {
    "predict": lambda net, X, y, O, Y: net.predict(X),
    "predict in chunks": lambda net, X, y, O, Y: net.predict(X, batch_size=16),
    "evaluate labels": lambda net, X, y, O, Y: net.evaluate(X, y, loss="cross_entropy"),
    "evaluate one-hot in chunks": lambda net, X, y, O, Y: net.evaluate(X, O, loss="cross_entropy", batch_size=16),
    "fit": lambda net, X, y, O, Y: _fit(net, X, y),
    "fit validated": lambda net, X, y, O, Y: _fit(net, X, y, validation_data=(X, y), metrics=("accuracy",)),
    "fit one-hot": lambda net, X, y, O, Y: _fit(net, X, O, validation_data=(X, O)),
    "fit unshuffled": lambda net, X, y, O, Y: _fit(net, X, y, shuffle=False),
    "fit scheduled": lambda net, X, y, O, Y: _fit(net, X, y, lr_schedule=CosineAnnealingLR(3)),
    "fit on plateau": lambda net, X, y, O, Y: _fit(
        net, X, y, validation_data=(X, y), lr_schedule=ReduceLROnPlateau(patience=0),
        callbacks=[xpnet.EarlyStopping(patience=1)]),
    "fit with dropout": lambda net, X, y, O, Y: _fit(
        xpnet.Network([xpnet.Dense(4, 8, "relu"), xpnet.Dropout(0.5), xpnet.Dense(8, 3, "softmax")], backend="jax",
                      dtype="float32", seed=0), X, y),
    "fit weighted": lambda net, X, y, O, Y: _fit(net, X, y, sample_weight=np.linspace(0.5, 2.0, X.shape[0])),
    "fit weighted unshuffled": lambda net, X, y, O, Y: _fit(net, X, y, shuffle=False, class_weight="balanced"),
    # a class weighed 0: the loop checks that some row keeps a weight (one program, one explicit fetch)
    "fit with a class weighed 0": lambda net, X, y, O, Y: _fit(net, X, y, class_weight={0: 0.0, 1: 1.0, 2: 2.0}),
    "fit regression": lambda net, X, y, O, Y: _fit(
        net, X, Y, loss="mse", validation_data=(X, Y), metrics=("mse", "mae", "r2")),
    "fit validation split": lambda net, X, y, O, Y: _fit(net, X, y, validation_split=0.2, metrics=("accuracy",)),
    "fit restoring the best": lambda net, X, y, O, Y: _fit(
        net, X, y, validation_data=(X, y), callbacks=[xpnet.EarlyStopping(patience=1, restore_best=True)]),
    "fit with tol": lambda net, X, y, O, Y: _fit(net, X, y, tol=1e-3),
    "fit host-scheduled": lambda net, X, y, O, Y: [_fit(net, X, y, lr_schedule=s) for s in (
        StepLR(1), ExponentialLR(0.9), LinearWarmup(2), lambda epoch: 0.01 / (1 + epoch))],
    "fit on a metric's plateau": lambda net, X, y, O, Y: _fit(
        net, X, y, validation_data=(X, y), metrics=("accuracy",),
        lr_schedule=ReduceLROnPlateau(monitor="val_accuracy", patience=0)),
    "fit weighted on the device": lambda net, X, y, O, Y: _fit(
        net, X, y, sample_weight=jax.device_put(np.linspace(0.5, 2.0, X.shape[0], dtype=np.float32))),
    "fit warm-started": lambda net, X, y, O, Y: [_fit(net, X, y, warm_start=True) for _ in range(2)],
    "fit batch-normalised": lambda net, X, y, O, Y: _fit(
        xpnet.Network([xpnet.Dense(4, 8, "relu"), xpnet.BatchNorm(8), xpnet.Dense(8, 3, "softmax")],
                      backend="jax", dtype="float32", seed=0), X, y),
    "copies": lambda net, X, y, O, Y: [
        pickle.loads(pickle.dumps(net)).predict(X), copy.deepcopy(net).predict(X), net.to("numpy"),
        net.to("jax", dtype="float64").predict(jax.device_put(np.asarray(jax.device_get(X), np.float64)))],
}


@pytest.mark.parametrize("call", list(CALLS))
def test_no_implicit_transfer(call):
    arrays = _data()
    net = _net()
    with jax.transfer_guard("disallow"):
        CALLS[call](net, *arrays)


FILE_CALLS = {
    "checkpointed and resumed": lambda net, X, y, path: [
        _fit(net, X, y, validation_data=(X, y), callbacks=[xpnet.EarlyStopping(patience=5)],
             lr_schedule=ReduceLROnPlateau(patience=0), checkpoint=path),
        _net().fit(X, y, epochs=5, batch_size=32, optimizer="adam", loss="cross_entropy", seed=0,
                   validation_data=(X, y), callbacks=[xpnet.EarlyStopping(patience=5)],
                   lr_schedule=ReduceLROnPlateau(patience=0), resume=path)],
    "saved and loaded": lambda net, X, y, path: [
        _fit(net, X, y), net.save(path), xpnet.load(path, backend="jax").predict(X)],
    "interrupted": lambda net, X, y, path: pytest.raises(xpnet.TrainingInterrupted, _fit, net, X, y,
                                                         interrupt=_Set(), checkpoint=path),
}


class _Set:
    def is_set(self):
        return True


@pytest.mark.parametrize("call", list(FILE_CALLS))
def test_no_implicit_transfer_with_files(call, tmp_path):
    X, y = _data()[:2]
    with jax.transfer_guard("disallow"):
        FILE_CALLS[call](_net(), X, y, tmp_path / "model")


def test_the_guard_would_see_one():
    """The test above can fail: an eager operation with a Python number is refused."""
    X = _data()[0]
    with pytest.raises(Exception, match="Disallowed host-to-device transfer"), jax.transfer_guard("disallow"):
        X * 2.0


def test_the_guard_would_see_an_implicit_read_as_on_a_gpu():
    """Every test under the guard can fail on the CPU too (conftest's
    ``_reads_refused_as_on_a_gpu``): an implicit read is refused, an explicit
    one passes, and outside the guard every read passes as before."""
    from jax._src.array import ArrayImpl

    if ArrayImpl._value.fget.__name__ != "guarded":
        pytest.skip("JAX's private names moved: the CPU's guard lets every read pass")
    one = jax.device_put(np.float32(1.0))
    with jax.transfer_guard("disallow"):
        assert float(jax.device_get(one)) == 1.0
        baked_in = lambda a: jax.jit(lambda: a + 1)()  # noqa: E731
        for read in (bool, float, int, np.asarray, np.array, lambda a: a.item(), baked_in):
            with pytest.raises(Exception, match="Disallowed device-to-host transfer"):
                read(one)
    assert float(one) == 1.0 and np.asarray(one) == 1.0


def test_a_fresh_process_predicts_under_the_guard():
    """array-api-compat finds JAX's namespace with ``jnp.empty(0)`` (a transfer)
    the first time it sees a JAX array; xpnet does that outside the guard.
    In a fresh process, since this one's tests may have done it already."""
    code = (
        "import jax, numpy as np, xpnet\n"
        "X = jax.device_put(np.ones((5, 4), dtype=np.float32))\n"
        "net = xpnet.MLP([4, 3], backend='jax', dtype='float32', seed=0)\n"
        "with jax.transfer_guard('disallow'):\n"
        "    net.predict(X)\n"
    )
    root = Path(xpnet.__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], env=child_env(root), capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_epochs_shuffle_order_is_sent_without_waiting_for_its_transfer(monkeypatch):
    """The order is xpnet's own fresh host array: nobody can write to it,
    so the wait that guards a caller's rows (``_reads_host_memory``, a
    ``block_until_ready``) was one host sync per epoch for nothing."""
    from xpnet import _backend

    X, y = _data()[:2]
    net = _net()  # its initial weights come from the host generator
    waits = []
    real = _backend._reads_host_memory
    monkeypatch.setattr(_backend, "_reads_host_memory", lambda out, host: waits.append(host.shape) or real(out, host))
    _fit(net, X, y)  # X and y already on the device: only the orders come from the host
    assert waits == []


@pytest.mark.parametrize("rows", [None, 8], ids=["whole", "in chunks"])
def test_evaluate_of_weighted_losses_takes_each_ones_weights(rows):
    """A loss's arrays (``loss.weighted(w)``'s weights) are the evaluate
    program's arguments. Closed over, JAX baked them into the program (a
    read refused under the guard on a GPU), and the program, keyed by the
    loss's settings, gave every later weighting the first one's loss."""
    X, _, _, Y = _data(20)
    net = xpnet.MLP([4, 8, 3], backend="jax", dtype="float32", seed=0)
    host = net.to("numpy")
    for w in (np.ones(20, np.float32), np.linspace(0.0, 2.0, 20, dtype=np.float32)):
        weighted = xpnet.get_loss("mse").weighted(jax.device_put(w))
        with jax.transfer_guard("disallow"):
            got = net.evaluate(X, Y, loss=weighted, batch_size=rows)
        expected = host.evaluate(np.asarray(X), np.asarray(Y), loss=xpnet.get_loss("mse").weighted(w))
        assert got == pytest.approx(expected, rel=1e-5)


class _OutputWeighted(xpnet.Loss):
    """The squared error, output ``k`` weighted by ``weights[k]``: a loss that holds arrays."""

    name = "output_weighted"

    def __init__(self, weights):
        self.weights = weights

    def _value(self, xp, t, y):
        return xp.sum(self.weights * (y - t) ** 2) / y.shape[0]

    def _gradient(self, xp, t, y):
        return 2.0 * self.weights * (y - t) / y.shape[0]


class _WeightsInDict(_OutputWeighted):
    """:class:`_OutputWeighted` with its weights one level down, in a dict."""

    name = "output_weights_in_dict"

    def __init__(self, weights):
        self.parts = {"weights": weights}

    def _value(self, xp, t, y):
        return _OutputWeighted(self.parts["weights"])._value(xp, t, y)

    def _gradient(self, xp, t, y):
        return _OutputWeighted(self.parts["weights"])._gradient(xp, t, y)


@pytest.mark.parametrize("holder", [_OutputWeighted, _WeightsInDict], ids=["attribute", "in a dict"])
def test_a_losss_arrays_are_the_step_and_report_programs_arguments(holder):
    """Fits with losses of other arrays each train and report with their own:
    closed over, the step's program (keyed by the loss's settings) trained
    the second fit with the first loss's weights, on the CPU too, and the
    arrays baked in were a read refused under the guard on a GPU (held in a
    dict, they still were)."""
    X, _, _, Y = _data(20)
    for w in ([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]):
        w = np.asarray(w, np.float32)
        net = xpnet.MLP([4, 8, 3], backend="jax", dtype="float32", seed=0)
        host = net.to("numpy")
        with jax.transfer_guard("disallow"):
            history = net.fit(X, Y, loss=holder(jax.device_put(w)), optimizer="sgd", epochs=2, batch_size=8,
                              seed=0, validation_data=(X, Y))  # fmt: skip
        expected = host.fit(np.asarray(X), np.asarray(Y), loss=holder(w), optimizer="sgd", epochs=2,
                            batch_size=8, seed=0, validation_data=(np.asarray(X), np.asarray(Y)))  # fmt: skip
        np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-5)
        np.testing.assert_allclose(history.val_loss, expected.val_loss, rtol=1e-5)
