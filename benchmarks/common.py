"""Shared pieces: run settings, initial weights, the classifiers' network,
loss and hand-written rows, torch helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Settings:
    quick: bool = False
    repeats: int = 5
    gpu: bool = True  # add CuPy / CUDA-torch implementations when usable

    def steps(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def run_length(timed: int, warm: int) -> Callable[[bool], int]:
    """``n(warmup)``: the steps (or epochs) of a timed run, or of a shorter warm-up."""
    return lambda warmup: warm if warmup else timed


def compiled(mode: Any) -> dict[str, Any]:
    """``fit``'s ``compile=`` argument, left out for the default ("auto"), so
    that the same rows also time an xpnet from before the option existed."""
    return {} if mode == "auto" else {"compile": mode}


def backend_of(spec: Any) -> Any:
    """A backend from a name or ``(name, device)``, resolved only when a row
    is prepared (so that building a workload imports no torch)."""
    from xpnet import get_backend

    return get_backend(*spec) if isinstance(spec, tuple) else get_backend(spec)


def random_classes(seed: int, rows: int, sizes: list[int], normal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The classifiers' random data: float32 features (uniform, or standard
    normal), ``rows`` x ``sizes[0]``, and int64 labels of ``sizes[-1]`` classes."""
    rng = np.random.default_rng(seed)
    shape = (rows, sizes[0])
    X = rng.standard_normal(shape, dtype=np.float32) if normal else rng.random(shape, dtype=np.float32)
    return X, rng.integers(0, sizes[-1], rows).astype(np.int64)


def relu_softmax_mlp(sizes: list[int], seed: int, backend: Any = "numpy", dtype: str = "float32") -> Any:
    """The classifiers' xpnet network: ReLU hidden layers, softmax output."""
    from xpnet import MLP

    return MLP(sizes, activation="relu", output_activation="softmax", backend=backend, dtype=dtype, seed=seed)


