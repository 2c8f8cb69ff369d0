"""Checkpoints and resume: a resumed run ends exactly where an uninterrupted
one does, whatever interrupted it (SIGKILL included)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import StopAfter, host, subprocess_env

import xpnet
from xpnet.training import TrainingInterrupted

SCRIPT = Path(__file__).parent / "scripts" / "train_with_checkpoint.py"


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 4))
    return X, (X[:, 0] - X[:, 1] > 0).astype(int)


def make(backend="numpy", seed=1, sizes=(4, 8, 2)):
    return xpnet.MLP(list(sizes), "tanh", "softmax", backend=backend, dtype="float64", seed=seed)


KW = dict(loss="cross_entropy", lr=0.05, batch_size=8, seed=3)


def assert_same_run(a, ha, b, hb):
    assert ha.loss == hb.loss and ha.val_loss == hb.val_loss and ha.stopped_early == hb.stopped_early
    for p, q in zip(a._params(), b._params()):
        np.testing.assert_array_equal(host(p), host(q))


@pytest.mark.parametrize("optimizer", [
    "sgd", "momentum", "adam", "rmsprop", "adamw",
    {"name": "sgd", "config": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}},
    {"name": "rmsprop", "config": {"lr": 0.05, "momentum": 0.5, "centered": True, "weight_decay": 1e-3}},  # fit's lr
], ids=lambda o: o if isinstance(o, str) else f"{o['name']}-configured")
def test_resume_after_some_epochs_is_bit_identical(tmp_path, optimizer):
    X, y = data()
    ref = make()
    h_ref = ref.fit(X, y, optimizer=optimizer, epochs=7, validation_data=(X, y), **KW)
    ck = tmp_path / "ck.safetensors"
    first = make()
    first.fit(X, y, optimizer=optimizer, epochs=3, checkpoint=ck, validation_data=(X, y), **KW)
    other = make(seed=99)  # different start: everything must come from the checkpoint
    h = other.fit(X, y, optimizer=optimizer, epochs=7, resume=ck, checkpoint=ck, validation_data=(X, y),
                  **{**KW, "seed": 12345})
    assert_same_run(ref, h_ref, other, h)
    assert len(h.loss) == 7


def test_a_validation_loss_that_overflows_is_checkpointed_and_resumes(tmp_path):
    """A float32 validation target of 1e20 makes val_loss inf (the squared
    error overflows) while training is fine: the checkpoint's JSON refused
    the History ("Out of range float values are not JSON compliant") and fit
    failed after its first epoch. It is written as JSON's Infinity, which
    resume reads back, to the uninterrupted run."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    Tv = T[:10].copy()
    Tv[0, 0] = 1e20
    kw = dict(loss="mse", lr=0.01, batch_size=8, seed=3, validation_data=(X[:10], Tv))

    def net():
        return xpnet.MLP([3, 4, 1], backend="numpy", dtype="float32", seed=0)

    ref = net()
    h_ref = ref.fit(X, T, epochs=4, **kw)
    assert h_ref.val_loss == [np.inf] * 4
    ck = tmp_path / "ck.safetensors"
    net().fit(X, T, epochs=2, checkpoint=ck, **kw)
    resumed = net()
    h = resumed.fit(X, T, epochs=4, resume=ck, **kw)
    assert_same_run(ref, h_ref, resumed, h)


