"""The ``xpnet`` command line: ``train``, ``predict`` and ``info``.

This module parses arguments and turns every failure into one line on
stderr (``xpnet: error: <reason> (<hint>)``) and a non-zero exit status,
never a traceback; the commands themselves live in :mod:`xpnet._commands`.
Set ``XPNET_DEBUG=1`` to see the traceback of any error: an unexpected one is
raised, a command-line error or an immediate Ctrl-C prints it above its line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from ._backend import KNOWN_BACKENDS, BackendUnavailable
from ._usage import UsageError
from .columns import MISSING, UNKNOWN
from .preprocessing import TASKS

__all__ = ["build_parser", "main"]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

# Defaults of `xpnet train`: within 0.02 of scikit-learn's MLP(max_iter=500)
# on iris, breast_cancer, digits and diabetes (README: the accuracy table), in
# about a second of training for each on a 2-core CPU, with early stopping on
# 10% of the training rows (patience 20); --epochs auto: see _commands.auto_epochs.
DEFAULT_HIDDEN = "128"
DEFAULT_ACTIVATION = "tanh"  # relu missed wine by a row on 2 of 3 splits; tanh met all five on all three
DEFAULT_LR = 1e-3
DEFAULT_BATCH = 32
DEFAULT_OPTIMIZER = "adam"
DEFAULT_VALIDATION = 0.1  # share of the training rows for early stopping
DEFAULT_PATIENCE = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage block and exit
        if message.startswith("argument --na-values: expected one argument"):  # `--na-values -x`: -x read as an option
            message += "; a token that starts with '-' is attached to it: --na-values=-x"
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --------------------------------------------------------------------------
# Option types: bad values become argparse errors (exit 2, before any data is read)
# --------------------------------------------------------------------------


def _number(convert, valid, expected: str):
    """An argparse type: ``convert(text)``, accepted when ``valid``."""

    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive finite number")
_share = _number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_seed = _number(int, lambda v: 0 <= v < 2**63, "an integer in 0..2**63-1 (checkpoints keep it)")
_rate = _number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_non_negative = _number(float, lambda v: 0 <= v < float("inf"), "a non-negative finite number")
_count = _number(int, lambda v: v >= 0, "a non-negative integer")


class _Off(int):
    """``--patience none`` (or ``off``): 0, as typed, for the run summary's
    'early stopping: off (--patience none)'; it said '--patience 0'."""

    def __new__(cls, typed: str) -> _Off:
        off = super().__new__(cls, 0)
        off.typed = typed
        return off


def _patience(text: str) -> int:
    """``--patience N``; ``0`` or ``none`` turns early stopping off."""
    return _Off(text.strip()) if text.strip().lower() in ("none", "off") else _count(text)


#: --lr-schedule's grammar: NAME[:ARG,ARG] -> (the schedule's class name, its arguments' names).
LR_SCHEDULES = {
    "step": ("StepLR", ("step_size", "gamma")),
    "exp": ("ExponentialLR", ("gamma",)),
    "cosine": ("CosineAnnealingLR", ("T_max",)),
    "plateau": ("ReduceLROnPlateau", ("factor", "patience")),
    "warmup": ("LinearWarmup", ("epochs",)),
}
LR_SCHEDULE_HELP = ("step:STEP[,GAMMA] (times GAMMA, default 0.1, every STEP epochs), exp:GAMMA (times GAMMA every "
                    "epoch), cosine[:T_MAX] (cosine decay to 0 over T_MAX epochs, default: the maximum epochs), "
                    "plateau[:FACTOR[,PATIENCE]] (times FACTOR, default 0.1, after PATIENCE, default 10, epochs "
                    "without a better validation loss), warmup:EPOCHS (linear rise over EPOCHS epochs), or none")


def _lr_schedule(text: str) -> Any:
    """``--lr-schedule``: a function ``max_epochs -> Schedule or None``,
    checked here once (bad values exit 2 before any data is read)."""
    from . import schedules

    name, _, rest = text.strip().lower().partition(":")
    if name in ("none", "constant") and not rest:
        return lambda epochs, monitor: None
    if name not in LR_SCHEDULES:
        raise argparse.ArgumentTypeError(f"unknown schedule {text!r}; expected {LR_SCHEDULE_HELP}")
    cls_name, names = LR_SCHEDULES[name]
    try:
        values = [_schedule_number(v) for v in rest.split(",")] if rest else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the arguments must be numbers; expected {LR_SCHEDULE_HELP}") from None
    if len(values) > len(names) or (not values and name in ("step", "exp", "warmup")):
        raise argparse.ArgumentTypeError(f"{text!r}: {name} takes {', '.join(names)}; expected {LR_SCHEDULE_HELP}")
    cls = getattr(schedules, cls_name)

    def build(epochs: int, monitor: str = "val_loss") -> Any:
        kwargs = dict(zip(names, values))
        if name == "cosine":
            kwargs.setdefault("T_max", epochs)
        if name == "plateau":
            kwargs["monitor"] = monitor
        return cls(**kwargs)

    def describe(schedule: Any) -> str:
        """The schedule in this grammar, defaults filled in, for the run summary."""
        config = schedule.config()
        spec = f"{name}:" + ",".join(f"{config[n]:g}" for n in names)
        return spec + (" on the training loss" if config.get("monitor") == "loss" else "")

    build.follows_epochs = name == "cosine" and not values  # its length is --epochs: a resume's message says so

    try:
        build(1)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    build.describe = describe  # type: ignore[attr-defined]
    return build


def _schedule_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _epochs(text: str) -> int | None:
    return None if text.strip().lower() == "auto" else _positive_int(text)


def _batch_size(text: str) -> int | None:
    if text.strip().lower() in ("full", "none"):
        return None
    return _positive_int(text)


def _hidden(text: str) -> list[int]:
    """``"128,64"`` -> ``[128, 64]``; ``""`` or ``"none"``: no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes such as 128,64, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _activation(text: str) -> str:
    from .activations import get_activation

    try:
        return get_activation(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"argument --activation: {exc}") from None


