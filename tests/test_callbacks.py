"""Callbacks, EarlyStopping and validation_split: the hook's contract, early
stopping by Keras's rule against the figures of an uninterrupted run, the
best epoch's weights restored, the held-out share seeded and stratified,
and all of it through checkpoints and resume, bit-identical."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
from helpers import StopAfter, host

import xpnet
from xpnet.preprocessing import split_indices


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    labels = ((X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)) % 3
    return X + 0.3 * rng.normal(size=X.shape), labels


def make(backend="numpy", seed=0):
    return xpnet.MLP([2, 12, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=seed)


KW = dict(loss="cross_entropy", optimizer="adam", lr=0.05, batch_size=8, seed=2)


def keras_stop(figures, patience, min_delta=0.0, mode="min"):
    """(epochs run, best epoch) by Keras's EarlyStopping rule, written out."""
    best, best_epoch, wait = None, None, 0
    for epoch, v in enumerate(figures):
        better = best is None or (v < best - min_delta if mode == "min" else v > best + min_delta)
        if better:  # Keras 3: an improving epoch returns at once
            best, best_epoch, wait = v, epoch, 0
            continue
        wait += 1
        if wait >= patience and epoch > 0:
            return epoch + 1, best_epoch
    return len(figures), best_epoch


@pytest.mark.parametrize(("monitor", "patience", "min_delta"), [("val_loss", 3, 0.0), ("val_loss", 2, 0.01),
                                                                  ("val_accuracy", 4, 0.0), ("loss", 2, 0.05)])
def test_early_stopping_follows_the_rule_and_restores_the_best(backend, monitor, patience, min_delta):
    X, y = blobs()
    Xv, yv = blobs(30, seed=1)
    extra = dict(validation_data=(Xv, yv), metrics=("accuracy",))
    full = make(backend).fit(X, y, epochs=40, **KW, **extra)
    figures = {"val_loss": full.val_loss, "val_accuracy": full.metrics["val_accuracy"], "loss": full.loss}[monitor]
    mode = "max" if "accuracy" in monitor else "min"
    ran, best = keras_stop(figures, patience, min_delta, mode)
    assert ran < 40, "the case must stop early to test anything"
    net = make(backend)
    stopper = xpnet.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta)
    h = net.fit(X, y, epochs=40, callbacks=[stopper], **KW, **extra)
    assert h.stopped_early and len(h.loss) == ran and h.best_epoch == best == stopper.best_epoch
    np.testing.assert_allclose(h.loss, full.loss[:ran], rtol=1e-12)
    twin = make(backend)
    twin.fit(X, y, epochs=best + 1, **KW, **extra)
    for p, q in zip(net._params(), twin._params()):
        np.testing.assert_array_equal(host(p), host(q))  # the best epoch's weights


def test_without_restore_best_the_last_weights_stay():
    X, y = blobs()
    net = make()
    h = net.fit(X, y, epochs=40, validation_split=0.3, callbacks=[xpnet.EarlyStopping(patience=2, restore_best=False)],
                **KW)  # fmt: skip
    assert h.stopped_early and h.best_epoch < len(h.loss) - 1
    twin = make()
    twin.fit(X, y, epochs=len(h.loss), validation_split=0.3, **KW)
    for p, q in zip(net._params(), twin._params()):
        np.testing.assert_array_equal(p, q)


def test_restore_best_also_when_the_epochs_run_out():
    X, y = blobs()
    net = make()
    h = net.fit(X, y, epochs=12, validation_split=0.3, callbacks=[xpnet.EarlyStopping(patience=50)], **KW)
    assert not h.stopped_early and len(h.loss) == 12
    assert h.best_epoch == int(np.argmin(h.val_loss))
    twin = make()
    twin.fit(X, y, epochs=h.best_epoch + 1, validation_split=0.3, **KW)
    for p, q in zip(net._params(), twin._params()):
        np.testing.assert_array_equal(p, q)


def test_best_epoch_without_early_stopping():
    X, y = blobs()
    h = make().fit(X, y, epochs=6, **KW)
    assert h.best_epoch == int(np.argmin(h.loss))
    h = make().fit(X, y, epochs=30, validation_split=0.3, **KW)
    assert h.best_epoch == int(np.argmin(h.val_loss))


class _FirstValidationNaN(xpnet.losses.MSE):
    """MSE whose first value on the 10 validation rows is NaN (an overflow there)."""

    name = "first_validation_nan"

    def __init__(self):
        self.seen = 0

    def _value(self, xp, t, y):
        v = super()._value(xp, t, y)
        if t.shape[0] == 10:
            self.seen += 1
            if self.seen == 1:
                return v * float("nan")
        return v


def test_best_epoch_passes_over_a_nan_validation_loss():
    """A NaN val_loss (the training loss finite: no divergence) is no best
    epoch: it compared greater than nothing, so the first epoch's NaN stayed
    History.best_epoch while every later epoch improved; after a resume too."""
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(40, 3)), rng.normal(size=(10, 3))
    y, yv = X @ np.ones((3, 1)), Xv @ np.ones((3, 1))
    net = xpnet.MLP([3, 4, 1], backend="numpy", seed=0)
    h = net.fit(X, y, loss=_FirstValidationNaN(), optimizer="adam", lr=0.05, epochs=5, validation_data=(Xv, yv),
                compile=False)  # fmt: skip
    assert np.isnan(h.val_loss[0]) and np.all(np.diff(h.val_loss[1:]) < 0)
    assert h.best_epoch == 4
    assert xpnet.training._lowest(xpnet.History(loss=[1.0, 2.0], val_loss=[float("nan"), 3.0])) == (1, 3.0)
    assert xpnet.training._lowest(xpnet.History(loss=[1.0], val_loss=[float("nan")])) is None


