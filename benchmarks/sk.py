"""SK, the scikit-learn drop-in: ``xpnet.sklearn.MLPClassifier`` against
``sklearn.neural_network.MLPClassifier`` with the same settings on the
digits, float64 (the data as scikit-learn loads it) and float32.

Settings: scikit-learn's defaults (one hidden layer of 100 ReLU units,
Adam at 1e-3, ``batch_size="auto"`` = 200, ``alpha=1e-4``, shuffled), except
that both run exactly ``EPOCHS`` epochs (``tol=0``, ``n_iter_no_change``
above ``max_iter``), so that they do the same number of steps. Both start
from the same weights: the same ``random_state`` draws the same initial
weights in both libraries. xpnet trains on NumPy (``backend="numpy"``), on
the same CPU. The digits come from scikit-learn (``X / 16``), split 75/25
stratified with a fixed seed; the test accuracy is reported for both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings
from .harness import Comparison, Impl, Skip, Workload, have

NAME = "SK"
RANDOM_STATE, SPLIT_SEED = 0, 0
EPOCHS = 100


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return tuple(train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=SPLIT_SEED))


def settings(epochs: int) -> dict[str, Any]:
    """scikit-learn's defaults, with a fixed number of epochs."""
    return dict(random_state=RANDOM_STATE, max_iter=epochs, tol=0.0, n_iter_no_change=10**9)


def build_all(s: Settings, rss: bool = True) -> list[Workload]:
    if not have("sklearn"):
        raise Skip("scikit-learn is not installed (pip install 'xpnet[bench]')")
    return [build(s, "float64"), build(s, "float32")]


def build(s: Settings, dtype: str) -> Workload:
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from xpnet.sklearn import MLPClassifier as XpnetMLP

    Xtr, Xte, ytr, yte = data()
    if s.quick:
        Xtr, ytr = Xtr[:256], ytr[:256]
    split = (Xtr.astype(dtype), Xte.astype(dtype), ytr, yte)
    epochs = s.steps(EPOCHS, 2)
    steps = epochs * -(-Xtr.shape[0] // min(200, Xtr.shape[0]))
    impls = [
        _impl("xpnet-numpy", "xpnet.sklearn.MLPClassifier (numpy)", lambda **kw: XpnetMLP(backend="numpy", **kw),
              split, epochs),
        _impl("sklearn", "sklearn.neural_network.MLPClassifier", SklearnMLP, split, epochs),
    ]  # fmt: skip
    comps = [Comparison("xpnet-numpy", "sklearn", 0.5, "xpnet.sklearn / scikit-learn MLPClassifier (2x faster)")]
    if have("jax"):  # float64 on JAX needs its 64-bit mode, switched on here for this process
        import jax

        jax.config.update("jax_enable_x64", True)
        impls.append(_impl("xpnet-jax", "xpnet.sklearn.MLPClassifier (jax cpu, one program per epoch)",
                           lambda **kw: XpnetMLP(backend="jax", device="cpu", **kw), split, epochs))  # fmt: skip
        comps.append(Comparison("xpnet-jax", "sklearn", 0.5,
                                "xpnet.sklearn on JAX (cpu) / scikit-learn MLPClassifier (2x faster)"))
    return Workload(
        f"{NAME}-{dtype}",
        f"SK digits {dtype}: MLPClassifier defaults (100 ReLU, adam 1e-3, batch 200, alpha 1e-4), {epochs} epochs, "
        "xpnet.sklearn vs scikit-learn",
        impls,
        comps,
        steps=steps,
        meta={"epochs": epochs, "dtype": dtype, "quick": s.quick, "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])},
    )


def _impl(key: str, label: str, make: Any, split: tuple, epochs: int) -> Impl:
    """One estimator class, fit for ``epochs`` (3 in the warm-up) on the
    training rows; reports its final loss and test accuracy."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    Xtr, Xte, ytr, yte = split

    def prepare(warmup: bool):
        model = make(**settings(min(epochs, 3) if warmup else epochs))

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xtr, ytr)
            return lambda: {
                "final_loss": float(model.loss_curve_[-1]),
                "test_accuracy": float(np.mean(model.predict(Xte) == yte)),
            }

        return run

    return Impl(key, label, prepare)