def _optimizer(text: str) -> str:
    """A preset (``momentum``) or a registered optimizer's name, as ``fit`` reads it."""
    from .optimizers import OPTIMIZERS, PRESETS

    name = text.strip().lower()
    if name in PRESETS:
        return name
    try:
        return OPTIMIZERS.lookup(name).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"argument --optimizer: {exc}; 'momentum' is SGD with momentum 0.9") from None


def _names(text: str) -> list[str]:
    """``"a,b , c"``: column names or positions separated by commas, kept
    whole (``[text]``) until the header is read, since a column's own name
    may hold a comma (:func:`xpnet.data_io.column_names` splits it)."""
    from .data_io import split_names

    if not text.strip() or not all(split_names(text)):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return [text]


def _tokens(text: str) -> list[str]:
    """``--na-values '?,-'`` -> ``["?", "-"]``."""
    tokens = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not token for token in tokens):
        raise argparse.ArgumentTypeError(f"expected tokens separated by commas, e.g. '?,-', got {text!r}")
    return tokens


#: --sep names: a separator can be given by name (a tab is awkward to type).
SEP_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|", "space": " "}


def _sep(text: str) -> str:
    """A separator, or ``"auto"``: detect it (in predict too, where leaving
    --sep out means the --sep given in training)."""
    if text.lower() == "auto":
        return "auto"
    sep = SEP_NAMES.get(text.lower(), text)
    if len(sep) != 1 or sep in "\"'\r\n" or sep.isalnum():
        raise argparse.ArgumentTypeError(f"expected one character or auto, comma, semicolon, tab, pipe, space, got {text!r}")
    return sep


def _decimal(text: str) -> str:
    if text not in (".", ","):
        raise argparse.ArgumentTypeError(f"expected '.' or ',', got {text!r}")
    return text


def _encoding(text: str) -> str:
    import codecs

    try:
        return codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r} (e.g. utf-8, latin-1, cp1252)") from None


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="xpnet", description="Train and use xpnet neural networks from the shell.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{train,predict,info}")
    _train_parser(commands)
    _predict_parser(commands)
    info = commands.add_parser(
        "info", help="list versions, backends and devices usable here, and why others are not",
        description="Show versions, which backends and devices are usable here (and why the others are not), "
        "and what --backend auto would choose.",
    )
    info.set_defaults(run=_run("info"))
    return parser