def test_a_class_whose_hooks_are_static_is_still_a_callback():
    """Only a class whose hooks need an instance (EarlyStopping) is refused
    for its instance; one with static hooks ran as a callback and still does."""
    seen = []

    class Static:
        @staticmethod
        def on_epoch_end(epoch, logs):
            seen.append(epoch)

    X, y = blobs()
    make().fit(X, y, epochs=2, callbacks=[Static], **KW)
    assert seen == [0, 1]


def test_a_callback_sees_every_epoch_and_can_stop():
    class Recorder:  # duck-typed: no base class needed
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, epoch, logs):
            self.seen.append((epoch, dict(logs)))
            return epoch == 4

    class Counter(xpnet.Callback):
        began = ended = 0

        def on_train_begin(self, network):
            self.began += 1
            self.network = network

        def on_train_end(self, history):
            self.ended += 1

    X, y = blobs()
    rec, count = Recorder(), Counter()
    net = make()
    h = net.fit(X, y, epochs=20, validation_split=0.2, metrics=("accuracy",), callbacks=[rec, count], **KW)
    assert len(h.loss) == 5 and h.stopped_early
    assert [e for e, _ in rec.seen] == [0, 1, 2, 3, 4]
    assert set(rec.seen[0][1]) == {"loss", "val_loss", "val_accuracy", "lr"}
    assert [logs["loss"] for _, logs in rec.seen] == h.loss and rec.seen[2][1]["lr"] == 0.05
    assert count.began == count.ended == 1 and count.network is net


def test_tol_keeps_its_meaning_with_callbacks():
    X, y = blobs()
    h_tol = make().fit(X, y, epochs=40, tol=0.01, **KW)
    h_both = make().fit(X, y, epochs=40, tol=0.01, callbacks=[xpnet.EarlyStopping(monitor="loss", patience=100)], **KW)
    assert h_tol.stopped_early and h_both.loss == h_tol.loss


@pytest.mark.parametrize(("kw", "err", "match"), [
    (dict(callbacks=[xpnet.EarlyStopping()]), ValueError, "val_loss.*validation"),
    (dict(callbacks=[xpnet.EarlyStopping(monitor="val_accuracy")], validation_split=0.2), ValueError, "val_accuracy"),
    (dict(callbacks=[object()]), TypeError, "on_epoch_end"),
    (dict(callbacks=xpnet.EarlyStopping()), TypeError, "list"),
    (dict(callbacks=[xpnet.EarlyStopping]), TypeError, r"the class EarlyStopping, not an instance.*EarlyStopping\(\)"),
    (dict(validation_split=1.0), ValueError, "validation_split"),
    (dict(validation_split=0), ValueError, "validation_split"),
    (dict(validation_split="0.1"), ValueError, "validation_split"),
    (dict(validation_split=0.2, validation_data=(np.zeros((2, 2)), [0, 1])), ValueError, "not both"),
    (dict(validation_split=0.001), ValueError, "validation_split=0.001"),
])  # fmt: skip
def test_bad_options_are_refused(kw, err, match):
    X, y = blobs()
    with pytest.raises(err, match=match):
        make().fit(X, y, epochs=2, **{**KW, **kw})


@pytest.mark.parametrize(("make_stopper", "err"), [
    (lambda: xpnet.EarlyStopping(patience=-1), ValueError),
    (lambda: xpnet.EarlyStopping(patience=2.5), ValueError),
    (lambda: xpnet.EarlyStopping(min_delta=-0.1), ValueError),
    (lambda: xpnet.EarlyStopping(monitor=3), TypeError),
    (lambda: xpnet.EarlyStopping(restore_best="yes"), TypeError),
    (lambda: xpnet.EarlyStopping(mode="down"), ValueError),
])  # fmt: skip
def test_bad_early_stopping_settings(make_stopper, err):
    with pytest.raises(err):
        make_stopper()


# -- validation_split ------------------------------------------------------------


def test_validation_split_is_the_seeded_stratified_share(backend):
    """It equals passing the rows that ``split_indices`` holds out (seeded,
    stratified by class) as validation_data, on every backend."""
    X, y = blobs()
    net = make(backend)
    h = net.fit(X, y, epochs=5, validation_split=0.25, metrics=("accuracy",), **KW)
    keep, held = split_indices(len(y), 0.25, KW["seed"], y)
    twin = make(backend)
    h2 = twin.fit(X[keep], y[keep], epochs=5, validation_data=(X[held], y[held]), metrics=("accuracy",), **KW)
    np.testing.assert_allclose(h.loss, h2.loss, rtol=1e-12)
    np.testing.assert_allclose(h.val_loss, h2.val_loss, rtol=1e-12)
    counts = np.bincount(y[held], minlength=3)
    np.testing.assert_array_equal(counts, np.round(0.25 * np.bincount(y)))


