"""Layers made of layers: :class:`Sequential` chains them, :class:`Residual`
adds its input to their output (``Y = X + f(X)``).

A container's parameters (and buffers) are its children's, concatenated in
order and named ``"<i>.<name>"``; its kernels hand each child its slice, so
containers nest to any depth and a network is a container at heart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..activations import Activation
from ..registry import register
from .base import SETTING_EDITS, Layer, layer_from_config, other_library, read_only

__all__ = ["Residual", "Sequential", "as_layer"]


def as_layer(item: Any) -> Layer:
    """A layer from a layer, an activation (name or object), or a spec dict."""
    from .activation import ActivationLayer

    if isinstance(item, Layer):
        return item
    if isinstance(item, Activation | str):
        return ActivationLayer(item)
    if isinstance(item, dict):
        return layer_from_config(item)
    if isinstance(item, type) and issubclass(item, Layer | Activation):  # Dropout for Dropout(0.5)
        raise TypeError(f"a layer must be an xpnet Layer object, got the class {item.__name__}: pass "
                        f"{item.__name__}(...) with its settings")  # fmt: skip
    raise TypeError(f"a layer must be an xpnet Layer (e.g. Dense) or an activation name, got {type(item).__name__}")


class FixedLayers(list):
    """A container's layers: a list to read, refused to change in place. The
    container fixed its parameters' layout, widths and slices when it was
    built; a layer appended or replaced afterwards would show in ``repr``
    and in saved files but not in ``predict`` (and break ``fit``)."""

    MESSAGE = (
        "a network's (or container's) layers cannot be changed in place: its parameters and widths were laid "
        "out when it was built. Build a new Network (or Sequential) with the layers you want, e.g. "
        "Network([*(layer.spec() for layer in net.layers), Dense(...)]) (copy weights over with the layers' "
        "weights and bias setters)"
    )

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(self.MESSAGE)

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (list(self),)


@register
class Sequential(Layer):
    """Layers applied one after the other."""

    name = "Sequential"

    def __setattr__(self, name: str, value: Any) -> None:
        """Refuses a second ``layers``: the slices and widths of the first stay
        fixed, so new layers would show in ``repr`` and files but not compute."""
        if name == "layers" and "layers" in self.__dict__:
            raise AttributeError(FixedLayers.MESSAGE)
        super().__setattr__(name, value)

    def __init__(self, layers: Iterable[Any]) -> None:
        super().__init__()
        if isinstance(layers, Layer | str | dict):
            raise TypeError("Sequential takes a list of layers, e.g. Sequential([Dense(4, 8), Dense(8, 2)])")
        self.layers = FixedLayers(as_layer(item) for item in layers)
        if not self.layers:
            raise ValueError(f"{type(self).__name__} needs at least one layer, got none")
        self._widths = _chain_widths(self.layers)
        self._slices = _slices(self.layers)
        self._sort_layers()

    def _sort_layers(self) -> None:
        """Which layers run a user's code (their kernels' results are checked)
        and which are xpnet's own, called as they are; again after a setting
        is reassigned (:data:`SETTING_EDITS`: a user's activation given to a
        built Dense)."""
        self._edits = SETTING_EDITS[0]
        self._foreign = [_runs_user_code(layer) for layer in self.layers]
        # the widths the next layer takes are checked; the last layer's is its parent's (or fit's) to check
        last = len(self.layers) - 1
        self._checked = [k < last and (self._foreign[k] or bool(c.children())) for k, c in enumerate(self.layers)]
        #: xpnet's own layers whose Y the next layer needs not checked: forward calls them as they are
        self._trusted = [not (foreign or checked) for foreign, checked in zip(self._foreign, self._checked)]

    def config(self) -> dict[str, Any]:
        return {"layers": [layer.spec() for layer in self.layers]}

    def children(self) -> list[Layer]:
        return self.layers

    def input_width(self) -> int | None:
        return self._widths[0]

    def output_width(self, n_in: int | None) -> int | None:
        return _chain_widths(self.layers, n_in)[-1]

    # -- parameters and buffers: the children's, concatenated -------------------

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return _merged(self.layers, "parameter_shapes")

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return _merged(self.layers, "buffer_shapes")

    def decayed(self) -> tuple[str, ...]:
        return tuple(f"{i}.{name}" for i, layer in enumerate(self.layers) for name in layer.decayed())

    def nonnegative_buffers(self) -> tuple[str, ...]:
        return tuple(f"{i}.{name}" for i, layer in enumerate(self.layers) for name in layer.nonnegative_buffers())

    def init_parameters(self, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
        return _merged(self.layers, "init_parameters", rng, dtype)  # in order: layer by layer

    def init_buffers(self, dtype: str) -> dict[str, np.ndarray]:
        return _merged(self.layers, "init_buffers", dtype)

    # -- kernels ---------------------------------------------------------------

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, list[Any], list[Any]]:
        """Chain the children. In inference (``ctx.training`` false) no cache
        is kept: each child's intermediates are freed as soon as the next
        child has its input, so memory holds about two layers' outputs."""
        if self._edits != SETTING_EDITS[0]:
            self._sort_layers()
        caches, new_buffers = [], []
        keep = ctx is None or ctx.training
        for k, (layer, trusted, (p0, p1, b0, b1)) in enumerate(zip(self.layers, self._trusted, self._slices)):
            if trusted:  # xpnet's own leaf layer: the protocol's tuple, its own buffers (no checks: per layer per step)
                X, cache, b = layer.forward(xp, params[p0:p1], buffers[b0:b1], X, ctx)
            else:
                rows, args = X.shape[0], (xp, params[p0:p1], buffers[b0:b1], X, ctx)
                out = _call_user(layer, "forward", args) if self._foreign[k] else layer.forward(*args)
                X, cache, b = _returned(layer, "forward", out) if self._foreign[k] else out
                if self._checked[k]:
                    _check_y(layer, X, (rows, self._widths[k + 1]), self._backend)
                if len(b) != b1 - b0:
                    raise ValueError(f"{layer!r}.forward returned {len(b)} new buffers for its {b1 - b0} buffers "
                                     f"({list(layer.buffer_shapes())})")  # fmt: skip
            caches.append(cache if keep else None)
            new_buffers.extend(b)
        return X, caches, new_buffers

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        return self._backward_from(len(self.layers) - 1, xp, params, cache, dY, need_dx, [])

    def output_activation(self) -> Activation | None:
        return self.layers[-1].output_activation()

    def backward_from_potential(self, xp: Any, params: Any, cache: Any, dV: Any, need_dx: bool):
        last = len(self.layers) - 1
        p0, p1, _, _ = self._slices[last]
        layer, need = self.layers[last], need_dx or last > 0
        args = (xp, params[p0:p1], cache[last], dV, need)
        if not self._foreign[last]:
            dX, grads = layer.backward_from_potential(*args)
        else:
            dX, grads = _returned(layer, "backward_from_potential", _call_user(layer, "backward_from_potential", args))
        if self._foreign[last] and need:
            _check_dx(layer, "backward_from_potential", dX, (dV.shape[0], self._widths[last]))
        return self._backward_from(last - 1, xp, params, cache, dX, need_dx, grads)

    def _backward_from(self, i: int, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool, tail: list[Any]):
        """Backprop through layers ``i, i-1, ..., 0``; ``tail`` holds the
        gradients of the layers after ``i``."""
        parts = [tail]
        for k in range(i, -1, -1):
            p0, p1, _, _ = self._slices[k]
            layer, need = self.layers[k], need_dx or k > 0
            if not self._foreign[k]:  # xpnet's own: the protocol's pair, a gradient per parameter (no checks per step)
                dY, grads = layer.backward(xp, params[p0:p1], cache[k], dY, need)
                parts.append(grads)
                continue
            rows, out = dY.shape[0], _call_user(layer, "backward", (xp, params[p0:p1], cache[k], dY, need))
            dY, grads = _returned(layer, "backward", out)
            if need:
                _check_dx(layer, "backward", dY, (rows, self._widths[k]))
            if len(grads) != p1 - p0:
                raise ValueError(f"{self.layers[k]!r}.backward returned {len(grads)} gradients for its {p1 - p0} "
                                 f"parameters ({list(self.layers[k].parameter_shapes())})")  # fmt: skip
            parts.append(grads)
        return dY, [g for part in reversed(parts) for g in part]