def _train_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train an MLP (default: on the shipped digits data) and report its test score",
        description="Train an MLP. Without --data, it learns the shipped 8x8 digits. CSV files: the separator "
        "is detected (',', ';', tab, '|'); text columns are one-hot encoded; empty cells and NA, nan, NULL, ... "
        "are missing values (see --missing).",
    )
    _add_train_data_options(train.add_argument_group("data"))
    _add_model_options(train.add_argument_group("model and training"))
    _add_backend_options(train, default_help="auto: $XPNET_BACKEND, else cupy if usable, else numpy")
    _add_plugin_option(train)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="(default: float32)")
    _add_train_output_options(train.add_argument_group("output"))
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel training on the processes of `mpiexec -n N` (needs xpnet[mpi]); "
                       "only rank 0 prints and saves")
    train.set_defaults(run=_run("train"), check=_check_train)


def _add_train_data_options(group: Any) -> None:
    """Which file to read, how, and which columns to learn from."""
    group.add_argument("--data", metavar="PATH", help="CSV file with a header line, or NPZ file with arrays X and y")
    group.add_argument("--target", type=_names, action="extend", metavar="COLUMNS",
                       help="CSV target column(s), by name or position; several (a,b,c, or the option repeated) "
                       "train a multi-output regressor (default: the last column with a name)")
    group.add_argument(
        "--task", choices=TASKS, default="auto",
        help="auto: text labels, and integers with at most 50 values each on 2 rows or more, are classes; "
        "others are regressed (the choice and its reason are printed)",
    )
    group.add_argument("--test-size", type=_share, default=None, metavar="SHARE",
                       help="share of rows held out for testing, stratified by class (default: 0.2; not with "
                       "--test-data)")
    group.add_argument("--test-data", metavar="PATH", help="score on this file (same columns) instead of a split")
    _add_reading_options(group)
    group.add_argument("--missing", choices=MISSING, default="error",
                       help="rows with a missing value: error (default), drop them, or fill feature values in "
                       "with the training rows' mean, median or most frequent value (categories: most frequent); "
                       "rows with a missing target are dropped")
    group.add_argument("--categorical", type=_names, action="extend", default=[], metavar="COLUMNS",
                       help="one-hot encode these columns even if they hold numbers (text columns always are; "
                       "the option may repeat)")
    group.add_argument("--ignore", type=_names, action="extend", default=[], metavar="COLUMNS",
                       help="leave these columns out (the option may repeat)")
    group.add_argument("--max-categories", type=_positive_int, default=100, metavar="N",
                       help="most distinct values a categorical column may have (default: 100)")