def test_validation_split_of_device_arrays_and_one_hot_targets():
    b = xpnet.get_backend("array_api_strict", "device1")
    X, y = blobs()
    h_host = make().fit(X, y, epochs=3, validation_split=0.2, **KW)
    net = make(b)
    h = net.fit(b.asarray(X, "float64"), b.asarray(np.eye(3)[y], "float64"), epochs=3, validation_split=0.2, **KW)
    np.testing.assert_allclose(h.val_loss, h_host.val_loss, rtol=1e-12)


def test_validation_split_stratifies_binary_targets():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 2))
    t = (np.arange(50) < 10).astype(float)  # 10 positives, 40 negatives
    kw = dict(loss="binary_cross_entropy", epochs=2, seed=4)
    h = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", seed=0).fit(X, t, validation_split=0.2, **kw)
    keep, held = split_indices(50, 0.2, 4, t.astype(int))
    assert t[held].sum() == 2 and len(held) == 10
    h2 = xpnet.MLP([2, 1], output_activation="sigmoid", backend="numpy", seed=0).fit(
        X[keep], t[keep], validation_data=(X[held], t[held]), **kw
    )
    assert h.val_loss == h2.val_loss and h.loss == h2.loss


def test_validation_split_of_many_small_classes_holds_out_the_share_asked():
    """Each class's share was rounded on its own: 300 rows in 100 classes of
    3 held out none at 0.1 (refused: "leaves 300 to train on and 0 to
    validate") and 200, two thirds, at 0.5. The share of all rows is held
    out, still stratified, and no class gives all its rows."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 2)), np.repeat(np.arange(100), 3)
    for share, rows in ((0.1, 30), (0.2, 60), (0.5, 150), (0.9, 200)):
        keep, held = split_indices(300, share, 0, y)
        assert len(held) == rows and len(keep) == 300 - rows
        assert np.bincount(y[held], minlength=100).max() - np.bincount(y[held], minlength=100).min() <= 1
        assert np.bincount(y[keep], minlength=100).min() >= 1
    singletons = np.r_[np.arange(5), np.full(5, 5)]  # five classes of one row keep theirs; the sixth gives its share
    assert np.bincount(singletons[split_indices(10, 0.5, 0, singletons)[1]], minlength=6).tolist() == [0] * 5 + [2]
    kw = dict(loss="cross_entropy", epochs=2, seed=0)
    h = xpnet.MLP([2, 100], output_activation="softmax", backend="numpy", seed=0).fit(X, y, validation_split=0.1, **kw)
    keep, held = split_indices(300, 0.1, 0, y)
    twin = xpnet.MLP([2, 100], output_activation="softmax", backend="numpy", seed=0)
    assert h.val_loss == twin.fit(X[keep], y[keep], validation_data=(X[held], y[held]), **kw).val_loss


def test_seed_none_split_is_kept_in_the_checkpoint(tmp_path):
    """Without a seed the split comes from fresh entropy; a resumed run
    takes the checkpoint's key and so the same rows."""
    X, y = blobs()
    ck = tmp_path / "ck.safetensors"
    kw = {**KW, "seed": None}
    net = make()
    net.fit(X, y, epochs=2, validation_split=0.3, checkpoint=ck, **kw)
    a = make()
    h_a = a.fit(X, y, epochs=4, validation_split=0.3, resume=ck, **kw)
    b = make()
    h_b = b.fit(X, y, epochs=4, validation_split=0.3, resume=ck, **kw)
    assert h_a.val_loss == h_b.val_loss and h_a.loss == h_b.loss


# -- checkpoints and resume ------------------------------------------------------


@pytest.mark.parametrize("stop_after", [3, 8, 17, 22])
def test_early_stopping_resumes_bit_identical(tmp_path, stop_after):
    """Interrupted anywhere (mid-epoch or at an epoch's end) and resumed, a
    run with EarlyStopping(restore_best), a schedule and a validation split
    ends exactly as the uninterrupted one: History, best epoch, weights."""
    X, y = blobs()

    def kw():
        return dict(**KW, validation_split=0.3, metrics=("accuracy",),
                    callbacks=[xpnet.EarlyStopping(monitor="val_loss", patience=3)],
                    lr_schedule=xpnet.schedules.ReduceLROnPlateau(factor=0.5, patience=1))  # fmt: skip

    ref = make()
    h_ref = ref.fit(X, y, epochs=40, **kw())
    assert h_ref.stopped_early
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(xpnet.TrainingInterrupted):
        make().fit(X, y, epochs=40, checkpoint=ck, interrupt=StopAfter(stop_after), **kw())
    net = make(seed=9)
    h = net.fit(X, y, epochs=40, resume=ck, checkpoint=ck, **kw())
    assert h == h_ref
    for p, q in zip(net._params(), ref._params()):
        np.testing.assert_array_equal(p, q)
    again = make(seed=9)  # resuming the finished run: nothing runs, same end
    assert again.fit(X, y, epochs=40, resume=ck, **kw()) == h_ref
    for p, q in zip(again._params(), ref._params()):
        np.testing.assert_array_equal(p, q)


def test_patience_zero_never_stops_an_improving_run():
    """Keras 3's rule: an epoch that improves returns at once; patience=0
    stops at the first epoch that does not (it stopped after epoch 2 of a run
    still improving)."""
    stopper = xpnet.EarlyStopping(monitor="loss", patience=0)
    stopper.on_train_begin(types.SimpleNamespace(_params=list, _buffers=list))
    assert [stopper.on_epoch_end(e, {"loss": v}) for e, v in enumerate([3.0, 2.0, 1.0])] == [False, False, False]
    assert stopper.on_epoch_end(3, {"loss": 1.5}) is True


