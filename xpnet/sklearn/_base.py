"""What MLPClassifier and MLPRegressor share: scikit-learn's parameters, the
fitted attributes, and the xpnet network that does the work.

The fitted state is scikit-learn's: ``coefs_`` and ``intercepts_`` (NumPy)
and the bookkeeping attributes. The network is a cache of the same weights on
the training backend, which also holds the optimizer state ``partial_fit``
continues. It is rebuilt from ``coefs_``/``intercepts_`` whenever those were
assigned new arrays or written into in place (see :meth:`BaseMLP._cache_holds`).
"""

from __future__ import annotations

import os
import zlib
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._backend import own_broadcasting, to_numpy
from .._dtypes import dtype_name
from ..layers.dense import Dense
from ..network import Network
from ._arrays import (
    NUMPY,
    Space,
    backend_for,
    check_same_space,
    float_dtypes,
    host,
    listed_as_array,
    readable,
    space_of,
    validated,
)
from ._messages import NON_FINITE
from ._objective import output_activation
from ._solvers import full_batch_objective, lbfgs
from ._stochastic import stochastic

__all__ = ["BaseMLP"]

#: scikit-learn's hidden activations -> xpnet's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


class BaseMLP(BaseEstimator):
    """Shared by the two estimators; not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": "no_validation",
        "device": "no_validation",
        "dtype": "no_validation",
    }

    # -- fit ------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseMLP:
        """Fit the model to ``X`` and the target(s) ``y``; ``sample_weight``
        weighs the rows (non-negative; rows of weight 0 still take their place in the minibatches)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @own_broadcasting
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool, before: dict | None = None) -> BaseMLP:
        """``before``: the attributes to restore if the fit is refused before
        training (by default, as they are now)."""
        before = dict(vars(self)) if before is None else before
        try:
            net, X, Y, weights = self._prepared(X, y, sample_weight, incremental)
        except BaseException:  # refused before training: a fit that sets classes_ and fails leaves a mix
            vars(self).clear()
            vars(self).update(before)
            raise
        if self.solver == "lbfgs":
            lbfgs(self, net, X, Y, weights)
        else:
            stochastic(self, net, X, Y, weights, incremental)
        self._take_weights(net)
        if not all(np.all(np.isfinite(w)) for w in (*self.coefs_, *self.intercepts_)):
            raise ValueError(NON_FINITE)
        return self

    def _prepared(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> tuple[Any, Any, Any, Any]:
        """The checked inputs, the fitted attributes a first fit starts with,
        and the network on its backend: ``(net, X, Y, weights)``. What it sets
        is undone by :meth:`_fit` if it raises (an unknown backend after a
        new ``classes_``: predict then failed with AttributeError, or mapped
        the old outputs to the new classes)."""
        method = f"{type(self).__name__}.{'partial_fit' if incremental else 'fit'}"
        X, y = readable(X, "X", method), readable(y, "y", method)
        if sample_weight is not None:
            sample_weight = readable(listed_as_array(sample_weight), "sample_weight", method)
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if not first_pass:
            self._check_same_layers(hidden, incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        space = space_of(X)
        weights = None if sample_weight is None else _checked_weights(sample_weight, X)
        Y = _as_2d(y.toarray() if sp.issparse(y) else y)  # sparse regression targets: n x outputs, small dense
        if not first_pass:
            self._check_same_outputs(Y.shape[1], incremental)
        self.n_outputs_ = Y.shape[1]
        self._random_state = check_random_state(self.random_state)
        dtype = self._dtype_for(X, first_pass)
        backend = backend_for(space, self.backend, self.device)
        self._check_jax_float64(backend, dtype)
        if first_pass:
            self._initialize(Y, [X.shape[1], *hidden, self.n_outputs_], dtype)
        else:
            self._records_for_settings(fresh=False)
        dtype = self._solver_dtype(backend, dtype)
        net = self._network(backend, dtype, keep=True)
        X, Y = net.backend.asarray(_trainable(X, net), dtype), net.backend.asarray(Y, dtype)
        self._fit_space = space.key()
        return net, X, Y, weights

    def _check_same_layers(self, hidden: list[int], incremental: bool) -> None:
        """A continued fit trains the fitted layers: refuse a changed
        ``hidden_layer_sizes`` rather than silently train the old ones."""
        fitted = [int(c.shape[1]) for c in self.coefs_[:-1]]
        if fitted != hidden:
            how = "partial_fit" if incremental else "warm_start=True"
            raise ValueError(
                f"{how} continues the fitted network, whose hidden_layer_sizes are {tuple(fitted)}, but "
                f"hidden_layer_sizes is now {tuple(hidden)}: {_new_network(incremental)}, or set "
                "hidden_layer_sizes back"
            )

    def _check_same_outputs(self, n_outputs: int, incremental: bool) -> None:
        """A continued fit trains the fitted output layer: refuse targets of
        another width before anything changes. Else 'lbfgs' broadcast one
        target column over two outputs in silence, and ``n_outputs_`` no
        longer matched ``coefs_`` (four columns from ``predict_proba``);
        scikit-learn trains on and fails in ``predict``."""
        fitted = int(self.coefs_[-1].shape[1])
        if fitted != n_outputs:
            how = "partial_fit" if incremental else "warm_start=True"
            raise ValueError(
                f"{how} continues the fitted network, which has {fitted} output(s), but y gives {n_outputs}: "
                f"{_new_network(incremental)} for these targets, or pass targets of the fitted shape"
            )

    def _partial_fit_allowed(self) -> bool:
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def _dtype_for(self, X: Any, first_pass: bool = True) -> str:
        """``dtype=None``: the input's float dtype (float32 stays float32) on a
        first fit; after it (``partial_fit``, ``warm_start``) the weights'
        dtype, the input cast to it, as scikit-learn keeps its ``coefs_``."""
        if self.dtype is not None:
            return dtype_name(self.dtype)
        return dtype_name(X.dtype if first_pass else self.coefs_[0].dtype)

    def _solver_dtype(self, backend: Any, dtype: str) -> str:
        """L-BFGS runs in float64 with ``dtype=None``: scikit-learn hands its
        weights to SciPy's float64 minimiser, so its ``coefs_`` (drawn in
        float32 for float32 X) and answers come back float64 (JAX in its
        32-bit mode keeps float32)."""
        if self.solver == "lbfgs" and self.dtype is None and (backend.name != "jax" or _jax_x64()):
            return "float64"
        return dtype

    def _check_jax_float64(self, backend: Any, dtype: str) -> None:
        """float64 X with ``dtype=None`` on JAX in its default 32-bit mode:
        say both ways out, before anything is built."""
        if backend.name == "jax" and dtype == "float64" and self.dtype is None and not _jax_x64():
            raise ValueError("dtype=None trains float64 weights for this X (scikit-learn keeps float32 X in float32 "
                             "and makes anything else float64), but JAX is in its default 32-bit mode in this "
                             "process: pass dtype='float32', or switch on JAX's 64-bit mode (JAX_ENABLE_X64=1 in "
                             "the environment, which the worker processes of n_jobs > 1 inherit too; "
                             "jax.config.update('jax_enable_x64', True) reaches this process only)")  # fmt: skip

    def _initialize(self, Y: Any, layer_units: list[int], dtype: str) -> None:
        """The fitted attributes of a first fit, and scikit-learn's initial weights."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            coef, intercept = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._records_for_settings(fresh=True)

    def _records_for_settings(self, fresh: bool) -> None:
        """The stochastic solvers' records (loss curve, validation scores, best
        loss) as the settings now need them: all new on a first fit; on a
        continued one, only those the settings did not keep before (solver
        or ``early_stopping`` changed under ``warm_start``, where
        scikit-learn fails with an AttributeError or TypeError). New early
        stopping records start from today's weights: a fit whose epochs all
        diverge keeps them (it restored a first fit's random initial weights)."""
        if self.solver == "lbfgs":
            return
        if fresh or getattr(self, "loss_curve_", None) is None:
            self.loss_curve_, self._no_improvement_count = [], 0
        stopping = self.early_stopping
        kept_for = getattr(self, "validation_scores_", None) is not None  # records kept for early stopping?
        if fresh or not hasattr(self, "best_loss_") or kept_for != stopping:
            self.validation_scores_ = [] if stopping else None
            self.best_validation_score_ = -np.inf if stopping else None
            self.best_loss_ = None if stopping else np.inf
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [i.copy() for i in self.intercepts_]

    def _init_coef(self, fan_in: int, fan_out: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        """Glorot's uniform initialisation, as scikit-learn draws it (weights,
        then biases, from the estimator's ``random_state``), so that the same
        ``random_state`` starts both libraries from the same weights."""
        bound = np.sqrt((2.0 if self.activation == "logistic" else 6.0) / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)

    # -- the network ------------------------------------------------------------

    def _network(self, backend: Any, dtype: str, keep: bool = False) -> Network:
        """The cached network when it holds ``coefs_``/``intercepts_`` on
        ``backend`` in ``dtype`` (and today's ``activation``: scikit-learn
        reads it at every forward pass, so ``set_params(activation=...)``
        after a fit changes the predictions); else a new one built from them
        (kept as the cache with ``keep``)."""
        cached = getattr(self, "_net", None)
        if self._cache_holds() and cached.backend == backend and cached.dtype == dtype:
            return cached
        layers = self._layer_specs()
        pairs = zip(self.coefs_, self.intercepts_)
        params = [backend.asarray(np.asarray(p), dtype, copy=True) for pair in pairs for p in pair]
        net = Network._assemble(layers, backend, dtype, params)
        if keep:
            if cached is not None and _shapes(cached) == _shapes(net):  # moved, or weights assigned by the user:
                net._fit_state = cached._moved_fit_state(backend, dtype)  # the optimizer's state goes on
            self._cache(net)
        return net

    def _layer_specs(self) -> list[dict[str, Any]]:
        """The network's layers for ``coefs_`` and today's ``activation``."""
        layers = []
        for i, coef in enumerate(self.coefs_):
            last = i == len(self.coefs_) - 1
            act = output_activation(self.out_activation_) if last else ACTIVATIONS[self.activation]
            layers.append(Dense(coef.shape[0], coef.shape[1], act).spec())
        return layers

    def _cache(self, net: Network) -> None:
        """Keep ``net`` as the network of ``coefs_``/``intercepts_``, with what
        :meth:`_cache_holds` checks later."""
        self._net, self._net_source = net, self._cache_key(net)

    def _cache_holds(self) -> bool:
        """Is the cached network still that of ``coefs_``/``intercepts_``?
        Not when they were assigned, edited in place (a host copy of a
        device's weights does not share their memory: its bytes are
        compared), the network trained on (a shallow copy of this
        estimator shares it), or ``activation``, ``backend``, ``device`` or
        ``dtype`` set since (predictions follow today's settings, not the
        history of the cache)."""
        net, key = getattr(self, "_net", None), getattr(self, "_net_source", None)
        if net is None or not isinstance(key, tuple):
            return False
        now = self._cache_key(net)
        return _same(key[0], now[0]) and key[1] == now[1] and _same(key[2], now[2]) and key[3] == now[3]

    def _cache_key(self, net: Network) -> tuple[Any, ...]:
        """The objects of ``coefs_``/``intercepts_``, the bytes of those that
        are copies (not views of the network's host memory, where an edit
        shows by itself), the network's own parameter arrays, and the
        settings it was built with."""
        weights, params = (*self.coefs_, *self.intercepts_), net._params()
        mine = (*params[0::2], *params[1::2])
        objects = (self.coefs_, self.intercepts_, *weights)
        digest = tuple(None if _views(net, w, p) else zlib.crc32(np.ascontiguousarray(w))
                       for w, p in zip(weights, mine))  # fmt: skip
        settings = (self.activation, self.backend, self.device, self.dtype)  # set_params(...) after a fit
        return objects, digest, tuple(params), settings

    def __getstate__(self) -> dict[str, Any]:
        """Whether the cached network is current travels, not the arrays
        that tell (they hold the network's device arrays a second time)."""
        state = dict(super().__getstate__())  # scikit-learn's may be this object's own __dict__
        state["_net_current"] = self._cache_holds()
        state.pop("_net_source", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        current = state.pop("_net_current", False)
        super().__setstate__(state)
        if current is True and getattr(self, "_net", None) is not None:
            self._cache(self._net)

    def _take_weights(self, net: Network) -> None:
        """``coefs_``/``intercepts_`` from the trained network (one transfer;
        writable, as scikit-learn's, where the library's host view is not)."""
        params = [_writable(host(p)) for p in net._params()]
        self.coefs_, self.intercepts_ = params[0::2], params[1::2]
        self._cache(net)

    @own_broadcasting
    def _loss_grad_lbfgs(self, packed: Any, X: Any, y: Any, sample_weight: Any = None, *unused: Any) -> Any:
        """The L-BFGS objective at ``packed`` (all weights, then all biases,
        flattened), as scikit-learn's private method of this name gives it:
        ``(loss, gradient)`` for prepared ``X`` and 2-D targets ``y``."""
        net = self._network(backend_for(space_of(X), self.backend, self.device), dtype_name(self.coefs_[0].dtype))
        return full_batch_objective(self, net, net.backend.asarray(_trainable(X, net), net.dtype),
                                  net.backend.asarray(_as_2d(y), net.dtype), sample_weight)(packed)  # fmt: skip

    # -- inference ----------------------------------------------------------------

    @own_broadcasting
    def _outputs(self, X: Any, method: str) -> tuple[Any, Space]:
        """The network's outputs for ``X`` on the training backend, and the
        space the answer goes back to."""
        check_is_fitted(self)
        X = readable(X, "X", f"{type(self).__name__}.{method}")
        X = validated(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=float_dtypes(X))
        space = space_of(X)
        check_same_space(getattr(self, "_fit_space", space.key()), space, self, method)
        net = getattr(self, "_net", None)
        if not self._cache_holds():
            dtype = dtype_name(self.dtype) if self.dtype is not None else dtype_name(self.coefs_[0].dtype)
            net = self._network(backend_for(space, self.backend, self.device), dtype)
        return _widened(net, _forward(net, X), X), space

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags


def _widened(net: Network, out: Any, X: Any) -> Any:
    """scikit-learn answers in the dtype of the input and the weights together
    (float64 for float64 input to float32 weights): computed in the weights'
    dtype, then widened. A backend without float64 (JAX without its 64-bit
    mode, array-api-strict's ``no_float64`` device) widens on the host when
    the answer goes to NumPy anyway, and keeps float32 for its own arrays."""
    if net.dtype != "float32" or dtype_name(X.dtype) != "float64":
        return out
    try:
        wide = net.backend.dtype("float64")
    except ValueError:
        return np.asarray(to_numpy(out), np.float64) if space_of(X) == NUMPY else out
    return _namespace(out).astype(out, wide)


def _jax_x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def _shapes(net: Network) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in net._params()]


def _views(net: Network, host_array: np.ndarray, param: Any) -> bool:
    """Is ``host_array`` a view of ``param``'s memory (NumPy, torch on the
    CPU), so that editing it edits the network? Never asks a device."""
    if net.backend.name not in ("numpy", "torch") or "cpu" not in str(net.backend.device):
        return False
    return bool(np.shares_memory(host_array, to_numpy(param)))


def _writable(a: np.ndarray) -> np.ndarray:
    return a if a.flags.writeable else a.copy()


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _hidden_sizes(sizes: Any) -> list[int]:
    sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
    if any(not isinstance(s, Integral) or isinstance(s, bool | np.bool_) for s in sizes):  # 10.0 is no layer width
        raise TypeError(f"hidden_layer_sizes must hold integers (the units of each hidden layer), got {sizes}.")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


#: On NumPy a sparse ``X`` with at least this share of its values stored,
#: whose dense copy takes at most :data:`DENSE_MAX_BYTES`, trains dense: BLAS
#: and NumPy's recorded step beat SciPy's products there (the digits as
#: CSR, half their values stored, trained 1.6x slower sparse).
DENSE_FROM_DENSITY = 0.1
DENSE_MAX_BYTES = 256 * 2**20


def _trainable(X: Any, net: Network) -> Any:
    """``X`` as the network trains on it: sparse on NumPy, whose products
    take SciPy's sparse matrices (:mod:`xpnet._sparse`), unless it is small
    and dense enough to train faster dense; elsewhere sparse input becomes
    dense once, and a clear ``MemoryError`` where that copy cannot fit,
    rather than the process killed for memory."""
    if not sp.issparse(X):
        return X
    need, free = X.shape[0] * X.shape[1] * X.dtype.itemsize, _available_memory()
    fits = free is None or need <= free
    if net.backend.name == "numpy":
        dense_enough = X.nnz >= DENSE_FROM_DENSITY * X.shape[0] * X.shape[1] and need <= DENSE_MAX_BYTES
        return X.toarray() if dense_enough and fits else X
    if not fits:
        raise MemoryError(
            f"X is a sparse {X.shape[0]} x {X.shape[1]} matrix; xpnet.sklearn trains on it as a dense array on "
            f"{net.backend.name}, which needs {need / 2**30:.1f} GiB, and {free / 2**30:.1f} GiB of memory are "
            "available: train on backend='numpy' (sparse as it is), or reduce the features (e.g. TruncatedSVD or "
            "SelectKBest) or the rows"
        )
    return X.toarray()


def _available_memory() -> int | None:
    """Bytes of memory available now, where the system says: Linux's
    ``MemAvailable`` (free memory plus the page cache it can reclaim; free
    pages alone would refuse fits that succeed), else ``sysconf``'s free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


#: Rows of sparse input made dense at a time in inference: at most this many bytes.
SPARSE_CHUNK_BYTES = 64 * 2**20


def _forward(net: Network, X: Any) -> Any:
    """The network's outputs for ``X``; sparse ``X`` as it is on NumPy, else
    dense a chunk of rows at a time, so that inference never holds all of it
    dense."""
    if not sp.issparse(X) or net.backend.name == "numpy":
        return net.forward(net.backend.asarray(X, net.dtype))
    X = X.tocsr()
    rows = max(1, SPARSE_CHUNK_BYTES // max(1, X.shape[1] * X.dtype.itemsize))
    parts = [net.forward(net.backend.asarray(X[i : i + rows].toarray(), net.dtype)) for i in range(0, X.shape[0], rows)]
    return parts[0] if len(parts) == 1 else _namespace(parts[0]).concat(parts, axis=0)


def _as_2d(y: Any) -> Any:
    if y.ndim == 1:
        xp = _namespace(y)
        return xp.reshape(y, (-1, 1))
    return y


def _namespace(a: Any) -> Any:
    from array_api_compat import array_namespace

    return array_namespace(a)


def _checked_weights(sample_weight: Any, X: Any) -> np.ndarray:
    """Row weights on the host: scikit-learn's checks, then no negative
    weights and a positive sum (the loss divides by it). Checked as NumPy
    (another library's weights copied over explicitly): under dispatch
    scikit-learn moved them to X's device and read its checks back with
    ``bool()``, implicit transfers that ``jax.transfer_guard`` refuses on a GPU."""
    on_host = isinstance(sample_weight, Real) or space_of(sample_weight) == NUMPY
    given = sample_weight if on_host else host(sample_weight)
    with config_context(array_api_dispatch=False):
        w = host(_check_sample_weight(given, X))
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("sample_weight must be non-negative with a positive sum")
    return w


def _new_network(incremental: bool) -> str:
    """How to train a new network instead: partial_fit always continues, so
    warm_start=False does not help there; fit then starts afresh."""
    if incremental:
        return "call fit without warm_start to train a new network (partial_fit always continues)"
    return "set warm_start=False (or call fit without warm_start) to train a new network"
