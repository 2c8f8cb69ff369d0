"""Learning-rate schedules: the rate of every epoch equals torch.optim.lr_scheduler's
(the same floats), training with them equals torch's training, History.lr
records them, and checkpoints carry their state so a resumed run goes on
with the same rates."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from helpers import host, try_import

import xpnet
from xpnet import schedules as S


def torch_or_skip():
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    return torch


def xpnet_rates(schedule, base, n, figures=None):
    state, out = schedule.start(base), []
    for e in range(n):
        out.append(schedule.rate(state))
        state = schedule.advance(state, base, None if figures is None else {schedule.monitor: figures[e]})
    return out


def torch_rates(make, base, n, figures=None):
    torch = torch_or_skip()
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched, out = make(torch.optim.lr_scheduler, opt), []
        for e in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step() if figures is None else sched.step(figures[e])
    return out


#: (xpnet schedule, the same in torch)
SCHEDULES = {
    "step": (lambda: S.StepLR(7, 0.3), lambda L, o: L.StepLR(o, 7, 0.3)),
    "step_default_gamma": (lambda: S.StepLR(2), lambda L, o: L.StepLR(o, 2)),
    "exponential": (lambda: S.ExponentialLR(0.93), lambda L, o: L.ExponentialLR(o, 0.93)),
    "cosine": (lambda: S.CosineAnnealingLR(9, 0.001), lambda L, o: L.CosineAnnealingLR(o, 9, 0.001)),
    "cosine_eta0": (lambda: S.CosineAnnealingLR(10), lambda L, o: L.CosineAnnealingLR(o, 10)),
    "warmup": (lambda: S.LinearWarmup(5), lambda L, o: L.LinearLR(o, start_factor=1 / 6, total_iters=5)),
    "warmup_factor": (lambda: S.LinearWarmup(4, start_factor=0.1),
                      lambda L, o: L.LinearLR(o, start_factor=0.1, total_iters=4)),
    "warmup_cosine": (
        lambda: S.LinearWarmup(5, then=S.CosineAnnealingLR(12)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 6, total_iters=5), L.CosineAnnealingLR(o, 12)],
                                    milestones=[5]),
    ),
    "warmup_step": (
        lambda: S.LinearWarmup(4, then=S.StepLR(3, 0.5)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 5, total_iters=4), L.StepLR(o, 3, 0.5)],
                                    milestones=[4]),
    ),
    "warmup_exponential": (
        lambda: S.LinearWarmup(3, then=S.ExponentialLR(0.9)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 4, total_iters=3), L.ExponentialLR(o, 0.9)],
                                    milestones=[3]),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_rates_equal_torch(name):
    ours, theirs = SCHEDULES[name]
    assert xpnet_rates(ours(), 0.1, 45) == torch_rates(theirs, 0.1, 45)


PLATEAU_FIGURES = [1.0 / (1 + e) for e in range(8)] + [0.12 + 0.01 * ((e * 7) % 5) for e in range(37)]


@pytest.mark.parametrize("settings", [
    dict(factor=0.5, patience=2),
    dict(factor=0.5, patience=2, cooldown=3, min_lr=0.02),
    dict(factor=0.3, patience=0, threshold=0.1, threshold_mode="abs"),
    dict(factor=0.5, patience=1, mode="max"),
    dict(factor=0.2, patience=1, mode="max", threshold_mode="abs", threshold=0.01, eps=0.05),
])  # fmt: skip
def test_reduce_on_plateau_equals_torch(settings):
    ours = S.ReduceLROnPlateau(**settings, monitor="val_loss")
    assert xpnet_rates(ours, 0.1, 45, PLATEAU_FIGURES) == torch_rates(
        lambda L, o: L.ReduceLROnPlateau(o, **settings), 0.1, 45, PLATEAU_FIGURES
    )


@pytest.mark.parametrize("mode, bad", [("max", float("inf")), ("min", -float("inf")), ("min", float("nan"))])
def test_reduce_on_plateau_takes_no_infinite_best(tmp_path, mode, bad):
    """An infinite figure is never the best (as for the first epoch, and as
    EarlyStopping judges): taken as best in mode="max", it made every later
    epoch a bad one, and the checkpoint after it failed to write with JSON's
    bare "Out of range float values are not JSON compliant", ending the run."""
    ours = S.ReduceLROnPlateau(factor=0.5, patience=1, monitor="val_score", mode=mode)
    figures = [1.0, bad, 2.0, 3.0] if mode == "max" else [3.0, bad, 2.0, 1.0]
    state = ours.start(0.1)
    for v in figures:
        state = ours.advance(state, 0.1, {"val_score": v})
        ours.check_state(state)  # what resume accepts
    assert state["best"] == figures[-1] and state["lr"] == 0.1

    class Score(xpnet.metrics.Metric):
        name, greater_is_better, calls = "score", mode == "max", 0

        def __call__(self, t, o):
            type(self).calls += 1
            return np.float64(figures[min(type(self).calls, len(figures)) - 1])

    X, y = data()
    h = xpnet.MLP([3, 4, 1], backend="numpy", seed=0).fit(
        X, y, epochs=4, validation_split=0.25, metrics=[Score()], seed=0, checkpoint=tmp_path / "ck",
        lr_schedule=S.ReduceLROnPlateau(factor=0.5, patience=1, monitor="val_score", mode=mode))  # fmt: skip
    np.testing.assert_array_equal(h.metrics["val_score"], figures)  # (NaN as NaN)
    assert h.lr == [0.01] * 4


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.tanh(X @ np.array([[1.0], [-2.0], [0.5]]))


def torch_training(schedule, epochs, X, y, start, lr, batch=None):
    """The same network, loss and SGD in torch, with torch's scheduler."""
    torch = torch_or_skip()
    W1, b1, W2, b2 = (torch.tensor(a, requires_grad=True) for a in start)
    opt = torch.optim.SGD([W1, b1, W2, b2], lr=lr)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = schedule(torch.optim.lr_scheduler, opt)
        for _ in range(epochs):
            parts = []
            for s in range(0, len(X), batch or len(X)):
                xb, tb = Xt[s : s + (batch or len(X))], yt[s : s + (batch or len(X))]
                loss = torch.mean((torch.tanh(xb @ W1 + b1) @ W2 + b2 - tb) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
                parts.append(loss.item())
            epoch_loss = float(np.mean(parts))
            losses.append(epoch_loss)
            sched.step(epoch_loss) if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) else sched.step()
    return losses, [a.detach().numpy() for a in (W1, b1, W2, b2)], sched