def test_history_logs_of_an_epoch_not_recorded_says_which_exist():
    from xpnet.training import History

    h = History(loss=[1.0, 0.5], lr=[0.1, 0.1])
    assert h.logs(-1) == h.logs(1) == {"loss": 0.5, "lr": 0.1} and h.logs(np.int64(0))["loss"] == 1.0
    with pytest.raises(IndexError, match=r"one of the 2 recorded \(0 to 1"):
        h.logs(5)


def test_auto_mode_maximises_a_registered_metric_that_says_higher_is_better(monkeypatch):
    """A custom F1 score was minimised: the best epoch kept was the worst."""
    from xpnet.metrics import METRICS
    from xpnet.schedules import ReduceLROnPlateau

    class F1(xpnet.Metric):
        name, greater_is_better = "test_callbacks_f1", True

    class Error(xpnet.Metric):
        name, greater_is_better = "test_callbacks_error_rate", False

    for cls in (F1, Error):
        monkeypatch.setitem(METRICS._classes, cls.name, cls)  # registered for this test only
    assert xpnet.EarlyStopping(monitor="val_test_callbacks_f1").mode == "max"
    assert ReduceLROnPlateau(monitor="val_test_callbacks_f1").mode == "max"
    assert xpnet.EarlyStopping(monitor="val_test_callbacks_error_rate").mode == "min"
    assert xpnet.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert xpnet.EarlyStopping(monitor="val_loss").mode == "min"
    assert xpnet.EarlyStopping(monitor="val_test_callbacks_f1", mode="min").mode == "min"


def test_what_a_callback_changes_is_what_the_next_epoch_trains_with_and_history_says(backend):
    """New weights set by a callback were overwritten by the loop's own,
    and a rate it changed trained but History kept the first one."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    opt = xpnet.SGD(lr=1e-6)

    class Edit(xpnet.Callback):
        def on_train_begin(self, network):
            self.network = network

        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                self.network.layers[0].weights = np.zeros((3, 1))
                opt.lr = 2e-6

    net = xpnet.Network([xpnet.Dense(3, 1)], backend=backend, dtype="float32", seed=0)
    h = net.fit(X, y, optimizer=opt, epochs=2, batch_size=5, callbacks=[Edit()])
    assert h.lr == [1e-6, 2e-6]
    assert np.abs(host(net.layers[0].weights)).max() < 1e-3  # one epoch from zero at 2e-6


class _Temperature(xpnet.Layer):
    """``X / T``: a setting that lives in the layer's config, read each step."""

    name = "TestTemperature"

    def __init__(self, T=1.0):
        super().__init__()
        self.T = float(T)

    def config(self):
        return {"T": self.T}

    def forward(self, xp, params, buffers, X, ctx):
        return X / self.T, None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return (dY / self.T if need_dx else None), []


class _Anneal(xpnet.Callback):
    """Changes a custom layer's and a built-in BatchNorm's settings after every epoch."""

    def on_train_begin(self, network):
        self.net = network

    def on_epoch_end(self, epoch, logs):
        self.net.layers[1].T = 2.0 * (epoch + 2)
        self.net.layers[3].momentum = 0.5


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_settings_a_callback_changes_between_epochs_reach_compiled_steps(backend, compile, monkeypatch):
    """A compiled step (jax.jit, NumPy's recorded tape, a CUDA graph) bakes
    in the layers' settings: one that a callback changed after epoch 1 was
    ignored (JAX's default trained as if it never changed, silently). The
    step is built again, so every mode gives the eager NumPy figures."""
    monkeypatch.setitem(xpnet.layers.base.LAYERS._classes, _Temperature.name.lower(), _Temperature)
    X, y = blobs(48)

    def run(backend, compile):
        net = xpnet.Network([xpnet.Dense(2, 8), _Temperature(), "tanh", xpnet.BatchNorm(8),
                             xpnet.Dense(8, 3, "softmax")], backend=backend, dtype="float64", seed=0)  # fmt: skip
        h = net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.05, epochs=4, batch_size=16, seed=1,
                    compile=compile, callbacks=[_Anneal()])  # fmt: skip
        return h.loss, host(net.layers[3].buffers["running_mean"])

    want_loss, want_mean = run("numpy", False)
    loss, mean = run(backend, compile)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-9, atol=1e-12)


class _Gain(xpnet.Layer):
    """``X * gain``, its gain a plain setting kept outside its config."""

    name = "TestGain"

    def __init__(self):
        super().__init__()
        self.gain = 1.0

    def config(self):
        return {}

    def forward(self, xp, params, buffers, X, ctx):
        return X * self.gain, None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return (dY * self.gain if need_dx else None), []


