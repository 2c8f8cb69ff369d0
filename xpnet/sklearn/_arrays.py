"""Where the estimators compute, and in which namespace their answers go back.

scikit-learn's contract: without ``array_api_dispatch`` every input becomes
NumPy and every answer is NumPy, wherever the work happens (a GPU chosen
with ``backend=``). With ``sklearn.set_config(array_api_dispatch=True)``,
arrays of another library (CuPy, torch, JAX, array-api-strict) stay on their
device, the estimator trains there unless ``backend=`` says otherwise, and
its answers come back in the input's namespace and device; a later call with
arrays of another namespace or device is refused, as scikit-learn's Array
API estimators refuse it.
"""

from __future__ import annotations

import functools
from numbers import Real
from typing import Any, NamedTuple

import array_api_compat as compat
import numpy as np
from scipy.sparse import issparse
from sklearn import config_context, get_config
from sklearn.utils.validation import _assert_all_finite, validate_data

from .._backend import Backend, get_backend, numpy_lacks_dtype, to_numpy
from .._dtypes import is_ml_dtype
from .._programs import one_program
from ..validation import refuse_torch_layouts, refuse_traced, refuse_without_data

__all__ = [
    "Space", "backend_for", "check_same_space", "float_dtypes", "host", "listed_as_array", "readable", "space_of",
    "to_space", "validated",
]  # fmt: skip

_LIBRARIES = (
    ("cupy", compat.is_cupy_array),
    ("torch", compat.is_torch_array),
    ("jax", compat.is_jax_array),
    ("array_api_strict", lambda a: type(a).__module__.startswith("array_api_strict")),
)


class Space(NamedTuple):
    """An input's library (an xpnet backend name) and device."""

    library: str
    device: Any

    def __str__(self) -> str:
        return self.library if self.library == "numpy" else f"{self.library} on {self.device}"

    def key(self) -> tuple[str, str]:
        """What an estimator keeps of fit's inputs: plain strings, which pickle
        anywhere (a CuPy device object would not unpickle without a GPU)."""
        return self.library, str(self.device)


NUMPY = Space("numpy", "cpu")


def dispatching() -> bool:
    return bool(get_config().get("array_api_dispatch", False))


def space_of(a: Any) -> Space:
    """Where ``a`` lives; anything that is not another library's array
    (lists, pandas, sparse matrices, NumPy) counts as NumPy."""
    for name, owns in _LIBRARIES:
        if owns(a):
            if name == "jax":
                _jax_lookups_cached()
            return Space(name, compat.device(a))
    return NUMPY


@functools.cache
def _jax_lookups_cached() -> None:
    """array-api-compat's first look at a JAX array calls ``jnp.empty(0)``, a
    transfer that ``jax.transfer_guard("disallow")`` refuses; xpnet's copy
    looks once, traced, when its JAX namespace is imported, and here
    scikit-learn's vendored copy (its validation's ``get_namespace``) does
    too, before the first estimator call that would otherwise look under a guard."""
    import jax
    from sklearn.externals import array_api_compat as vendored

    from .. import _jax_namespace  # noqa: F401  (xpnet's own lookup)

    array = jax.device_put(np.empty(0, dtype=np.float32))
    jax.make_jaxpr(lambda: vendored.array_namespace(array) and None)()


def backend_for(space: Space, backend: Any, device: Any) -> Backend:
    """The backend to train on: ``backend=``/``device=`` when given, else the
    input's library and device under dispatch, else xpnet's automatic choice."""
    if backend is not None:
        return get_backend(backend, device)
    if space.library != "numpy":
        return get_backend(space.library, space.device if device is None else device)
    return get_backend(None, device)


def to_space(a: Any, space: Space) -> Any:
    """A result computed on the training backend, as an array of ``space``
    (moved at most once; nothing moves when it is already there)."""
    if space.library == "numpy":
        return np.asarray(to_numpy(a))
    if space_of(a) == space:
        return a
    host = to_numpy(a)
    return get_backend(space.library, space.device).asarray(host)


def check_same_space(fitted: tuple[str, str], given: Space, estimator: Any, method: str) -> None:
    """Under dispatch, refuse inputs of another namespace or device than
    fit's (``fitted``: :meth:`Space.key` of fit's input)."""
    if not dispatching() or tuple(fitted) == given.key():
        return
    library, device = fitted
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the same namespace and the same "
        f"device as those passed to fit(): fit got {library} ({device}), {method} got {given} (convert the "
        "input, or fit again on it)"
    )