def _add_model_options(group: Any) -> None:
    """The network and how to train it."""
    group.add_argument("--hidden", type=_hidden, default=_hidden(DEFAULT_HIDDEN), metavar="SIZES",
                       help=f"hidden layer sizes, e.g. 128,64; 'none' for no hidden layer (default: {DEFAULT_HIDDEN})")
    group.add_argument("--activation", default=DEFAULT_ACTIVATION,
                       help="hidden-layer activation: a registered name, e.g. tanh, relu, leaky_relu, sigmoid, gelu, "
                       f"elu, silu, softplus, identity; --plugin adds yours (default: {DEFAULT_ACTIVATION})")
    group.add_argument("--epochs", type=_epochs, default=None, metavar="N",
                       help="most epochs to train (training stops earlier when --patience epochs bring no better "
                       "validation loss), or auto (the default): 500 with early stopping, else 100; fewer for large "
                       "data (as many as make about 20,000 steps, at least 5)")
    group.add_argument("--validation-split", type=_share, default=DEFAULT_VALIDATION, metavar="SHARE",
                       help="share of the training rows held out (stratified by class) to stop early on "
                       f"(default: {DEFAULT_VALIDATION}); 0 turns early stopping off")
    group.add_argument("--patience", type=_patience, default=DEFAULT_PATIENCE, metavar="N",
                       help="stop after N epochs without a better validation loss, and keep the best epoch's "
                       f"weights (default: {DEFAULT_PATIENCE}); 0 or none: train all --epochs")
    group.add_argument("--lr", type=_positive_float, default=DEFAULT_LR, help=f"learning rate (default: {DEFAULT_LR})")
    group.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH, metavar="N",
                       help=f"minibatch rows, or 'full' for full-batch descent (default: {DEFAULT_BATCH})")
    group.add_argument("--optimizer", default=DEFAULT_OPTIMIZER, metavar="NAME",
                       help="sgd, momentum (SGD with momentum 0.9), adam, rmsprop, adamw, or one --plugin registers "
                       f"(default: {DEFAULT_OPTIMIZER})")
    group.add_argument("--lr-schedule", type=_lr_schedule, default=None, metavar="SPEC",
                       help=f"learning-rate schedule: {LR_SCHEDULE_HELP} (default: none, a constant rate)")
    group.add_argument("--weight-decay", type=_non_negative, default=None, metavar="WD",
                       help="weight decay of the optimizer (decoupled for adamw; default: 0, adamw 0.01)")
    group.add_argument("--dropout", type=_rate, default=0.0, metavar="RATE",
                       help="dropout after each hidden layer's activation, while training (default: 0, none)")
    group.add_argument("--seed", type=_seed, default=0, help="seeds the split, initial weights and shuffling (default: 0)")


def _add_train_output_options(group: Any) -> None:
    """What `xpnet train` writes besides its report."""
    group.add_argument("--save", metavar="MODEL", help="write the trained model (safetensors) to MODEL")
    group.add_argument("--plot", metavar="PNG", help="draw the loss curves to PNG (needs matplotlib: xpnet[plot])")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bar (it is also off when stderr, where it is drawn, is not a terminal)")
    group.add_argument("--checkpoint", metavar="PATH",
                       help="write a checkpoint to PATH after every epoch (and on Ctrl-C or SIGTERM); an "
                       "existing PATH is refused without --resume, never overwritten")
    group.add_argument("--resume", action="store_true",
                       help="resume from --checkpoint PATH if it exists, else start fresh (and say so)")


def _predict_parser(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict with a saved model; writes CSV",
        description="Predict one row per row of DATA (CSV or NPZ, read like train --data) with a saved model. "
        "CSV columns are matched by the names the model was trained on; a target column is ignored. Missing "
        "values are filled in as in training (or are an error, or get an empty prediction under --missing drop).",
    )
    predict.add_argument("model", metavar="MODEL", help="a model written by `xpnet train --save` or Network.save")
    predict.add_argument("data", metavar="DATA", help="CSV or NPZ file of rows to predict")
    predict.add_argument("--output", metavar="PATH",
                         help="write the CSV here instead of to stdout ('-': stdout; ./- names a file called -)")
    _add_reading_options(predict, from_model=True)
    _add_backend_options(predict, default_help="default: numpy, so no GPU is needed", default="numpy")
    _add_plugin_option(predict)
    predict.set_defaults(run=_run("predict"), check=_check_predict)


def _add_reading_options(group: Any, from_model: bool = False) -> None:
    same = "; added to those given in training" if from_model else ""
    trained = "as in training, else " if from_model else ""
    group.add_argument("--sep", type=_sep, default=None, metavar="CHAR",
                       help="CSV separator: one character, or comma, semicolon, tab, pipe, space (default: "
                       + ("the --sep given in training, else " if from_model else "") + "detected from the header "
                       "and first rows; auto detects it)")
    group.add_argument("--encoding", type=_encoding, default=None,
                       help=f"text encoding of CSV files, e.g. latin-1 (default: {trained}utf-8)")
    group.add_argument("--decimal", type=_decimal, default=None, metavar="CHAR",
                       help=f"decimal mark of numbers: . or , (default: {trained}.)")
    group.add_argument("--na-values", type=_tokens, action="extend", default=None, metavar="TOKENS",
                       help="more tokens that mark a missing value, e.g. '?,-' (always: empty, NA, NaN, nan, NULL, "
                       f"N/A, None, ...){same}")
    group.add_argument("--unknown", choices=UNKNOWN, default="error",
                       help="a category not seen in training: error (default), or ignore: all zeros")


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (repeatable): it registers your own activations and optimizers, "
                             "which --activation and --optimizer take by name, and the layers and "
                             "activations a model file names but never contains")


