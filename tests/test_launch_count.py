"""Kernel launches per training step on torch: xpnet's eager step against
the benchmarks' hand-written torch loop, counted on the CPU.

On CUDA each operation torch dispatches is a kernel launch, and at the W3
size (784-1024-1024-10) the eager step is bound by them: the GPU run found
xpnet on CUDA torch 1.17x the hand-written loop. Every operation reaching
torch's dispatcher is counted here (a ``TorchDispatchMode``), views and host
reads aside, with the update path CUDA takes (all parameters at once), so a
change that adds launches fails on a machine without a GPU.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from helpers import import_benchmarks, torch_dispatched

import xpnet
from xpnet._kernels import _mode

torch = pytest.importorskip("torch", reason="counts torch's operations (pip install torch)")

w3, _common = import_benchmarks("w3", "common")

#: xpnet may take this much more than the hand-written step.
SLACK = 1.10
#: No kernel: views, aliases and the host read of a 0-d value.
NOT_LAUNCHES = frozenset({"t", "permute", "transpose", "view", "_unsafe_view", "alias", "detach", "lift_fresh",
                "expand", "_local_scalar_dense", "slice", "select", "unsqueeze", "squeeze", "_reshape_alias"})  # fmt: skip


def per_step(run, steps=(3, 5)):
    """Launches of one step (two step counts differenced: fixed costs cancel) and their breakdown."""
    counts = []
    for k in steps:
        with torch_dispatched(NOT_LAUNCHES) as ops:
            run(k)
        counts.append(ops)
    ops = collections.Counter(counts[1])
    ops.subtract(counts[0])
    extra = steps[1] - steps[0]
    return sum(ops.values()) / extra, {k: v / extra for k, v in ops.items() if v}


def test_an_eager_cuda_step_launches_no_more_kernels_than_hand_written_torch():
    batch = 32
    rng = np.random.default_rng(0)
    X = rng.random((batch, w3.SIZES[0]), dtype=np.float32)
    y = rng.integers(0, w3.SIZES[-1], batch)
    Y = np.eye(w3.SIZES[-1], dtype=np.float32)[y]
    params = _common.host_params(w3.xpnet_network())

    def hand(k):
        ps = [(torch.from_numpy(w.copy()), torch.from_numpy(b.copy())) for w, b in params]
        with torch.no_grad():
            w3.torch_loop(torch.from_numpy(X), torch.from_numpy(Y), ps, w3.LR, k)

    def mine(k):
        backend = xpnet.get_backend("torch", "cpu")
        net = xpnet.MLP(w3.SIZES, activation="relu", output_activation="softmax", backend=backend, dtype=w3.DTYPE,
                        seed=w3.SEED)  # fmt: skip
        Xk, yk = backend.asarray(np.tile(X, (k, 1))), backend.asarray(np.tile(y, k))
        with _mode(foreach=True):  # the update CUDA tensors take
            net.fit(Xk, yk, loss="cross_entropy", optimizer="sgd", lr=w3.LR, epochs=1, batch_size=batch,
                    shuffle=False, compile=False)  # fmt: skip

    counted_hand, counted_mine = per_step(hand), per_step(mine)
    assert counted_hand[0] > 30  # the counter sees the hand loop's operations
    assert counted_mine[0] <= SLACK * counted_hand[0], (
        f"xpnet {counted_mine[0]:g} launches per step, hand-written {counted_hand[0]:g}\n"
        f"  xpnet {counted_mine[1]}\n  hand  {counted_hand[1]}"
    )
    assert counted_mine[1].get("_foreach_sub") == 1  # one update for all six parameters
