"""argparse types the examples share (a helper, not an example).

A bad value is refused by argparse, in one line naming the option
("error: argument --seed: expected ...") and before any training, rather
than ending in a traceback from deep inside NumPy, xpnet or matplotlib, for
a file to write only after all the work is done.
"""

from __future__ import annotations

import argparse
import math
import os


def _number(text: str, convert, valid, expected: str):
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Epochs, steps, layer widths: 1 or more."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """A seed: NumPy's generators take none below 0."""
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def positive_float(text: str) -> float:
    """A learning rate: finite and above 0."""
    return _number(text, float, lambda v: 0 < v < math.inf, "a positive finite number")


def output_file(text: str) -> str:
    """A file written after training: a file's name, in a folder that exists now."""
    if not text or text.endswith(("/", os.sep)) or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file's name, got {text!r}, a folder")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder {folder!r} does not exist")
    return text


def image_file(text: str) -> str:
    """A --plot file: as output_file, named with a format matplotlib writes
    (it would add .png to a name without one, and fail on .txt after training)."""
    text = output_file(text)
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        message = "drawing needs matplotlib, which is not installed: pip install matplotlib"
        raise argparse.ArgumentTypeError(message) from None
    formats = FigureCanvasBase.get_supported_filetypes()
    if os.path.splitext(text)[1][1:].lower() not in formats:
        raise argparse.ArgumentTypeError(f"expected an image file name ending in .png (or {', '.join(sorted(formats))})"
                                         f", got {text!r}")
    return text


def input_file(text: str) -> str:
    """A file read before any work (a saved model): one that exists."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"expected an existing file, got {text!r}"
                                         + (", a folder" if os.path.isdir(text) else ", which does not exist"))
    return text


#: What --backend takes (xpnet.get_backend's names; case does not matter).
BACKENDS = ("auto", "numpy", "cupy", "torch", "jax", "array_api_strict")


def backend_name(text: str) -> str:
    """A backend's name, or auto; whether it is usable here is xpnet's to say."""
    if text.lower() not in BACKENDS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(BACKENDS)}, got {text!r}")
    return text.lower()


def chosen_backend(parser: argparse.ArgumentParser, args: argparse.Namespace, float64: bool = False):
    """``xpnet.get_backend(--backend, --device)``; one not usable here (no GPU,
    a device it lacks) is argparse's one-line error naming the option, not a
    traceback. ``float64``: switch on JAX's 64-bit mode where JAX is chosen."""
    import xpnet

    device = getattr(args, "device", None)
    try:
        backend = xpnet.get_backend(args.backend, device)
    except xpnet.BackendUnavailable as exc:
        parser.error(f"argument --backend: {exc} (`xpnet info` lists what is usable here; --backend numpy "
                     "always works)")
    except ValueError as exc:
        parser.error(f"argument {'--device' if device else '--backend'}: {exc}")
    if float64 and backend.name == "jax":  # JAX computes float64 only in its 64-bit mode
        import jax

        jax.config.update("jax_enable_x64", True)
    return backend
