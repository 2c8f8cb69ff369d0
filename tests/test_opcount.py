"""Array operations per training step: xpnet against the benchmarks'
hand-written loops, counted on NumPy (:mod:`opcount`).

On a GPU every array operation is a kernel launch, so at small and medium
sizes their number decides the speed (issue 14). These tests count, they do
not time: xpnet's steady training step (one epoch of several minibatches, no
shuffling, as the hand loops run) must take at most 10% more operations than
the hand-written step at the W3 and Tiny sizes, and an epoch's end may add
one reduction per parameter (the NaN guard), nothing else.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from helpers import import_benchmarks
from opcount import CountingArray, counting, counting_array, counting_backend

import xpnet

tiny, w3, _common = import_benchmarks("tiny", "w3", "common")
host_params = _common.host_params

#: xpnet may take this much more than the hand-written step.
SLACK = 1.10


def per_step(run, steps=(3, 5)):
    """Operations of one step: the count of ``run(k)`` for two step counts,
    differenced (fixed costs such as input checks cancel), and its breakdown."""
    tallies = []
    for k in steps:
        with counting() as tally:
            run(k)
        tallies.append(tally)
    extra = steps[1] - steps[0]
    ops = collections.Counter(tallies[1].ops)
    ops.subtract(tallies[0].ops)
    return (tallies[1].total - tallies[0].total) / extra, {k: v / extra for k, v in ops.items() if v}


def _report(what, mine, hand):
    return f"{what}: xpnet {mine[0]:g} ops per step, hand-written {hand[0]:g}\n  xpnet {mine[1]}\n  hand  {hand[1]}"


def test_the_counter_counts_operations_not_views():
    a, b = counting_array(np.ones((3, 4))), counting_array(np.ones((4, 2)))
    with counting() as tally:
        c = a @ b + 1.0  # matmul, add
        d = c.T  # a view: no operation
        s = np.sum(d * d)  # multiply, sum
        m = d[np.array([0, 1])]  # a gather
        float(s)
        e = s * 2.0  # 0-d arrays count too (on a GPU they are kernels)
    assert isinstance(c, CountingArray) and isinstance(m, CountingArray) and isinstance(e, CountingArray)
    assert tally.total == 6, tally.ops


def test_a_counting_network_counts_its_forward_pass():
    net = xpnet.MLP([3, 4, 2], backend=counting_backend(), seed=0)
    assert all(isinstance(p, CountingArray) for p in net._params())
    X = net.backend.asarray(np.ones((5, 3)), "float32")
    with counting() as tally:
        net._predict(net._params(), [], X)
    assert tally.total == 5, tally.ops  # matmul, bias add, relu's maximum; matmul, bias add (identity output)


def w3_runs(batch=32):
    rng = np.random.default_rng(0)
    X = rng.random((batch, w3.SIZES[0]), dtype=np.float32)
    y = rng.integers(0, w3.SIZES[-1], batch)
    Y = np.eye(w3.SIZES[-1], dtype=np.float32)[y]
    params = host_params(w3.xpnet_network())

    def hand(k):
        ps = [(counting_array(w), counting_array(b)) for w, b in params]
        w3.numpy_loop(np, counting_array(X), counting_array(Y), ps, w3.LR, k)

    def mine(k, **fit):
        net = xpnet.MLP(w3.SIZES, activation="relu", output_activation="softmax", backend=counting_backend(),
                        dtype=w3.DTYPE, seed=w3.SEED)  # fmt: skip
        options = dict(epochs=1, batch_size=batch, shuffle=False) | fit
        net.fit(np.tile(X, (k, 1)), np.tile(y, k), loss="cross_entropy", optimizer="sgd", lr=w3.LR, **options)

    return hand, mine, X, y


def tiny_runs():
    X, T = tiny.data()
    params = host_params(tiny.xpnet_network())

    def hand(k):
        (W1, b1), (W2, b2) = [(counting_array(w), counting_array(b)) for w, b in params]
        tiny.numpy_loop(counting_array(X), counting_array(T), W1, b1, W2, b2, tiny.LR, k)

    def mine(k, **fit):
        net = xpnet.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", backend=counting_backend(),
                        dtype="float64", seed=tiny.SEED)  # fmt: skip
        options = dict(epochs=1, batch_size=4, shuffle=False) | fit
        net.fit(np.tile(X, (k, 1)), np.tile(T, (k, 1)), loss="mse", optimizer="sgd", lr=tiny.LR, **options)

    return hand, mine


@pytest.mark.parametrize("workload", ["W3", "Tiny"])
def test_a_training_step_takes_no_more_operations_than_the_hand_written_loop(workload):
    hand, mine = w3_runs()[:2] if workload == "W3" else tiny_runs()
    counted_hand, counted_mine = per_step(hand), per_step(mine)
    assert counted_hand[0] > 20  # the counter sees the hand loop's operations
    assert counted_mine[0] <= SLACK * counted_hand[0], _report(workload, counted_mine, counted_hand)


@pytest.mark.parametrize("workload", ["W3", "Tiny"])
def test_an_epoch_end_adds_one_reduction_per_parameter(workload):
    """Full-batch epochs (every step ends an epoch): the NaN guard's one sum
    per parameter, and no more (the epoch's mean loss is taken on the host)."""
    mine = w3_runs()[1] if workload == "W3" else tiny_runs()[1]
    step, _ = per_step(mine)
    epoch, ops = per_step(lambda k: mine(1, epochs=k, batch_size=None))
    n_params = 6 if workload == "W3" else 4
    assert epoch <= step + n_params, (step, epoch, ops)
