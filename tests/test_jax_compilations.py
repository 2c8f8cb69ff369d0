"""How many XLA programs a JAX fit, predict and evaluate compile (issue 14).

On a GPU each JAX operation run outside a program is compiled on first use
(tens of ms) and dispatched on its own (about 0.25 ms): a fit once compiled
63 small programs for `xpnet train --backend jax` (conversions, input checks,
one-hot, the split, the epoch reports). Host data is now checked, encoded
and split on the host and moved once, and the set-up and each epoch's
report run as one program each; these tests keep the count from creeping
back. Counted with JAX's own compile events, on the CPU.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import array_api_compat
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is not installed: these tests count JAX's compilations")

from helpers import compiled_names  # noqa: E402

import xpnet  # noqa: E402
from xpnet import _programs  # noqa: E402

#: JAX reports each compilation of a program for the backend under this event.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

_counts = {"on": False, "n": 0}


def _listen(event: str, duration: float, **kwargs) -> None:
    if _counts["on"] and event == COMPILE_EVENT:
        _counts["n"] += 1


jax.monitoring.register_event_duration_secs_listener(_listen)  # once per process: listeners stay


def compilations(fn):
    """``fn()`` and the number of XLA compilations it caused."""
    _counts.update(on=True, n=0)
    try:
        out = fn()
    finally:
        _counts["on"] = False
    return out, _counts["n"]


def _data(n: int, n_in: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, n_classes, size=n)


def test_a_fit_compiles_its_steps_and_one_program_each_for_state_and_report():
    """A fit with a validation share, a metric and a short last batch: two
    step programs (the two batch sizes), the optimizer's zeros, the epoch
    report and the NaN guard's sums: 5 (there were 45 for this fit:
    each conversion, check, one-hot, split and report operation compiled
    alone). Shapes no other test uses, so no cache hides a compile."""
    _programs._JAX_PROGRAMS.clear()
    X, y = _data(83, 7, 3, seed=1)
    net = xpnet.MLP([7, 13, 3], "tanh", "softmax", backend="jax", seed=0)
    fit = lambda: net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=16, seed=0,
                          validation_split=0.2, metrics=("accuracy",))  # fmt: skip
    history, n = compilations(fit)
    assert len(history.metrics["val_accuracy"]) == 3
    assert n <= 5, f"a JAX fit compiled {n} programs (expected at most 5)"
    again, n_again = compilations(fit)  # the same architecture again: everything is cached
    assert n_again == 0, f"a second fit of the same shapes compiled {n_again} programs"
    assert again.loss != history.loss  # it trained on (warm weights)


def test_predict_and_evaluate_compile_one_program_each_and_the_output_check():
    _programs._JAX_PROGRAMS.clear()
    X, y = _data(29, 5, 4, seed=2)
    net = xpnet.MLP([5, 11, 4], "relu", "softmax", backend="jax", seed=0)
    Y, n_predict = compilations(lambda: net.predict(X))
    assert n_predict <= 2, f"predict compiled {n_predict} programs (the forward and its finite check expected)"
    value, n_evaluate = compilations(lambda: net.evaluate(X, y, "cross_entropy"))
    assert n_evaluate <= 1, f"evaluate compiled {n_evaluate} programs (one expected)"
    host = np.asarray(Y, dtype=np.float64)
    expected = -np.mean(np.log(np.maximum(host[np.arange(len(y)), y], np.finfo(np.float32).eps)))
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    _, n_again = compilations(lambda: (net.predict(X), net.evaluate(X, y, "cross_entropy")))
    assert n_again == 0


def test_a_fit_on_jax_reports_the_same_figures_as_on_numpy():
    """The report's program computes what the eager operations computed."""
    X, y = _data(61, 6, 3, seed=3)
    runs = {}
    for backend in ("numpy", "jax"):
        net = xpnet.MLP([6, 9, 3], "tanh", "softmax", backend=backend, seed=0)
        runs[backend] = net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=4, batch_size=8, seed=0,
                                validation_split=0.25, metrics=("accuracy",))  # fmt: skip
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose(getattr(runs["jax"], name), getattr(runs["numpy"], name), rtol=2e-5)
    assert runs["jax"].metrics["val_accuracy"] == pytest.approx(runs["numpy"].metrics["val_accuracy"])