def test_resume_on_another_backend_agrees_to_rounding(tmp_path, backend):
    X, y = data()
    ref = make()
    h_ref = ref.fit(X, y, optimizer="adam", epochs=6, **KW)
    ck = tmp_path / "ck.safetensors"
    make().fit(X, y, optimizer="adam", epochs=2, checkpoint=ck, **KW)
    net = make(backend)
    h = net.fit(X, y, optimizer="adam", epochs=6, resume=ck, **KW)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-12)
    for p, q in zip(ref._params(), net._params()):
        np.testing.assert_allclose(host(q), host(p), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("stop_after", [1, 5, 9, 13])
def test_interrupt_mid_epoch_then_resume_is_bit_identical(tmp_path, stop_after):
    X, y = data()  # 37 rows, batch 8: 5 steps per epoch (4 interrupt checks)
    ref = make()
    h_ref = ref.fit(X, y, optimizer="adam", epochs=5, **KW)
    ck = tmp_path / "ck.safetensors"
    net = make()
    with pytest.raises(TrainingInterrupted, match="interrupted") as e:
        net.fit(X, y, optimizer="adam", epochs=5, checkpoint=ck, interrupt=StopAfter(stop_after), **KW)
    assert e.value.checkpoint == str(ck) and isinstance(e.value, KeyboardInterrupt)
    h = make(seed=5).fit(X, y, optimizer="adam", epochs=5, resume=ck, **KW)
    resumed = make(seed=5)
    resumed.fit(X, y, optimizer="adam", epochs=5, resume=ck, **KW)
    assert_same_run(ref, h_ref, resumed, h)



class _SwitchOnAfterEpoch1(xpnet.Callback):
    """Sets the optimizer's settings at the end of epoch 1 (once)."""

    def __init__(self, opt, **settings):
        self.opt, self.settings = opt, settings

    def on_epoch_end(self, epoch, logs):
        if epoch == 1:
            for name, value in self.settings.items():
                setattr(self.opt, name, value)


@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"weight_decay": 0.1}])
def test_resume_after_a_callback_changed_the_optimizers_settings_is_refused_then_identical(tmp_path, settings):
    """A resume with the optimizer as first passed went on without the
    callback's change (weight decay: a different run, silently) or failed on
    the state (momentum: 'optimizer state holds ['velocity'], SGD needs
    []'). It is refused naming the setting; with the checkpoint's settings
    it ends where the uninterrupted run does."""
    X, y = data()

    def run(net, opt=None, **kw):
        opt = xpnet.SGD(0.05) if opt is None else opt
        return net.fit(X, y, optimizer=opt, epochs=5, callbacks=[_SwitchOnAfterEpoch1(opt, **settings)],
                       **{**KW, "lr": None}, **kw)  # fmt: skip

    ref = make()
    h_ref = run(ref)
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(TrainingInterrupted):
        run(make(), checkpoint=ck, interrupt=StopAfter(13))
    (name, value), = settings.items()
    with pytest.raises(ValueError, match=f"other sgd settings than this one passes \\({name}={value} there, 0.0 here"):
        run(make(seed=5), resume=ck)
    resumed = make(seed=5)
    h = run(resumed, xpnet.SGD(0.05, **settings), resume=ck)
    assert_same_run(ref, h_ref, resumed, h)


def test_checkpoint_is_a_loadable_model(tmp_path):
    X, y = data()
    ck = tmp_path / "ck.safetensors"
    net = make()
    net.fit(X, y, optimizer="momentum", epochs=2, checkpoint=ck, **KW)
    loaded = xpnet.load(ck, backend="array_api_strict")
    for p, q in zip(net._params(), loaded._params()):
        np.testing.assert_array_equal(host(p), host(q))


def test_resume_after_tol_stop_runs_nothing(tmp_path):
    X, y = data()
    ck = tmp_path / "ck.safetensors"
    net = make()
    h1 = net.fit(X, y, optimizer="sgd", epochs=100, tol=1e9, checkpoint=ck, **KW)
    assert h1.stopped_early and len(h1.loss) == 2
    again = make(seed=8)
    h2 = again.fit(X, y, optimizer="sgd", epochs=100, tol=1e9, resume=ck, **KW)
    assert_same_run(net, h1, again, h2)


def test_non_finite_epoch_writes_nothing(tmp_path):
    X, y = data()
    Y = np.eye(2)[y] * 1e6
    ck = tmp_path / "ck.safetensors"
    net = xpnet.MLP([4, 8, 2], "relu", backend="numpy", dtype="float64", seed=0)
    with pytest.raises(FloatingPointError, match=r"epoch (\d+)") as e:
        net.fit(X, Y, loss="mse", lr=5.0, epochs=100, checkpoint=ck)
    bad = int(e.value.args[0].split("in epoch ")[1].split(";")[0])
    meta = json.loads(xpnet.serialization.read_model_file(ck)[0]["checkpoint"])
    assert meta["epoch"] == bad - 1 == len(meta["history"]["loss"])
    for p, q in zip(net._params(), xpnet.load(ck, backend="numpy")._params()):
        np.testing.assert_array_equal(p, q)


def test_resume_errors(tmp_path):
    X, y = data()
    ck = tmp_path / "ck.safetensors"
    make().fit(X, y, optimizer="adam", epochs=1, checkpoint=ck, **KW)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        make().fit(X, y, optimizer="adam", epochs=2, resume=tmp_path / "missing.safetensors", **KW)
    with pytest.raises(ValueError, match="another architecture: 4-8-2 \\(tanh,softmax\\), this network is 4-9-2"):
        make(sizes=(4, 9, 2)).fit(X, y, optimizer="adam", epochs=2, resume=ck, **KW)
    with pytest.raises(ValueError, match="float64 model, this network is float32"):
        xpnet.MLP([4, 8, 2], "tanh", "softmax", backend="numpy", seed=1).fit(X, y, optimizer="adam", epochs=2, resume=ck, **KW)
    with pytest.raises(ValueError, match="optimizer adam, this run uses sgd"):
        make().fit(X, y, optimizer="momentum", epochs=2, resume=ck, **KW)
    plain = tmp_path / "model.safetensors"
    make().save(plain)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        make().fit(X, y, optimizer="adam", epochs=2, resume=plain, **KW)



