"""The NumPy step recorded once and replayed (xpnet._tape, TapeStep in
xpnet._graphstep): it must train exactly as the eager step does, keep what the
loop and the user hold untouched, and step aside (eagerly) for a step it
cannot record. These run on NumPy only: the tape is NumPy's compiled step."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from test_compile import StepReadingLayer

import xpnet
from xpnet import _compile, _graphstep, _tape
from xpnet.layers import Layer
from xpnet.losses import get_loss
from xpnet.optimizers import get_optimizer

OPTIMIZERS = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.05}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, labels, np.stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])], axis=1)


def _networks():
    """(name, network factory, loss, target kind): every built-in activation,
    loss, and the normalising and container layers."""
    mlp = xpnet.MLP
    return [
        ("tanh-softmax", lambda: mlp([4, 8, 3], "tanh", "softmax", dtype="float64", seed=0), "cross_entropy", "labels"),
        ("sigmoid-bce", lambda: mlp([4, 5, 1], "sigmoid", "sigmoid", dtype="float64", seed=1), "binary_cross_entropy", "binary"),
        ("relu-mse", lambda: mlp([4, 8, 2], "relu", "identity", dtype="float64", seed=2), "mse", "values"),
        ("gelu-huber", lambda: mlp([4, 6, 2], "gelu", "identity", dtype="float64", seed=3), "huber", "values"),
        ("elu-mae", lambda: mlp([4, 6, 2], "elu", "identity", dtype="float64", seed=4), "mae", "values"),
        ("softplus-sse", lambda: mlp([4, 6, 2], "softplus", "identity", dtype="float64", seed=5), "sse", "values"),
        ("silu-float32", lambda: mlp([4, 6, 3], "silu", "softmax", dtype="float32", seed=6), "cross_entropy", "labels"),
        ("norms-residual", lambda: xpnet.Network(
            [xpnet.Dense(4, 8), xpnet.BatchNorm(8), "relu", xpnet.Residual([xpnet.Dense(8, 8, "tanh"), xpnet.LayerNorm(8)]),
             xpnet.Dense(8, 3, "softmax")], dtype="float64", seed=7), "cross_entropy", "labels"),
    ]  # fmt: skip


NETWORKS = _networks()


@pytest.fixture(autouse=True)
def _numpy_by_default(monkeypatch):
    """These networks name no backend: make "auto" NumPy, the tape's library,
    also where a GPU makes it CuPy (tools/gpu_check)."""
    monkeypatch.setenv("XPNET_BACKEND", "numpy")


def _targets(kind):
    X, labels, values = _data()
    return X, {"labels": labels, "binary": (labels > 0).astype(float)[:, None], "values": values}[kind]


def _fit(make, loss, kind, compile, **kw):
    X, y = _targets(kind)
    net = make()
    hist = net.fit(X, y, loss=loss, compile=compile, seed=0, **({"epochs": 3} | kw))
    return net, hist


def _same_training(a, b):
    (net_a, hist_a), (net_b, hist_b) = a, b
    assert hist_a.loss == hist_b.loss
    assert hist_a.val_loss == hist_b.val_loss
    for p, q in zip(net_a._params() + net_a._buffers(), net_b._params() + net_b._buffers()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(("name", "make", "loss", "kind"), NETWORKS, ids=[n[0] for n in NETWORKS])
@pytest.mark.parametrize("batch_size", [7, None])
def test_the_recorded_step_trains_exactly_as_the_eager_one(name, make, loss, kind, batch_size):
    """To the bit: the replay makes the same NumPy calls in the same order,
    only into buffers of its own. Batches of 7 of 40 rows, shuffled, leave
    a short last batch (a second recording)."""
    kw = dict(batch_size=batch_size, optimizer="adam", validation_split=0.2)
    _same_training(_fit(make, loss, kind, "auto", **kw), _fit(make, loss, kind, False, **kw))


@pytest.mark.parametrize(("opt", "settings"), OPTIMIZERS, ids=[f"{n}{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_every_optimizer_and_a_schedule_replay_exactly(opt, settings):
    kw = dict(batch_size=8, optimizer={"name": opt, "config": settings}, epochs=4,
              lr_schedule={"name": "StepLR", "config": {"step_size": 2, "gamma": 0.5}})  # fmt: skip
    make, loss, kind = NETWORKS[0][1:]
    _same_training(_fit(make, loss, kind, "auto", **kw), _fit(make, loss, kind, False, **kw))


def test_numpy_fit_replays_a_recorded_step(monkeypatch):
    """``compile="auto"`` on NumPy records each batch shape once and replays it."""
    counts = {"capture": 0, "replay": 0}
    capture, replay = _tape.Tape.capture, _tape.Tape.replay

    def counted_capture(self, fn, static):
        counts["capture"] += 1
        return capture(self, fn, static)

    def counted_replay(self):
        counts["replay"] += 1
        return replay(self)

    monkeypatch.setattr(_tape.Tape, "capture", counted_capture)
    monkeypatch.setattr(_tape.Tape, "replay", counted_replay)
    make, loss, kind = NETWORKS[0][1:]
    _fit(make, loss, kind, "auto", batch_size=16, epochs=5)  # 40 rows: batches of 16, 16 and 8
    assert counts == {"capture": 2, "replay": 15}
    net = make()
    step = _compile.training_step(net, get_loss(loss), get_optimizer("sgd"), None, None, {}, "auto")
    assert step.mode == "numpy tape"


def _counting_replays(monkeypatch):
    counts = {"replay": 0}
    replay = _tape.Tape.replay

    def counted(self):
        counts["replay"] += 1
        return replay(self)

    monkeypatch.setattr(_tape.Tape, "replay", counted)
    return counts


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
@pytest.mark.parametrize("batch_size", [7, None])
def test_weighted_steps_are_recorded_and_train_exactly_as_eager(monkeypatch, weights, batch_size):
    """Row weights enter the recording as an input like X and T (each
    minibatch's share, scaled to average 1 inside the replay, as JAX's
    program does): the step is replayed, not run eagerly, to the bit."""
    X, labels = _targets("labels")
    w = {"sample_weight": np.random.default_rng(3).uniform(0.1, 3.0, size=X.shape[0]),
         "class_weight": {0: 0.5, 1: 2.0, 2: 1.5}}[weights]  # fmt: skip
    make, loss = NETWORKS[0][1:3]
    counts = _counting_replays(monkeypatch)
    kw = {"batch_size": batch_size, "optimizer": "adam", "epochs": 4, weights: w}
    recorded = make(), make()
    hists = [net.fit(X, labels, loss=loss, compile=c, seed=0, **kw) for net, c in zip(recorded, (True, False))]
    assert counts["replay"] == 4 * (1 if batch_size is None else 6)  # every step (40 rows: 5 of 7, then 5)
    _same_training((recorded[0], hists[0]), (recorded[1], hists[1]))


def _dropout_network():
    layers = [xpnet.Dense(4, 8, "relu"), xpnet.Dropout(0.3), xpnet.Dense(8, 3, "softmax")]
    return xpnet.Network(layers, dtype="float64", seed=0)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("batch_size", [7, None])
def test_dropout_steps_are_recorded_and_train_exactly_as_eager(monkeypatch, weighted, batch_size):
    """Each step's random source enters the recording as its streams' key
    words, an input like X and T (as JAX's program takes them): the same
    masks as the eager step's, every step replayed, to the bit."""
    X, labels = _targets("labels")
    counts = _counting_replays(monkeypatch)
    w = np.random.default_rng(3).uniform(0.1, 3.0, size=X.shape[0]) if weighted else None
    kw = {"batch_size": batch_size, "optimizer": "adam", "epochs": 4, "sample_weight": w}
    nets = _dropout_network(), _dropout_network()
    hists = [net.fit(X, labels, loss="cross_entropy", compile=c, seed=0, **kw) for net, c in zip(nets, (True, False))]
    assert counts["replay"] == 4 * (1 if batch_size is None else 6)
    _same_training((nets[0], hists[0]), (nets[1], hists[1]))
    assert _compile.training_step(nets[0], get_loss("mse"), get_optimizer("sgd"), None, None, {}).mode == "numpy tape"


def test_a_layer_reading_its_random_sources_key_is_not_recorded():
    """A custom layer that reads the source's ``key`` or ``step`` (which a
    recording's key words do not hold) runs eagerly, with compile=True's
    warning, and trains as it does uncompiled."""

    X, labels = _targets("labels")
    fitted = []
    for compile in (True, False):
        layers = [xpnet.Dense(4, 8, "tanh"), StepReadingLayer(), xpnet.Dense(8, 3, "softmax")]
        net = xpnet.Network(layers, dtype="float64", seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net.fit(X, labels, loss="cross_entropy", compile=compile, seed=0, epochs=2, batch_size=8)
        fitted.append(net)
        assert any("cannot record" in str(w.message) for w in caught) == compile
    for p, q in zip(fitted[0]._params(), fitted[1]._params()):
        np.testing.assert_array_equal(p, q)


def test_what_the_loop_and_the_user_hold_is_never_written():
    """Each epoch's weights, as a callback sees them (the network's, at the
    report), stay what they were: the replay writes its own buffers, and a
    kept set is reused only when nothing else refers to it."""

    class Keep(xpnet.Callback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, network):
            self.net = network

        def on_epoch_end(self, epoch, logs):
            self.seen.append((self.net._params(), [p.copy() for p in self.net._params()]))
            return False

    keep = Keep()
    make, loss, kind = NETWORKS[2][1:]
    X, y = _targets(kind)
    net = make()
    net.fit(X, y, loss=loss, epochs=30, batch_size=None, callbacks=[keep])
    assert len(keep.seen) == 30
    for held, copies in keep.seen:
        for a, b in zip(held, copies):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(keep.seen[0][1][0], keep.seen[-1][1][0])


def test_a_full_batch_is_read_in_place_and_stays_unwritten():
    """One step per epoch records on the loop's own arrays (no copy per
    epoch); a read-only input trains, and is left as it was."""
    make, loss, kind = NETWORKS[2][1:]
    X, y = _targets(kind)
    X.flags.writeable = False
    before = X.copy()
    a = make()
    ha = a.fit(X, y, loss=loss, epochs=20)
    b = make()
    hb = b.fit(X, y, loss=loss, epochs=20, compile=False)
    assert ha.loss == hb.loss
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("batch_size", [None, 8])
def test_weights_a_callback_writes_in_place_train_on_as_eagerly(batch_size):
    """A callback that scales the weights in place (a max-norm constraint,
    ``w *= 0.5``) trains the next epoch from them, as the eager step does:
    the recorded step copied only other arrays into its own, and with
    minibatches trained on from the weights before the edit, silently."""

    class Halve(xpnet.Callback):
        def on_train_begin(self, network):
            self.net = network

        def on_epoch_end(self, epoch, logs):
            weights = self.net.layers[0].weights
            weights *= 0.5

    make, loss, kind = NETWORKS[2][1:]
    X, y = _targets(kind)
    fitted = []
    for compile in ("auto", False):
        net = make()
        hist = net.fit(X, y, loss=loss, epochs=3, batch_size=batch_size, seed=0, compile=compile, callbacks=[Halve()])
        fitted.append((hist.loss, [p.copy() for p in net._params()]))
    assert fitted[0][0] == fitted[1][0]
    for a, b in zip(fitted[0][1], fitted[1][1]):
        np.testing.assert_array_equal(a, b)


def test_the_nan_guard_keeps_the_same_weights_as_eager():
    make, loss, kind = NETWORKS[2][1:]
    X, y = _targets(kind)
    kept = []
    for compile in ("auto", False):
        net = make()
        with pytest.raises(FloatingPointError, match="NaN or infinite") as err:
            net.fit(X, y * 1e3, loss=loss, epochs=60, optimizer={"name": "sgd", "config": {"lr": 5.0}}, compile=compile)
        kept.append((str(err.value), [p.copy() for p in net._params()]))
    assert kept[0][0] == kept[1][0]
    for a, b in zip(kept[0][1], kept[1][1]):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)


@xpnet.register
class _PeekingScale(Layer):
    """A layer that reads a value on the host in its forward pass (a step
    no recording can replay: its Python decides from this step's numbers)."""

    name = "test_tape_peeking_scale"

    def forward(self, xp, params, buffers, X, ctx):
        scale = 2.0 if float(xp.max(X)) > 1e9 else 1.0
        return X * scale, scale, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * cache, []


def _peeking_net():
    return xpnet.Network([xpnet.Dense(4, 6, "tanh"), _PeekingScale(), xpnet.Dense(6, 2)], dtype="float64", seed=0)


class _RunningMean(Layer):
    """No parameters: subtracts a running mean of its inputs, kept as a buffer."""

    name = "test_tape_running_mean"

    def input_width(self):
        return 3

    def buffer_shapes(self):
        return {"mean": (3,)}

    def init_buffers(self, dtype):
        return {"mean": np.zeros(3, dtype)}

    def forward(self, xp, params, buffers, X, ctx):
        mean = 0.9 * buffers[0] + 0.1 * xp.mean(X, axis=0) if ctx.training else buffers[0]
        return X - mean, None, [mean]

    def backward(self, xp, params, cache, dY, need_dx):
        return dY, []


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_a_network_without_parameters_fits_with_compile_true(opt):
    """Its running statistics train; the recorded step sized the optimizer's
    scalar slots from the first parameter and failed with AttributeError
    "'NoneType' object has no attribute 'shape'" where there is none."""
    X = np.random.default_rng(0).normal(size=(12, 3)) + 1.0
    runs = []
    for compile in (False, True):
        net = xpnet.Network([_RunningMean()], dtype="float64", seed=0)
        net.fit(X, X, optimizer=opt, epochs=3, batch_size=4, seed=0, compile=compile)
        runs.append(np.asarray(net.layers[0].buffers["mean"]))
    np.testing.assert_array_equal(runs[1], runs[0])
    assert np.all(runs[0] > 0.1)


def test_auto_leaves_a_network_with_components_of_yours_eager():
    net = _peeking_net()
    step = _compile.training_step(net, get_loss("mse"), get_optimizer("sgd"), None, None, {}, "auto")
    assert step.mode == "eager"


def test_compile_true_steps_aside_for_a_step_it_cannot_record():
    """compile=True records any layer, and a step that reads a value on the
    host is refused with a warning, then trained eagerly: the same result."""
    X, _, values = _data()
    a = _peeking_net()
    with pytest.warns(RuntimeWarning, match="cannot record this step"):
        ha = a.fit(X, values, loss="mse", epochs=3, batch_size=8, compile=True, seed=0)
    b = _peeking_net()
    hb = b.fit(X, values, loss="mse", epochs=3, batch_size=8, compile=False, seed=0)
    assert ha.loss == hb.loss
    for p, q in zip(a._params(), b._params()):
        np.testing.assert_array_equal(p, q)


class _RowByRowLoss(xpnet.Loss):
    """A loss of yours with ``_value`` only: sample weights take each row's
    loss from :meth:`xpnet.Loss._per_sample`'s default, ``_value`` row by
    row through ``xp.asarray`` and ``xp.stack``."""

    name = "test_tape_row_by_row"

    def _value(self, xp, t, y):
        return xp.sum((y - t) ** 2) / y.shape[0]

    def _gradient(self, xp, t, y):
        return 2.0 * (y - t) / y.shape[0]


def test_a_weighted_loss_of_yours_without_per_sample_is_recorded_exactly(monkeypatch):
    """``xp.asarray`` of a recorded array gave a plain ndarray, which the
    recording no longer followed: ``xp.stack`` of the rows' losses ran once,
    at the recording, and its result stayed in the replay. The check at the
    second step then refused the recording ('computed other numbers',
    compile=True's warning): such a loss never ran recorded. It is
    recorded, every step replayed, to the bit."""
    X, _, values = _data()
    w = np.random.default_rng(3).uniform(0.1, 3.0, size=X.shape[0])
    counts = _counting_replays(monkeypatch)
    nets = [xpnet.MLP([4, 6, 2], "tanh", dtype="float64", seed=0) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        hists = [net.fit(X, values, loss=_RowByRowLoss(), compile=c, seed=0, epochs=3, batch_size=8, sample_weight=w)
                 for net, c in zip(nets, (True, False))]  # fmt: skip
    assert counts["replay"] == 3 * 5
    _same_training((nets[0], hists[0]), (nets[1], hists[1]))


def test_recording_refuses_host_reads_and_unfollowed_copies():
    """What a recorded step cannot do raises Untraceable, not a silently
    frozen number: a host read, and an array an ndarray method made."""
    a = np.arange(6.0).reshape(2, 3).view(_tape.TapeArray)
    for read in (float, bool, lambda x: x.item(), lambda x: x.tolist()):
        with pytest.raises(_tape.Untraceable):
            read(a[0, 0])
    with pytest.raises(_tape.Untraceable):
        a.T.reshape(6)  # a copy (not a view) made by a method
    tape, out = _tape.Tape(), {}
    static = {"params": [], "buffers": [], "state": {}}
    tape.capture(lambda: out.setdefault("y", np.exp(a) + a[:, 1:2] * 2.0), static)
    with pytest.raises(_tape.Untraceable):
        np.exp(a)  # outside a recording


def test_replay_reads_its_inputs_afresh():
    """A recording holds buffers, not numbers: change the input in place and
    the replay computes from the new values (as the loop's full batch and
    the scalar slots rely on)."""
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    lr = np.zeros(())
    out = {}
    tape = _tape.Tape()
    static = {"params": [], "buffers": [], "state": {}}
    tx, tlr = _tape.traced(x), _tape.traced(lr)
    tape.capture(lambda: out.setdefault("y", _tape.plain(np.sum(tx * tlr + 1.0, axis=0))), static)
    x[...] = [[2.0, 2.0], [2.0, 2.0]]
    lr[...] = 3.0
    tape.replay()
    np.testing.assert_array_equal(out["y"], [14.0, 14.0])


def test_a_dot_is_replayed_into_its_own_buffer():
    """``numpy.dot`` (the NumPy namespace's outer product) replays with its
    own ``out``, no result copied over, and follows its inputs."""
    from xpnet._numpy_namespace import xp

    col, row = np.array([[1.0], [2.0]]), np.array([[3.0, 4.0, 5.0]])
    out, tape = {}, _tape.Tape()
    static = {"params": [], "buffers": [], "state": {}}
    tcol, trow = _tape.traced(col), _tape.traced(row)
    tape.capture(lambda: out.setdefault("y", _tape.plain(xp.matmul(tcol, trow))), static)
    assert [fn for fn, _ in tape.ops] == [np.dot] and np.shares_memory(tape.ops[0][1][2], out["y"])
    col[...] = [[2.0], [-1.0]]
    tape.replay()
    np.testing.assert_array_equal(out["y"], np.matmul(col, row))


def test_replay_raises_no_deprecation_warnings():
    """ReLU's maximum and the rest replay without NumPy's deprecation of a
    positional ``out`` for maximum/minimum."""
    make, loss, kind = NETWORKS[2][1:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(make, loss, kind, "auto", batch_size=8)


def test_a_cast_to_the_same_dtype_without_a_copy_stays_the_input():
    """``astype(..., copy=False)`` that returns its argument is that array
    (a view of it while recording), never a buffer of the recording's own
    that an update might write over."""
    x = np.arange(4.0)
    tape, out = _tape.Tape(), {}
    tx = _tape.traced(x)

    def body():
        out["same"] = np.astype(tx, np.float64, copy=False)
        out["cast"] = np.astype(tx, np.float32)
        out["owned"] = [_tape.NumpyArrays.own([out[k]], set()) for k in ("same", "cast")]

    tape.capture(body, {"params": [], "buffers": [], "state": {}})
    assert np.shares_memory(out["same"], x)
    assert out["owned"] == [False, True]


def test_scikit_learn_estimators_with_row_weights_replay_exactly(monkeypatch):
    """xpnet.sklearn's optimizer keeps a per-epoch plan it changes in place
    (row weights in a shuffled order): its scalars are asked every step,
    never remembered, so the replay trains as the eager step (with and
    without row weights, Adam and SGD with momentum)."""
    pytest.importorskip("sklearn")
    from xpnet.sklearn import MLPClassifier

    X, labels, _ = _data(n=60)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, size=60)
    fitted = []
    for recorded in (True, False):
        if not recorded:
            monkeypatch.setattr(_compile, "tape_step", lambda eager, compile: eager)
        for solver, w in itertools.product(("adam", "sgd"), (None, weights)):
            est = MLPClassifier((6,), solver=solver, batch_size=16, max_iter=5, random_state=0, backend="numpy")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # max_iter reached
                est.fit(X, labels, sample_weight=w)
            fitted.append(est)
    for a, b in zip(fitted[:4], fitted[4:]):
        assert a.loss_curve_ == b.loss_curve_
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(p, q)


def test_auto_records_only_steps_where_python_outweighs_the_arithmetic(monkeypatch):
    """Larger steps run eagerly under ``"auto"`` (their buffers would crowd
    the cache that eager NumPy reuses): many parameters, or a recording whose
    buffers exceed TAPE_MAX_BYTES; ``compile=True`` records them anyway."""
    big = xpnet.MLP([64, 128, 10], dtype="float64", seed=0)
    assert sum(p.size for p in big._params()) > _graphstep.TAPE_MAX_PARAMS
    opt = get_optimizer("sgd")
    assert _compile.training_step(big, get_loss("mse"), opt, None, None, {}, "auto").mode == "eager"
    assert _compile.training_step(big, get_loss("mse"), opt, None, None, {}, True).mode == "numpy tape"
    replays, replay = [], _tape.Tape.replay
    monkeypatch.setattr(_tape.Tape, "replay", lambda self: replays.append(1) or replay(self))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))  # a full batch of 2000 rows: the recording's buffers pass the bound
    make = NETWORKS[2][1]
    a, b = make(), make()
    ha = a.fit(X, X[:, :2], loss="mse", epochs=3)
    assert replays == []
    hb = b.fit(X, X[:, :2], loss="mse", epochs=3, compile=False)
    assert ha.loss == hb.loss


def test_compile_true_records_a_large_network_exactly():
    """Past the size ``"auto"`` records, ``compile=True`` still replays to
    the bit: large arrays updated in place, full batch and minibatches."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(96, 300)), rng.normal(size=(96, 1))

    def make():
        return xpnet.Network([xpnet.Dense(300, 40, "relu", bias=False), xpnet.Dense(40, 1, bias=False)],
                             dtype="float64", seed=1)  # fmt: skip

    for batch_size in (None, 32):
        kw = dict(loss="sse", optimizer={"name": "sgd", "config": {"lr": 1e-5, "momentum": 0.5}}, epochs=4,
                  batch_size=batch_size, seed=0)  # fmt: skip
        a, b = make(), make()
        ha, hb = a.fit(X, y, compile=True, **kw), b.fit(X, y, compile=False, **kw)
        assert ha.loss == hb.loss
        for p, q in zip(a._params(), b._params()):
            np.testing.assert_array_equal(p, q)