def test_xpnet_train_on_jax_compiles_a_handful_of_programs():
    """`xpnet train --backend jax` on the shipped digits (early stopping on a
    validation share, then the test accuracy), in a fresh process: the probe,
    two step programs, the optimizer's zeros, the epoch report, the NaN
    guard's sums, the test rows' forward and its finite check: 8 (63 before)."""
    code = textwrap.dedent(
        """
        import jax
        n = [0]
        def listen(event, duration, **kwargs):
            if event == %r:
                n[0] += 1
        jax.monitoring.register_event_duration_secs_listener(listen)
        from xpnet.cli import main
        assert main(["train", "--backend", "jax", "--quiet", "--epochs", "3"]) == 0
        print("compilations:", n[0])
        """
        % COMPILE_EVENT
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    n = int(out.stdout.rsplit("compilations:", 1)[1])
    assert "test accuracy" in out.stdout
    assert n <= 8, f"xpnet train --backend jax compiled {n} programs (expected at most 8)\n{out.stdout}"


def _scaling(k: float) -> type:
    """An unregistered activation ``k * v``; every class made here has one name."""

    class Scaled(xpnet.Activation):
        name = "scaled_same_name"

        def _forward(self, xp, v):
            return k * v

        def _derivative(self, xp, v):
            return k * xp.ones_like(v)

    return Scaled


def test_a_program_is_never_reused_for_another_class_of_the_same_name_and_config():
    """Re-registering a class (``replace=True``, a re-run notebook cell), or
    two unregistered classes sharing a name, have one config: the cached
    programs must still tell them apart, or a fit, predict and evaluate run
    the other class's code."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    for k in (1.0, 10.0):
        got, want = (xpnet.Network([xpnet.Dense(3, 2, _scaling(k)())], backend=b, seed=0) for b in ("jax", "numpy"))
        losses = [n.fit(X, Y, epochs=2, validation_data=(X, Y)).val_loss for n in (got, want)]
        np.testing.assert_allclose(*losses, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(got.predict(X)), want.predict(X), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.evaluate(X, Y, loss="mse"), want.evaluate(X, Y, loss="mse"), rtol=1e-5)


def _host_reading() -> type:
    """An unregistered activation that reads a value on the host (``float``),
    which JAX cannot trace; a new class per call, so a new program key."""

    class HostRead(xpnet.Activation):
        name = "host_read"

        def _forward(self, xp, v):
            return v / max(float(xp.max(v)), 1.0)

        def _derivative(self, xp, v):
            return xp.ones_like(v) / max(float(xp.max(v)), 1.0)

    return HostRead


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_a_component_that_reads_values_on_the_host_runs_op_by_op_on_jax(compile):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    act = _host_reading()
    got, want = (xpnet.Network([xpnet.Dense(3, 2, act())], backend=b, seed=0) for b in ("jax", "numpy"))
    kw = dict(epochs=3, validation_data=(X, Y), compile=compile)
    if compile is True:  # asked for a program: told why there is none (NumPy's recorded step says so too)
        with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX: a component reads array values"):
            fits = got.fit(X, Y, **kw)
        with pytest.warns(RuntimeWarning, match="cannot record this step on NumPy"):
            fits = (fits, want.fit(X, Y, **kw))
    else:
        fits = (got.fit(X, Y, **kw), want.fit(X, Y, **kw))
    np.testing.assert_allclose(fits[0].val_loss, fits[1].val_loss, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got.predict(X)), want.predict(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.evaluate(X, Y, loss="mse"), want.evaluate(X, Y, loss="mse"), rtol=1e-5)


def test_compile_true_is_told_of_a_host_read_each_fit_not_only_the_first():
    """The warning came only from the fit that found the read: a later fit
    of the same step (the program cache remembers) ran eagerly in silence."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    act = _host_reading()
    for compile in ("auto", True, True):
        net = xpnet.Network([xpnet.Dense(3, 2, act())], backend="jax", seed=0)
        if compile is True:
            with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX"):
                net.fit(X, Y, epochs=2, compile=compile)
        else:
            net.fit(X, Y, epochs=2, compile=compile)


@xpnet.register
class _OtherStreamNoise(xpnet.layers.Layer):
    """Draws from the stream after its own (outside the layer protocol), which
    the compiled step's table of key words does not hold; notes the random
    source of every forward in training."""

    name = "test_jax_compilations_other_stream_noise"
    uses_rng = True
    sources: list[str] = []

    def forward(self, xp, params, buffers, X, ctx):
        if not ctx.training or ctx.rng is None:
            return X, None, buffers
        type(self).sources.append(type(ctx.rng).__name__)
        keep = ctx.rng.keep(xp, tuple(X.shape), 0.8, self.stream + 1, array_api_compat.device(X))
        scale = xp.astype(keep, X.dtype) / 0.8
        return X * scale, scale, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * cache, []


def test_a_layer_drawing_from_another_stream_runs_op_by_op_and_compile_true_is_told_each_fit():
    """Its step cannot be one program: each fit traced it again to find that
    out (one failed trace a fit), and compile=True ran eagerly in silence."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(24, 3)), rng.integers(0, 2, size=24)
    kw = dict(loss="cross_entropy", epochs=2, batch_size=8, seed=0)
    want = xpnet.Network([xpnet.Dense(3, 4, "tanh"), _OtherStreamNoise(), xpnet.Dense(4, 2, "softmax")],
                         backend="numpy", dtype="float64", seed=0).fit(X, y, **kw)  # fmt: skip
    for i, compile in enumerate(("auto", True, True)):
        net = xpnet.Network([xpnet.Dense(3, 4, "tanh"), _OtherStreamNoise(), xpnet.Dense(4, 2, "softmax")],
                            backend="jax", dtype="float64", seed=0)  # fmt: skip
        _OtherStreamNoise.sources = []
        if compile is True:
            with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX: a layer draws random numbers "
                              "from a stream other than its own"):  # fmt: skip
                got = net.fit(X, y, compile=compile, **kw)
        else:
            got = net.fit(X, y, compile=compile, **kw)
        assert ("TracedRandom" in _OtherStreamNoise.sources) == (i == 0), "traced by the first fit only"
        np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)


@xpnet.register
class _SteppedNoise(xpnet.layers.Layer):
    """Scales by the step index its random source holds (a custom layer
    reading ``ctx.rng.step``), which a compiled step is not given."""

    name = "test_jax_compilations_stepped_noise"
    uses_rng = True

    def forward(self, xp, params, buffers, X, ctx):
        if not ctx.training or ctx.rng is None:
            return X, None, buffers
        scale = 1.0 / (1.0 + 0.1 * ctx.rng.step)
        return X * scale, scale, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * cache, []


def test_a_layer_reading_its_random_sources_step_trains_on_jax_op_by_op():
    """It trained on JAX until the step compiled with Dropout: then the
    traced source had no ``step`` and the fit raised AttributeError."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(24, 3)), rng.integers(0, 2, size=24)
    kw = dict(loss="cross_entropy", epochs=2, batch_size=8, seed=0)
    nets = [xpnet.Network([xpnet.Dense(3, 4, "tanh"), _SteppedNoise(), xpnet.Dense(4, 2, "softmax")], backend=b,
                          dtype="float64", seed=0) for b in ("numpy", "jax", "jax")]  # fmt: skip
    want, got = nets[0].fit(X, y, **kw), nets[1].fit(X, y, **kw)
    with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX: a layer .* reads the random source"):
        again = nets[2].fit(X, y, compile=True, **kw)
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)
    np.testing.assert_allclose(again.loss, want.loss, rtol=1e-12)