def _import_plugins(modules: Sequence[str]) -> None:
    """Import the user's component modules (from the Python path or the
    current folder) before anything names their components."""
    import importlib

    if modules and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for name in modules:
        if name.endswith(".py") or os.sep in name or "/" in name:  # a path: import the module it names
            module = os.path.splitext(os.path.basename(name))[0]
            raise UsageError(f"--plugin {name}: give the module's name, as `import` takes it (--plugin {module}), "
                             "run from its folder or with that folder on PYTHONPATH")  # fmt: skip
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise UsageError(f"--plugin {name}: cannot import it ({type(exc).__name__}: {exc})") from None


def _add_backend_options(parser: argparse.ArgumentParser, default_help: str, default: str = "auto") -> None:
    parser.add_argument("--backend", default=default, type=_backend_name,
                        help=f"numpy, cupy, torch, jax, array_api_strict or auto ({default_help})")
    parser.add_argument("--device", help="device of the backend, e.g. cuda:1 (cupy, torch), cuda (torch), gpu:0 (jax)")


def _backend_name(text: str) -> str:
    name = text.strip().lower()
    if name not in (*KNOWN_BACKENDS, "auto"):
        raise argparse.ArgumentTypeError(f"unknown backend {text!r}; expected auto, {', '.join(KNOWN_BACKENDS)}")
    return name


def _run(name: str):
    def run(args: argparse.Namespace) -> int:
        from . import _commands

        return getattr(_commands, name)(args)

    return run


# --------------------------------------------------------------------------
# Checks of the whole command line, before any data is read (exit 2)
# --------------------------------------------------------------------------


def _check_train(args: argparse.Namespace) -> None:
    try:
        args.activation = _activation(args.activation)  # here, once --plugin modules have registered theirs
        args.optimizer = _optimizer(args.optimizer)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{exc} (see `xpnet train --help`)") from None
    _check_weight_decay(args)
    if args.dropout and not args.hidden:
        raise UsageError("--dropout applies after hidden layers, and --hidden none has none (drop one of them)")
    if args.resume and args.checkpoint is None:
        raise UsageError("--resume needs --checkpoint PATH: the checkpoint to resume from")
    if args.data is None:
        for option in ("target", "test_data", "sep", "encoding", "decimal", "na_values"):
            if getattr(args, option) not in (None, []):
                flag = "--" + option.replace("_", "-")
                raise UsageError(f"{flag} applies to --data; the shipped digits have no file to read (pass --data PATH)")
        for option in ("categorical", "ignore"):
            if getattr(args, option):
                raise UsageError(f"--{option} names columns of --data; the shipped digits have none (pass --data PATH)")
        for option, default in (("missing", "error"), ("unknown", "error"), ("max_categories", 100)):
            if getattr(args, option) != default:  # an option of the file's reading that did nothing, in silence
                raise UsageError(f"--{option.replace('_', '-')} applies to --data; the shipped digits have no missing "
                                 "values or categories (pass --data PATH)")
    if args.test_size is not None and args.test_data is not None:
        raise UsageError("--test-size and --test-data both choose the test rows; give one of them")
    args.test_size = 0.2 if args.test_size is None else args.test_size
    _check_marks(args, default_decimal=".")
    _input_path("--data", args.data)
    _input_path("--test-data", args.test_data)
    outputs = (("--save", args.save), ("--plot", args.plot), ("--checkpoint", args.checkpoint))
    for option, path in outputs:
        if path == "-":  # stdout to a shell user; a file named '-' appeared in the folder
            what = {"--save": "a model", "--plot": "an image", "--checkpoint": "a checkpoint"}[option]
            raise UsageError(f"{option} -: {option} writes {what} to a file, not to stdout; give a path "
                             "(./- for a file named -)")  # fmt: skip
        _output_path(option, path, keep=option == "--checkpoint", replaced=option != "--plot")
    _distinct_files(outputs, (("--data", args.data), ("--test-data", args.test_data)))
    _kept_checkpoint(args)
    if args.plot:
        _check_plot(args.plot)


