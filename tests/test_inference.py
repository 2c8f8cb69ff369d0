"""Inference in chunks, without backprop caches (issue 14, point 3): the
outputs equal one-piece inference, memory follows the chunk and not the
data, and the value checks still cost one transfer per call."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_on, host, traced_peak
from test_training import _SyncCounter

import xpnet
from xpnet.layers import INFERENCE, Context


def _net(backend, sizes=(5, 16, 16, 3), dtype="float64"):
    return xpnet.MLP(list(sizes), activation="tanh", output_activation="softmax", backend=backend, dtype=dtype, seed=0)


@pytest.mark.parametrize("batch_size", [1, 7, 50, None])
def test_chunked_predict_equals_one_piece(backend, batch_size):
    net = _net(backend)
    X = np.random.default_rng(0).normal(size=(50, 5))
    whole = host(net._predict(net._params(), net._buffers(), backend.asarray(X, "float64"), 10**9))
    Y = net.predict(X, batch_size=batch_size)
    assert_on(Y, backend, "float64", (50, 3))
    np.testing.assert_allclose(host(Y), whole, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(host(net(X)), whole, rtol=1e-12, atol=1e-14)


def test_the_chunk_follows_the_widest_layer():
    assert xpnet.MLP([50, 256, 256, 10], backend="numpy").chunk_rows() == 2048
    assert xpnet.MLP([4, 2**20, 1], backend="numpy").chunk_rows() == 1
    wide_input = xpnet.MLP([4096, 8, 1], backend="numpy")
    assert wide_input.chunk_rows() == xpnet.network.CHUNK_VALUES // 4096


def test_inference_keeps_no_backprop_caches():
    net = _net("numpy")
    X = np.ones((4, 5))
    _, caches, _ = net._root.forward(net.backend.xp, net._params(), [], X, INFERENCE)
    assert caches == [None, None, None]
    _, caches, _ = net._root.forward(net.backend.xp, net._params(), [], X, Context(training=True))
    assert all(c is not None for c in caches)  # training keeps what backprop needs


def test_inference_memory_follows_the_chunk_not_the_data():
    """20 000 rows through two 512-wide layers: one piece would hold 40 MB
    per layer output; 500-row chunks hold about 1 MB each (NumPy reports its
    allocations to tracemalloc)."""
    net = xpnet.MLP([32, 512, 512, 4], backend="numpy", seed=0)
    X = np.random.default_rng(0).normal(size=(20_000, 32)).astype(np.float32)
    _, peak = traced_peak(net.predict, X, batch_size=500)
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"


def test_float64_input_to_a_float32_network_costs_only_its_cast():
    """The range check of float64 X before its float32 cast held abs(X) and
    two masks (1.25x X); the cast itself is 0.5x. An overflow deep in the
    rows, past an inf, is still found."""
    net = xpnet.MLP([50, 4, 2], backend="numpy", seed=0, dtype="float32")
    X = np.random.default_rng(0).normal(size=(20_000, 50))
    _, peak = traced_peak(net.predict, X, batch_size=500)
    assert peak < 0.7 * X.nbytes, f"peak {peak / X.nbytes:.2f}x X"
    X[3, 1], X[-2, 7] = np.inf, -1e39
    with pytest.raises(ValueError, match="beyond the float32 range"):
        net.predict(X)


def test_chunked_predict_checks_values_in_one_transfer(monkeypatch):
    b = xpnet.get_backend("array_api_strict", "device1")
    net = _net(b, dtype="float32")
    X = b.asarray(np.random.default_rng(0).normal(size=(40, 5)), "float32")
    counter = _SyncCounter(monkeypatch)
    net.predict(X, batch_size=8)
    assert counter.count == 1


def test_bad_values_in_a_late_chunk_are_still_reported():
    net = _net("numpy")
    X = np.zeros((30, 5))
    X[-1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.predict(X, batch_size=4)
    overflowing = xpnet.MLP([1, 1], backend="numpy", dtype="float32")
    overflowing.layers[0].weights = [[3e38]]
    with pytest.raises(FloatingPointError, match="overflow"):
        overflowing.predict(np.ones((9, 1)) * np.arange(9)[:, None], batch_size=2)


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_batch_size_must_be_a_positive_int(bad, error):
    with pytest.raises(error, match="batch_size"):
        _net("numpy").predict(np.ones((3, 5)), batch_size=bad)


@pytest.mark.parametrize("name, device", [("torch", "cuda:0"), ("cupy", 0), ("jax", SimpleNamespace(platform="gpu"))])
def test_inference_chunks_are_larger_on_a_gpu(monkeypatch, name, device):
    """On a GPU every operation on a chunk is a launch: 16k-row chunks cost
    1.8x torch's one-piece no_grad on an H100, so chunks grow there (to
    131072 rows at width 256, 2**25 values)."""
    net = xpnet.MLP([50, 256, 256, 10], backend="numpy")
    cpu_rows = net.chunk_rows()
    monkeypatch.setattr(net, "backend", SimpleNamespace(name=name, device=device, xp=net.backend.xp))
    assert net.chunk_rows() == cpu_rows * xpnet.network.GPU_CHUNK_FACTOR == 2**25 // 256
    monkeypatch.setattr(net, "backend", SimpleNamespace(name="jax", device=SimpleNamespace(platform="cpu")))
    assert net.chunk_rows() == cpu_rows


def test_torch_inputs_that_track_gradients_or_are_bfloat16_predict_plainly():
    """A user's tensor with requires_grad made predict build (and hold) an
    autograd graph over every layer; bfloat16, which NumPy lacks, raised
    torch's own TypeError on the way to another backend."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    X = torch.randn(64, 3)
    net = xpnet.MLP([3, 8, 2], backend="torch", seed=0)
    Y = net.predict(X.clone().requires_grad_(True))
    assert Y.grad_fn is None and not Y.requires_grad
    torch.testing.assert_close(Y, net.predict(X))
    on_numpy = xpnet.MLP([3, 8, 2], backend="numpy", seed=0)
    np.testing.assert_allclose(on_numpy.predict(X.to(torch.bfloat16)), on_numpy.predict(X.to(torch.bfloat16).float()))