class _Louder(xpnet.Callback):
    def on_train_begin(self, network):
        self.net = network

    def on_epoch_end(self, epoch, logs):
        self.net.layers[1].gain = 3.0


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_a_plain_setting_outside_the_config_a_callback_changes_reaches_compiled_steps(backend, compile, monkeypatch):
    """A custom layer's plain setting kept outside its config names its
    programs (README), but a callback that changed it between epochs was
    followed only by the eager step: jax.jit and NumPy's recording trained on
    with the old gain, silently."""
    monkeypatch.setitem(xpnet.layers.base.LAYERS._classes, _Gain.name.lower(), _Gain)
    X, y = blobs(48)

    def run(backend, compile):
        net = xpnet.Network([xpnet.Dense(2, 8), _Gain(), "tanh", xpnet.Dense(8, 3, "softmax")], backend=backend,
                            dtype="float64", seed=0)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a backend that cannot compile says so
            return net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.05, epochs=3, batch_size=16, seed=1,
                           compile=compile, callbacks=[_Louder()]).loss  # fmt: skip

    np.testing.assert_allclose(run(backend, compile), run("numpy", False), rtol=1e-9, atol=1e-12)


class _Masked(xpnet.Layer):
    """``X * mask``, its mask an array it holds (not a parameter)."""

    name = "TestMasked"

    def __init__(self, mask=None):
        super().__init__()
        self.mask = mask

    def config(self):
        return {}

    def forward(self, xp, params, buffers, X, ctx):
        return X * self.mask, None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return (dY * self.mask if need_dx else None), []


class _Remask(xpnet.Callback):
    def on_train_begin(self, network):
        self.net = network

    def on_epoch_end(self, epoch, logs):
        layer = self.net.layers[1]
        layer.mask = self.net.backend.asarray(np.array([1.0, 0.0, 2.0, 0.0] * 2), dtype=self.net.dtype)


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_an_array_a_callback_gives_a_layer_between_epochs_reaches_compiled_steps(backend, compile, monkeypatch):
    """A layer's held array names its programs (README), as the loss's
    arrays are followed, but a mask a callback gave the layer between epochs
    reached only the eager step: jax.jit and NumPy's recording trained on
    with the first mask, silently."""
    monkeypatch.setitem(xpnet.layers.base.LAYERS._classes, _Masked.name.lower(), _Masked)
    X, y = blobs(48)

    def run(backend_name, compile):
        ones = xpnet.get_backend(backend_name).asarray(np.ones(8), dtype="float64")
        net = xpnet.Network([xpnet.Dense(2, 8), _Masked(ones), "tanh", xpnet.Dense(8, 3, "softmax")],
                            backend=backend_name, dtype="float64", seed=0)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a backend that cannot compile says so
            return net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.05, epochs=3, batch_size=16, seed=1,
                           compile=compile, callbacks=[_Remask()]).loss  # fmt: skip

    np.testing.assert_allclose(run(backend.name, compile), run("numpy", False), rtol=1e-9, atol=1e-12)


class _Above(xpnet.Metric):
    """The share of outputs above ``threshold``, a setting a callback may change."""

    name = "test_callbacks_above"
    compilable = True

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def config(self):
        return {"threshold": self.threshold}

    def __call__(self, y_true, y_pred):
        from array_api_compat import array_namespace

        xp = array_namespace(y_pred)
        return xp.mean(xp.astype(y_pred > self.threshold, y_pred.dtype))