def test_the_program_cache_drops_the_least_recently_used(monkeypatch):
    """It dropped the oldest made, used or not: 17 networks in turn
    compiled on every call (45.9 ms a predict, against 0.3 ms)."""
    monkeypatch.setattr(_programs, "_JAX_PROGRAMS", {})
    monkeypatch.setattr(_programs, "_JAX_PROGRAMS_KEPT", 2)
    made = []

    def make(name):
        return lambda: made.append(name) or (name,)

    for key in ("a", "b", "a", "c", "a"):
        _programs._cached((key,), make(key))
    assert made == ["a", "b", "c"] and list(_programs._JAX_PROGRAMS) == [("c",), ("a",)]


def test_predict_on_jax_from_two_threads_traces_each_its_own_network():
    """A program's trace read the box another thread had just refilled
    (its network since collected): 'NoneType' object has no attribute 'forward'."""
    import sys
    import threading

    X = np.random.default_rng(0).standard_normal((200, 8)).astype("float32")
    a = xpnet.MLP([8, 16, 2], backend="jax", seed=0)
    errors = []

    def other():
        try:
            for _ in range(60):
                m = xpnet.MLP([8, 16, 2], backend="jax", seed=1)
                m.predict(X[:5])
                del m
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # widens the window the race needs
    try:
        thread = threading.Thread(target=other)
        thread.start()
        for i in range(60):
            np.testing.assert_allclose(np.asarray(a.predict(X[: 20 + i])), np.asarray(a.predict(X))[: 20 + i],
                                       rtol=1e-5)  # fmt: skip
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors


def test_an_inference_program_that_compiled_many_row_counts_is_dropped(monkeypatch):
    """One program per architecture was kept (the cache's 64-entry cap),
    but its jax.jit kept a compiled program per row count: 400 sizes of
    predict held 1.3 GB, never released."""
    monkeypatch.setattr(_programs, "_ROW_COUNTS_KEPT", 3)
    net = xpnet.MLP([3, 4, 2], backend="jax", seed=0)
    X = np.ones((10, 3), np.float32)
    programs = []
    for n in range(1, 8):
        net.predict(X[:n])
        key = next(k for k in _programs._JAX_PROGRAMS if k[0] == "inference" and k[2] == repr(net.config()))
        programs.append(_programs._JAX_PROGRAMS[key][0])
        assert len(_programs._JAX_PROGRAMS[key][1]) <= 3
    assert len({id(p) for p in programs}) >= 2  # a fresh jax.jit after the third row count


def test_the_program_cache_evicts_safely_from_several_threads():
    """Two threads evicting the same oldest entry: the second pop raised KeyError."""
    import threading

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors = []

    def worker(t):
        try:
            for i in range(5000):
                _programs._cached(("test-thread", t, i % 200), lambda: (None, None, None))
        except Exception as exc:  # noqa: BLE001 (any escape is the failure)
            errors.append(repr(exc))

    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        sys.setswitchinterval(interval)
        for key in [k for k in _programs._JAX_PROGRAMS if k[0] == "test-thread"]:
            _programs._JAX_PROGRAMS.pop(key, None)
    assert not errors, errors[:3]


@pytest.mark.parametrize("library", ["numpy", "jax"])
def test_compile_true_warning_points_at_the_callers_fit(library):
    """The warning that a step cannot be compiled named a line of
    xpnet/training.py (a fixed stacklevel, whatever path the step took):
    filters by module and the report's "file:line" must name the user's call."""
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    net = xpnet.Network([xpnet.Dense(3, 2, _host_reading()())], backend=library, seed=0)
    with pytest.warns(RuntimeWarning, match="cannot (compile|record) this step") as seen:
        net.fit(X, Y, epochs=2, batch_size=4, compile=True)
    assert {w.filename for w in seen} == {__file__}