def test_a_float64_value_beyond_float32_on_a_device_is_named_as_such():
    """Another library's array is checked on the host, as NumPy's is: the
    overflow is named before the cast, not found as inf after it."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with pytest.raises(ValueError, match=r"X has values beyond the float32 range .*use dtype='float64'"):
        xpnet.MLP([2, 1], backend="numpy").predict(torch.tensor([[1e39, 1.0]], dtype=torch.float64))


def test_evaluate_memory_follows_the_chunk_not_the_classes():
    """20 000 rows of 500 classes: the outputs and the labels' one-hot rows
    would take 40 MB each (the old evaluate peaked at 160 MB, 250x X); in
    500-row chunks the loss holds about 1 MB at a time."""
    net = xpnet.MLP([8, 16, 500], output_activation="softmax", backend="numpy", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20_000, 8)).astype(np.float32), rng.integers(0, 500, 20_000)
    value, peak = traced_peak(net.evaluate, X, y, "cross_entropy", batch_size=500)
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"
    Y = net.predict(X).astype(np.float64)
    assert value == pytest.approx(-np.mean(np.log(Y[np.arange(len(y)), y])), rel=1e-5)


@pytest.mark.parametrize("loss", ["mse", "sse", "huber", "binary_cross_entropy", "cross_entropy", "labels"])
def test_chunked_evaluate_equals_one_piece(backend, loss):
    """Each reduction kept: a mean weighs each chunk by its rows, a sum adds them (a short last chunk too)."""
    net = _net(backend)
    rng = np.random.default_rng(1)
    X, labels = rng.normal(size=(50, 5)), rng.integers(0, 3, 50)
    y = labels if loss == "labels" else np.eye(3)[labels] if loss == "cross_entropy" else rng.uniform(size=(50, 3))
    loss = "cross_entropy" if loss == "labels" else loss
    whole = net.evaluate(X, y, loss, batch_size=10**9)
    for rows in (1, 7, 49):
        assert net.evaluate(X, y, loss, batch_size=rows) == pytest.approx(whole, rel=1e-12)


def test_chunked_evaluate_names_a_late_overflow_and_takes_a_weighted_loss():
    overflowing = xpnet.MLP([1, 1], backend="numpy", dtype="float32")
    overflowing.layers[0].weights = [[3e38]]
    X = np.ones((9, 1)) * np.arange(9)[:, None]
    with pytest.raises(FloatingPointError, match="overflow"):
        overflowing.evaluate(X, np.zeros(9), "mse", batch_size=2)
    net, w = _net("numpy"), np.linspace(0.5, 1.5, 30)
    X, y = np.random.default_rng(2).normal(size=(30, 5)), np.arange(30) % 3
    weighted = xpnet.get_loss("cross_entropy").weighted(w)
    assert net.evaluate(X, y, weighted, batch_size=4) == pytest.approx(net.evaluate(X, y, weighted), rel=1e-12)


@pytest.mark.parametrize("given", ["numpy", "list"])
def test_evaluate_takes_a_weighted_loss_of_host_weights_on_every_backend(backend, given):
    """``loss.weighted(np.ones(n))`` in ``evaluate``: on torch and
    array-api-strict the NumPy weights met the outputs in those libraries'
    words ("unsupported operand type(s) for *"; "Only numeric dtypes are
    allowed in sum"), a list failed on JAX too, and a wrong length was a
    broadcasting error. The weights move to the device once, as X does."""
    net = _net(backend)
    rng = np.random.default_rng(3)
    X, y, w = rng.normal(size=(30, 5)), np.arange(30) % 3, rng.uniform(0.5, 1.5, 30)
    weights = w if given == "numpy" else w.tolist()
    Y = host(net.predict(X))
    expected = float(np.mean(-w * np.log(Y[np.arange(30), y])))
    loss = xpnet.get_loss("cross_entropy")
    assert net.evaluate(X, y, loss.weighted(weights)) == pytest.approx(expected, rel=1e-10)
    assert net.evaluate(X, y, loss.weighted(weights), batch_size=4) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match=r"weights of loss.weighted\(w\) must hold one weight per row of X, "
                                         r"shape \(30,\), got shape \(5,\)"):
        net.evaluate(X, y, loss.weighted(np.ones(5)))
    with pytest.raises(ValueError, match="weights of loss.weighted.* contains NaN"):
        net.evaluate(X, y, loss.weighted(np.full(30, np.nan)))


def test_gradients_and_gradcheck_take_a_weighted_loss_and_fit_names_sample_weight(backend):
    """``gradients``/``gradcheck`` with ``loss.weighted(np.ones(n))``: on
    torch the NumPy weights met the deltas in torch's words; on NumPy the
    float64 weights made a float32 network's gradient float64, blamed on "a
    layer's backward". ``fit(loss=loss.weighted(w))`` failed in a
    broadcasting error of its first minibatch; it names sample_weight."""
    net = _net(backend, dtype="float32")
    rng = np.random.default_rng(4)
    X, y, w = rng.normal(size=(12, 5)), np.arange(12) % 3, rng.uniform(0.5, 1.5, 12)
    loss = xpnet.get_loss("cross_entropy")
    scaled = net.gradients(X, y, loss.weighted(2 * np.ones(12)))
    for got, plain in zip(scaled, net.gradients(X, y, loss)):
        for g, p in zip(got, plain):
            assert_on(g, backend, "float32")
            np.testing.assert_allclose(host(g), 2 * host(p), rtol=1e-5, atol=1e-7)
    assert xpnet.gradcheck(_net(backend), X, y, loss.weighted(w.tolist())) < 1e-5
    with pytest.raises(ValueError, match=r"must hold one weight per row of X, shape \(12,\), got shape \(3,\)"):
        net.gradients(X, y, loss.weighted(np.ones(3)))
    with pytest.raises(ValueError, match="fit takes row weights as sample_weight=w"):
        net.fit(X, y, loss=loss.weighted(w), epochs=1, batch_size=4)


def test_a_float64_array_of_another_device_predicts_on_a_device_without_float64():
    """array-api-strict's 'no_float64' device (as torch's MPS): NumPy's or
    torch's float64 X predicted, but array-api-strict's own float64 X, from
    its CPU device or device1, moved first and was cast there, and failed in
    array_api_strict's words ("does not support dtype=float64"); a float64
    network's ``to(..., dtype="float32")`` too. It is cast first, then moved."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device")
    narrow = xpnet.get_backend("array_api_strict", strict.Device("no_float64"))
    net = _net(narrow, dtype="float32")
    X = np.random.default_rng(0).normal(size=(12, 5))
    labels = np.arange(12) % 3
    want = host(net.predict(X))
    for device in (strict.Device("CPU_DEVICE"), strict.Device("device1")):
        Xs = strict.asarray(X, device=device)
        for batch_size in (None, 5):
            Y = net.predict(Xs, batch_size=batch_size)
            assert Y.device == narrow.device and Y.dtype == strict.float32
            np.testing.assert_array_equal(host(Y), want)
        assert net.evaluate(Xs, labels, "cross_entropy") == net.evaluate(X, labels, "cross_entropy")
    wide = _net(xpnet.get_backend("array_api_strict"), dtype="float64")
    moved = wide.to(narrow, dtype="float32")
    np.testing.assert_allclose(host(moved.predict(X)), host(wide.predict(X)), rtol=1e-5, atol=1e-6)
