"""MLPClassifier and MLPRegressor: scikit-learn's parameters, attributes and
methods, trained by xpnet on any backend."""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from scipy.sparse import csr_matrix, issparse
from sklearn import config_context
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from .._backend import quiet_float_errors
from .._programs import one_program
from .._xp import index_dtype
from ._arrays import NUMPY, dispatching, float_dtypes, host, listed_as_array, readable, space_of, to_space, validated
from ._base import BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]

_COMMON_DOC = """
    Parameters, fitted attributes and methods are scikit-learn's (see
    ``sklearn.neural_network.MLPClassifier``/``MLPRegressor``), with the same
    defaults and meanings; the same ``random_state`` draws the same initial
    weights and the same early-stopping split. Three more parameters:

    backend : str or None, default=None
        Where to train: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
        ``"array_api_strict"``. ``None``: under ``sklearn.set_config(
        array_api_dispatch=True)`` the library and device of the input arrays,
        else xpnet's automatic choice (CuPy when a GPU works, else NumPy).
        NumPy inputs give NumPy answers wherever the work happens.
    device : str or None, default=None
        The backend's device (``"cuda:1"``); ``None``: its default.
    dtype : {"float32", "float64"} or None, default=None
        The parameters' dtype; ``None`` follows the input (float32 stays
        float32, other inputs become float64; ``solver="lbfgs"`` trains
        float64), as scikit-learn does.
"""