def test_resume_of_another_architecture_that_reads_the_same_names_the_layer(tmp_path):
    """Networks that differ in a layer's settings only (here a Residual's
    Dropout rate, as a callback that anneals it leaves its checkpoint) were
    refused with two identical lists of layer types."""
    X, y = data()

    def net(rate):
        return xpnet.Network([xpnet.Dense(4, 8), xpnet.BatchNorm(8), "tanh",
                              xpnet.Residual([xpnet.Dense(8, 8, "relu"), xpnet.Dropout(rate)]),
                              xpnet.Dense(8, 2, "softmax")], dtype="float64", seed=1)  # fmt: skip

    ck = tmp_path / "ck.safetensors"
    net(0.1).fit(X, y, optimizer="adam", epochs=1, checkpoint=ck, **KW)
    with pytest.raises(ValueError, match=r"Dense \(at layers\.3\.1: \{'type': 'Dropout', 'rate': 0\.1\} there, "
                                         r"\{'type': 'Dropout', 'rate': 0\.2\} here\)"):  # fmt: skip
        net(0.2).fit(X, y, optimizer="adam", epochs=2, resume=ck, **KW)


def _run_script(ck, out, *extra):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(ck), str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    ref_out = tmp_path / "ref.safetensors"
    began = time.monotonic()
    p = _run_script(tmp_path / "ref_ck.safetensors", ref_out)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    # kill moments within a whole run's time (the killed runs' slowed fsyncs only add), so one is killed
    # on a machine fast enough to finish a run before 2.5 s as well
    hi = min(2.5, 0.9 * (time.monotonic() - began))

    ck, out = tmp_path / "ck.safetensors", tmp_path / "out.safetensors"
    rng = np.random.default_rng(int(time.time()))
    kills = 0
    for attempt in range(12):
        p = _run_script(ck, out, "--slow-fsync", "0.04")
        if kills < 5:
            try:
                p.wait(timeout=float(rng.uniform(min(0.6, hi / 2), hi)))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                kills += 1
                if ck.exists():  # whatever moment the kill came, the checkpoint is whole
                    xpnet.load(ck, backend="numpy")
                strays = [f for f in tmp_path.iterdir() if f.name.startswith(".ck.safetensors")]
                assert len(strays) <= 1
                continue
        else:
            p.wait(timeout=120)
        if p.returncode == 0:
            break
        pytest.fail(p.stderr.read().decode())
    assert kills >= 1, "no run was killed; the test proved nothing"
    assert json.loads((tmp_path / "out.safetensors.json").read_text()) == json.loads((tmp_path / "ref.safetensors.json").read_text())
    got, want = xpnet.load(out, backend="numpy"), xpnet.load(ref_out, backend="numpy")
    for p, q in zip(got._params(), want._params()):  # same weights, bit for bit
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize(("arrays", "state", "message"), [
    ([np.arange(3)], {}, r"get_arrays\(\)\[0\] must be a finite array of the network's dtype \(float64\).*int64"),
    ([np.zeros(3, np.float32)], {}, r"get_arrays\(\)\[0\] must be a finite array.*float32"),
    ([None], {}, r"callback Keeps: get_arrays\(\)\[0\] must be a finite array.*got None"),
    ([], {"n": np.int64(3)}, r"get_state\(\) must return plain JSON values"),
    ([], {"best": float("nan")}, r"get_state\(\) must return plain JSON values"),
])  # fmt: skip
def test_a_callbacks_state_that_could_not_be_resumed_is_refused_when_written(tmp_path, arrays, state, message):
    """Written without a word, such a checkpoint was refused only on resume: the run could not go on."""

    class Keeps(xpnet.Callback):
        def on_epoch_end(self, epoch, logs):
            return False

        def get_state(self):
            return state

        def get_arrays(self):
            return arrays

    X = np.random.default_rng(0).normal(size=(8, 2))
    net = xpnet.MLP([2, 1], backend="numpy", dtype="float64", seed=0)
    with pytest.raises(ValueError, match=message):
        net.fit(X, X[:, :1], epochs=2, checkpoint=tmp_path / "c.safetensors", callbacks=[Keeps()])


