"""One compiled step per optimizer *structure*, not per setting.

A JAX program was kept per optimizer config, so every new learning rate,
beta or ``alpha`` of a hyperparameter search (and every fold's row counts
in scikit-learn's L2 bookkeeping) compiled the step again: seconds each,
against tens of milliseconds for the fit itself. An optimizer's
``program_config`` now names only what its trace depends on; these tests
hold the built-ins to it by comparing the programs JAX traces, and the fits
that share a program to the eager ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host

jax = pytest.importorskip("jax", reason="jax is not installed: these tests compare JAX's traced programs")

import xpnet  # noqa: E402
from xpnet import _programs  # noqa: E402
from xpnet._kernels import _mode, _Scalars, host_scalars  # noqa: E402
from xpnet._trainstep import _state_lists  # noqa: E402
from xpnet.optimizers import SGD, Adam, AdamW, RMSprop  # noqa: E402


def _sklearn_parts():
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
    from xpnet.sklearn import _objective

    return _objective


def _batch_l2(inner, alpha, rows):
    o = _sklearn_parts()
    return o.BatchL2(inner, alpha, o.EpochPlan(rows), int(sum(rows)))


#: Pairs with equal program configs and different settings everywhere else.
SAME_PROGRAM = {
    "sgd": lambda: (SGD(lr=0.1), SGD(lr=0.3)),
    "sgd_momentum": lambda: (SGD(lr=0.1, momentum=0.5, weight_decay=0.1),
                             SGD(lr=0.2, momentum=0.9, weight_decay=0.3)),  # fmt: skip
    "nesterov": lambda: (SGD(lr=0.1, momentum=0.5, nesterov=True), SGD(lr=0.01, momentum=0.8, nesterov=True)),
    "adam": lambda: (Adam(lr=1e-3), Adam(lr=3e-2, beta1=0.8, beta2=0.99, eps=1e-6)),
    "adamw": lambda: (AdamW(lr=1e-3, weight_decay=0.01), AdamW(lr=1e-2, beta1=0.7, weight_decay=0.2)),
    "rmsprop": lambda: (RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True),
                        RMSprop(lr=0.02, alpha=0.95, eps=1e-6, momentum=0.2, centered=True)),  # fmt: skip
    "sklearn_adam_l2": lambda: (_batch_l2(_sklearn_parts().PaperAdam(lr=1e-3), 1e-4, (200, 200, 147)),
                                _batch_l2(_sklearn_parts().PaperAdam(lr=5e-3, beta1=0.8), 0.3, (64, 10))),
    "sklearn_sgd_l2": lambda: (_batch_l2(_sklearn_parts().VelocitySGD(lr=0.1, momentum=0.9), 1e-4, (30, 30)),
                               _batch_l2(_sklearn_parts().VelocitySGD(lr=0.2, momentum=1.0), 1.0, (7,))),
}


def _traced(opt):
    """The optimizer's step as JAX traces it in a compiled step: the state's
    arrays and the update scalars are arguments, the host state is frozen."""
    rng = np.random.default_rng(0)
    params = [jax.numpy.asarray(rng.normal(size=s), dtype="float32") for s in ((3, 4), (4,))]
    grads = [p * 0.5 for p in params]
    state = opt.init_state(params)
    host_state = {k: v for k, v in state.items() if not isinstance(v, list)}
    slots = jax.numpy.asarray(host_scalars(opt, state)[0], dtype="float32")

    def step(params, grads, arrays, slots):
        with _mode(scalars=_Scalars(slots)):
            new, out = opt.step(params, grads, {**host_state, **arrays}, decay=[True, False])
        return new, _state_lists(out)

    arrays = {k: v for k, v in state.items() if isinstance(v, list)}
    return jax.make_jaxpr(step)(params, grads, arrays, slots)


def _same_program(a, b) -> bool:
    ja, jb = _traced(a), _traced(b)
    return str(ja) == str(jb) and len(ja.consts) == len(jb.consts) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(ja.consts, jb.consts))  # fmt: skip


@pytest.mark.parametrize("case", SAME_PROGRAM)
def test_optimizers_with_one_program_config_trace_one_program(case):
    """Every setting a built-in leaves out of its program config reaches the
    arrays as an argument: the traced programs are identical, literals and
    constants included, so sharing the compiled one is exact."""
    a, b = SAME_PROGRAM[case]()
    assert _programs.program_key(a) == _programs.program_key(b)
    assert _same_program(a, b)


def test_the_comparison_sees_a_setting_baked_into_the_program():
    """The check above has teeth: a rate used outside ``update`` differs."""

    class Baked(SGD):
        compilable = True

        def step(self, params, grads, state, decay=None):
            return [p - self.lr * g for p, g in zip(params, grads)], state

    assert not _same_program(Baked(lr=0.1), Baked(lr=0.3))


@pytest.mark.parametrize(
    "a, b",
    [(SGD(lr=0.1), SGD(lr=0.1, momentum=0.5)), (SGD(momentum=0.5), SGD(momentum=0.5, nesterov=True)),
     (Adam(), Adam(weight_decay=0.1)), (Adam(), AdamW()), (RMSprop(), RMSprop(centered=True))],
)  # fmt: skip
def test_another_structure_is_another_program(a, b):
    assert _programs.program_key(a) != _programs.program_key(b)


def test_a_subclass_keys_by_every_setting_but_the_rate_unless_it_says_otherwise():
    """``program_config`` is read from the class itself (as ``compilable``):
    a subclass may bake its settings into its step, so it gets the default,
    not its parent's narrower config."""

    class MyAdam(Adam):
        name = "my_adam_program_config"
        compilable = True

    assert _programs.program_spec(MyAdam(lr=0.1)) == _programs.program_spec(MyAdam(lr=0.2))
    assert _programs.program_spec(MyAdam(beta1=0.8)) != _programs.program_spec(MyAdam(beta1=0.9))
    assert _programs.program_spec(Adam(beta1=0.8)) == _programs.program_spec(Adam(beta1=0.9))