def net_params(net: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``[(W, b), ...]`` of an xpnet network on the host (views where it lives there)."""
    from xpnet import to_numpy

    return [(to_numpy(l.weights), None if l.bias is None else to_numpy(l.bias)) for l in net.layers]


def host_params(net: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``[(W, b), ...]`` of an xpnet network as NumPy arrays (copies)."""
    return [(np.array(w, copy=True), None if b is None else np.array(b, copy=True)) for w, b in net_params(net)]


def softmax_ce(X: np.ndarray, y: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean cross-entropy of a ReLU network with a softmax output, in float64
    on the host, whichever implementation trained ``params``."""
    a = X.astype(np.float64)
    for i, (w, b) in enumerate(params):
        a = a @ w + b
        if i < len(params) - 1:
            a = np.maximum(a, 0)
    a = a - a.max(axis=1, keepdims=True)
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(a)), y]))


def hand_prepare(loop: Any, params: list, X: np.ndarray, y: np.ndarray, lr: float, n_steps: Any, loss: Any,
                 xp: str = "numpy") -> Any:  # fmt: skip
    """The ``prepare`` of a hand-written row: ``loop(xp, X, Y, params, lr,
    k)`` on fresh copies of ``params`` with one-hot ``Y``, data on ``xp``'s
    device first ("numpy" or "cupy"); ``loss(params on the host)`` after the clock."""
    Y = np.eye(params[-1][0].shape[1], dtype=X.dtype)[y]

    def prepare(warmup: bool):
        import importlib

        mod = importlib.import_module(xp)
        ps = [(mod.asarray(w.copy()), mod.asarray(b.copy())) for w, b in params]
        Xd, Yd = mod.asarray(X), mod.asarray(Y)
        k = n_steps(warmup)

        def run():
            loop(mod, Xd, Yd, ps, lr, k)
            return lambda: {"final_loss": loss([(_to_host(w), _to_host(b)) for w, b in ps])}

        return run

    return prepare


def _to_host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else a  # CuPy's copy to the host; NumPy's own


def torch_dtype(dtype: str) -> Any:
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[dtype]


def torch_sequential(params: list[tuple[np.ndarray, np.ndarray | None]], activations: list[str], dtype: str, device: Any):
    """A ``torch.nn.Sequential`` of Linear layers holding copies of ``params``
    (``nn.Linear`` stores ``W.T``) and the given activations."""
    import torch

    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "identity": None, "softmax": None}
    mods = []
    for (w, b), act in zip(params, activations):
        lin = torch.nn.Linear(w.shape[0], w.shape[1], bias=b is not None)
        with torch.no_grad():
            lin.weight = torch.nn.Parameter(torch.tensor(w.T.copy(), dtype=torch_dtype(dtype)))
            if b is not None:
                lin.bias = torch.nn.Parameter(torch.tensor(b, dtype=torch_dtype(dtype)))
        mods.append(lin)
        if acts[act] is not None:
            mods.append(acts[act]())
    return torch.nn.Sequential(*mods).to(device)


def torch_training(params: list, activations: list[str], dtype: str, device: Any, optimizer: str, lr: float,
                   loss: str = "CrossEntropyLoss") -> tuple[Any, Any, Any]:  # fmt: skip
    """A torch copy of the network (:func:`torch_sequential`), its
    ``torch.optim.<optimizer>`` and its ``torch.nn.<loss>``."""
    import torch

    model = torch_sequential(params, activations, dtype, device)
    return model, getattr(torch.optim, optimizer)(model.parameters(), lr=lr), getattr(torch.nn, loss)()


def torch_params(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W, b), ...]`` of a torch ``Sequential``'s Linear layers, on the host."""
    import torch

    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    return [(m.weight.detach().cpu().numpy().T, m.bias.detach().cpu().numpy()) for m in lins]


def torch_full_batch_steps(model: Any, opt: Any, loss_fn: Any, X: Any, y: Any, k: int) -> None:
    """``k`` PyTorch autograd steps on all of ``X``, each loss read on the host
    (as ``fit``'s History reads it once an epoch, here every step)."""
    for _ in range(k):
        loss = loss_fn(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()


def torch_summed_steps(model: Any, opt: Any, loss_fn: Any, batches: Any) -> float:
    """PyTorch autograd steps over the ``(X, y)`` pairs of ``batches``; their
    losses summed on the device and read once (as ``fit`` reads an epoch's)."""
    total = None
    for Xb, yb in batches:
        loss = loss_fn(model(Xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total = loss.detach() if total is None else total + loss.detach()
    return total.item()


def torch_tensor(a: np.ndarray, device: Any, dtype: Any = None) -> Any:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(dtype)
    return t.to(device)


def sklearn_plain_sgd(hidden: int, lr: float, batch: int, *, shuffle: bool, random_state: int) -> dict[str, Any]:
    """scikit-learn MLP settings for the same training as xpnet's: one ReLU
    hidden layer, plain SGD at a constant rate (no momentum, no Nesterov), no
    L2 penalty, and no early stopping or tolerance ending the run early."""
    return dict(
        hidden_layer_sizes=(hidden,), activation="relu", solver="sgd", learning_rate="constant",
        learning_rate_init=lr, batch_size=batch, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
        shuffle=shuffle, tol=0.0, n_iter_no_change=10**9, early_stopping=False, random_state=random_state,
    )  # fmt: skip


def sklearn_inject(model: Any, X: np.ndarray, y: np.ndarray, params: list[tuple[np.ndarray, np.ndarray | None]], epochs: int) -> None:
    """Give a scikit-learn MLP our initial weights.

    scikit-learn has no way to pass initial weights, so: one warm-start fit
    of one epoch to create its attributes, then overwrite ``coefs_`` and
    ``intercepts_`` (biases it cannot switch off start at zero) and reset the
    counters; the timed ``fit`` then continues from exactly our weights."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model.set_params(max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    dtype = model.coefs_[0].dtype
    model.coefs_ = [np.array(w, dtype=dtype, copy=True) for w, _ in params]
    model.intercepts_ = [
        np.zeros(w.shape[1], dtype=dtype) if b is None else np.array(b, dtype=dtype, copy=True) for w, b in params
    ]
    for attr in ("_optimizer", "loss_curve_", "best_loss_", "_no_improvement_count", "t_", "n_iter_"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.loss_curve_ = []
    model._no_improvement_count = 0
    model.best_loss_ = np.inf
    model.t_ = 0
    model.set_params(max_iter=epochs)


def sklearn_fit(model: Any, X: np.ndarray, y: np.ndarray) -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
