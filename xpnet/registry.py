"""One extension point for every kind of component: ``@xpnet.register``.

Layers, activations, losses, optimizers, metrics and initialisers are
classes. Each kind has a base class (:class:`~xpnet.layers.Layer`,
:class:`~xpnet.Activation`, :class:`~xpnet.Loss`, :class:`~xpnet.Optimizer`,
:class:`~xpnet.Metric`, :class:`~xpnet.Initializer`); a subclass with a
``name`` and a ``config()`` of plain values, decorated with
:func:`register`, can be named wherever xpnet takes a component, and is
rebuilt from ``(name, config)`` when a model file or checkpoint is read.
Files never hold code, so the process that loads a model must have imported
(and so registered) the components it names; otherwise loading fails with a
``ValueError`` that says so. The built-ins are registered the same way.

Why classes and a registry, and not pickled callables: a model file stays
data, safe to open from anywhere, and readable by any later xpnet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "Registry", "component_bases", "component_spec", "plain_settings", "register", "registered_as_named",
    "registry_for",
]


class Registry(Mapping):
    """Name -> class for one kind of component (case-insensitive names).

    A read-only mapping to the outside (``"relu" in ACTIVATIONS``); classes
    enter through :func:`register`."""

    def __init__(self, kind: str, base: type, reserved: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}
        self._reserved = {_key(k): v for k, v in (reserved or {}).items()}  # names xpnet reads before the registry

    def __getitem__(self, name: str) -> type:
        key = _key(name)
        return self._classes[self._aliases.get(key, key)]

    def get(self, name: Any, default: Any = None) -> Any:
        """``Mapping.get``; a name as the registry keeps it (stripped, lower
        case: a training step asks for its output activation's class) is
        found without making its key, and is never an alias."""
        if type(name) is str:
            found = self._classes.get(name)
            if found is not None:
                return found
        return super().get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return self._aliases.get(key, key) in self._classes

    def add(self, cls: type, name: str, aliases: tuple[str, ...] = (), replace: bool = False) -> None:
        """Make ``cls`` known as ``name`` and ``aliases``. A name or alias
        that already leads to another class is refused unless ``replace``
        (then it leads to ``cls``); the same class again (a re-run cell) is not."""
        key = _key(name)
        keys = [key, *(_key(a) for a in aliases)]
        for k, shown in zip(keys, [name, *aliases]):
            self._check_free(k, shown, cls, replace)
        for k in keys:  # each key leads to one class: a name is never also another class's alias
            self._aliases.pop(k, None)
        for k in keys[1:]:
            if self._classes.get(k, cls) is not cls:
                del self._classes[k]
        self._classes[key] = cls
        for k in keys[1:]:
            self._aliases[k] = key

    def _check_free(self, key: str, shown: str, cls: type, replace: bool) -> None:
        if key in self._reserved:
            raise ValueError(f"{_article(self.kind)} {self.kind} cannot be named {shown!r}: xpnet reads that name as "
                             f"{self._reserved[key]}; pick another name")  # fmt: skip
        old = self._classes.get(self._aliases.get(key, key))
        if old is not None and old is not cls and not replace and _qualname(old) != _qualname(cls):
            raise ValueError(
                f"{_article(self.kind).lower()} {self.kind} named {shown!r} is already registered "
                f"({_qualname(old)}); pick another name or pass replace=True to xpnet.register"
            )

    def lookup(self, name: str) -> type:
        """The class registered as ``name``; a ``ValueError`` that lists the
        known names and says how to register one otherwise."""
        try:
            return self[name]
        except KeyError:
            known = ", ".join([*self._classes, *self._aliases])
            shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
            raise ValueError(
                f"unknown {self.kind} {shown}; registered {_plural(self.kind)}: {known}. To use your own: "
                f"subclass xpnet.{self.base.__name__}, decorate it with @xpnet.register and import its module "
                f"before naming or loading it (xpnet predict/train --plugin MODULE)"
            ) from None

    def resolve(self, spec: Any) -> Any:
        """A component from whatever a user may pass: an instance (kept), a
        registered class, a name, or a spec as files store it."""
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, type) and issubclass(spec, self.base):
            return spec()
        if isinstance(spec, str | dict):
            return self.build(spec)
        article = "an" if self.base.__name__[:1] in "AEIOU" else "a"
        raise TypeError(f"{self.kind} must be a name or {article} {self.base.__name__}, got {type(spec).__name__}")

    def build(self, spec: Any) -> Any:
        """An instance from a spec: a name, or ``{"name": ..., "config": {...}}``."""
        if isinstance(spec, str):  # as a spec without config: a class that needs arguments is named, not a TypeError
            spec = {"name": spec}
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            config = spec.get("config", {})
            if not isinstance(config, dict):
                raise ValueError(f"the config of {self.kind} {spec['name']!r} must be a dict, got {config!r}")
            cls = self.lookup(spec["name"])
            try:
                return cls(**config)
            except TypeError as exc:
                raise ValueError(f"{self.kind} {spec['name']!r} cannot be built from config {config!r}: {exc}") from None
        raise ValueError(f"{_article(self.kind).lower()} {self.kind} spec is a name or "
                         f"{{'name': ..., 'config': {{...}}}}, got {spec!r}")  # fmt: skip


_REGISTRIES: list[Registry] = []


def registry_for(kind: str, base: type, reserved: Mapping[str, str] | None = None) -> Registry:
    """Create the registry of one kind (each component module calls it once);
    ``reserved``: names the module reads before the registry (name -> what
    they mean), which no class may take."""
    reg = Registry(kind, base, reserved)
    _REGISTRIES.append(reg)
    return reg


def component_bases() -> tuple[type, ...]:
    """The base class of every kind of component."""
    return tuple(reg.base for reg in _REGISTRIES)


def register(cls: type | None = None, *, name: str | None = None, aliases: tuple[str, ...] = (), replace: bool = False):
    """Class decorator: make a component known by its ``name``.

    ``@xpnet.register`` or ``@xpnet.register(name="my_relu")``. The kind
    follows from the base class. Registering another class under a taken
    name is an error unless ``replace=True`` (re-running a notebook cell
    re-registers the same class, which is allowed)."""

    def decorate(c: type) -> type:
        reg = _kind_of(c)
        key = name or getattr(c, "name", "") or ""
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{c.__name__} needs a name: set the class attribute `name` or pass register(name=...)")
        reg.add(c, key, aliases, replace)  # first: a name it refuses must not stay on the class
        c.name = key
        return c

    return decorate if cls is None else decorate(cls)


def registered_as_named(component: Any) -> str | None:
    """Why ``component`` would not come back from its name, or None: a file
    or copy names each component, and the name must lead to its own class
    (an unregistered subclass keeps its parent's name, and would silently
    come back as the parent)."""
    cls = type(component)
    reg = _kind_of(cls)
    name, own = getattr(component, "name", None), vars(cls).get("name")
    found = reg[name] if isinstance(name, str) and name in reg else None
    if found is cls or (found is not None and _qualname(found) == _qualname(cls)):  # the same qualname: a re-run cell's
        return None
    if isinstance(own, str) and own in reg and reg[own] is cls:  # self.name = "encoder", a label
        return (f"the {reg.kind} {cls.__qualname__} is registered as {own!r}, but this object's `name` is {name!r}: "
                "the name is how files and copies find the class, so set none on the object (keep a label under "
                "another attribute)")  # fmt: skip
    remedy = "register the class under a name of its own (@xpnet.register, with a class attribute `name` or " \
             "register(name=...))"  # fmt: skip
    if found is None:
        return f"the {reg.kind} {cls.__qualname__} is not registered (its name: {name!r}): {remedy}"
    return f"the {reg.kind} {cls.__qualname__} is named {name!r}, which is registered for {_qualname(found)}: {remedy}"


def component_spec(component: Any) -> Any:
    """How a component is written into a file: its name, or name and config."""
    config = component.config() if hasattr(component, "config") else {}
    return component.name if not config else {"name": component.name, "config": config}


def plain_settings(component: Any) -> dict[str, Any]:
    """A component's public attributes that hold plain values (numbers,
    strings, None, tuples and lists of them): what its kernels may read
    besides its arrays, so what a compiled program's key and a copy rebuilt
    from the config must agree on."""
    return {k: v for k, v in vars(component).items() if not k.startswith("_") and _plain(v)}


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, tuple | list) and all(_plain(v) for v in value)


def _kind_of(cls: Any) -> Registry:
    if not isinstance(cls, type):
        raise TypeError(f"xpnet.register decorates a class, got {type(cls).__name__}")
    for reg in _REGISTRIES:
        if issubclass(cls, reg.base):
            return reg
    bases = ", ".join(f"xpnet.{r.base.__name__}" for r in _REGISTRIES)
    raise TypeError(f"{cls.__name__} is not a component: subclass one of {bases}")


def _key(name: str) -> str:
    return name.strip().lower()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")