def _fresh_programs(monkeypatch) -> None:
    """An empty program cache: the first fit's "compiles" must not depend on
    whether an earlier test in this worker compiled the same program."""
    monkeypatch.setattr(_programs, "_JAX_PROGRAMS", {})
    monkeypatch.setattr(_programs, "_HOST_READS", {})


def _programs_added(fit) -> int:
    before = set(_programs._JAX_PROGRAMS)
    fit()
    return len(set(_programs._JAX_PROGRAMS) - before)


def test_a_search_over_rates_and_betas_compiles_the_step_once(monkeypatch):
    """The second and third fits reuse the first one's programs, and train
    as the eager step does with their own settings."""
    _fresh_programs(monkeypatch)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > X[:, 1]).astype(int)

    def fit(opt, compile=True):
        net = xpnet.Network([xpnet.Dense(4, 6, "tanh"), xpnet.Dense(6, 2, "softmax")], backend="jax",
                            dtype="float64", seed=3)  # fmt: skip
        net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=16, seed=0, compile=compile)
        return net

    assert _programs_added(lambda: fit(Adam(lr=0.01))) > 0
    for opt in (Adam(lr=0.05), Adam(lr=0.02, beta1=0.7, beta2=0.9)):
        nets = []
        assert _programs_added(lambda: nets.append(fit(opt))) == 0
        eager = fit(opt, compile=False)
        for a, b in zip(nets[0]._params(), eager._params()):
            np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-14)


def test_a_scikit_learn_search_over_alpha_and_rate_compiles_once(monkeypatch):
    """scikit-learn's L2 term and Adam: new ``alpha`` and
    ``learning_rate_init`` values share the program and match NumPy."""
    _fresh_programs(monkeypatch)
    _sklearn_parts()
    from xpnet.sklearn import MLPClassifier

    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 5))
    y = (X[:, 0] + X[:, 2] > 0).astype(int)

    def fit(backend, **kw):
        return MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, tol=0.0, random_state=0, backend=backend,
                             **kw).fit(X, y)  # fmt: skip

    assert _programs_added(lambda: fit("jax", alpha=1e-4, learning_rate_init=1e-3)) > 0
    for kw in (dict(alpha=0.3, learning_rate_init=1e-2), dict(alpha=1e-3, learning_rate_init=3e-3, beta_1=0.8)):
        fits = []
        assert _programs_added(lambda: fits.append(fit("jax", **kw))) == 0
        ref = fit("numpy", **kw)
        np.testing.assert_allclose(fits[0].loss_curve_, ref.loss_curve_, rtol=1e-10)