def test_a_metric_setting_a_callback_changes_between_epochs_reaches_the_compiled_report(backend):
    """A metric's threshold a callback lowered after epoch 1 was followed by
    the eager report only: JAX's report program, traced with the first
    threshold, reported the old figure for every later epoch, silently."""
    X, y = blobs(48)
    metric = _Above()

    class Lower(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            metric.threshold = 0.0

    def run(backend, compile):
        metric.threshold = 0.5
        net = xpnet.Network([xpnet.Dense(2, 4, "tanh"), xpnet.Dense(4, 1)], backend=backend, dtype="float64", seed=0)
        h = net.fit(X, y[:, None] * 1.0, epochs=3, batch_size=16, seed=1, compile=compile, callbacks=[Lower()],
                    validation_data=(X, y[:, None] * 1.0), metrics=(metric,))  # fmt: skip
        return h.metrics[f"val_{metric.name}"]

    np.testing.assert_allclose(run(backend, "auto"), run("numpy", False), rtol=1e-9, atol=1e-12)


class _Narrower(xpnet.Callback):
    """Sets the loss's Huber delta after epoch 1."""

    def __init__(self, loss):
        self.loss = loss

    def on_epoch_end(self, epoch, logs):
        self.loss.delta = 0.1


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_a_loss_setting_a_callback_changes_between_epochs_reaches_compiled_steps(backend, compile):
    """Only the layers' and the optimizer's settings were followed: a Huber
    delta a callback narrowed after epoch 1 was ignored by a compiled step
    (JAX's program, silently), and NumPy's recording found it out only at
    its short minibatch's check, after the epoch's other steps had kept the
    old delta. The step is built again, so every mode gives the eager
    NumPy figures."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(37, 4)), 3 * rng.normal(size=(37, 2))

    def run(backend, compile):
        net = xpnet.MLP([4, 8, 2], "tanh", backend=backend, dtype="float64", seed=0)
        loss = xpnet.losses.Huber(1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # compile=True: nothing it cannot record
            h = net.fit(X, T, loss=loss, optimizer="adam", lr=0.05, epochs=3, batch_size=8, seed=1, compile=compile,
                        callbacks=[_Narrower(loss)])  # fmt: skip
        return h.loss, [host(p) for p in net._params()]

    want_loss, want = run("numpy", False)
    loss, got = run(backend, compile)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-9, atol=1e-12)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


class _SwitchOn(xpnet.Callback):
    """Sets the optimizer's settings after epoch 1."""

    def __init__(self, opt, **settings):
        self.opt, self.settings = opt, settings

    def on_epoch_end(self, epoch, logs):
        for name, value in self.settings.items():
            setattr(self.opt, name, value)


@pytest.mark.parametrize("compile", [False, "auto"])
@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"weight_decay": 0.5}, {"momentum": 0.9, "nesterov": True}])
def test_an_optimizer_setting_switched_on_by_a_callback_trains_as_a_fit_that_starts_with_it(backend, compile, settings):
    """momentum 0 -> 0.9 failed with a KeyError ('velocity'); weight decay
    0 -> 0.5 decayed the biases too (eager) or was ignored (compiled). The
    run equals one epoch without the setting, then a fit that starts with
    it (a zero velocity: the next step's is its gradient, as torch's)."""
    X, y = blobs(48)
    kw = dict(loss="cross_entropy", batch_size=16, shuffle=False, compile=compile)

    def net():
        return xpnet.MLP([2, 8, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)

    switched, opt = net(), xpnet.SGD(0.1)
    switched.fit(X, y, optimizer=opt, epochs=4, callbacks=[_SwitchOn(opt, **settings)], **kw)
    two_fits = net()
    two_fits.fit(X, y, optimizer=xpnet.SGD(0.1), epochs=1, **kw)
    two_fits.fit(X, y, optimizer=xpnet.SGD(0.1, **settings), epochs=3, **kw)
    for a, b in zip(switched._params(), two_fits._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_a_rate_set_in_on_train_begin_is_where_the_schedule_starts(backend):
    """With lr_schedule, a rate set in on_train_begin was refused after the
    first epoch had trained ("a callback set the optimizer's lr"): the
    schedule now starts from it, as from a rate given to fit."""
    X, y = blobs(48)
    opt = xpnet.SGD(0.1)

    class AtBegin(xpnet.Callback):
        def on_train_begin(self, network):
            opt.lr = 0.05

    net = xpnet.MLP([2, 8, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, callbacks=[AtBegin()],
                   lr_schedule=xpnet.schedules.StepLR(1, gamma=0.5))  # fmt: skip
    np.testing.assert_allclose(hist.lr, [0.05, 0.025, 0.0125])


@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"weight_decay": 0.5}, {"weights": 0.25}])
def test_what_on_train_begin_sets_is_what_the_run_starts_from(backend, settings):
    """on_train_begin ran after the run had read the weights and built the
    optimizer state and decay mask: momentum switched on there failed with a
    KeyError ('velocity'), weight decay decayed the biases too, and weights
    set there were trained over. The run equals a fit that starts with them."""
    X, y = blobs(48)
    kw = dict(loss="cross_entropy", batch_size=16, shuffle=False, epochs=3)
    weights = settings.pop("weights", None)

    def net():
        return xpnet.MLP([2, 8, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)

    class AtBegin(xpnet.Callback):
        def __init__(self, opt):
            self.opt = opt

        def on_train_begin(self, network):
            for name, value in settings.items():
                setattr(self.opt, name, value)
            if weights is not None:
                network.layers[0].weights = np.full((2, 8), weights)

    begun, opt = net(), xpnet.SGD(0.1)
    begun.fit(X, y, optimizer=opt, callbacks=[AtBegin(opt)], **kw)
    plain = net()
    if weights is not None:
        plain.layers[0].weights = np.full((2, 8), weights)
    plain.fit(X, y, optimizer=xpnet.SGD(0.1, **settings), **kw)
    for a, b in zip(begun._params(), plain._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("compile", [False, "auto"])
@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"weight_decay": 0.5}])
def test_a_setting_a_callback_changes_under_a_schedule_trains_the_next_epoch(backend, compile, settings):
    """Under a schedule each epoch ran a copy of the optimizer with that
    epoch's rate, and the copy was kept while the rate stayed the same: a
    momentum or weight decay switched on after the warm-up was ignored for
    as long as the rate did not change (here, for good)."""
    X, y = blobs(48)
    kw = dict(loss="cross_entropy", batch_size=16, shuffle=False, compile=compile)

    def net():
        return xpnet.MLP([2, 8, 3], "tanh", "softmax", backend=backend, dtype="float64", seed=0)

    class SwitchOnLater(_SwitchOn):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:  # the rate changed before epoch 1 and stays
                super().on_epoch_end(epoch, logs)

    switched, opt = net(), xpnet.SGD(0.1)
    warmup = xpnet.schedules.LinearWarmup(1)  # 0.05 in epoch 0, then the optimizer's 0.1
    switched.fit(X, y, optimizer=opt, epochs=4, callbacks=[SwitchOnLater(opt, **settings)], lr_schedule=warmup, **kw)
    two_fits = net()
    two_fits.fit(X, y, optimizer=xpnet.SGD(0.1), epochs=2, lr_schedule=warmup, **kw)
    two_fits.fit(X, y, optimizer=xpnet.SGD(0.1, **settings), epochs=2, **kw)
    for a, b in zip(switched._params(), two_fits._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_resuming_with_other_early_stopping_settings_is_refused(tmp_path):
    """Only the callback's class was compared: a checkpoint's best val_loss
    was then taken as the best training loss of a resumed run monitoring
    'loss' (as another schedule is refused, so is another EarlyStopping)."""
    X, y = blobs()
    ck = tmp_path / "ck.safetensors"
    fit = dict(KW, validation_split=0.2)
    make().fit(X, y, epochs=3, checkpoint=ck, callbacks=[xpnet.EarlyStopping(patience=2)], **fit)
    other = xpnet.EarlyStopping(monitor="loss", patience=50, min_delta=0.5)
    with pytest.raises(ValueError, match=r"EarlyStopping\): the checkpoint's run stopped early by other settings "
                                         r"\(monitor 'val_loss' there, 'loss' here; patience 2 there, 50 here"):
        make().fit(X, y, epochs=6, resume=ck, callbacks=[other], **fit)
    h = make().fit(X, y, epochs=6, resume=ck, callbacks=[xpnet.EarlyStopping(patience=2)], **fit)
    assert len(h.loss) >= 3
    legacy = xpnet.EarlyStopping(patience=2)  # a checkpoint of an older xpnet kept no settings: taken as they are
    legacy.set_state({"best": 0.5, "best_epoch": 1, "wait": 0})
    assert legacy.best == 0.5


def test_every_callback_ends_with_the_weights_fit_returns_whatever_the_order():
    """EarlyStopping restored its best weights in its own on_train_end: a
    callback listed before it (one that saves the model) got the last
    epoch's weights, while the History it was given named the best epoch."""
    X, y = blobs(48)

    class Keep(xpnet.Callback):
        def on_train_begin(self, network):
            self.net = network

        def on_train_end(self, history):
            self.kept = [host(p).copy() for p in self.net._params()]

    for order in ("before", "after"):
        keep, stop = Keep(), xpnet.EarlyStopping(patience=2)
        net = xpnet.MLP([2, 8, 3], "tanh", "softmax", backend="numpy", dtype="float64", seed=0)
        callbacks = [keep, stop] if order == "before" else [stop, keep]
        h = net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.5, epochs=60, batch_size=8, seed=0,
                    validation_split=0.25, callbacks=callbacks)  # fmt: skip
        assert h.stopped_early and h.best_epoch < len(h.loss) - 1, order  # the best is not the last epoch
        for kept, p in zip(keep.kept, net._params()):
            np.testing.assert_array_equal(kept, host(p))