TRAINED = {
    "step": (S.StepLR(3, 0.5), lambda L, o: L.StepLR(o, 3, 0.5)),
    "cosine": (S.CosineAnnealingLR(6, 0.01), lambda L, o: L.CosineAnnealingLR(o, 6, 0.01)),
    "warmup_exponential": (
        S.LinearWarmup(3, then=S.ExponentialLR(0.8)),
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 4, total_iters=3), L.ExponentialLR(o, 0.8)],
                                    milestones=[3]),
    ),
    "plateau_on_loss": (S.ReduceLROnPlateau(factor=0.5, patience=1, monitor="loss", threshold=0.3),
                        lambda L, o: L.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.3)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(TRAINED))
def test_training_with_a_schedule_equals_torch(backend, name):
    ours, theirs = TRAINED[name]
    X, y = data()
    net = xpnet.MLP([3, 5, 1], "tanh", backend=backend, dtype="float64", seed=0)
    start = [host(p) for p in net._params()]
    h = net.fit(X, y, loss="mse", optimizer="sgd", lr=0.3, epochs=12, batch_size=8, shuffle=False, lr_schedule=ours)
    want_losses, want_params, _ = torch_training(theirs, 12, X, y, start, 0.3, batch=8)
    np.testing.assert_allclose(h.loss, want_losses, rtol=1e-10)
    assert h.lr == torch_rates(theirs, 0.3, 12, want_losses if "plateau" in name else None)
    assert len(set(h.lr)) > 1  # the rate did change
    for got, want in zip(net._params(), want_params):
        np.testing.assert_allclose(host(got), want, rtol=1e-9, atol=1e-12)


