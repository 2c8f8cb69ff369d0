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