def test_a_callback_that_sets_lr_under_a_schedule_is_refused():
    """StepLR, ExponentialLR, plateaus and warm-ups ignored it; a cosine
    schedule took it at its next restart (ten times its first peak here)."""
    X = np.linspace(-1.0, 1.0, 40).reshape(20, 2)
    y = X[:, :1] - X[:, 1:]
    opt = xpnet.SGD(lr=0.01)

    class SetLR(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                opt.lr = 0.1

    net = xpnet.MLP([2, 3, 1], backend="numpy", seed=0)
    cosine = xpnet.schedules.CosineAnnealingLR(2)
    with pytest.raises(ValueError, match="a callback set the optimizer's lr to 0.1 while lr_schedule CosineAnnealing"):
        net.fit(X, y, optimizer=opt, epochs=4, callbacks=[SetLR()], lr_schedule=cosine)
    opt.lr = 0.01
    history = net.fit(X, y, optimizer=opt, epochs=3, callbacks=[SetLR()])  # no schedule: the callback's rate is used
    assert history.lr == [0.01, 0.1, 0.1]


@pytest.mark.parametrize(("setting", "value", "error", "words"), [
    ("lr", -0.1, ValueError, "lr to -0.1; a rate must be a finite number >= 0"),  # trained uphill in silence
    ("lr", "0.1", ValueError, "lr to '0.1'"),  # NumPy's UFuncTypeError; on JAX History.lr lost the epochs
    ("momentum", -1.0, ValueError, "momentum must be"),  # "Kernel('sgd') takes 2 arrays, got 3 columns"
    ("momentum", 1.5, ValueError, "momentum must be"),  # trained with a velocity that grows, in silence
    ("weight_decay", -1.0, ValueError, "weight_decay must be"),  # decay turned into growth, in silence
])  # fmt: skip
def test_a_callback_that_gives_the_optimizer_a_setting_it_refuses_is_told(backend, setting, value, error, words):
    """A callback may change the optimizer's settings between epochs; one
    its constructor refuses is refused there too, naming the setting."""
    X, y = blobs(20)
    opt = xpnet.SGD(lr=0.1, momentum=0.5)

    class Set(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            setattr(opt, setting, value)

    with pytest.raises(error, match=f"a callback set SGD's {words}" if setting == "lr" else words) as info:
        make(backend).fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, callbacks=[Set()])
    assert "a callback set SGD's" in str(info.value)
    opt = xpnet.SGD(lr=0.1, momentum=0.5)

    class Freeze(xpnet.Callback):  # a rate of 0, as a schedule may reach, stays allowed
        def on_epoch_end(self, epoch, logs):
            opt.lr = 0.0

    history = make(backend).fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, callbacks=[Freeze()])
    assert history.lr == [0.1, 0.0, 0.0]
    opt = xpnet.SGD(lr=0.1, momentum=0.5)
    setattr(opt, setting, value)  # by hand before fit: the same check
    with pytest.raises(error, match=r"code \(or a callback's on_train_begin\) set SGD's"):
        make(backend).fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1)


class _Closeness(xpnet.Metric):
    """Unregistered, and better when greater: minus the mean squared error."""

    name = "closeness_unregistered"
    greater_is_better = True

    def __call__(self, y_true, y_pred):
        from array_api_compat import array_namespace

        return -array_namespace(y_pred).sum((y_true - y_pred) ** 2) / y_true.shape[0]


