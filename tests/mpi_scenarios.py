"""Training runs for the distributed tests, and the script that runs them under
``mpiexec``: ``python tests/mpi_scenarios.py MODE OUT_DIR``.

MODE ``train`` runs every scenario of :func:`scenarios` with
``distributed=True``; each rank writes ``OUT_DIR/<name>.rank<r>.npz`` (final
weights and History). ``test_distributed.py`` trains the same scenarios in one
process and compares. The failure modes make one rank misbehave:
``bad-input`` (NaN in rank 1's X), ``raise-mid`` (rank 1 raises at its third
step), ``mismatch`` (rank 1 passes fewer rows).
"""

from __future__ import annotations

import os
import sys

import numpy as np

import xpnet


def data(n=37, n_in=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    labels = rng.integers(0, 3, n)
    return X, labels


def scenarios() -> dict[str, dict]:
    """name -> how to build the network and call fit. 37 rows: a full batch
    splits 19/18; batch 9 leaves a last global batch of one row (an empty
    share on rank 1); batch 10 ends with 7 rows (4/3)."""
    X, labels = data()
    Xv, lv = data(11, seed=1)
    two = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    binary = (two > 0).astype(np.float64)
    return {
        "gd_mse": dict(
            net=dict(sizes=[5, 8, 2], activation="tanh"),
            X=X, y=two, fit=dict(loss="mse", optimizer="sgd", lr=0.05, epochs=6),
        ),
        "sgd_ce_batch9": dict(
            net=dict(sizes=[5, 8, 3], activation="relu", output_activation="softmax"),
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=4, batch_size=9, seed=3),
        ),
        "momentum_ce_batch10_unshuffled": dict(
            net=dict(sizes=[5, 8, 3], activation="tanh", output_activation="softmax"),
            X=X, y=labels,
            fit=dict(loss="cross_entropy", optimizer="momentum", lr=0.05, epochs=3, batch_size=10, shuffle=False),
        ),
        "adam_bce_validation": dict(
            net=dict(sizes=[5, 6, 2], activation="tanh", output_activation="sigmoid"),
            X=X, y=binary,
            fit=dict(loss="binary_cross_entropy", optimizer="adam", lr=0.01, epochs=5, batch_size=10, seed=4,
                     validation_data=(Xv, (np.stack([np.sin(Xv[:, 0]), Xv[:, 1] * Xv[:, 2]], 1) > 0) * 1.0)),
        ),
        "weighted_split_schedule_early_stopping": dict(
            net=dict(sizes=[5, 8, 3], activation="tanh", output_activation="softmax"),
            X=X, y=labels,
            fit=dict(loss="cross_entropy", optimizer="adam", lr=0.05, epochs=30, batch_size=9, seed=7,
                     sample_weight=np.linspace(0.5, 2.0, len(labels)), class_weight="balanced",
                     validation_split=0.25, metrics=("accuracy",),
                     lr_schedule=xpnet.schedules.ReduceLROnPlateau(factor=0.5, patience=1),
                     callbacks=[xpnet.EarlyStopping(patience=3)]),
        ),
        "adam_sse_batch7_tol": dict(
            net=dict(sizes=[5, 4, 2], activation="leaky_relu"),
            X=X, y=two, fit=dict(loss="sse", optimizer="adam", lr=0.01, epochs=30, batch_size=7, seed=5, tol=0.25),
        ),
        "registered_layers_residual": dict(  # layers built from their specs through the registry, as files do
            net=dict(layers=[
                {"type": "Dense", "n_in": 5, "n_out": 8, "activation": "tanh", "bias": True},
                {"type": "Residual", "layers": [
                    {"type": "Dense", "n_in": 8, "n_out": 8, "activation": {"name": "elu", "config": {"alpha": 0.5}},
                     "bias": True},
                    {"type": "Dense", "n_in": 8, "n_out": 8, "activation": "identity", "bias": False}]},
                {"type": "Activation", "activation": "gelu"},
                {"type": "Dense", "n_in": 8, "n_out": 3, "activation": "softmax", "bias": True},
            ]),
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="adamw", lr=0.01, epochs=3, batch_size=9, seed=7),
        ),
        "adam_ce_torch": dict(
            backend="torch", net=dict(sizes=[5, 8, 3], activation="relu", output_activation="softmax"),
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, batch_size=9, seed=6),
        ),
        "adam_ce_strict_device1": dict(
            backend=("array_api_strict", "device1"),
            net=dict(sizes=[5, 8, 3], activation="relu", output_activation="softmax"),
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, batch_size=9, seed=6),
        ),
        # Dropout, BatchNorm, LayerNorm: masks by global row, statistics of the global batch
        "bn_dropout_ce_batch10_validation": dict(
            layers=norm_layers,
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=3, batch_size=10, seed=7,
                                    validation_data=(Xv, lv)),
        ),
        "bn_sse_batch8_strict_device1": dict(
            backend=("array_api_strict", "device1"), layers=norm_layers,
            X=X, y=np.eye(3)[labels], fit=dict(loss="sse", optimizer="momentum", lr=0.002, epochs=2, batch_size=8, seed=8),
        ),
    }  # fmt: skip


