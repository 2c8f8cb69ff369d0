"""The layer protocol: everything a :class:`~xpnet.Network` needs from a layer.

A layer is settings plus pure kernels. It never changes an array: the
network owns the training loop, hands each layer its slice of the flat
parameter and buffer lists, and commits what the kernels return in one place
(``Network._commit``). That is what lets JAX's immutable arrays train, keeps
the last finite weights after a NaN, and makes a step compilable.

A subclass, decorated with :func:`xpnet.register`, defines:

``config()``
    Its settings as plain JSON values; ``type(layer)(**config)`` rebuilds an
    unbuilt copy (containers put their children's specs in it). Model files
    store ``{"type": name, **config}``.
``input_width()`` / ``output_width(n_in)``
    Feature widths, so a network checks its chain before drawing anything
    (defaults: any input width, output as wide as the input).
``parameter_shapes()`` / ``buffer_shapes()``
    Ordered ``{name: shape}`` of the trainable parameters and of the
    buffers: non-trainable state such as running statistics. ``decayed()`` names the
    parameters weight decay applies to (weights; not biases or norms).
``init_parameters(rng, dtype)`` / ``init_buffers(dtype)``
    Host NumPy arrays in those orders, drawn from the network's seeded
    generator (same numbers on every backend); moved to the device once.
``forward(xp, params, buffers, X, ctx) -> (Y, cache, buffers)``
    ``params``/``buffers`` are sequences in the declared order; ``ctx`` says
    whether this is training (:class:`Context`). Return the buffers unchanged
    unless the layer updates them (batch statistics); the network commits
    them together with the parameters. In inference (``ctx.training``
    false) containers drop the cache at once: nothing is kept for backprop.
``backward(xp, params, cache, dY, need_dx) -> (dX, grads)``
    ``grads`` in parameter order; ``dX`` may be ``None`` when not ``need_dx``.
``uses_rng``
    True for a layer that draws from ``ctx.rng`` (Dropout): ``fit`` then
    gives every step a device random source; networks without such a layer
    get none and pay nothing for it.

A layer whose output passes through an activation last may also expose it
(``output_activation()``) and implement ``backward_from_potential``, so a
loss that fuses with that activation (softmax + cross-entropy) can hand over
the stable ``y - t`` delta; the network uses it only where the layer's class
defines it at least as deep as ``backward`` (else the loss's gradient goes
through ``backward``: see :func:`xpnet.layers.containers.takes_potential`).
Containers (:class:`~xpnet.layers.Sequential`, :class:`~xpnet.layers.Residual`)
are layers built from layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..registry import component_bases, component_spec, plain_settings, registered_as_named, registry_for

__all__ = ["INFERENCE", "LAYERS", "Context", "Layer", "check_host_arrays", "layer_from_config", "read_only", "walk"]


#: How many checked settings (:attr:`Layer._setting_checks`) have been
#: reassigned: a container that saw another count sorts its layers into
#: xpnet's own and users' again, as an activation assigned may be a user's.
SETTING_EDITS = [0]


class Context(NamedTuple):
    """What a forward pass needs to know besides its inputs.

    ``training``: ``fit`` is running (Dropout drops, BatchNorm uses batch
    statistics). ``rng``: this step's device random source
    (:class:`xpnet._device_random.DeviceRandom`), or ``None``; a layer draws
    from it with its own ``stream`` number, which the network assigns to
    every layer (``Layer.stream``), so that layers never share random
    numbers. ``sync``: in a distributed fit on several processes, the step's
    :class:`xpnet.distributed.BatchSync` (sums over the processes, for
    statistics of the whole minibatch such as BatchNorm's), else ``None``."""

    training: bool = False
    rng: Any = None
    sync: Any = None


INFERENCE = Context()


class Layer:
    """Base class of layers; see the module docstring for the protocol."""

    name: str = ""
    #: Does ``forward`` draw from ``ctx.rng`` while training (Dropout)?
    uses_rng: bool = False
    #: Settings checked again when assigned after the constructor set them:
    #: name -> the constructor's check (value -> value), or ``None`` for one
    #: fixed when the layer is made (a width, the bias switch: the shapes of
    #: its parameters and the widths around it were laid out with it).
    _setting_checks: dict[str, Any] = {}

    def __init__(self) -> None:
        self._backend: Any = None
        self._dtype: str | None = None
        self._params: list[Any] = []
        self._buffers: list[Any] = []
        #: This layer's random stream number, unique in its network.
        self.stream = 0

    def __setattr__(self, name: str, value: Any) -> None:
        """A setting in :attr:`_setting_checks`, reassigned, is checked as the
        constructor checks it (an activation name resolved, a Dropout rate
        of 1.5 refused), or refused where it fixed the parameters: such an
        edit failed deep in a later forward, or trained wrong in silence."""
        if name in self._setting_checks and name in self.__dict__:
            check = self._setting_checks[name]
            if check is None:
                kind = type(self).__name__
                raise AttributeError(f"{kind}.{name} is fixed when the layer is made (the shapes of its parameters "
                                     f"and the widths around it follow from it): make a new {kind} with the "
                                     f"{name} you want")  # fmt: skip
            value = check(value)
            SETTING_EDITS[0] += 1  # containers sort their layers again (a user's activation is checked per step)
        super().__setattr__(name, value)

    # -- settings and widths --------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Settings as plain JSON values: ``type(self)(**config)`` rebuilds an
        unbuilt copy, and model files store them (never code)."""
        return {}

    def input_width(self) -> int | None:
        """The number of input features this layer requires, or ``None``."""
        return None

    def output_width(self, n_in: int | None) -> int | None:
        """The number of output features for ``n_in`` inputs."""
        return n_in

    # -- parameters and state --------------------------------------------------

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{name: shape}`` of the trainable parameters: the order of
        ``params`` in the kernels and of ``grads`` from ``backward``."""
        return {}

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{name: shape}`` of the non-trainable state (running
        statistics), which ``forward`` returns, updated or as given."""
        return {}

    def decayed(self) -> tuple[str, ...]:
        """Names of the parameters that weight decay applies to."""
        return ()

    def nonnegative_buffers(self) -> tuple[str, ...]:
        """Names of the buffers that never hold a negative value (a running
        variance): a model file or checkpoint holding one is refused,
        naming it, rather than failing later as a NaN in ``predict``."""
        return ()

    def init_parameters(self, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
        """Initial parameters as host NumPy arrays, by name, drawn from the
        network's seeded ``rng`` (the same numbers on every backend)."""
        return {}

    def init_buffers(self, dtype: str) -> dict[str, np.ndarray]:
        """Initial buffers as host NumPy arrays, by name."""
        return {}

    # -- kernels ---------------------------------------------------------------

    def forward(self, xp: Any, params: Sequence[Any], buffers: Sequence[Any], X: Any, ctx: Context) -> tuple[Any, Any, Sequence[Any]]:
        """``(Y, cache, buffers)``: the output, what ``backward`` needs, and the
        buffers (as given unless the layer updates them). Pure: it changes no
        array; the network commits what it returns."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(xp, params, buffers, X, ctx)")

    def backward(self, xp: Any, params: Sequence[Any], cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        """``(dX, grads)``: dL/dX shaped as the input (``None`` allowed when not
        ``need_dx``) and dL/dparam in :meth:`parameter_shapes` order."""
        raise NotImplementedError(f"{type(self).__name__} must define backward(xp, params, cache, dY, need_dx)")

    def output_activation(self) -> Any:
        """The activation applied last to this layer's output, if any."""
        return None

    def backward_from_potential(self, xp: Any, params: Sequence[Any], cache: Any, dV: Any, need_dx: bool):
        """``backward`` given dL/dv of :meth:`output_activation`'s input."""
        raise NotImplementedError(f"{type(self).__name__} has no output activation to fuse a loss with")

    def children(self) -> list[Layer]:
        """The layers this one is made of (containers)."""
        return []

    # -- built state: the network's committed arrays ----------------------------

    @property
    def built(self) -> bool:
        """Does a network hold this layer (its parameters exist)?"""
        return self._backend is not None

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The committed parameters by name (device arrays), read-only: a
        layer's own setters (``Dense.weights``, ``BatchNorm.weight``) assign."""
        return Arrays(self, "parameters", dict(zip(self.parameter_shapes(), self._all_params())))

    @property
    def buffers(self) -> Mapping[str, Any]:
        """The committed buffers (non-trainable state) by name (device arrays), read-only."""
        return Arrays(self, "buffers", dict(zip(self.buffer_shapes(), self._all_buffers())))

    def _bind(self, backend: Any, dtype: str) -> None:
        self._backend, self._dtype = backend, dtype
        for child in self.children():
            child._bind(backend, dtype)

    def _all_params(self) -> list[Any]:
        """The committed parameters in order: a container's are its children's."""
        children = self.children()
        return [p for c in children for p in c._all_params()] if children else list(self._params)

    def _all_buffers(self) -> list[Any]:
        children = self.children()
        return [b for c in children for b in c._all_buffers()] if children else list(self._buffers)

    def _set(self, params: Sequence[Any], buffers: Sequence[Any]) -> None:
        """Take committed arrays (the network calls this; containers hand each
        child its slice, so a leaf's setter, e.g. ``Dense.weights``, is seen)."""
        children = self.children()
        if not children:
            self._params, self._buffers = list(params), list(buffers)
            return
        i = j = 0
        for child in children:
            n, m = child._count()
            child._set(params[i : i + n], buffers[j : j + m])
            i, j = i + n, j + m

    def named_gradients(self, grads: Sequence[Any]) -> tuple[Any, ...]:
        """This layer's gradients as ``Network.gradients`` reports them."""
        return tuple(grads)

    def _count(self) -> tuple[int, int]:
        return len(self.parameter_shapes()), len(self.buffer_shapes())

    def _require_built(self) -> None:
        if self._backend is None:
            raise RuntimeError(
                f"this {type(self).__name__} has no parameters yet: put it in a Network, "
                "which gives it a backend, a dtype and initial values"
            )

    def spec(self) -> dict[str, Any]:
        """How files store this layer: ``{"type": name, **config}``. A
        setting named ``type`` would overwrite the name, and the file, copy
        or pickle would rebuild another layer, or none: it is refused."""
        config = self.config()
        if "type" in config:
            raise ValueError(f"{type(self).__name__}.config() has a setting named 'type', the key under which model "
                             "files, copies and pickles keep the layer's registered name: give that setting another "
                             "name")  # fmt: skip
        return {"type": self.name, **config}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Arrays(Mapping):
    """``Layer.parameters`` and ``Layer.buffers``: a read-only mapping of
    names to the committed arrays. Item assignment is refused, naming the
    layer's setter: it wrote into a copy, and was silently ignored."""

    def __init__(self, layer: Layer, kind: str, arrays: dict[str, Any]) -> None:
        self._layer, self._kind, self._arrays = layer, kind, arrays

    def __getitem__(self, name: str) -> Any:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def keys(self) -> Any:  # a dict's views: they print as a dict's do
        return self._arrays.keys()

    def values(self) -> Any:
        return self._arrays.values()

    def items(self) -> Any:
        return self._arrays.items()

    def __setitem__(self, name: str, value: Any) -> None:
        kind = type(self._layer).__name__
        setter = next((f"{kind}.{a}" for a in (name, name + "s")
                       if getattr(getattr(type(self._layer), a, None), "fset", None)), None)  # fmt: skip
        how = (f"assign {setter} = value" if setter else
               "assign through the layer's own property, if it has one (a container's: its layers')")  # fmt: skip
        raise TypeError(f"{kind}.{self._kind} is read-only (a new mapping on each read; writing into it changed "
                        f"nothing): {how}, which checks the value and puts it where the network reads it")

    def __delitem__(self, name: str) -> None:
        self.__setitem__(name, None)

    def __repr__(self) -> str:
        return repr(self._arrays)


#: The registry of layers: name -> class (see :func:`xpnet.register`).
LAYERS = registry_for("layer", Layer)


def layer_from_config(spec: Any) -> Layer:
    """An unbuilt layer from ``{"type": name, **config}`` (model files)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError(f"a layer spec is a dict with a 'type' name, got {spec!r}")
    config = {k: v for k, v in spec.items() if k != "type"}
    return LAYERS.build({"name": spec["type"], "config": config})


def walk(layer: Layer):
    """``layer`` and every layer inside it, depth first, in order."""
    yield layer
    for child in layer.children():
        yield from walk(child)


def check_rebuildable(root: Layer) -> None:
    """Refuse, naming it, a component that its name would not bring back:
    copies, moves, pickles and model files rebuild a network from the names
    in its config, so each layer, and each component a layer's config names
    (its activation), must be registered under a name of its own."""
    for layer in reversed(list(walk(root))):  # inner layers first: the one that fails is named, not its container
        config = list(layer.config().values())
        held = [v for v in vars(layer).values() if isinstance(v, component_bases()) and not isinstance(v, Layer)]
        for component in [layer, *(c for c in held if component_spec(c) in config)]:
            problem = registered_as_named(component)
            if problem:
                raise ValueError(f"{problem} (xpnet copies, moves, pickles and saves a network by rebuilding it "
                                 "from the names in its config)")
        _check_config_holds_settings(layer)


def _check_config_holds_settings(layer: Layer) -> None:
    """Rebuild ``layer`` from its spec, as a copy or a file would: refuse
    one that cannot be rebuilt, or whose rebuilt twin holds other plain
    settings (a constructor argument left out of ``config()`` came back as
    its default, or not at all), instead of a file ``load`` refuses or a
    copy that computes something else."""
    rebuild = (" xpnet copies, moves, pickles and saves a network by rebuilding each layer from its config(), "
               "which must hold every constructor argument")  # fmt: skip
    try:
        twin = layer_from_config(layer.spec())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{type(layer).__name__} cannot be rebuilt from its config: {exc}.{rebuild}") from None
    named = list(layer.config().values())  # components its config names (an activation); not an initialiser
    pairs = [(layer, twin), *((v, vars(twin).get(k)) for k, v in vars(layer).items()
                              if isinstance(v, component_bases()) and not isinstance(v, Layer)
                              and component_spec(v) in named)]  # fmt: skip
    for component, copy in pairs:
        got, back = plain_settings(component), plain_settings(copy) if copy is not None else {}
        lost = [f"{k}={v!r}" for k, v in got.items() if k != "stream" and repr(back.get(k, _MISSING)) != repr(v)]
        if lost:
            raise ValueError(
                f"{type(component).__name__} holds {', '.join(lost)}, which a copy rebuilt from its config "
                f"({component_spec(component)!r}) would not:{rebuild}. Put settings in config(), state in "
                "buffers, and name anything else with a leading underscore"
            )


_MISSING = object()


def check_step_arrays(root: Layer, params: Sequence[Any], grads: Sequence[Any], what: str = "gradient") -> None:
    """Each gradient (or new buffer) as its parameter (or buffer) is: one
    per array, same shape and dtype. A custom layer that breaks this would
    otherwise change the shape or dtype of a trained parameter (broadcast
    by the update), found only when ``save`` writes a file ``load`` refuses."""
    names = list(root.parameter_shapes() if what == "gradient" else root.buffer_shapes())
    if len(grads) != len(params):
        raise ValueError(f"the layers' backward returned {len(grads)} {what}s for {len(params)} arrays ({names})")
    for name, p, g in zip(names, params, grads):
        other = other_library(root._backend, g)
        if other:  # else its dtype, numpy's float32 and not torch's, was refused as "float32, but ... float32"
            raise ValueError(f"the {what} of layers.{name} is {other}")
        if tuple(g.shape) != tuple(p.shape) or g.dtype != p.dtype:
            raise ValueError(f"the {what} of layers.{name} has shape {tuple(g.shape)} and dtype {_short(g.dtype)}, "
                             f"but the array has {tuple(p.shape)} and {_short(p.dtype)}: a layer's backward (for "
                             "buffers, its forward) must return arrays of the shapes it declares, in the network's "
                             "dtype")  # fmt: skip


def read_only(a: Any) -> Any:
    """A read-only view of a writable NumPy array (what a user's kernel or
    activation is given: a write into it is refused); anything else as it is."""
    if not isinstance(a, np.ndarray) or not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def other_library(backend: Any, a: Any) -> str | None:
    """What ``a`` is where it is no array of ``backend``'s library, else
    None: NumPy's functions on torch's tensors give NumPy arrays, which
    failed in the next layer's matmul or the loss, naming no layer (and
    ``predict`` handed one back from a torch network). NumPy's arrays and
    scalars pass on NumPy (whose reductions give scalars) and on JAX (whose
    operations take them: such a kernel runs op by op, as a host read)."""
    host = backend is not None and backend.name in ("numpy", "jax") and isinstance(a, np.ndarray | np.generic)
    if backend is None or backend.owns(a) or host:
        return None
    return (f"a {type(a).__module__.split('.', 1)[0]} {type(a).__name__}, not an array of the network's backend "
            f"({backend.name}): a kernel computes with xp, the namespace it is given")


def _short(dtype: Any) -> str:
    """``float32`` for ``torch.float32`` or ``array_api_strict.float32``."""
    return str(dtype).rsplit(".", 1)[-1]


def check_declared_names(root: Layer) -> None:
    """Each name in a layer's ``decayed()`` and ``nonnegative_buffers()`` is
    one of its parameters or buffers. A misspelt one was ignored: weight
    decay left out in silence, and a model file refused with a KeyError."""
    for layer in reversed(list(walk(root))):  # inner layers first: the one that declares it is named
        for method, shapes, what in (("decayed", layer.parameter_shapes(), "parameters"),
                                     ("nonnegative_buffers", layer.buffer_shapes(), "buffers")):  # fmt: skip
            names = getattr(layer, method)()
            unknown = [n for n in names if n not in shapes] if not isinstance(names, str) else [names]
            if unknown:
                raise ValueError(f"{layer!r}.{method}() names {unknown}, which are not among its {what} "
                                 f"{list(shapes)}: it must return a tuple of those names")


def _check_shapes(root: Layer, method: str) -> None:
    """Each leaf layer's declared shapes (``method``: ``parameter_shapes`` or
    ``buffer_shapes``) are tuples of ints: ``{"g": 3}`` for ``(3,)`` failed
    as a bare "'int' object is not iterable", naming no layer."""
    for layer in walk(root):
        if layer.children():
            continue
        for name, shape in getattr(layer, method)().items():
            if not isinstance(shape, tuple | list) or not all(
                    isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0 for n in shape):
                raise ValueError(f"{layer!r}.{method}() declares {name!r} of shape {shape!r}: a shape is a tuple of "
                                 "ints, (n,) for a vector, () for a single number")  # fmt: skip


def check_host_arrays(layer: Layer, arrays: dict[str, Any], shapes: dict[str, tuple[int, ...]], what: str) -> None:
    """A layer's ``init_parameters``/``init_buffers`` must give each declared
    array with its declared shape, and finite values: say which layer broke
    that, not deep later (NaN weights would make predict blame an overflow)."""
    _check_shapes(layer, "parameter_shapes" if what == "init_parameters" else "buffer_shapes")
    if list(arrays) != list(shapes):
        raise ValueError(f"{layer!r}.{what} returned {list(arrays)}, its shapes declare {list(shapes)}")
    for name, a in arrays.items():
        if tuple(np.shape(a)) != tuple(shapes[name]):
            raise ValueError(f"{layer!r}.{what}: {name} has shape {np.shape(a)}, declared {tuple(shapes[name])}")
        if not np.isfinite(a).all():
            raise ValueError(f"{layer!r}.{what}: {name} holds NaN or infinite values; check its initialiser")