def _kept_checkpoint(args: argparse.Namespace) -> None:
    """A checkpoint at --checkpoint PATH without --resume: a fresh run would
    write its first epoch over it, and the epochs of the run that wrote it
    (hours, perhaps) would be lost in silence. Refused, saying both ways on.
    A link to a file not written yet holds nothing to lose (loops are refused before)."""
    path = args.checkpoint
    if path is None or args.resume or not os.path.exists(path):
        return
    raise UsageError(f"--checkpoint {path} exists: add --resume to continue the run that wrote it, or, to start "
                     "over, delete it or choose another --checkpoint path (nothing was written)")


def _check_plot(path: str) -> None:
    """matplotlib, and an image format it writes, named by the extension
    (:func:`xpnet.plotting.check_image_format`): found after training,
    ``.txt`` failed the run (the model saved, the curves lost), and no
    extension wrote ``PATH.png`` where the run said ``PATH``."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed (pip install 'xpnet[plot]')") from None
    from .plotting import check_image_format

    try:
        check_image_format(path)
    except ValueError as exc:
        raise UsageError(f"--plot {path}: {exc}") from None


def _check_weight_decay(args: argparse.Namespace) -> None:
    """--weight-decay needs an optimizer with that setting (a plugin's may have none), and --lr (always passed,
    its default too) one that takes ``lr``: either was a TypeError once the data was read."""
    import inspect

    from .optimizers import OPTIMIZERS, PRESETS

    name = PRESETS.get(args.optimizer, (args.optimizer, {}))[0]
    takes = inspect.signature(OPTIMIZERS.lookup(name)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in takes.values()):  # **settings may hold both
        return
    if "lr" not in takes:
        raise UsageError(f"--optimizer: the optimizer {args.optimizer!r} takes no lr, which xpnet train always "
                         "passes (--lr, or its default): an optimizer's constructor takes the learning rate as lr=")
    if args.weight_decay is not None and "weight_decay" not in takes:
        raise UsageError(f"--weight-decay: the optimizer {args.optimizer!r} has no weight_decay setting "
                         "(leave --weight-decay out, or choose sgd, momentum, adam, adamw or rmsprop)")


def _check_marks(args: argparse.Namespace, default_decimal: str | None) -> None:
    """A separator that is the decimal mark (given, or ``default_decimal``;
    predict's default is the model's, unknown here) is a bad option value."""
    decimal = args.decimal or default_decimal
    if args.sep is not None and args.sep == decimal:
        what = f"--sep and --decimal are both {args.sep!r}" if args.decimal else (
            f"--sep {args.sep!r} is the decimal mark (--decimal defaults to {decimal!r})")  # fmt: skip
        raise UsageError(f"{what}; a number's decimal mark cannot separate columns")


def _check_predict(args: argparse.Namespace) -> None:
    _check_marks(args, default_decimal=None)
    _input_path("MODEL", args.model, "model file")
    _input_path("DATA", args.data)
    if args.output == "-":  # stdout, the Unix convention: no file is written
        args.output = None
    _output_path("--output", args.output)
    _distinct_files((("--output", args.output),), (("MODEL", args.model), ("DATA", args.data)))


def _distinct_files(outputs: Any, inputs: Any) -> None:
    """No output may be a file the command reads, or another output: it
    would be destroyed (``predict m.st d.csv --output d.csv`` replaced the
    data; ``--output m.st`` the model) before anyone noticed."""
    seen = [(option, path) for option, path in inputs if path is not None]
    for option, path in outputs:
        if path is None:
            continue
        for other, known in seen:
            if _same_file(path, known):
                raise UsageError(f"{option} {path} is the same file as {other}: writing it would destroy it "
                                 "(choose another path)")  # fmt: skip
        seen.append((option, path))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): the same path only if it names the same place
        return os.path.realpath(a) == os.path.realpath(b)


def _input_path(option: str, path: str | None, what: str = "data file") -> None:
    if path is None:
        return
    from .data_io import check_input_file

    try:
        check_input_file(path, what)
    except FileNotFoundError as exc:
        if path == "-":  # the Unix name of standard input (--output - is stdout)
            raise UsageError(f"{option} -: standard input is not read (xpnet reads its input twice: the header, "
                             f"then the rows); give the path of a {what}, written first") from None  # fmt: skip
        raise UsageError(f"{option}: {exc} (check the path)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: {_os_message(exc)}") from None


def _os_message(exc: BaseException) -> str:
    """An OSError as ``<what>: <path>`` rather than ``[Errno 2] ...: '<path>'``."""
    if isinstance(exc, OSError) and exc.strerror:
        paths = [p for p in (exc.filename, exc.filename2) if p is not None]
        return f"{exc.strerror}: {' -> '.join(map(str, paths))}" if paths else exc.strerror
    return str(exc)


def _output_path(option: str, path: str | None, keep: bool = False, replaced: bool = False) -> None:
    """The file can be written: its folder exists and takes a new file (a
    probe file is created and removed: read-only or full folders fail here,
    not after training). ``replaced``: the file is written by replacing it
    (a model, a checkpoint), so it must not be a device or a FIFO."""
    if path is None:
        return
    import tempfile
    from pathlib import Path

    from ._files import is_symlink_loop, through_links

    target = Path(path)
    if is_symlink_loop(target):
        raise UsageError(f"{option} {path} is a symlink loop (too many levels of symbolic links); give the path of "
                         "a file")  # fmt: skip
    if not replaced and _written_in_place(option, path):
        return
    target = through_links(target)  # the file the write replaces: a link's own folder said nothing of it
    if target.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if path.endswith(("/", os.sep)):  # Path() drops the slash: a file named as the folder would be written
        raise UsageError(f"{option} {path} ends with '/', naming a folder, and no such folder exists; give the path "
                         "of a file")  # fmt: skip
    if replaced and target.exists() and not target.is_file():
        raise UsageError(f"{option} {path} is not a regular file (a device or a FIFO); the file is written by "
                         "replacing it, so give the path of a file")  # fmt: skip
    folder = target.parent
    if not folder.is_dir() and folder.exists():
        raise UsageError(f"{option} {path}: {folder} is a file, not a folder (choose another path)")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {folder} does not exist (create it, or choose another path)")
    if target.exists() and not keep and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".xpnet-probe-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in the folder {folder} ({exc.strerror or exc})") from None


def _written_in_place(option: str, path: str) -> bool:
    """Is ``path`` (through its links) a device or a pipe, such as /dev/null
    or /dev/stdout, that the command writes into as it is? Then no new file
    is made beside it (/dev/stdout leads to /proc/self/fd/1, whose folder
    takes none): it need only be writable."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return False
    if not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: it is not writable")
    return True