def norm_layers() -> list:
    return [
        xpnet.Dense(5, 8, bias=False), xpnet.BatchNorm(8), "relu", xpnet.Dropout(0.3),  # no bias before a norm
        xpnet.Dense(8, 8, "tanh"), xpnet.LayerNorm(8), xpnet.Dropout(0.2), xpnet.Dense(8, 3, "softmax"),
    ]  # fmt: skip


def three_process_scenarios() -> dict[str, dict]:
    """For ``mpiexec -n 3``: 37 rows in batches of 7 end with 2 rows, shared
    1, 1, 0: the empty share must still join BatchNorm's sums."""
    X, labels = data()
    return {
        "bn_empty_share": dict(
            layers=norm_layers,
            X=X, y=labels, fit=dict(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=2, batch_size=7, seed=9),
        ),
    }  # fmt: skip


def usable_scenarios() -> dict[str, dict]:
    """The scenarios whose backend is usable here (torch may be missing)."""
    usable = xpnet.available_backends()
    return {k: v for k, v in scenarios().items() if backend_name(v) in usable}


def backend_name(spec: dict) -> str:
    name = spec.get("backend", "numpy")
    return name[0] if isinstance(name, tuple) else name


def backend_of(spec: dict):
    name = spec.get("backend", "numpy")
    name, device = name if isinstance(name, tuple) else (name, None)
    return xpnet.get_backend(name, device)


def build(spec: dict, seed=0):
    if "layers" in spec:
        return xpnet.Network(spec["layers"](), backend=backend_of(spec), dtype="float64", seed=seed)
    if "layers" in spec["net"]:
        from xpnet.layers import layer_from_config

        layers = [layer_from_config(layer) for layer in spec["net"]["layers"]]
        return xpnet.Network(layers, backend=backend_of(spec), dtype="float64", seed=seed)
    return xpnet.MLP(**spec["net"], backend=backend_of(spec), dtype="float64", seed=seed)


def weights(net) -> list[np.ndarray]:
    """Parameters, then buffers (BatchNorm's running statistics)."""
    return [xpnet.to_numpy(p) for p in net._params() + net._buffers()]


def save(out: str, name: str, rank: int, net, history, **extra) -> None:
    arrays = {f"p{i}": w for i, w in enumerate(weights(net))}
    np.savez(
        os.path.join(out, f"{name}.rank{rank}.npz"),
        loss=np.asarray(history.loss), val_loss=np.asarray(history.val_loss), **arrays, **extra,
    )