def _boolean_masking() -> type:
    """An unregistered activation that indexes with a boolean mask, which
    the standard allows (a data-dependent shape) and eager JAX runs, but
    no program can hold; a new class per call, so a new program key."""

    class Masking(xpnet.Activation):
        name = "boolean_masking"

        def _forward(self, xp, v):
            return v / xp.maximum(xp.max(v[v > 0.0]) if v.size else 1.0, 1.0)

        def _derivative(self, xp, v):
            return xp.ones_like(v) / xp.maximum(xp.max(v[v > 0.0]) if v.size else 1.0, 1.0)

    return Masking


@pytest.mark.parametrize("compile", [False, "auto", True])
def test_a_component_indexing_with_a_boolean_mask_runs_op_by_op_on_jax(compile):
    """JAX refuses a boolean mask only inside a program, with its own error
    (NonConcreteBooleanIndexError, not a host read's): the fit, its
    validation and predict raised it, where op by op they run."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    act = _boolean_masking()
    got, want = (xpnet.Network([xpnet.Dense(3, 2, act())], backend=b, seed=0) for b in ("jax", "numpy"))
    kw = dict(epochs=3, batch_size=4, validation_data=(X, Y), compile=compile, seed=0)
    if compile is True:
        with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX"):
            fit = got.fit(X, Y, **kw)
    else:
        fit = got.fit(X, Y, **kw)
    np.testing.assert_allclose(fit.val_loss, want.fit(X, Y, **{**kw, "compile": False}).val_loss, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got.predict(X)), want.predict(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.evaluate(X, Y, loss="mse"), want.evaluate(X, Y, loss="mse"), rtol=1e-5)


def test_arrays_jax_made_uncommitted_run_the_programs_host_data_compiled():
    """``jnp.asarray(X)`` and ``jax.device_put(X)`` make uncommitted arrays,
    and ``jax.jit`` compiles a program again for those: a fit on them
    compiled its epoch program and its report anew, and predict its forward.
    Committed where they are (no copy), only their checks compile."""
    _programs._JAX_PROGRAMS.clear()
    X, y = _data(57, 6, 3, seed=4)
    X = X.astype(np.float32)
    net = xpnet.MLP([6, 10, 3], "tanh", "softmax", backend="jax", seed=0)
    fit = lambda X, y, V: net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16, seed=0,
                                  validation_data=V)  # fmt: skip
    fit(X, y, (X[:20], y[:20]))
    net.predict(X)
    Xd, yd = jax.numpy.asarray(X), jax.device_put(y.astype(np.int32))
    V = (jax.numpy.asarray(X[:20]), jax.device_put(y[:20].astype(np.int32)))
    assert not Xd.committed and not yd.committed
    assert "forward" not in compiled_names(lambda: net.predict(Xd))
    again = compiled_names(lambda: fit(Xd, yd, V))
    assert not {"_pure_scan", "_pure_rows", "_pure", "figures"} & set(again), again
    assert not Xd.committed, "the caller's array is left as it was"


def test_compile_true_names_the_component_that_cannot_be_compiled_and_where():
    """The warning said a component reads values on the host, not which: in
    a network of many layers the user was left to bisect it."""
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    act = _host_reading()
    where = f"HostRead._forward, {Path(__file__).name}:{act._forward.__code__.co_firstlineno + 1}"
    for _ in range(2):  # the fit that found it, and one the cache remembers it for
        net = xpnet.Network([xpnet.Dense(3, 4, "tanh"), xpnet.Dense(4, 2, act())], backend="jax", seed=0)
        with pytest.warns(RuntimeWarning, match="cannot compile this step on JAX") as seen:
            net.fit(X, Y, epochs=2, compile=True)
        message = str(seen[0].message)
        assert f"(ConcretizationTypeError at {where})" in message, message


def test_the_record_of_steps_that_cannot_compile_is_bounded_with_the_program_cache(monkeypatch):
    """The program cache keeps 64 entries; the record of keys that read on
    the host kept every one, and with it every class in those keys: a model
    search over a custom layer, or a notebook cell run again, grew it for
    good. Dropped with its programs, a key is traced once more to find out."""
    import gc
    import weakref

    monkeypatch.setattr(_programs, "_JAX_PROGRAMS", {})
    monkeypatch.setattr(_programs, "_HOST_READS", {})
    monkeypatch.setattr(_programs, "_JAX_PROGRAMS_KEPT", 4)
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    classes = []
    for _ in range(6):
        act = _host_reading()
        classes.append(weakref.ref(act))
        xpnet.Network([xpnet.Dense(3, 2, act())], backend="jax", seed=0).fit(X, Y, epochs=2, validation_data=(X, Y))
        del act
    gc.collect()
    assert len(_programs._HOST_READS) <= 4, list(_programs._HOST_READS.values())
    assert classes[0]() is None, "the first network's layer class is still held"


def test_the_small_programs_of_predict_keep_a_bounded_number_of_row_counts(monkeypatch):
    """The forward of inference starts afresh after 32 row counts, but the
    check of its outputs (and every other small program: a fit's set-up and
    input checks) kept one compiled program per shape for good, about 1.5 MB
    each on the CPU: predict on 600 row counts held 1 GB more."""
    from xpnet.validation import sum_not_finite

    monkeypatch.setattr(_programs, "_ROW_COUNTS_KEPT", 3)
    net = xpnet.MLP([3, 4, 2], backend="jax", seed=0)
    X = np.ones((12, 3), np.float32)
    for n in range(1, 10):
        net.predict(X[:n])
        held = _programs._jitted(sum_not_finite).program._cache_size()
        assert held <= 3, f"the output check holds {held} compiled shapes after {n} row counts"
    np.testing.assert_allclose(np.asarray(net.predict(X[:2])), np.asarray(net.predict(X))[:2], rtol=1e-6)


def test_a_step_program_that_compiled_many_data_sizes_is_dropped(monkeypatch):
    """A fit's epoch program compiles once per data size (its steps and rows),
    and the cache kept the step's jax.jit, with every size it compiled, for
    good: 90 fits on sizes 70..159 held 360 MB more (cross-validation, a
    learning curve, a search over subsets). It starts afresh after 32."""
    monkeypatch.setattr(_programs, "_ROW_COUNTS_KEPT", 3)
    _programs._JAX_PROGRAMS.clear()
    net = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="jax", seed=0)
    for n in range(20, 28):
        X, y = _data(n, 3, 2, seed=n)
        net.fit(X, y, loss="cross_entropy", epochs=1, batch_size=4, seed=0)
        scans = [p[3] for p in _programs._JAX_PROGRAMS.values() if len(p) > 3 and hasattr(p[3], "_cache_size")]
        held = sum(p._cache_size() for p in scans)
        assert held <= 3, f"the epoch programs hold {held} compiled sizes after the fit on {n} rows"
    want = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", seed=0)
    got = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="jax", seed=0)
    for n in (20, 21, 22, 23, 20):
        X, y = _data(n, 3, 2, seed=n)
        fits = [m.fit(X, y, loss="cross_entropy", epochs=1, batch_size=4, seed=0).loss for m in (got, want)]
        np.testing.assert_allclose(*fits, rtol=1e-5)


def test_a_report_program_that_compiled_many_shapes_is_dropped(monkeypatch):
    """evaluate's loss and a fit's epoch report compile once per row count,
    and the cache kept each one's jax.jit, with every row count, for good."""
    monkeypatch.setattr(_programs, "_ROW_COUNTS_KEPT", 3)
    _programs._JAX_PROGRAMS.clear()
    net = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="jax", seed=0)
    want = xpnet.MLP([3, 5, 2], "tanh", "softmax", backend="numpy", seed=0)
    for n in range(10, 17):
        X, y = _data(n, 3, 2, seed=n)
        got = net.evaluate(X, y, loss="cross_entropy")
        assert got == pytest.approx(want.evaluate(X, y, loss="cross_entropy"), rel=1e-5)
        held = {k[0]: p[0]._cache_size() for k, p in _programs._JAX_PROGRAMS.items() if k[0] == "evaluate"}
        assert held and max(held.values()) <= 3, f"evaluate's loss holds {held} compiled row counts after {n} rows"