# --------------------------------------------------------------------------
# main: every failure is one line and a non-zero exit status
# --------------------------------------------------------------------------


def _hint(exc: BaseException, command: str | None) -> str:
    if getattr(exc, "hint", None):
        return exc.hint
    if isinstance(exc, FloatingPointError):
        return "pass a smaller --lr" if command == "train" else "retrain the model with --dtype float64"
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:  # NumPy's, CuPy's, torch's
        less = "a smaller --hidden or --batch-size, or fewer rows" if command == "train" else "fewer rows at a time"
        return f"not enough memory: try {less}"
    if isinstance(exc, BackendUnavailable):
        return "`xpnet info` lists the backends usable here; --backend numpy always works"
    if isinstance(exc, ImportError):  # an optional dependency: its message says what to install
        return "install what the message names"
    if isinstance(exc, FileNotFoundError):
        return "check the path"
    if isinstance(exc, OSError):
        return "check the path and its permissions"
    if isinstance(exc, ValueError | TypeError):
        return f"see `xpnet {command} --help`" if command else "see `xpnet --help`"
    if isinstance(exc, NotImplementedError) and "must define" in str(exc):  # a subclass (a --plugin's) left it out
        return "a component class lacks a method its base class needs: see the README's 'Extending xpnet'"
    return "this looks like a bug in xpnet; rerun with XPNET_DEBUG=1 for the traceback and report it"