class SetOn:
    """An ``interrupt`` that is set on one rank only."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def is_set(self) -> bool:
        return self.on


def run_training(out: str) -> None:
    from mpi4py import MPI

    from xpnet import checkpoints, training

    rank = MPI.COMM_WORLD.Get_rank()
    if rank != 0:  # only rank 0 may write checkpoints or show progress
        def refuse(*args, **kwargs):
            raise AssertionError(f"rank {rank} wrote a checkpoint")

        checkpoints.write = refuse
        original_bar = training._progress_bar

        def bar(epochs, progress, initial=0):
            assert not progress, f"rank {rank} shows a progress bar"
            return original_bar(epochs, progress, initial)

        training._progress_bar = bar

    for name, spec in usable_scenarios().items():
        net = build(spec)
        history = net.fit(spec["X"], spec["y"], **spec["fit"], distributed=True)
        save(out, name, rank, net, history, stopped_early=history.stopped_early)

    # seed=None everywhere: rank 0's initial weights and shuffling are used by all
    spec = scenarios()["sgd_ce_batch9"]
    net = xpnet.MLP(**spec["net"], backend="numpy", dtype="float64", seed=None)
    history = net.fit(spec["X"], spec["y"], **{**spec["fit"], "seed": None}, validation_split=0.3, distributed=True)
    save(out, "seed_none", rank, net, history)

    # checkpoints and resume: 2 epochs, then on to 4, with progress on
    spec = scenarios()["adam_bce_validation"]
    path = os.path.join(out, "run.ckpt")
    build(spec).fit(spec["X"], spec["y"], **{**spec["fit"], "epochs": 2}, checkpoint=path, progress=True,
                    distributed=True)  # fmt: skip
    net = build(spec)
    history = net.fit(spec["X"], spec["y"], **{**spec["fit"], "epochs": 4}, resume=path, checkpoint=path,
                      distributed=True)  # fmt: skip
    save(out, "resumed", rank, net, history)

    # an interrupt set on rank 1 only stops every rank after the same step
    spec = scenarios()["sgd_ce_batch9"]
    net = build(spec)
    try:
        net.fit(spec["X"], spec["y"], **spec["fit"], interrupt=SetOn(rank == 1), distributed=True)
    except xpnet.training.TrainingInterrupted as exc:
        save(out, "interrupted", rank, net, exc.history, message=str(exc))


def run_three(out: str) -> None:
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    for name, spec in three_process_scenarios().items():
        net = build(spec)
        history = net.fit(spec["X"], spec["y"], **spec["fit"], distributed=True)
        save(out, name, rank, net, history)


def run_failure(mode: str) -> None:
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    spec = scenarios()["sgd_ce_batch9"]
    X, y = spec["X"], spec["y"]
    net = build(spec)
    if rank == 1 and mode == "bad-input":
        X = X.copy()
        X[3, 2] = np.nan
    if rank == 1 and mode == "mismatch":
        X, y = X[:-1], y[:-1]
    if mode == "loss-differs":  # huber on one-hot rows
        y = np.eye(3)[y]
    if mode == "warm-local":  # each rank's own fit first: its optimizer state and running statistics differ
        net = pretrained_locally(rank)
    if rank == 1 and mode == "raise-mid":
        calls = []
        original = net._loss_and_grads

        def failing(*args):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("rank 1 fails on purpose at its third step")
            return original(*args)

        net._loss_and_grads = failing
    fit = {**spec["fit"], "epochs": 50}
    if mode == "vector-loss":  # every rank: a loss whose value is one per row, not one number
        fit["loss"] = _RowMeanCrossEntropy()
    if mode == "interrupt-one":  # only rank 0 passes interrupt=
        import threading

        fit["interrupt"] = threading.Event() if rank == 0 else None
    if mode == "stop-one":  # only rank 0's callback stops (another validation set would do the same): it hung
        fit["callbacks"] = [_StopOnRank0(rank)]
    if mode == "network-differs" and rank == 1:  # the same parameter count: a blend of two models was trained
        net = xpnet.MLP([5, 6, 3], "relu", "softmax", backend=backend_of(spec), dtype="float64", seed=0)
    if mode == "class-weight-differs":
        fit["class_weight"] = {1: 1.0 + rank}
    if mode == "shuffle-callable":  # unpicklable, and each rank's own draw: rank 0's order is used by all
        fit["shuffle"] = lambda n: np.random.permutation(n)
        fit["batch_size"] = 9
    fit.update(_further_failure_modes(mode, rank, spec))
    if mode == "diverge-progress":  # rank 0's bar reports at its pace (epochs slower than it: each), the others later
        from xpnet import training

        training._BAR_SECONDS = 0.0
        fit["progress"] = rank == 0
    try:
        net.fit(X, y, **fit, distributed=True)
    except FloatingPointError as exc:  # the NaN guard's, on every rank: the job goes on, the weights are kept
        print(f"rank {rank} kept the weights of epoch {exc.epochs_kept}", flush=True)
    print(f"rank {rank} finished training {np.concatenate([w.ravel() for w in weights(net)]).sum():.17g}", flush=True)


def _further_failure_modes(mode: str, rank: int, spec: dict) -> dict:
    """fit options of the modes that hung, or trained another model than
    one process would, before they were refused or handled."""
    if mode == "option-one" and rank == 1:  # a wrong option on one rank: it hung in the first allgather
        return {"shuffle": "yes"}
    if mode == "rate-one":  # a callback sets the optimizer's rate on rank 0 only: two models, silently
        opt = xpnet.optimizers.get_optimizer("sgd", 0.1)
        return {"optimizer": opt, "lr": None, "callbacks": [_HalveRateOnRank0(opt, rank)]}
    if mode == "compile-one" and rank == 1:  # checked before the job's failures were caught: it hung
        return {"compile": "yes"}
    if mode == "seed-differs" and rank == 1:  # seed=None on rank 1 only: it hung in a broadcast
        return {"seed": None, "validation_split": 0.2}
    if mode == "seed-differs":
        return {"validation_split": 0.2}
    if mode == "plateau-differs":  # other validation data: the ranks' schedules set different rates
        Xv, yv = data(11, seed=1 + rank)
        return {"validation_data": (Xv, yv), "lr_schedule": xpnet.schedules.ReduceLROnPlateau(patience=0)}
    if mode == "best-differs":  # other validation data: each rank restored its own best epoch's weights, silently
        Xv, yv = data(11, seed=1 + rank)
        return {"validation_data": (Xv, (yv + rank) % 3), "callbacks": [xpnet.EarlyStopping(patience=100)]}
    if mode in ("edit-all", "edit-one"):  # a callback's weights: dropped distributed, adopted by one process
        return {"callbacks": [_ZeroWeightsAfterEpoch0(rank if mode == "edit-one" else 1)]}
    if mode in ("diverge", "diverge-progress"):  # every rank's NaN guard: the CLI saves the kept weights, no abort
        return {"lr": 1e6, "optimizer": "sgd"}
    if mode == "schedule-nan":  # a rate that is NaN on every rank: refused as in one process, not as a disagreement
        return {"lr_schedule": _NanAfterEpoch1()}
    if mode == "warm-local":  # continues each rank's own Adam state: the ranks trained two models, silently
        return {"optimizer": "adam", "lr": 0.01, "epochs": 3, "batch_size": 7, "warm_start": True}
    if mode == "schedule-callable":  # a callable object as lr_schedule: its repr's address differs per process
        return {"lr_schedule": _Halving(0.1)}
    if mode == "loss-differs":  # the same loss with other settings: a blend of two losses was trained, silently
        return {"loss": xpnet.losses.Huber(delta=1.0 + rank)}
    if mode == "interrupted-one":  # a callback stops with TrainingInterrupted on rank 1 only: it hung
        return {"callbacks": [_InterruptOnRank1(rank)]}
    if mode == "checkpoint-folder" and rank == 0:  # only rank 0 writes: its folder was checked after epoch 0
        return {"checkpoint": "no/such/folder/run.ck"}
    return {}


def pretrained_locally(rank: int):
    """A network with BatchNorm after a fit of its own on rank ``rank``'s half of the rows (no MPI)."""
    X, labels = data()
    net = xpnet.Network(norm_layers(), backend="numpy", dtype="float64", seed=0)
    net.fit(X[rank::2], labels[rank::2], loss="cross_entropy", optimizer="adam", lr=0.01, epochs=2, batch_size=8,
            seed=rank)  # fmt: skip
    return net