def _init_params(est: Any, params: dict[str, Any]) -> None:
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = "A multi-layer perceptron classifier (log loss), trained by xpnet.\n" + _COMMON_DOC

    #: The loss, as scikit-learn's classifier names it (an attribute there too, not a parameter).
    loss = "log_loss"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        device=None,
        dtype=None,
    ):
        _init_params(self, locals())

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        """``X`` checked, ``y`` as the binarized targets (host); ``classes_``
        set on a fresh fit, checked against the previous one otherwise."""
        X, y = validated(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=float_dtypes(X), reset=reset
        )
        given, y = y, host(y)
        if y.ndim == 2 and y.shape[1] == 1:  # scikit-learn's words for a sparse column: dense data is required
            y = column_or_1d(given if issparse(given) else y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(given if issparse(given) else y)  # sparse in, sparse out
            self.classes_ = _classes_like(self._label_binarizer.classes_, X)
        else:
            classes, known = unique_labels(y), host(self.classes_)
            if self.warm_start:
                if set(classes) != set(known):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous call to "
                        f"fit. Previously got {known}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, known, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. 'y' has {classes}."
                )
            if space_of(self.classes_) != space_of(X):  # the continued fit moved the model (its _fit_space): so
                self.classes_ = _classes_like(known, X)  # do its classes, or metrics mixed them with other namespaces
        return X, self._label_binarizer.transform(y).astype(np.float64)

    @available_if(lambda est: est._partial_fit_allowed())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing the optimizer state of the
        previous call. ``classes`` (all the labels) is required the first time."""
        X, y = readable(X, "X", "MLPClassifier.partial_fit"), readable(y, "y", "MLPClassifier.partial_fit")
        before = dict(vars(self))  # a first call refused later (an unknown backend) sets no classes_
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            labels = _unique_classes(classes)
            self._label_binarizer = LabelBinarizer()
            multilabel = type_of_target(host(y)).startswith("multilabel")
            target = (y if issparse(y) else host(y)) if multilabel else labels  # sparse in, sparse out
            self._label_binarizer.fit(target)
            self.classes_ = _classes_like(labels, X)
        elif classes is not None and not np.array_equal(host(self.classes_), _unique_classes(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {host(self.classes_)!r}"
            )
        return self._fit(X, y, sample_weight, incremental=True, before=before)

    def predict(self, X: Any) -> Any:
        """The predicted classes (an indicator matrix for multilabel targets)."""
        out, space = self._outputs(X, "predict")
        xp = self._net_namespace(out)
        if self.out_activation_ == "logistic" and self.n_outputs_ > 1:  # multilabel
            labels = one_program(_above_half, out)(out)
            if space == NUMPY:  # scikit-learn's int64, also from a backend without it (JAX's 32-bit mode)
                labels = host(labels).astype(np.int64, copy=False)
            if getattr(self._label_binarizer, "sparse_input_", False):  # fitted on a sparse y, as scikit-learn
                return csr_matrix(host(labels))
            return to_space(labels, space)
        if self.classes_.shape[0] == 1:
            index = one_program(_zero_index, out)(out)  # beside the classes
        elif self.out_activation_ == "softmax":
            index = xp.argmax(out, axis=1)
        else:
            index = one_program(_above_half, out)(out[:, 0])
        if space == NUMPY or isinstance(self.classes_, np.ndarray):  # labels only NumPy holds, or NumPy asked:
            return host(self.classes_)[host(index)]  # a NumPy answer (classes_ is a tensor after a dispatched fit)
        return to_space(xp.take(_device_copy(self.classes_, out), index), space)

    def predict_proba(self, X: Any) -> Any:
        """Probabilities of each class (two columns for two classes)."""
        out, space = self._outputs(X, "predict_proba")
        if self.n_outputs_ == 1:
            out = one_program(_both_classes, out)(out)
        return to_space(out, space)

    def predict_log_proba(self, X: Any) -> Any:
        """``log(predict_proba(X))`` (``-inf`` for a probability of 0)."""
        out, space = self._outputs(X, "predict_log_proba")
        xp = self._net_namespace(out)
        if self.n_outputs_ == 1:
            out = one_program(_both_classes, out)(out)
        with quiet_float_errors():
            return to_space(xp.log(out), space)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The mean accuracy on ``(X, y)``, as scikit-learn's (its inputs read as ``fit`` reads them)."""
        X, y, weights = _readable_for_score(self, X, y, sample_weight)
        if _jax_under_dispatch(X):
            return _score_on_host(accuracy_score, self.predict(X), y, weights)
        return super().score(X, y, weights)

    @staticmethod
    def _net_namespace(out: Any) -> Any:
        from array_api_compat import array_namespace

        return array_namespace(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = (
        "A multi-layer perceptron regressor (half squared error, or Poisson with ``loss='poisson'``), "
        "trained by xpnet.\n" + _COMMON_DOC
    )

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        device=None,
        dtype=None,
    ):
        _init_params(self, locals())

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        X, y = validated(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=float_dtypes(X), reset=reset,
        )  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if isinstance(y, np.ndarray) and y.dtype.kind not in "biuf":
            y = _numeric_targets(y, f"MLPRegressor.{'partial_fit' if incremental else 'fit'}")
        if self.loss == "poisson" and bool(host(y).min() < 0):
            raise ValueError("loss='poisson' needs non-negative targets y")
        return X, y

    @available_if(lambda est: est._partial_fit_allowed())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing the optimizer state of the previous call."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """The predicted values: ``(n_samples,)`` for one output."""
        out, space = self._outputs(X, "predict")
        xp = self._net_namespace(out)
        if self.out_activation_ == "exp":  # the network gives the log of the mean
            out = xp.exp(out)
        if out.shape[1] == 1:
            out = xp.reshape(out, (-1,))
        return to_space(out, space)

    _net_namespace = staticmethod(MLPClassifier._net_namespace)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² on ``(X, y)``, as scikit-learn's (its inputs read as ``fit`` reads them)."""
        X, y, weights = _readable_for_score(self, X, y, sample_weight)
        if _jax_under_dispatch(X):
            return _score_on_host(r2_score, self.predict(X), y, weights)
        return super().score(X, y, weights)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"  # fit refuses negative targets there: say so
        return tags


def _above_half(out: Any) -> Any:
    """The labels of logistic outputs: 1 above 0.5. One program on JAX, where
    the eager comparison sent 0.5 to the device, an implicit transfer
    (``jax.transfer_guard`` refuses those)."""
    xp = array_namespace(out)
    return xp.astype(out > 0.5, index_dtype(xp))


