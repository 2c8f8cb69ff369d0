"""Layers: the protocol (:mod:`.base`) and the built-in layers.

Every layer, built-in or yours, is a :class:`Layer` subclass registered with
:func:`xpnet.register`; see :mod:`xpnet.layers.base` for the protocol.
"""

from .activation import ActivationLayer
from .base import INFERENCE, LAYERS, Context, Layer, layer_from_config, walk
from .containers import Residual, Sequential, as_layer
from .dense import Dense, LayerCache
from .dropout import Dropout
from .norm import BatchNorm, LayerNorm

__all__ = [
    "INFERENCE",
    "LAYERS",
    "ActivationLayer",
    "BatchNorm",
    "Context",
    "Dense",
    "Dropout",
    "Layer",
    "LayerCache",
    "LayerNorm",
    "Residual",
    "Sequential",
    "as_layer",
    "layer_from_config",
    "walk",
]
