"""xpnet: neural networks on the Python Array API.

The same neuron, loss and backpropagation code runs on NumPy, CuPy, PyTorch,
JAX and array-api-strict; see ``xpnet.get_backend``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import callbacks, datasets, schedules
from ._backend import Backend, BackendUnavailable, available_backends, get_backend, to_numpy
from .activations import Activation, get_activation
from .callbacks import Callback, EarlyStopping
from ._random import Initializer
from .gradcheck import gradcheck
from .layers import ActivationLayer, BatchNorm, Dense, Dropout, Layer, LayerNorm, Residual, Sequential
from .losses import Loss, get_loss, loss_fcn
from .metrics import Metric
from .network import MLP, Network
from .neuron import Neuron
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from .records import History, TrainingInterrupted
from .registry import register
from .serialization import load

__all__ = [
    "MLP",
    "SGD",
    "Activation",
    "ActivationLayer",
    "Adam",
    "AdamW",
    "Backend",
    "BackendUnavailable",
    "BatchNorm",
    "Callback",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "History",
    "Initializer",
    "Layer",
    "LayerNorm",
    "Loss",
    "Metric",
    "Network",
    "Neuron",
    "Optimizer",
    "RMSprop",
    "Residual",
    "Sequential",
    "TrainingInterrupted",
    "__version__",
    "available_backends",
    "callbacks",
    "datasets",
    "get_activation",
    "get_backend",
    "get_loss",
    "gradcheck",
    "load",
    "loss_fcn",
    "register",
    "schedules",
    "to_numpy",
]
