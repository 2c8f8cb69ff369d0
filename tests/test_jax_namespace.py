"""xpnet's JAX namespace: float32 products at full precision, as CuPy and
torch compute them (JAX's own default on a GPU is TF32), unless the user
chose a precision. Checked in the traced programs, so the CPU sees what a
GPU would run."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the JAX namespace needs JAX")

import array_api_compat as compat  # noqa: E402
from helpers import jax_x64  # noqa: E402

import xpnet  # noqa: E402
from xpnet import _xp  # noqa: E402
from xpnet._jax_namespace import xp  # noqa: E402


def _precisions(fn, *args):
    """The ``precision`` of every product in ``fn``'s program."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e.params["precision"] for e in jaxpr.eqns if e.primitive.name == "dot_general"]


def _float32(*shape):
    return jax.numpy.asarray(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


def test_products_ask_for_the_highest_precision():
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    a, w, b = _float32(4, 3), _float32(3, 2), _float32(2)
    assert _precisions(xp.matmul, a, w) == [highest]
    assert _precisions(lambda a, w, b: _xp.affine(xp, a, w, b), a, w, b) == [highest]
    assert _precisions(jax.numpy.matmul, a, w) == [None]  # JAX's own: the check above can fail


def test_a_precision_the_user_chose_wins():
    a, w = _float32(4, 3), _float32(3, 2)
    with jax.default_matmul_precision("tensorfloat32"):
        users = _precisions(jax.numpy.matmul, a, w)
        assert _precisions(xp.matmul, a, w) == users
    assert users != [(jax.lax.Precision.HIGHEST,) * 2]


def test_a_jax_network_computes_with_it():
    net = xpnet.MLP([3, 4, 2], "tanh", "softmax", backend="jax", seed=0)
    assert net.backend.xp.matmul is xp.matmul
    assert compat.is_jax_namespace(net.backend.xp)
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(np.asarray(net.predict(X)), xpnet.MLP([3, 4, 2], "tanh", "softmax", seed=0,
                               dtype="float32", backend="numpy").predict(X), rtol=1e-6)  # fmt: skip


def test_every_product_in_xpnet_goes_through_the_namespace():
    """An ``a @ b`` in xpnet's code would take the library's own precision
    (TF32 on JAX's GPU) past xpnet's namespace; ``xp.matmul`` is the one
    way (found by reading the source, so the CPU catches it)."""
    import ast
    from pathlib import Path

    package = Path(xpnet.__file__).parent
    found = [f"{path.relative_to(package)}:{node.lineno}" for path in sorted(package.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.MatMult)]  # fmt: skip
    assert found == []


def test_labels_and_predicted_classes_ask_jax_for_no_int64_in_its_default_32_bit_mode():
    """`xp.int64` on JAX without its 64-bit mode warns ("will be truncated
    to dtype int32") at every predict of a binary or multilabel classifier
    and every fit on float class labels: the namespace's default integer
    dtype is used instead (int32 there, int64 elsewhere)."""
    import warnings

    pytest.importorskip("jax", reason="jax is not installed")
    import jax.numpy as jnp

    from xpnet._xp import index_dtype

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)).astype("float32"), rng.integers(0, 3, 60)
    with jax_x64(False):
        assert index_dtype(xpnet.get_backend("jax").xp) == jnp.int32
        net = xpnet.MLP([4, 3], output_activation="softmax", backend="jax", seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            net.fit(X, jnp.asarray(y.astype("float32")), loss="cross_entropy", epochs=2)
            net.evaluate(X, jnp.asarray(y.astype("float32")), "cross_entropy")
        if importlib.util.find_spec("sklearn") is not None:
            from xpnet.sklearn import MLPClassifier

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # 3 iterations: a ConvergenceWarning
                binary = MLPClassifier(backend="jax", max_iter=3, random_state=0).fit(X, y % 2)
                Y2 = np.stack([y % 2, y // 2], 1)
                multilabel = MLPClassifier(backend="jax", max_iter=3, random_state=0).fit(X, Y2)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert set(binary.predict(X)) <= {0, 1} and multilabel.predict(X).shape == (60, 2)
    assert index_dtype(xpnet.get_backend("numpy").xp) == np.int64


def test_the_scikit_learn_drop_in_on_jax_in_32_bit_mode_names_both_ways_out_of_float64():
    pytest.importorskip("jax", reason="jax is not installed")
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    import warnings

    from xpnet.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    with jax_x64(False):
        with pytest.raises(ValueError, match="pass dtype='float32', or switch on JAX's 64-bit mode") as refused:
            MLPClassifier(backend="jax", max_iter=2).fit(X, y)
        # jax.config reaches one process; n_jobs > 1 runs fits in workers that start in 32-bit mode
        assert "which the worker processes of n_jobs > 1 inherit too" in str(refused.value)
        assert "reaches this process only" in str(refused.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 2 iterations: a ConvergenceWarning
            fitted = MLPClassifier(backend="jax", dtype="float32", max_iter=2, random_state=0).fit(X, y)
        assert fitted.coefs_[0].dtype == np.float32


def test_a_users_rank_promotion_raise_leaves_xpnets_own_broadcasting_alone():
    """``jax_numpy_rank_promotion='raise'`` (set to catch one's own
    broadcasting bugs) made every JAX entry point fail deep in a layer:
    "Operands could not be broadcast together for add on shapes (8, 8) (8,)"."""
    X = np.random.default_rng(0).normal(size=(24, 3))
    labels = np.arange(24) % 2

    def run():
        net = xpnet.Network([
            xpnet.Dense(3, 8), xpnet.BatchNorm(8), "relu", xpnet.Residual([xpnet.LayerNorm(8), xpnet.Dense(8, 8)]),
            xpnet.Dropout(0.2), xpnet.Dense(8, 2, "softmax"),
        ], backend="jax", dtype="float32", seed=0)  # fmt: skip
        history = net.fit(X, labels, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=8, seed=0,
                          validation_split=0.25, metrics=("accuracy",))  # fmt: skip
        neuron = xpnet.Neuron(3, "sigmoid", backend="jax", dtype="float32", seed=0)
        return (history.loss, np.asarray(net.predict(X)), net.evaluate(X, labels, "cross_entropy"),
                xpnet.gradcheck(net, X[:4], labels[:4], "cross_entropy"), np.asarray(neuron.forward(X[0])))  # fmt: skip

    want = run()
    with jax.numpy_rank_promotion("raise"):
        got = run()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from xpnet.sklearn import MLPRegressor

    with jax.numpy_rank_promotion("raise"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 iterations do not converge
        for solver in ("adam", "lbfgs"):
            reg = MLPRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=3, backend="jax", dtype="float32")
            assert reg.fit(X, X[:, :2]).predict(X).shape == (24, 2)
