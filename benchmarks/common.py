"""Shared pieces: run settings, initial weights, torch helpers."""

from __future__ import annotations

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


def compiled(mode: Any) -> dict[str, Any]:
    """``fit``'s ``compile=`` argument, left out for the default ("auto"), so
    that the same rows also time an xpnet from before the option existed."""
    return {} if mode == "auto" else {"compile": mode}


def host_params(net: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``[(W, b), ...]`` of an xpnet network as NumPy arrays (copies)."""
    import xpnet

    out = []
    for layer in net.layers:
        w = np.array(xpnet.to_numpy(layer.weights), copy=True)
        b = None if layer.bias is None else np.array(xpnet.to_numpy(layer.bias), copy=True)
        out.append((w, b))
    return out


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
