"""Two hooks of ``fit`` that callers with their own training rules use
(xpnet.sklearn): a callable ``shuffle`` gives each epoch's row order, and an
optimizer's ``epoch_penalty(state)`` is added to each epoch's recorded loss."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.optimizers import SGD

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3))
Y = RNG.normal(size=(12, 1))


def _net():
    return xpnet.MLP([3, 4, 1], backend="numpy", dtype="float64", seed=0)


def test_a_callable_shuffle_gives_each_epochs_order():
    orders = [RNG.permutation(12) for _ in range(3)]
    given = iter(orders)
    seen = []

    def shuffle(n):
        seen.append(n)
        return next(given)

    ours = _net()
    h = ours.fit(X, Y, epochs=3, batch_size=5, shuffle=shuffle)
    assert seen == [12, 12, 12]
    same = _net()  # the same epochs, rows put in those orders by hand
    losses = [same.fit(X[o], Y[o], epochs=1, batch_size=5, shuffle=False, warm_start=True).loss[0] for o in orders]
    np.testing.assert_allclose(h.loss, losses, rtol=1e-12)
    for a, b in zip(ours._params(), same._params()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_callable_shuffle_cannot_resume(tmp_path):
    with pytest.raises(ValueError, match="callable shuffle"):
        _net().fit(X, Y, shuffle=lambda n: np.arange(n), resume=tmp_path / "ckpt")
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        _net().fit(X, Y, shuffle="yes")


class _Penalised(SGD):
    """SGD that reports a penalty of 10 times its step count of the epoch."""

    def init_state(self, params):
        return {"steps": 0}

    def step(self, params, grads, state, decay=None):
        new, _ = super().step(params, grads, {}, decay)
        return new, {"steps": state["steps"] + 1}

    def epoch_penalty(self, state):
        return np.asarray(10.0 * state["steps"])


def test_an_optimizers_epoch_penalty_is_added_to_the_loss():
    plain = _net().fit(X, Y, epochs=2, batch_size=4, shuffle=False, optimizer=SGD(0.01))
    penalised = _net().fit(X, Y, epochs=2, batch_size=4, shuffle=False, optimizer=_Penalised(0.01))
    np.testing.assert_allclose(np.asarray(penalised.loss) - np.asarray(plain.loss), [30.0, 60.0], rtol=1e-12)


@pytest.mark.parametrize("order", [np.zeros(12, int), np.arange(6), np.arange(1, 13), np.arange(12.0)])
def test_a_callable_shuffle_must_give_a_permutation(order):
    """Row 0 twelve times trained silently; the rest failed in NumPy or
    with a ZeroDivisionError."""
    net = _net()
    before = [np.array(p) for p in net._params()]
    with pytest.raises(ValueError, match=r"shuffle\(n\) must return a permutation of range\(12\)"):
        net.fit(X, Y, epochs=2, batch_size=5, shuffle=lambda n: order)
    for p, q in zip(net._params(), before):
        np.testing.assert_array_equal(p, q)


def test_fit_takes_seeds_a_checkpoint_can_keep_and_numpy_numbers_for_tol(tmp_path):
    """A seed of 2**63 wrote checkpoints that resume refused; a Generator
    gave a validation split from fresh entropy; tol=np.float32(0.01) was
    refused where lr took NumPy numbers."""
    with pytest.raises(ValueError, match=r"seed must be an int in 0..2\*\*63-1, got 9223372036854775808"):
        _net().fit(X, Y, epochs=1, seed=2**63, checkpoint=tmp_path / "ck")
    with pytest.raises(TypeError, match="seed must be None or an int, got Generator"):
        _net().fit(X, Y, epochs=1, seed=np.random.default_rng(0))
    h = _net().fit(X, Y, epochs=3, seed=np.int64(2**63 - 1), tol=np.float32(10.0))
    assert len(h.loss) == 2  # tol stopped it


def test_a_callback_answers_true_false_or_none():
    class Says(xpnet.Callback):
        def __init__(self, answer):
            self.answer = answer

        def on_epoch_end(self, epoch, logs):
            return self.answer

    assert len(_net().fit(X, Y, epochs=3, callbacks=[Says(None)]).loss) == 3
    assert len(_net().fit(X, Y, epochs=3, callbacks=[Says(np.bool_(True))]).loss) == 1
    with pytest.raises(TypeError, match=r"Says.on_epoch_end must return True \(stop\), False or None, got 'no'"):
        _net().fit(X, Y, epochs=3, callbacks=[Says("no")])


def test_an_optimizer_object_keeps_its_rate_and_a_second_one_is_refused():
    """fit(optimizer=Adam(1e-3), lr=0.5) trained at 1e-3 without a word."""
    with pytest.raises(ValueError, match=r"lr=0.5 and an optimizer object with its own lr=0.001"):
        _net().fit(X, Y, optimizer=xpnet.Adam(1e-3), lr=0.5)
    assert _net().fit(X, Y, optimizer=xpnet.Adam(1e-3), epochs=1).lr == [1e-3]
    assert _net().fit(X, Y, optimizer=xpnet.Adam(0.5), lr=0.5, epochs=1).lr == [0.5]
    with pytest.raises(ValueError, match=r"lr=0.01 and an optimizer object"):  # fit's default value, given
        _net().fit(X, Y, optimizer=xpnet.Adam(1e-3), lr=0.01)
    assert _net().fit(X, Y, optimizer="sgd", epochs=1).lr == [0.01]
    # a name or class without lr: the optimizer's own default (Adam's 1e-3 was 0.01 by name, 1e-3 as an object)
    assert _net().fit(X, Y, optimizer="adam", epochs=1).lr == [1e-3] == _net().fit(X, Y, optimizer=xpnet.Adam).lr


def test_a_callback_may_answer_0_or_1_and_a_duck_is_named_by_its_class():
    class Duck:
        def __init__(self, answer):
            self.answer = answer

        def on_epoch_end(self, epoch, logs):
            return self.answer

    assert len(_net().fit(X, Y, epochs=3, callbacks=[Duck(0)]).loss) == 3
    assert len(_net().fit(X, Y, epochs=3, callbacks=[Duck(np.int64(1))]).loss) == 1
    with pytest.raises(TypeError, match=r"^Duck.on_epoch_end must return True"):
        _net().fit(X, Y, epochs=3, callbacks=[Duck(2)])