@pytest.mark.parametrize("first, then", [(True, False), (False, True)])
def test_resuming_with_another_shuffle_is_refused(tmp_path, first, then):
    """A resume with another shuffle trained the remaining epochs on other
    minibatches without a word: neither the stopped run nor the
    uninterrupted one. The same shuffle resumes exactly."""
    X, y = data()
    ref = make()
    h_ref = ref.fit(X, y, epochs=4, shuffle=first, **KW)
    ck = tmp_path / "ck.safetensors"
    make().fit(X, y, epochs=2, checkpoint=ck, shuffle=first, **KW)
    with pytest.raises(ValueError, match=f"shuffle={first}, this one asks for shuffle={then}"):
        make().fit(X, y, epochs=4, resume=ck, shuffle=then, **KW)
    again = make()
    assert_same_run(ref, h_ref, again, again.fit(X, y, epochs=4, resume=ck, shuffle=first, **KW))


def test_resuming_a_scheduled_run_with_another_lr_is_refused(tmp_path):
    """The schedule's saved state went on from the first lr while a warm-up's
    next schedule and a cosine restart read the new one: half applied."""
    X = np.linspace(-1.0, 1.0, 40).reshape(20, 2)
    y = X[:, :1] - X[:, 1:]
    path = tmp_path / "run.ck"
    kw = dict(optimizer="sgd", epochs=2, seed=0, batch_size=5, lr_schedule=xpnet.schedules.StepLR(1, 0.5))
    xpnet.MLP([2, 3, 1], backend="numpy", seed=0).fit(X, y, lr=0.1, checkpoint=path, **kw)
    with pytest.raises(ValueError, match=r"run had lr=0.1 under its lr_schedule, this one passes lr=0.01"):
        xpnet.MLP([2, 3, 1], backend="numpy", seed=0).fit(X, y, lr=0.01, resume=path, **{**kw, "epochs": 4})
    history = xpnet.MLP([2, 3, 1], backend="numpy", seed=0).fit(X, y, lr=0.1, resume=path, **{**kw, "epochs": 4})
    assert history.lr == [0.1, 0.05, 0.025, 0.0125]


def test_an_interrupt_after_the_weights_went_non_finite_says_so_and_which_weights_are_kept(tmp_path):
    """The interrupt lands mid-epoch after a step made the weights infinite:
    nothing is written, and the message said only "training interrupted",
    as if the network held the weights of the step it stopped at."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(37, 4)) * 1e3, rng.normal(size=(37, 2))
    net = xpnet.MLP([4, 8, 2], "relu", "identity", dtype="float64", seed=1)
    before = [host(p).copy() for p in net._params()]
    ck = tmp_path / "ck.safetensors"
    diverged = r"no longer finite \(the run diverged\): the network keeps its initial"
    with pytest.raises(TrainingInterrupted, match=diverged) as e:
        net.fit(X, y, loss="mse", optimizer="sgd", lr=1e6, batch_size=8, epochs=5, seed=3, checkpoint=ck,
                interrupt=StopAfter(3))  # fmt: skip
    assert e.value.checkpoint is None and e.value.write_checkpoint is None and not ck.exists()
    for kept, initial in zip(net._params(), before):
        np.testing.assert_array_equal(host(kept), initial)


def test_training_interrupted_pickles_across_processes(tmp_path):
    """A worker process's TrainingInterrupted reaches its parent (a process
    pool pickles it): message, History and checkpoint path; the closure
    that writes a checkpoint of the live run stays behind."""
    import pickle

    X, y = data()
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(TrainingInterrupted) as e:
        make().fit(X, y, optimizer="adam", epochs=5, checkpoint=ck, interrupt=StopAfter(6), **KW)
    e.value.note = "kept"
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is TrainingInterrupted and str(back) == str(e.value)
    assert back.checkpoint == str(ck) and back.history.loss == e.value.history.loss and back.history.loss
    assert back.write_checkpoint is None and back.note == "kept"


class _PairSGD(xpnet.Optimizer):
    """SGD whose config holds a tuple, which the checkpoint's JSON reads back as a list."""

    name = "pair_sgd_test"

    def __init__(self, lr=0.1, pair=(0.5, 0.25)):
        self.lr, self.pair = lr, tuple(pair)

    def config(self):
        return {"lr": self.lr, "pair": self.pair}

    def step(self, params, grads, state, decay=None):
        return [p - self.lr * self.pair[0] * g for p, g in zip(params, grads)], state