def float_dtypes(X: Any) -> tuple[Any, Any]:
    """``(float64, float32)`` of ``X``'s namespace under dispatch (scikit-learn's
    validation casts to the first unless the input has one of them), else NumPy's."""
    if dispatching() and space_of(X) != NUMPY:
        xp = compat.array_namespace(X)
        return xp.float64, xp.float32
    return np.float64, np.float32


def host(a: Any) -> np.ndarray:
    """A NumPy copy of any array (labels, weights: host-side bookkeeping),
    a SciPy sparse one (a multilabel indicator ``y``) made dense."""
    if issparse(a):
        return a.toarray()
    return np.asarray(to_numpy(a))


def readable(a: Any, what: str, method: str) -> Any:
    """``a`` as scikit-learn's validation can read it. NumPy's conversion
    failed deep inside it on a JAX tracer, a torch ``meta``, sparse or
    nested tensor, a deleted JAX array (refused here in words), a torch
    tensor that requires grad (detached: the user's graph stays theirs), a
    negative view, and bfloat16, the float8s and int4s, which NumPy lacks
    (float64, as scikit-learn makes any float but float32, and int64)."""
    refuse_traced(method, a)
    refuse_without_data(a, what)
    if compat.is_torch_array(a):
        refuse_torch_layouts(a, what)  # a nested tensor's first size failed inside torch
        a = a.detach().resolve_neg()
        return a.double() if numpy_lacks_dtype(a) else a
    if (isinstance(a, np.ndarray) or (compat.is_jax_array(a) and not dispatching())) and is_ml_dtype(a.dtype):
        host = to_numpy(a)  # NumPy counts ml_dtypes' numbers (JAX's bfloat16, float8s, int4s) as raw bytes
        return host.astype(np.float64 if "float" in host.dtype.name else np.int64)
    return a


def listed_as_array(a: Any) -> Any:
    """An array-like given as a list, tuple or pandas Series (``sample_weight``,
    ``score``'s ``y``), as a NumPy array under dispatch: scikit-learn then
    moves it to X's namespace (its checks, its metrics), which failed on
    torch for anything but an array ("'list' object has no attribute
    'strides'"; its own estimators' ``score`` too). Arrays, scalars and
    sparse matrices go on as given."""
    if not dispatching() or isinstance(a, np.ndarray | Real) or issparse(a):
        return a
    return np.asarray(a) if space_of(a) == NUMPY else a


def validated(estimator: Any, X: Any, y: Any = "no_validation", **params: Any) -> Any:
    """scikit-learn's ``validate_data(estimator, X, y, **params)``. Under
    dispatch, another library's arrays are checked for NaN and infinity
    here, on their device: scikit-learn's check took ``bool()`` of a 0-d
    device array, an implicit transfer that ``jax.transfer_guard`` refuses
    on a GPU. NumPy inputs take scikit-learn's path unchanged."""
    if not dispatching() or space_of(X) == NUMPY:
        return validate_data(estimator, X, y, **params)
    with config_context(assume_finite=True):  # X's check and y's (which no parameter turns off)
        out = validate_data(estimator, X, y, **params)
    for a, name in zip(out if isinstance(out, tuple) else (out,), ("X", "y")):
        _assert_finite(a, name, estimator)
    return out


def _assert_finite(a: Any, name: str, estimator: Any) -> None:
    """scikit-learn's finite check of a validated array, reduced where ``a``
    lives: one boolean moves, explicitly; the values move only to word
    scikit-learn's own error when some are not finite."""
    values = a.data if issparse(a) else a
    if get_config()["assume_finite"] or not _floating(values):
        return
    if bool(to_numpy(one_program(_all_finite, values)(values))):
        return
    _assert_all_finite(host(values), msg_dtype=values.dtype, estimator_name=type(estimator).__name__, input_name=name)


def _all_finite(a: Any) -> Any:
    """A 0-d boolean on ``a``'s device (one program on JAX)."""
    xp = compat.array_namespace(a)
    return xp.all(xp.isfinite(a))


def _floating(a: Any) -> bool:
    """Does scikit-learn check ``a`` (it checks only real and complex floats)?"""
    return compat.array_namespace(a).isdtype(a.dtype, ("real floating", "complex floating"))