def test_a_callable_is_a_schedule():
    X, y = data()
    net = xpnet.MLP([3, 5, 1], "tanh", backend="numpy", dtype="float64", seed=0)
    h = net.fit(X, y, lr=0.1, epochs=5, lr_schedule=lambda epoch: 0.1 / (1 + epoch))
    assert h.lr == [0.1 / (1 + e) for e in range(5)]


def test_a_callable_is_asked_only_for_the_epochs_that_run(tmp_path):
    """It was asked for the epoch after the last: ``rates[e]`` raised an
    IndexError once training was done, losing the History and the best
    weights, and a resumed run crashed the same way."""
    X, y = data()
    rates = [0.1, 0.05, 0.02]
    net = xpnet.MLP([3, 5, 1], "tanh", backend="numpy", dtype="float64", seed=0)
    h = net.fit(X, y, epochs=3, lr_schedule=lambda e: rates[e], checkpoint=tmp_path / "ck",
                callbacks=[xpnet.EarlyStopping(patience=20)], validation_split=0.25)  # fmt: skip
    assert h.lr == rates
    assert S.get_schedule(lambda e: 0.1).check_state({"lr": 0.1, "epoch": 2}) is None  # an older checkpoint's state


def test_history_lr_without_a_schedule():
    X, y = data()
    h = xpnet.MLP([3, 1], backend="numpy", seed=0).fit(X, y, optimizer="adam", lr=0.003, epochs=4)
    assert h.lr == [0.003] * 4


def test_optimizers_stay_pure():
    """The schedule runs a copy of the optimizer with the epoch's rate; the
    one passed in keeps its own."""
    X, y = data()
    opt = xpnet.Adam(0.01)
    xpnet.MLP([3, 1], backend="numpy", seed=0).fit(X, y, optimizer=opt, epochs=4, lr_schedule=S.ExponentialLR(0.5))
    assert opt.lr == 0.01