def test_resume_takes_an_optimizer_whose_settings_hold_a_tuple(tmp_path, monkeypatch):
    """The settings check compared the file's list with the live tuple and
    refused every resume of such an optimizer."""
    from xpnet.optimizers import OPTIMIZERS

    monkeypatch.setitem(OPTIMIZERS._classes, _PairSGD.name, _PairSGD)
    X, y = data()
    ck = tmp_path / "ck.safetensors"
    ref = make().fit(X, y, optimizer=_PairSGD(), epochs=4, **{**KW, "lr": None})
    with pytest.raises(TrainingInterrupted):
        make().fit(X, y, optimizer=_PairSGD(), epochs=4, checkpoint=ck, interrupt=StopAfter(7), **{**KW, "lr": None})
    resumed = make(seed=5).fit(X, y, optimizer=_PairSGD(), epochs=4, resume=ck, **{**KW, "lr": None})
    assert resumed.loss == ref.loss


def test_a_checkpoint_load_would_refuse_is_refused_when_written(tmp_path):
    """A non-finite optimizer state (Adam's v overflowed) was written, and
    both load and resume refused the file: refused before the file is
    touched now, naming the tensor, as save refuses a non-finite weight."""
    from xpnet import checkpoints
    from xpnet.records import History, Position

    net = xpnet.MLP([3, 1], backend="numpy", seed=0)
    opt = xpnet.Adam()
    state = opt.init_state(net._params())
    state["v"][0] = state["v"][0] + np.inf
    path = tmp_path / "c.safetensors"
    with pytest.raises(ValueError, match=r"cannot save .*c.safetensors: tensor optimizer.v.0 holds infinite values"):
        checkpoints.write(path, net, opt, state, net._params(), History(), Position(0, 0, None, None))
    assert not list(tmp_path.iterdir())
    state["v"][0] = np.zeros_like(state["v"][0])
    checkpoints.write(path, net, opt, state, net._params(), History(), Position(0, 0, None, None))
    xpnet.load(path)


class _ScaleByPair(xpnet.layers.Layer):
    """A layer whose settings hold a tuple and NumPy scalars: values the
    model file writes as JSON (a list, plain floats)."""

    name = "_scale_by_pair"

    def __init__(self, n, pair=(1.0, 2.0)):
        super().__init__()
        self.n, self.pair = n, pair

    def config(self):
        return {"n": self.n, "pair": self.pair}

    def input_width(self):
        return self.n

    def forward(self, xp, params, buffers, X, ctx):
        return X * float(self.pair[1]), None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * float(self.pair[1]), []


@pytest.mark.parametrize("pair", [(1.0, 2.0), (np.float32(0.5), np.float64(0.25))], ids=["tuple", "numpy-scalars"])
def test_resume_takes_a_layer_whose_settings_hold_a_tuple(tmp_path, monkeypatch, pair):
    """The architecture check compared the file's JSON (a list, plain
    floats) with the live config (a tuple, NumPy scalars), which save
    accepts, and refused every resume of such a network as 'written for
    another architecture', naming two equal layers."""
    from xpnet.layers import LAYERS

    monkeypatch.setitem(LAYERS._classes, _ScaleByPair.name, _ScaleByPair)
    X, y = data()
    ck = tmp_path / "ck.safetensors"

    def net(seed=1):
        return xpnet.Network([_ScaleByPair(4, pair), xpnet.Dense(4, 2, "softmax")], dtype="float64", seed=seed)

    ref = net()
    h_ref = ref.fit(X, y, epochs=4, **KW)
    net().fit(X, y, epochs=2, checkpoint=ck, **KW)
    resumed = net(seed=5)
    assert_same_run(ref, h_ref, resumed, resumed.fit(X, y, epochs=4, resume=ck, **KW))


def test_a_checkpoint_corrupted_on_disk_is_refused_on_resume(tmp_path):
    """A bit flipped in a checkpoint's optimizer state or weights resumed a
    run other than the one written, in silence (a flipped mantissa bit
    leaves a finite number, which every other check accepts)."""
    import struct

    X, y = data()
    ck = tmp_path / "ck.safetensors"
    make().fit(X, y, optimizer="adam", epochs=2, checkpoint=ck, **KW)
    raw = bytearray(ck.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    raw[8 + n] ^= 0x01
    ck.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum") as e:
        make().fit(X, y, optimizer="adam", epochs=4, resume=ck, **KW)
    assert str(ck) in str(e.value)