class _Mask(xpnet.Layer):
    """Multiplies by a fixed array it holds as an attribute (not a parameter)."""

    name = "test_jax_compilations_mask"

    def __init__(self, mask) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, xp, params, buffers, X, ctx):
        return X * self.mask, None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * self.mask, []


def test_a_layer_holding_an_array_runs_its_own_program_not_another_networks():
    """A compiled program bakes in what a layer holds outside its parameters,
    and programs were found by the network's classes and plain settings: a
    second network whose layer held another array predicted with the first
    one's array (and trained with it). Each array now names its program."""
    X = np.ones((4, 3))
    for values in ([1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]):
        mask = np.array(values, dtype=np.float32)
        nets = [xpnet.Network([_Mask(b.asarray(mask)), xpnet.Dense(3, 2)], backend=b, seed=0)
                for b in (xpnet.get_backend("jax"), xpnet.get_backend("numpy"))]  # fmt: skip
        got, want = (np.asarray(xpnet.to_numpy(n.predict(X))) for n in nets)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        fits = [n.fit(X, np.zeros((4, 2)), loss="mse", epochs=2, batch_size=2, seed=0).loss for n in nets]
        np.testing.assert_allclose(fits[0], fits[1], rtol=1e-6)


class _HostWeighted(xpnet.Loss):
    """The squared error, output ``k`` weighted by ``weights[k]``: host (NumPy)
    weights, in an attribute or (``nested``) in a dict."""

    name = "test_jax_compilations_host_weighted"

    def __init__(self, weights, nested=False):
        self.nested = nested
        if nested:
            self.parts = {"w": weights}
        else:
            self.weights = weights

    def _weights(self):
        return self.parts["w"] if self.nested else self.weights

    def _value(self, xp, t, y):
        return xp.sum(xp.asarray(self._weights()) * (y - t) ** 2) / y.shape[0]

    def _gradient(self, xp, t, y):
        return 2.0 * xp.asarray(self._weights()) * (y - t) / y.shape[0]


@pytest.mark.parametrize("nested", [False, True], ids=["attribute", "in a dict"])
def test_a_loss_holding_host_arrays_runs_its_own_program_not_another_losss(nested):
    """A JAX program takes the loss's JAX arrays as arguments and bakes any
    other (NumPy class weights) in as a constant; keyed by the loss's
    settings, a second fit with other host weights ran the first one's
    program, silently. Such arrays now name the program, by identity."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4)).astype(np.float32)
    Y = (X @ rng.normal(size=(4, 3))).astype(np.float32)
    for values in ([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]):
        w = np.asarray(values, np.float32)
        runs = []
        for backend in ("jax", "numpy"):
            net = xpnet.MLP([4, 8, 3], backend=backend, dtype="float32", seed=0)
            loss = _HostWeighted(w.copy(), nested)
            history = net.fit(X, Y, loss=loss, optimizer="sgd", epochs=2, batch_size=8, seed=0, validation_data=(X, Y))
            runs.append([*history.loss, *history.val_loss, net.evaluate(X, Y, loss=loss)])
        np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5, err_msg=f"weights {values}")