def _fail(message: str, hint: str | None, status: int, debug: bool = False) -> int:
    """Print the one-line error (under ``XPNET_DEBUG``, the traceback above it) and return ``status``."""
    if debug:
        traceback.print_exc()
    text = " ".join(str(message).split()) or "unknown error"
    print(f"xpnet: error: {text}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    return status


@contextlib.contextmanager
def _one_line_warnings():
    """Python warnings (a library's, NumPy's) printed as one line each, like
    errors. Only the format changes, so a caller that records warnings
    (``pytest.warns``) still gets them."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *rest, **kw: "xpnet: warning: " + " ".join(str(message).split()) + "\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success). A
    ``--distributed`` process that fails ends the whole MPI job."""
    status = _main(argv)
    if 0 < status < 128 and _distributed_argv(argv):  # 128 + a signal: every process was stopped together
        from .distributed import abort_job

        abort_job(status)
    return status


def _after_interrupt(args: Any) -> str:
    """What a second Ctrl-C leaves: the last epoch's checkpoint, where
    ``--checkpoint`` wrote one, and the command that resumes from it."""
    path = getattr(args, "checkpoint", None)
    if getattr(args, "command", None) != "train" or path is None or not os.path.isfile(path):
        return "nothing was saved"
    again = [a for a in sys.argv[1:] if a != "--resume"]
    command = shlex.join(["xpnet", *again, "--resume"])
    return f"the checkpoint {path} holds the last epoch written; resume with: {command}"


def _dash_tokens_kept(argv: Sequence[str]) -> list[str]:
    """``--na-values=--``: argparse (Python 3.11) drops a value ``--``,
    taking it for the end of the options, so the token was silently lost.
    A space before the value (which ``_tokens`` strips) keeps it a value."""
    prefix = "--na-values="
    return [f"{prefix} {a[len(prefix):]}" if a.startswith(prefix + "-") else a for a in argv]


def _distributed_argv(argv: Sequence[str] | None) -> bool:
    """Was ``--distributed`` given (read from the words: the failure may have been in parsing them)?"""
    return "--distributed" in (sys.argv[1:] if argv is None else argv)


def _main(argv: Sequence[str] | None) -> int:
    debug = os.environ.get("XPNET_DEBUG", "").strip() not in ("", "0")
    command, args = None, None
    try:
        args, unknown = build_parser().parse_known_args(_dash_tokens_kept(sys.argv[1:] if argv is None else argv))
        command = args.command
        if unknown and command == "info":  # `xpnet info model.safetensors`: it reads no file, and says so
            raise UsageError(f"xpnet info takes no arguments, got {' '.join(unknown)!r}: it shows this installation's "
                             "versions, backends and devices (see `xpnet info --help`)")
        if unknown:
            prog = f"xpnet {command}" if command else "xpnet"
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see `{prog} --help`)")
        if command is None:
            raise UsageError("no command given; expected train, predict or info (see `xpnet --help`)")
        _import_plugins(getattr(args, "plugin", []))  # before the checks: plugins add activations
        if hasattr(args, "check"):
            args.check(args)
        with _one_line_warnings():
            return args.run(args)
    except UsageError as exc:
        return _fail(str(exc), None, EXIT_USAGE, debug)
    except KeyboardInterrupt:
        return _fail("interrupted", _after_interrupt(args), EXIT_INTERRUPTED, debug)
    except BrokenPipeError:  # `xpnet predict ... | head`: the reader left; stay quiet
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_ERROR
    except Exception as exc:
        if debug:
            raise
        message = _os_message(exc)
        if not isinstance(exc, ValueError | TypeError | OSError | FloatingPointError | RuntimeError) or not message:
            message = f"{type(exc).__name__}: {message}"
        return _fail(message, _hint(exc, command), EXIT_ERROR)