@pytest.mark.parametrize("name", ["step", "cosine", "warmup_exponential", "plateau_on_val_loss", "callable"])
@pytest.mark.parametrize("stop_at", [3, 5])
def test_resume_continues_the_schedule(tmp_path, name, stop_at):
    make = {
        "step": lambda: S.StepLR(2, 0.5),
        "cosine": lambda: S.CosineAnnealingLR(4),
        "warmup_exponential": lambda: S.LinearWarmup(3, then=S.ExponentialLR(0.8)),
        "plateau_on_val_loss": lambda: S.ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.02),
        "callable": lambda: (lambda epoch: 0.05 * 0.9**epoch),
    }[name]
    X, y = data()
    kw = dict(loss="mse", optimizer="momentum", lr=0.05, batch_size=5, seed=1, validation_split=0.25)
    ref = xpnet.MLP([3, 5, 1], "tanh", backend="numpy", dtype="float64", seed=0)
    h_ref = ref.fit(X, y, epochs=9, lr_schedule=make(), **kw)
    ck = tmp_path / "ck.safetensors"
    xpnet.MLP([3, 5, 1], "tanh", backend="numpy", dtype="float64", seed=0).fit(
        X, y, epochs=stop_at, lr_schedule=make(), checkpoint=ck, **kw
    )
    net = xpnet.MLP([3, 5, 1], "tanh", backend="numpy", dtype="float64", seed=7)
    h = net.fit(X, y, epochs=9, lr_schedule=make(), resume=ck, **kw)
    assert h.lr == h_ref.lr and h.loss == h_ref.loss and h.val_loss == h_ref.val_loss
    for p, q in zip(net._params(), ref._params()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(("make", "err", "match"), [
    (lambda: S.StepLR(0), ValueError, "step_size"),
    (lambda: S.StepLR(2, gamma=-1), ValueError, "gamma"),
    (lambda: S.ExponentialLR(float("nan")), ValueError, "gamma"),
    (lambda: S.CosineAnnealingLR(2.5), ValueError, "T_max"),
    (lambda: S.CosineAnnealingLR(5, eta_min=-1), ValueError, "eta_min"),
    (lambda: S.LinearWarmup(0), ValueError, "epochs"),
    (lambda: S.LinearWarmup(3, start_factor=0), ValueError, "start_factor"),
    (lambda: S.LinearWarmup(3, then=lambda e: 0.1), TypeError, "schedule"),
    (lambda: S.ReduceLROnPlateau(factor=1.5), ValueError, "factor"),
    (lambda: S.ReduceLROnPlateau(patience=-1), ValueError, "patience"),
    (lambda: S.ReduceLROnPlateau(mode="up"), ValueError, "mode"),
    (lambda: S.ReduceLROnPlateau(threshold_mode="x"), ValueError, "threshold_mode"),
])  # fmt: skip
def test_bad_settings_are_refused(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize(("kw", "err", "match"), [
    (dict(lr_schedule=3), TypeError, "schedule"),
    (dict(lr_schedule=S.ReduceLROnPlateau()), ValueError, "val_loss.*validation_split"),
    (dict(lr_schedule=S.ReduceLROnPlateau(monitor="val_accuracy"), validation_split=0.5), ValueError, "val_accuracy"),
    (dict(lr_schedule=lambda e: -0.1), ValueError, "lr_schedule"),
    (dict(lr_schedule=lambda e: float("inf")), ValueError, "lr_schedule"),
])  # fmt: skip
def test_fit_refuses_bad_schedules(kw, err, match):
    X, y = data()
    with pytest.raises(err, match=match):
        xpnet.MLP([3, 1], backend="numpy").fit(X, y, epochs=2, **kw)


def test_a_schedule_needs_an_optimizer_rate():
    from xpnet.optimizers import Optimizer

    class SignDescent(Optimizer):  # a user's optimizer with a fixed step and no `lr`
        name = "sign_descent_test"

        def step(self, params, grads, state, decay=None):
            return [p - 0.01 * np.sign(g) for p, g in zip(params, grads)], state  # (g > 0) made float64 weights

    X, y = data()
    h = xpnet.MLP([3, 1], backend="numpy").fit(X, y, optimizer=SignDescent(), epochs=3)
    assert h.lr == [] and len(h.loss) == 3
    with pytest.raises(ValueError, match="lr_schedule needs an optimizer with an `lr`"):
        xpnet.MLP([3, 1], backend="numpy").fit(X, y, optimizer=SignDescent(), lr_schedule=S.StepLR(2))


def test_schedules_are_registered_components():
    assert isinstance(S.get_schedule({"name": "StepLR", "config": {"step_size": 4, "gamma": 0.5}}), S.StepLR)
    warm = S.LinearWarmup(2, then=S.CosineAnnealingLR(5))
    again = S.get_schedule({"name": warm.name, "config": warm.config()})
    assert again == warm and xpnet_rates(again, 0.1, 12) == xpnet_rates(warm, 0.1, 12)


def test_a_host_schedule_costs_no_transfer_and_a_monitoring_one_does(monkeypatch):
    from test_training import _SyncCounter, strict_device1_run

    net, Xd, yd = strict_device1_run()
    counter = _SyncCounter(monkeypatch)
    kw = dict(loss="cross_entropy", optimizer="adam", epochs=7, batch_size=8, seed=0)
    net.fit(Xd, yd, lr_schedule=S.CosineAnnealingLR(5), **kw)
    assert counter.count <= 2
    counter.count = 0
    net.fit(Xd, yd, lr_schedule=S.ReduceLROnPlateau(monitor="loss"), **kw)
    assert 7 <= counter.count <= 9


def test_a_divergence_message_names_the_rate_the_schedule_was_using():
    X = np.random.default_rng(0).normal(size=(32, 3))
    net = xpnet.MLP([3, 8, 1], "relu", backend="numpy", seed=0)
    with pytest.raises(FloatingPointError, match=r"in epoch 6; .* lower learning rate than lr=100\.0\)"):
        net.fit(X, X @ np.ones((3, 1)) * 100, loss="mse", optimizer="sgd", lr=0.001, epochs=50,
                lr_schedule=xpnet.schedules.ExponentialLR(gamma=10.0))  # fmt: skip


class _Cycle(S.Schedule):
    """Unregistered: a state of its own keys (no 'lr')."""

    name = "cycle_test"

    def start(self, base_lr):
        return {"epoch": 0, "base": base_lr}

    def advance(self, state, base_lr, logs):
        return {"epoch": state["epoch"] + 1, "base": base_lr}

    def rate(self, state):
        return state["base"] * (1 + state["epoch"] % 2) / 2


def test_a_custom_schedules_own_state_passes_the_base_check_and_numpy_rates_are_numbers():
    """The base check_state demanded exactly {lr, epoch}: a custom schedule's
    checkpoint could be written but never resumed."""
    sched = _Cycle()
    sched.check_state(sched.advance(sched.start(0.1), 0.1, None))
    with pytest.raises(ValueError, match=r"schedule state must hold \['base', 'epoch'\]"):
        sched.check_state({"epoch": 1, "lr": 0.1})
    X = np.random.default_rng(0).normal(size=(8, 2))
    h = xpnet.MLP([2, 1], backend="numpy", seed=0).fit(X, X[:, :1], epochs=2, lr_schedule=lambda e: np.float32(0.05))
    assert h.lr == [pytest.approx(0.05), pytest.approx(0.05)]


def test_linear_warmup_then_a_function_says_why_not():
    with pytest.raises(TypeError, match="then= takes a schedule .* not a function: a checkpoint could not keep it"):
        S.LinearWarmup(2, then=lambda epoch: 0.1)


class _Falling(S.Schedule):
    """A user's schedule that subtracts a step each epoch: below zero after two."""

    name = "falling_test"

    def __init__(self, last=-0.02):
        self.last = last

    def advance(self, state, base_lr, logs):
        return {"lr": self.last if state["epoch"] >= 1 else state["lr"] - 0.02, "epoch": state["epoch"] + 1}


@pytest.mark.parametrize("last", [-0.01, float("nan"), float("inf")])
def test_a_custom_schedules_bad_rate_is_refused_and_the_trained_epochs_are_kept(last):
    """A custom schedule's rates were used as they came: a negative one
    trained uphill without a word, NaN was blamed on the weights ("try a
    lower learning rate than lr=nan"). Callables were checked, schedules not."""
    X, y = data()
    net = xpnet.MLP([3, 1], backend="numpy", seed=0)
    with pytest.raises(ValueError, match=rf"_Falling\(\) gave the learning rate {last} for epoch 3"):
        net.fit(X, y, lr=0.03, epochs=4, lr_schedule=_Falling(last))
    want = xpnet.MLP([3, 1], backend="numpy", seed=0)
    h = want.fit(X, y, lr=0.03, epochs=2, lr_schedule=_Falling())
    assert h.lr == [0.03, pytest.approx(0.01)]
    np.testing.assert_array_equal(host(net.layers[0].weights), host(want.layers[0].weights))  # nothing lost


class _Tenth:
    """An ``epoch -> lr`` callable object: no ``__name__``, the default repr."""

    def __call__(self, epoch):
        return 0.1


def _tenth(epoch, scale):
    return 0.1 * scale


@pytest.mark.parametrize("make", [_Tenth, lambda: functools.partial(_tenth, scale=2.0),
                                  lambda: functools.partial(_Tenth())])  # fmt: skip
def test_a_callable_schedule_is_named_without_its_address(make):
    """A distributed fit compares the schedule's repr across processes: the
    address in a callable object's default repr refused equal arguments."""
    first, second = repr(xpnet.schedules.get_schedule(make())), repr(xpnet.schedules.get_schedule(make()))
    assert first == second and "0x" not in first, (first, second)