def _zero_index(out: Any) -> Any:
    """Class 0 for each row of ``out``, on its device (one program on JAX:
    an eager ``zeros`` is an implicit transfer there)."""
    xp = array_namespace(out)
    return xp.zeros(out.shape[0], dtype=index_dtype(xp), device=array_device(out))


def _both_classes(out: Any) -> Any:
    """The two classes' probabilities from one logistic output (one program
    on JAX: the eager ``1.0 - out`` sent 1.0 to the device implicitly)."""
    xp = array_namespace(out)
    return xp.concat([1.0 - out, out], axis=1)


def _readable_for_score(est: Any, X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
    """``score``'s inputs through :func:`readable`: scikit-learn's metrics
    convert ``y`` and the weights with NumPy, which failed deep in torch on a
    tensor that requires grad or holds bfloat16; under dispatch they move a
    list or Series to the predictions' namespace, which failed on torch."""
    method = f"{type(est).__name__}.score"
    weights = None if sample_weight is None else readable(listed_as_array(sample_weight), "sample_weight", method)
    return readable(X, "X", method), readable(listed_as_array(y), "y", method), weights


def _jax_under_dispatch(X: Any) -> bool:
    return dispatching() and space_of(X).library == "jax"


def _score_on_host(metric: Any, predicted: Any, y: Any, weights: Any) -> float:
    """scikit-learn's ``metric`` of JAX predictions, on NumPy copies (one
    explicit transfer each): on the JAX arrays themselves its metrics ran
    eagerly, each Python number an implicit transfer (refused under
    ``jax.transfer_guard``), and ``r2_score`` writes into its arrays, which
    failed with a TypeError (JAX's are immutable). The score is a Python
    float either way."""
    predicted = predicted if issparse(predicted) else host(predicted)
    y = y if issparse(y) else host(y)
    with config_context(array_api_dispatch=False):
        return float(metric(y, predicted, sample_weight=None if weights is None else host(weights)))


def _unique_classes(classes: Any) -> np.ndarray:
    """partial_fit's ``classes``, sorted and unique on the host. Another
    library's array is copied over; anything else goes to ``unique_labels``
    as given, so that a set or a scalar gets scikit-learn's ValueError
    (NumPy made them a 0-d array, refused deeper down with a TypeError)."""
    return unique_labels(classes if space_of(classes) == NUMPY else host(classes))


def _numeric_targets(y: np.ndarray, method: str) -> np.ndarray:
    """Regression targets of a NumPy dtype that is no number, as float64:
    strings of numbers convert, as scikit-learn converts object and pandas
    string targets; words, dates and durations are refused in words (dates
    trained silently as seconds since 1970, words failed deep in a cast)."""
    expected = f"{method} needs numeric targets y (integers or floats)"
    if y.dtype.kind not in "US":
        raise ValueError(f"{expected}, got dtype {y.dtype}: convert them to numbers first")
    try:
        return y.astype(np.float64)
    except ValueError as exc:
        raise ValueError(f"{expected}, got strings that are no numbers ({exc}); class labels go to "
                         "MLPClassifier") from None  # fmt: skip


def _device_copy(values: Any, like: Any) -> Any:
    """``values`` (host, or ``classes_`` in fit's space) as an array next to ``like``."""
    from .._backend import get_backend

    space = space_of(like)
    return get_backend(space.library, space.device).asarray(values)


def _classes_like(classes: np.ndarray, X: Any) -> Any:
    """``classes_`` in ``X``'s namespace and device under dispatch, as
    scikit-learn's Array API classifiers keep it, so that its metrics and
    ``cross_val_predict`` can mix it with the predictions; labels that no
    array library but NumPy holds (strings, objects), or not exactly (int64
    labels past int32 on JAX's 32-bit mode), stay NumPy."""
    space = space_of(X)
    if not dispatching() or space == NUMPY or classes.dtype.kind not in "biuf":
        return classes
    there = to_space(classes, space)
    return there if np.array_equal(host(there), classes) else classes