def test_auto_mode_follows_an_unregistered_metric_object_that_declares_greater_is_better():
    """Built from the name alone, ``mode="auto"`` knew only registered
    metrics: an unregistered one with ``greater_is_better = True`` was
    minimised, so the run stopped at the patience and kept epoch 0."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.ones((3, 1))
    stop = xpnet.EarlyStopping("val_closeness_unregistered", patience=3)
    plateau = xpnet.schedules.ReduceLROnPlateau(factor=0.5, patience=2, monitor="val_closeness_unregistered")
    net = xpnet.MLP([3, 8, 1], "tanh", "identity", dtype="float64", seed=0)
    h = net.fit(X, y, loss="mse", optimizer="adam", lr=0.01, epochs=30, validation_split=0.2, seed=0,
                metrics=[_Closeness()], callbacks=[stop], lr_schedule=plateau)  # fmt: skip
    closeness = h.metrics["val_closeness_unregistered"]
    assert all(b > a for a, b in zip(closeness, closeness[1:]))  # improving all the way
    assert (stop.mode, plateau.mode) == ("max", "max")
    assert len(h.loss) == 30 and h.best_epoch == 29 and set(h.lr) == {0.01}


def test_auto_mode_follows_the_metric_object_inside_a_warm_up():
    """``LinearWarmup(then=ReduceLROnPlateau(...))``: fit looked for the
    mode on the warm-up, which has none, so the plateau inside it kept the
    mode its name alone gave and minimised a metric that declares
    ``greater_is_better = True``, cutting the rate of an improving run."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.ones((3, 1))
    plateau = xpnet.schedules.ReduceLROnPlateau(factor=0.5, patience=2, monitor="val_closeness_unregistered")
    warmup = xpnet.schedules.LinearWarmup(1, then=plateau, start_factor=1.0)
    net = xpnet.MLP([3, 8, 1], "tanh", "identity", dtype="float64", seed=0)
    h = net.fit(X, y, loss="mse", optimizer="adam", lr=0.01, epochs=30, validation_split=0.2, seed=0,
                metrics=[_Closeness()], lr_schedule=warmup)  # fmt: skip
    closeness = h.metrics["val_closeness_unregistered"]
    assert all(b > a for a, b in zip(closeness, closeness[1:]))  # improving all the way
    assert plateau.mode == "max" and set(h.lr) == {0.01}


def closeness(y_true, y_pred):
    """A plain function metric, better when greater: minus the mean squared error."""
    from array_api_compat import array_namespace

    return -array_namespace(y_pred).sum((y_true - y_pred) ** 2) / y_true.shape[0]


closeness.greater_is_better = True


def test_auto_mode_follows_a_plain_function_metric_that_declares_greater_is_better():
    """A function is a metric too (named after itself), and the attribute a
    Metric object declares was not read from it: EarlyStopping and
    ReduceLROnPlateau minimised a score, stopping an improving run at the
    patience and cutting its rate."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.ones((3, 1))
    stop = xpnet.EarlyStopping("val_closeness", patience=3)
    plateau = xpnet.schedules.ReduceLROnPlateau(factor=0.5, patience=2, monitor="val_closeness")
    net = xpnet.MLP([3, 8, 1], "tanh", "identity", dtype="float64", seed=0)
    h = net.fit(X, y, loss="mse", optimizer="adam", lr=0.01, epochs=30, validation_split=0.2, seed=0,
                metrics=[closeness], callbacks=[stop], lr_schedule=plateau)  # fmt: skip
    scores = h.metrics["val_closeness"]
    assert all(b > a for a, b in zip(scores, scores[1:]))  # improving all the way
    assert (stop.mode, plateau.mode) == ("max", "max")
    assert len(h.loss) == 30 and h.best_epoch == 29 and set(h.lr) == {0.01}


@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict"])
def test_restore_best_keeps_the_weights_the_best_figure_was_measured_on(name):
    """A callback after EarlyStopping may edit the weights in place (``w *=
    0.9``, a max-norm clip); EarlyStopping kept references to the best
    epoch's arrays, so the edit reached them and the network ended with
    weights other than those of its best val_loss (Keras keeps a copy)."""
    pytest.importorskip({"numpy": "numpy", "torch": "torch", "array_api_strict": "array_api_strict"}[name])
    X, y = blobs()
    snapshots = []

    class Snapshot(xpnet.Callback):
        def on_train_begin(self, network):
            self.network = network

        def on_epoch_end(self, epoch, logs):
            snapshots.append([host(p).copy() for p in self.network._params()])

    class Shrink(xpnet.Callback):
        def on_train_begin(self, network):
            self.network = network

        def on_epoch_end(self, epoch, logs):
            for layer in self.network.layers:
                w = layer.weights
                w *= 0.9

    net = make(name)
    callbacks = [Snapshot(), xpnet.EarlyStopping(patience=3), Shrink()]
    h = net.fit(X, y, epochs=40, validation_split=0.3, callbacks=callbacks, **{**KW, "lr": 0.1})
    assert h.stopped_early and h.best_epoch < len(h.loss) - 1
    for kept, measured in zip(net._params(), snapshots[h.best_epoch]):
        np.testing.assert_array_equal(host(kept), measured)