@register
class Residual(Sequential):
    """``Y = X + f(X)``, ``f`` its layers in sequence (a residual block).

    ``f`` must keep the width: its output is added to its input."""

    name = "Residual"

    def __init__(self, layers: Iterable[Any]) -> None:
        super().__init__(layers)
        n_in = self.input_width()
        if n_in is not None and Sequential.output_width(self, n_in) != n_in:
            raise ValueError(
                f"a Residual block must keep the width: it takes {n_in} features, its layers give "
                f"{Sequential.output_width(self, n_in)}"
            )

    def output_width(self, n_in: int | None) -> int | None:
        n_out = super().output_width(n_in)
        if n_in is not None and n_out is not None and n_out != n_in:
            raise ValueError(f"a Residual block must keep the width: it gets {n_in} features, its layers give {n_out}")
        return n_in if n_in is not None else n_out

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, list[Any], list[Any]]:
        Y, caches, new_buffers = super().forward(xp, params, buffers, X, ctx)
        if tuple(Y.shape) != tuple(X.shape):  # a narrower Y broadcasts into the sum (one column) in silence
            _check_y(self.layers[-1], Y, tuple(X.shape))
        return X + Y, caches, new_buffers

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        dX, grads = super().backward(xp, params, cache, dY, True)
        return dY + dX, grads

    def output_activation(self) -> None:
        return None  # the sum comes after the last activation