class _NanAfterEpoch1(xpnet.schedules.Schedule):
    """A schedule reading the epoch's loss whose rate turns NaN (a formula gone wrong) after epoch 1."""

    monitor = "loss"

    def advance(self, state, base_lr, logs):
        return {"lr": float("nan") if state["epoch"] >= 1 else state["lr"], "epoch": state["epoch"] + 1}


class _Halving:
    """An ``epoch -> lr`` callable object (no ``__name__``, no ``__repr__`` of its own)."""

    def __init__(self, lr):
        self.lr = lr

    def __call__(self, epoch):
        return self.lr * 0.5 ** (epoch // 10)


class _ZeroWeightsAfterEpoch0(xpnet.Callback):
    def __init__(self, rank):
        self.rank = rank

    def on_train_begin(self, network):
        self.network = network

    def on_epoch_end(self, epoch, logs):
        if epoch == 0 and self.rank == 1:
            self.network.layers[0].weights = np.zeros(self.network.layers[0].weights.shape)


class _InterruptOnRank1(xpnet.Callback):
    def __init__(self, rank):
        self.rank = rank

    def on_epoch_end(self, epoch, logs):
        if self.rank == 1 and epoch == 1:
            raise xpnet.TrainingInterrupted("a callback stops on rank 1", xpnet.History(), None)


class _HalveRateOnRank0(xpnet.Callback):
    def __init__(self, opt, rank):
        self.opt, self.rank = opt, rank

    def on_epoch_end(self, epoch, logs):
        if epoch == 0 and self.rank == 0:
            self.opt.lr = self.opt.lr / 2


class _StopOnRank0(xpnet.Callback):
    def __init__(self, rank):
        self.rank = rank

    def on_epoch_end(self, epoch, logs):
        return self.rank == 0 and epoch >= 2


class _RowMeanCrossEntropy(type(xpnet.get_loss("cross_entropy"))):
    def _value(self, xp, t, y):
        return -xp.sum(t * xp.log(y), axis=1)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "train":
        run_training(out)
    elif mode == "train3":
        run_three(out)
    else:
        run_failure(mode)