#: What each kernel returns, as the layer protocol (:mod:`xpnet.layers.base`) says.
_RETURNS = {"forward": "(Y, cache, buffers)", "backward": "(dX, grads)", "backward_from_potential": "(dX, grads)"}


def takes_potential(layer: Layer) -> bool:
    """May a loss's fused delta (``y - t`` for softmax with cross-entropy)
    enter ``layer`` at its output activation's potential, through
    ``backward_from_potential``? Only where the class that defines that
    method is the one whose ``backward`` is in effect, or a subclass of it;
    a container hands the delta to its last layer. A layer that exposes
    ``output_activation()`` without writing the method (the base's raises)
    failed with "has no output activation to fuse a loss with", and a
    subclass that changes ``backward`` (scaled or clipped gradients) and
    inherits its parent's ``backward_from_potential`` was skipped in
    silence, under cross-entropy only; both now train through ``backward``."""
    owner = _owner(type(layer), "backward_from_potential")
    if not issubclass(owner, _owner(type(layer), "backward")):
        return False
    if owner is Sequential:
        return bool(layer.children()) and takes_potential(layer.children()[-1])
    return True


def _runs_user_code(layer: Layer) -> bool:
    """Is ``layer`` a user's, or one of xpnet's that holds a user's
    activation (``Dense(3, 4, MyTanh())``)? Its kernels' results are then
    checked as a user layer's are: a NumPy activation on torch failed in
    the next layer's matmul, naming neither."""
    return not _ours(layer) or any(isinstance(v, Activation) and not _ours(v) for v in vars(layer).values())


def _ours(obj: Any) -> bool:
    return type(obj).__module__.startswith("xpnet.")


def _owner(cls: type, method: str) -> type:
    """The class in ``cls``'s MRO that defines ``method``."""
    return next(k for k in cls.__mro__ if method in vars(k))


def _call_user(layer: Layer, kernel: str, args: tuple[Any, ...]) -> Any:
    """``layer.<kernel>(*args)`` for a user's layer, which gets its NumPy
    arrays (parameters, buffers, X or dY) as read-only views: a kernel that wrote
    into its X changed the caller's data (predict's and fit's X) and the
    cache of the layer before, and one that wrote into a parameter changed
    the weights outside the network's commit, all in silence. Such a write
    is refused, naming the layer (one view per array: no copy)."""
    xp, params, middle, X, rest = args
    if kernel == "forward":  # the buffers; backward's cache is the layer's own
        middle = [read_only(b) for b in middle]
    given = read_only(X)
    try:
        out = getattr(layer, kernel)(xp, [read_only(p) for p in params], middle, given, rest)
    except ValueError as exc:
        if "read-only" not in str(exc):
            raise
        raise ValueError(f"{layer!r}.{kernel} wrote into an array it was given ({exc}): a layer's kernels are pure, "
                         "they compute new arrays (xp.where(X < 0, 0.0, X), not X[X < 0] = 0) and never change "
                         "their inputs, parameters or cache, which the network and the other layers still "
                         "hold") from exc  # fmt: skip
    if given is not X and isinstance(out, tuple | list) and out and out[0] is given:  # X itself as Y (an identity)
        out = (X, *out[1:])  # as before: predict's result stays writable
    return out


def _returned(layer: Layer, kernel: str, out: Any) -> Any:
    """``out``, the tuple a user's ``layer.<kernel>`` returned, refused unless
    it has the protocol's length: unpacked as it came, a forward that left
    out its buffers failed with Python's "not enough values to unpack",
    naming no layer, and a backward that returned only its two gradients
    took the first for dX. (xpnet's own layers are not checked: a step's
    host time is a benchmark target.)"""
    form = _RETURNS[kernel]
    if not isinstance(out, tuple | list) or len(out) != form.count(",") + 1:
        got = f"{len(out)} value{'s' * (len(out) != 1)}" if isinstance(out, tuple | list) else type(out).__name__
        raise ValueError(f"{layer!r}.{kernel} returned {got}; a layer's {kernel} returns the tuple {form}")
    return out


def _check_dx(layer: Layer, kernel: str, dX: Any, shape: tuple[int, int | None]) -> None:
    """``dX`` as the layer's input is shaped, and of its network's library
    (metadata only), where the layer before needs it: a wrong one was
    broadcast by the layer before, and blamed on that layer's gradient (or
    failed in NumPy, or in torch's matmul, naming none)."""
    got = None if dX is None else tuple(getattr(dX, "shape", ()))
    if got is None or len(got) != 2 or got[0] != shape[0] or shape[1] not in (None, got[1]):
        want = f"({shape[0]}, {shape[1]})" if shape[1] is not None else f"({shape[0]}, n_in)"
        raise ValueError(f"{layer!r}.{kernel} returned dX of shape {got} where its input's gradient, of shape "
                         f"{want}, is needed (need_dx is true): dX is dL/dX, shaped like the layer's input")
    other = other_library(layer._backend, dX)
    if other:
        raise ValueError(f"{layer!r}.{kernel} returned dX as {other}")


def _check_y(layer: Layer, Y: Any, shape: tuple[int, int | None], backend: Any = None) -> None:
    """``Y`` as wide as ``output_width`` says, and of ``backend``'s library
    (metadata only), where the next layer takes it: a narrower one failed in
    that layer's matmul, naming it (or NumPy), and a one-column one
    broadcast there in silence. A container's Y is its last layer's, which
    is named."""
    got, other = tuple(getattr(Y, "shape", ())), other_library(backend, Y)
    wrong = len(got) != 2 or got[0] != shape[0] or shape[1] not in (None, got[1])
    if not (wrong or other):
        return
    while layer.children():
        layer = layer.children()[-1]
    if wrong:
        want = f"({shape[0]}, {shape[1]})" if shape[1] is not None else f"({shape[0]}, n_out)"
        raise ValueError(f"{layer!r}.forward returned Y of shape {got} where {want} is declared (its output_width): "
                         "the next layer takes Y, one row per input row")
    raise ValueError(f"{layer!r}.forward returned Y as {other}")


def _merged(layers: list[Layer], method: str, *args: Any) -> dict[str, Any]:
    """Each child's ``method(*args)``, a dict by name, as one dict of
    ``"<i>.<name>"``; a child that gives another type is named (a list from
    ``init_parameters`` failed with "'list' object has no attribute 'items'")."""
    merged = {}
    for i, layer in enumerate(layers):
        part = getattr(layer, method)(*args)
        if not isinstance(part, dict):
            raise ValueError(f"{layer!r}.{method} returned a {type(part).__name__}; a layer's {method} returns a "
                             "dict by array name, e.g. {'weight': ..., 'bias': ...}")  # fmt: skip
        merged.update((f"{i}.{name}", value) for name, value in part.items())
    return merged


def _slices(layers: list[Layer]) -> list[tuple[int, int, int, int]]:
    """Each child's ``(p0, p1, b0, b1)`` range in the flat parameter and buffer lists."""
    out, p, b = [], 0, 0
    for layer in layers:
        n, m = len(layer.parameter_shapes()), len(layer.buffer_shapes())
        out.append((p, p + n, b, b + m))
        p, b = p + n, b + m
    return out


def _inferred_input_width(layers: list[Layer]) -> int | None:
    """The width the first layer that fixes one needs, when the layers
    before it take any width and keep it (input dropout, an activation or
    a normalisation-free Residual first, as torch's Sequential allows)."""
    for k, layer in enumerate(layers):
        need = layer.input_width()
        if need is not None:
            keeps = all(before.output_width(need) == need for before in layers[:k])
            return need if keeps else None
    return None


def _chain_widths(layers: list[Layer], n_in: int | None = None) -> list[int | None]:
    """The feature width before each layer and after the last, checking that
    each layer gets the width it requires."""
    n_in = _inferred_input_width(layers) if n_in is None else n_in
    widths = [n_in]
    n = n_in
    for i, layer in enumerate(layers):
        need = layer.input_width()
        if need is not None and n is not None and need != n:
            before = f"layer {i - 1} gives {n} outputs" if i else f"the input has {n} features"
            raise ValueError(f"layer {i} expects {need} inputs but {before} (layer {i}: {layer!r})")
        n = layer.output_width(n if n is not None else need)
        if i == 0 and widths[0] is None:
            widths[0] = need
        widths.append(n)
    return widths
