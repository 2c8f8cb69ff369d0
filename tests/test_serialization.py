"""save/load: round trips between every pair of backends, atomic writes, and
files that must be refused without ever executing anything."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct

import numpy as np
import pytest
from helpers import assert_on, host

import xpnet
from xpnet.serialization import FORMAT_VERSION


def make_net(backend, dtype="float32"):
    return xpnet.Network(
        [xpnet.Dense(3, 4, "relu"), xpnet.Dense(4, 4, "tanh", bias=False), xpnet.Dense(4, 2, "softmax")],
        backend=backend, dtype=dtype, seed=5,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_on_each_backend_load_on_each_other(backend, dtype, tmp_path):
    from conftest import make_backend, usable_backend_params

    net = make_net(backend, dtype)
    net.info = {"features": ["a", "b", "c"], "classes": [0, 1]}
    path = tmp_path / "model.safetensors"
    net.save(path)
    X = np.random.default_rng(0).normal(size=(5, 3))
    ref = host(net.predict(X))
    for other in usable_backend_params():
        target = make_backend(other)
        loaded = xpnet.load(path, backend=target)
        assert loaded.dtype == dtype and loaded.config() == net.config()
        assert loaded.info == net.info
        for a, b in zip(loaded._params(), net._params()):
            assert_on(a, target, dtype)
            np.testing.assert_array_equal(host(a), host(b))
        np.testing.assert_allclose(host(loaded.predict(X)), ref, rtol=1e-6)


def test_load_device_argument(tmp_path):
    import array_api_strict as strict

    path = tmp_path / "m.safetensors"
    make_net("numpy").save(path)
    loaded = xpnet.load(path, backend="array_api_strict", device="device1")
    assert loaded.backend.device == strict.Device("device1")


def test_save_is_atomic_and_leaves_no_stray_files(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    net = make_net("numpy")
    net.save(path)
    good = path.read_bytes()

    def crash(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    net.layers[0].weights = np.zeros((3, 4))
    with pytest.raises(OSError, match="disk on fire"):
        net.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good  # the old file is whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_and_checkpoint_stream_the_weights_without_copying_them(tmp_path):
    """The file was serialised to bytes first (the library's buffer, its
    bytes copy, then the header-sorted copy): 3x the weights at the peak of
    a save, and on top of the epoch at every checkpoint. They are streamed
    now, from safetensors 0.8 on; before it, ``save_file`` makes one bytes
    copy of each tensor (pyproject allows safetensors>=0.4)."""
    import tracemalloc

    import safetensors

    streams = tuple(int(n) for n in safetensors.__version__.split(".")[:2]) >= (0, 8)
    limit = 0.5 if streams else 1.5  # the weights' size: 3x before, whatever the version

    def peak_of(write):
        tracemalloc.start()
        try:
            write()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    net = xpnet.MLP([200, 600, 600, 4], backend="numpy", seed=0)
    size = sum(p.nbytes for p in net._params())
    X, y = np.zeros((8, 200), dtype=np.float32), np.zeros((8, 4), dtype=np.float32)
    fit = lambda **k: net.fit(X, y, loss="mse", optimizer="sgd", epochs=1, **k)  # noqa: E731
    fit()  # the first fit's own allocations, outside the measure
    saving = peak_of(lambda: net.save(tmp_path / "m.safetensors"))
    assert saving < limit * size, f"a save's peak {saving / size:.2f}x the weights"
    extra = peak_of(lambda: fit(checkpoint=tmp_path / "c.safetensors")) - peak_of(fit)
    assert extra < limit * size, f"a checkpoint's peak {extra / size:.2f}x the weights"
    assert np.array_equal(host(xpnet.load(tmp_path / "m.safetensors", backend="numpy")._params()[0]),
                          host(net._params()[0]))  # fmt: skip


def test_load_holds_the_file_once_beside_its_arrays(tmp_path):
    """The file's data was read, then joined to its header in a second copy
    that the arrays were made from: 3x the weights at the peak (2x now)."""
    import tracemalloc

    net = xpnet.MLP([200, 600, 600, 4], backend="numpy", seed=0)
    size = sum(p.nbytes for p in net._params())
    net.save(tmp_path / "m.safetensors")
    tracemalloc.start()
    try:
        xpnet.load(tmp_path / "m.safetensors", backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * size, f"peak {peak / size:.2f}x the weights"


def test_stale_temporary_from_a_killed_write_is_removed(tmp_path):
    path = tmp_path / "m.safetensors"
    stale = tmp_path / ".m.safetensors.abc123.tmp"
    stale.write_bytes(b"half a file")
    os.utime(stale, (0, 0))  # a writer of unknown origin counts as gone only when its file is old
    make_net("numpy").save(path)
    assert not stale.exists() and path.exists()


def test_metadata_contents(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "m.safetensors"
    make_net("numpy", "float64").save(path)
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
        names = set(f.keys())
    assert meta["format"] == "xpnet" and meta["format_version"] == str(FORMAT_VERSION) and meta["dtype"] == "float64"
    assert json.loads(meta["architecture"])[1] == {"type": "Dense", "n_in": 4, "n_out": 4, "activation": "tanh", "bias": False}
    assert names == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.2.weight", "layers.2.bias"}


def _rewrite(path, tensors=None, meta_update=None, drop=(), add=None):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), "np") as f:
        meta = dict(f.metadata())
    t = dict(load_file(str(path)))
    for k in drop:
        t.pop(k)
    t.update(add or {})
    meta.update(meta_update or {})
    save_file(t, str(path), metadata=meta)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.safetensors"
    make_net("numpy").save(path)
    return path


@pytest.mark.parametrize("path", [b"model.safetensors", 3, None])
def test_a_path_that_is_not_text_is_named_by_save_and_load(path):
    """``save(b"m.safetensors")`` failed inside the temporary file's name
    (``a bytes-like object is required``), load inside pathlib."""
    net = xpnet.MLP([2, 1], backend="numpy", seed=0)
    with pytest.raises(TypeError, match="must be a path \\(str or os.PathLike\\), got"):
        net.save(path)
    with pytest.raises(TypeError, match="must be a path \\(str or os.PathLike\\), got"):
        xpnet.load(path)


def test_a_full_disk_names_the_file_that_was_not_written(tmp_path, monkeypatch):
    """``No space left on device`` alone named no path (the command line
    then printed no file)."""
    import errno

    from xpnet import modelfile

    net = xpnet.MLP([2, 1], backend="numpy", seed=0)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(modelfile.os, "fsync", full)
    with pytest.raises(OSError, match="cannot write .*m.safetensors: No space left on device") as info:
        net.save(tmp_path / "m.safetensors")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())  # the temporary file is gone


def test_a_full_disk_met_while_safetensors_streams_names_the_file(tmp_path, monkeypatch):
    """The tensors are streamed by safetensors' ``save_file``, whose I/O
    errors are ``SafetensorError("... No space left on device (os error
    28)")``: the message named no path and was no OSError. (On a 64 KiB
    tmpfs, as met for real.)"""
    import errno

    import safetensors.numpy
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    with pytest.raises(OSError, match="cannot write .*m.safetensors: No space left on device") as info:
        xpnet.MLP([2, 1], backend="numpy", seed=0).save(tmp_path / "m.safetensors")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        xpnet.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 3, 8, 20, 100, -40, -1])
def test_truncated_files_are_refused(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    with pytest.raises(ValueError, match="safetensors|truncated|corrupt"):
        xpnet.load(saved, backend="numpy")


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "r.safetensors"
    for seed in range(5):
        path.write_bytes(np.random.default_rng(seed).bytes(500))
        with pytest.raises(ValueError):
            xpnet.load(path, backend="numpy")


class _Bomb:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Bomb(str(marker))))
    with pytest.raises(ValueError, match="pickle"):
        xpnet.load(path, backend="numpy")
    assert not marker.exists()


def test_npz_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, W=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="NPZ"):
        xpnet.load(path, backend="numpy")


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "f.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ValueError, match="not an xpnet model"):
        xpnet.load(path, backend="numpy")


def test_missing_extra_and_misshapen_tensors(saved):
    data = saved.read_bytes()
    _rewrite(saved, drop=["layers.2.bias"])
    with pytest.raises(ValueError, match="missing: \\['layers.2.bias'\\]"):
        xpnet.load(saved, backend="numpy")
    saved.write_bytes(data)
    _rewrite(saved, add={"layers.1.bias": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="unexpected: \\['layers.1.bias'\\]"):
        xpnet.load(saved, backend="numpy")
    saved.write_bytes(data)
    _rewrite(saved, add={"layers.0.weight": np.zeros((4, 3), np.float32)})
    with pytest.raises(ValueError, match="layers.0.weight has shape \\(4, 3\\)"):
        xpnet.load(saved, backend="numpy")
    saved.write_bytes(data)
    _rewrite(saved, add={"layers.0.weight": np.zeros((3, 4), np.float64)})
    with pytest.raises(ValueError, match="dtype F64"):
        xpnet.load(saved, backend="numpy")


def test_newer_format_version_is_refused(saved):
    _rewrite(saved, meta_update={"format_version": str(FORMAT_VERSION + 1)})
    with pytest.raises(ValueError, match="newer.*upgrade xpnet"):
        xpnet.load(saved, backend="numpy")


@pytest.mark.parametrize("arch", ["not json", "[]", '[{"n_in": 3, "n_out": 4, "activation": "swish", "bias": true}]',
                                  '[{"n_in": -3, "n_out": 4, "activation": "relu", "bias": true}]'])
def test_bad_architecture_metadata(saved, arch):
    _rewrite(saved, meta_update={"architecture": arch})
    with pytest.raises(ValueError, match="architecture|layer 0"):
        xpnet.load(saved, backend="numpy")


@pytest.mark.parametrize("info", ['["a", "b"]', '"notes"', "3", "null"])
def test_info_metadata_that_is_not_an_object_is_refused(saved, info):
    """A file whose info was edited into a list or a string loaded with
    info {} in silence: the notes (features, classes, the target's scale that
    xpnet predict reads) were dropped; save writes an object only."""
    _rewrite(saved, meta_update={"info": info})
    with pytest.raises(ValueError, match=r"the info metadata must be a JSON object, got"):
        xpnet.load(saved, backend="numpy")


def test_header_size_lies(tmp_path):
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(ValueError, match="header size"):
        xpnet.load(path, backend="numpy")


def test_info_must_be_json(tmp_path):
    net = make_net("numpy")
    net.info = {"bad": object()}
    with pytest.raises(TypeError, match="JSON"):
        net.save(tmp_path / "x.safetensors")


def test_saved_file_has_ordinary_permissions(tmp_path):
    path = tmp_path / "m.safetensors"
    make_net("numpy").save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    """The replacement had the umask's ordinary permissions, so a model its
    owner had made private (chmod 600) was readable by all after a save."""
    path = tmp_path / "m.safetensors"
    make_net("numpy").save(path)
    for mode in (0o600, 0o640):
        path.chmod(mode)
        make_net("numpy").save(path)
        assert path.stat().st_mode & 0o777 == mode


def test_a_copy_or_pickle_keeps_the_device(backend):
    """The pickled device is one ``get_backend`` takes back: ``str()`` of
    array_api_strict's device1 was not, and the copy moved to its default
    device without a word (CuPy's ``<CUDA Device 1>`` would have too)."""
    import copy

    net = xpnet.MLP([3, 2], backend=backend, seed=0)
    for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert (other.backend.name, other.backend.device) == (net.backend.name, net.backend.device)
        assert_on(other._params()[0], other.backend, net.dtype, (3, 2))


def test_float64_on_jax_without_its_64_bit_mode_is_refused_on_load_and_move(tmp_path):
    """Loading or moving a float64 model to JAX without x64 gave float32
    weights under a float64 label (and a save that load refused)."""
    pytest.importorskip("jax", reason="jax is not installed")
    import subprocess
    import sys

    from helpers import subprocess_env

    xpnet.MLP([3, 2], backend="numpy", dtype="float64", seed=0).save(tmp_path / "m.safetensors")
    code = ("import xpnet\nfor f in (lambda: xpnet.load('m.safetensors', backend='jax'),\n"
            "          lambda: xpnet.load('m.safetensors', backend='numpy').to('jax')):\n"
            "    try:\n        f()\n    except ValueError as e:\n        print('refused:', e)\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=subprocess_env(JAX_ENABLE_X64="0"))  # fmt: skip
    assert out.stdout.count("refused: float64 on the jax backend needs JAX's 64-bit mode") == 2, out.stdout + out.stderr


@xpnet.register
class _Temperature(xpnet.Layer):
    """A layer with a 0-d parameter and a 0-d buffer (a step count)."""

    name = "test_serialization_temperature"

    def parameter_shapes(self):
        return {"log_t": ()}

    def buffer_shapes(self):
        return {"calls": ()}

    def init_parameters(self, rng, dtype):
        return {"log_t": np.zeros((), dtype)}

    def init_buffers(self, dtype):
        return {"calls": np.zeros((), dtype)}

    def forward(self, xp, params, buffers, X, ctx):
        Y = X * xp.exp(-params[0])
        return Y, Y, [buffers[0] + 1.0] if ctx.training else buffers

    def backward(self, xp, params, Y, dY, need_dx):
        return (dY * xp.exp(-params[0]) if need_dx else None), [-xp.sum(dY * Y)]


def test_zero_dimensional_parameters_buffers_and_optimizer_state_round_trip(backend, tmp_path):
    """They were written with shape (1,), and load and resume refused the files."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)

    def net():
        return xpnet.Network([xpnet.Dense(5, 3), _Temperature(), "softmax"], backend=backend, seed=0)

    a = net()
    a.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16, checkpoint=tmp_path / "ck")
    a.save(tmp_path / "m")
    b = xpnet.load(tmp_path / "m", backend=backend)
    assert tuple(b._params()[-1].shape) == () and tuple(b._buffers()[-1].shape) == ()
    assert float(host(b._buffers()[-1])) == 8.0  # two epochs of four steps
    np.testing.assert_array_equal(host(b.predict(X)), host(a.predict(X)))
    c = net()
    c.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=16, resume=tmp_path / "ck")
    assert float(host(c._buffers()[-1])) == 12.0


def test_the_same_model_saved_in_two_processes_gives_the_same_bytes(tmp_path):
    """safetensors writes its metadata in a hash map's order, new in every
    process: the same weights and figures gave files of other checksums."""
    import subprocess
    import sys

    from helpers import subprocess_env

    code = ("import sys, xpnet\nnet = xpnet.MLP([3, 4, 2], backend='numpy', seed=0)\n"
            "net.info.update(task='demo', features=['a', 'b', 'c'], x_mean=[0.5, 1.5, 2.5])\n"
            "net.save(sys.argv[1])\n")  # fmt: skip
    for name in ("a.st", "b.st", "c.st"):
        subprocess.run([sys.executable, "-c", code, name], cwd=tmp_path, check=True, timeout=120, env=subprocess_env())
    blobs = {(tmp_path / name).read_bytes() for name in ("a.st", "b.st", "c.st")}
    assert len(blobs) == 1
    assert xpnet.load(tmp_path / "a.st").info["task"] == "demo"


def test_a_negative_running_variance_in_a_file_is_refused_naming_it(tmp_path):
    """It loaded, and predict then blamed a float overflow (the square root
    of a negative variance)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    net = xpnet.Network([xpnet.Dense(3, 4), xpnet.Residual([xpnet.BatchNorm(4)]), xpnet.Dense(4, 1)],
                        backend="numpy", dtype="float64", seed=0)  # fmt: skip
    net.save(tmp_path / "m.st")
    tensors = load_file(tmp_path / "m.st")
    with safe_open(tmp_path / "m.st", "np") as f:
        meta = f.metadata()
    name = next(k for k in tensors if k.endswith("running_var"))
    tensors[name] = -np.ones_like(tensors[name])
    save_file(tensors, tmp_path / "bad.st", metadata=meta)
    with pytest.raises(ValueError, match=rf"tensor {re.escape(name)} holds negative values; its layer declares it never"):
        xpnet.load(tmp_path / "bad.st")
    xpnet.load(tmp_path / "m.st")  # the untouched file loads


def test_save_writes_only_what_load_reads_and_names_a_missing_folder(tmp_path):
    """A 71-digit number in ``info`` saved and then failed to load; a str
    ``info`` loaded as {}; a missing folder was reported under the name of
    a temporary file."""
    net = xpnet.MLP([4, 2], backend="numpy", seed=0)
    net.info = {"big": 10**70}
    with pytest.raises(ValueError, match="cannot save: Network.info is not valid JSON .*71 digits"):
        net.save(tmp_path / "m")
    net.info = "text"
    with pytest.raises(TypeError, match="Network.info must be a dict"):
        net.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    net.info = {}
    with pytest.raises(FileNotFoundError, match=r"cannot write .*nodir/x.safetensors: no such folder"):
        net.save(tmp_path / "nodir" / "x.safetensors")


def test_save_names_an_info_too_large_for_the_header(tmp_path):
    """safetensors refused it with a bare 'Error while serializing: header
    too large' (a SafetensorError naming neither the file nor the cause)."""
    net = xpnet.MLP([4, 2], backend="numpy", seed=0)
    net.info = {"notes": "x" * 100_000_000}
    with pytest.raises(ValueError, match=r"cannot save: Network.info and the architecture take 100000\d{3} bytes in "
                                         r"the file's header, which holds at most 100000000"):
        net.save(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_folders_name_and_keys_json_would_change(tmp_path):
    """save("newdir/") wrote a file named newdir (Path drops the slash);
    info keys 1 and True loaded back as '1' and 'true', silently."""
    net = xpnet.MLP([4, 2], backend="numpy", seed=0)
    with pytest.raises(ValueError, match="ends with '/', naming a folder, and no such folder exists"):
        net.save(f"{tmp_path}/newdir/")
    for info in ({1: "a"}, {"nested": [{True: 1}]}):
        net.info = info
        with pytest.raises(TypeError, match="Network.info must have string keys"):
            net.save(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())
    net.info = {"t": (1, 2)}
    net.save(tmp_path / "m.safetensors")
    assert xpnet.load(tmp_path / "m.safetensors").info == {"t": [1, 2]}


@pytest.mark.parametrize("backend_name", ["jax", "numpy"])
def test_every_entry_point_under_a_jax_trace_is_refused_clearly(backend_name):
    """predict said so; evaluate, gradients, fit and Neuron.forward failed
    deep in a check (``'sharding' attribute is not available``)."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    net = xpnet.MLP([3, 2], backend=backend_name, seed=0)
    neuron = xpnet.Neuron(3, backend=backend_name, seed=0)
    calls = {
        "Network.predict": lambda X, y: net.predict(X),
        "Network.evaluate": lambda X, y: net.evaluate(X, y, "mse"),
        "Network.gradients": lambda X, y: net.gradients(X, y, "mse"),
        "Network.fit": lambda X, y: net.fit(X, y, epochs=1),
        "Neuron.forward": lambda X, y: neuron.forward(X),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=f"{name}.* cannot run under jax.jit, grad or vmap"):
            jax.jit(call)(jax.numpy.ones((5, 3)), jax.numpy.zeros((5, 2)))
    with pytest.raises(TypeError, match="Network.fit cannot run under jax.jit"):  # only the targets traced
        jax.jit(lambda y: net.fit(np.ones((5, 3)), y, epochs=1))(jax.numpy.zeros((5, 2)))


def test_the_first_jax_network_made_inside_a_users_trace_works_and_jax_stays_usable():
    """The backend probe ran its test program inside the trace, failed, and
    the failure was kept: JAX was "not installed or not working" for the
    rest of the process."""
    import subprocess
    import sys

    pytest.importorskip("jax", reason="jax is not installed")
    script = """
import jax, jax.numpy as jnp, xpnet
@jax.jit
def f(x):
    xpnet.MLP([3, 2, 1], backend="jax", seed=0)
    return x * 2
f(jnp.ones(3))
print(xpnet.MLP([3, 2, 1], backend="jax", seed=0).backend.name, "jax" in xpnet.available_backends())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["jax", "True"]


@pytest.mark.parametrize("backend_name", ["jax", "numpy"])
def test_the_weight_setters_under_a_jax_trace_are_refused_clearly(backend_name):
    """The setters' finite checks failed deep in a deferred check
    (``TracerBoolConversionError``)."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    net = xpnet.MLP([3, 2], backend=backend_name, seed=0)
    neuron = xpnet.Neuron(3, backend=backend_name, seed=0)
    setters = {
        "Dense.weights": (lambda w: setattr(net.layers[0], "weights", w), (3, 2)),
        "Dense.bias": (lambda b: setattr(net.layers[0], "bias", b), (2,)),
        "Neuron.weights": (lambda w: setattr(neuron, "weights", w), (3,)),
    }
    for name, (call, shape) in setters.items():
        with pytest.raises(TypeError, match=f"Setting {name} cannot run under jax.jit, grad or vmap"):
            jax.jit(call)(jax.numpy.ones(shape))


@pytest.mark.parametrize("backend_name", ["torch", "numpy"])
def test_every_entry_point_under_a_torch_func_transform_is_refused_clearly(backend_name):
    """torch.func's vmap, grad and jacrev hand wrapped tensors without
    storage: every entry point failed deep in a conversion ("Cannot access
    data pointer of Tensor that doesn't have storage")."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    net = xpnet.MLP([3, 2], backend=backend_name, dtype="float64", seed=0)
    neuron = xpnet.Neuron(3, backend=backend_name, dtype="float64", seed=0)
    X = torch.ones(5, 3, dtype=torch.float64)
    calls = {
        "Network.predict": lambda x: torch.as_tensor(net.predict(x)).sum(),
        "Network.evaluate": lambda x: torch.as_tensor(net.evaluate(x, torch.zeros(5, 2), "mse")),
        "Network.fit": lambda x: torch.as_tensor(net.fit(x, torch.zeros(5, 2), epochs=1).loss[-1]),
        "Neuron.forward": lambda x: torch.as_tensor(neuron.forward(x[0])).sum(),
        "Setting Dense.bias": lambda x: setattr(net.layers[0], "bias", x[0, :2]) or x.sum(),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=f"{name}.* cannot run under torch.func's transforms"):
            torch.func.grad(call)(X)
        with pytest.raises(TypeError, match=f"{name}.* cannot run under torch.func's transforms"):
            torch.func.vmap(call)(torch.stack([X, X]))  # each call gets one (5, 3) tensor


def test_loading_float64_on_a_device_without_it_says_how(tmp_path):
    """A float64 model on array-api-strict's ``no_float64`` device (as torch's
    MPS) was refused with "use dtype='float32'", but ``load`` and ``xpnet
    predict`` take no dtype: the message must name the model's dtype and the
    way that works, a converted copy."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device")
    path = tmp_path / "m.safetensors"
    make_net("numpy", "float64").save(path)
    with pytest.raises(ValueError, match=r"model's weights are float64.*no_float64.*\.to\(") as info:
        xpnet.load(path, backend="array_api_strict", device="no_float64")
    assert "use dtype='float32'" not in str(info.value)
    moved = xpnet.load(path, backend="numpy").to("array_api_strict", device="no_float64", dtype="float32")
    assert moved.predict(np.ones((2, moved.n_in))).device == strict.Device("no_float64")


def test_save_refuses_values_load_would_refuse_and_keeps_the_old_file(tmp_path):
    """A weight made NaN, or a variance made negative, by an edit in place
    (the setters refuse them) was saved, and the file then failed to load:
    the work was lost at load time, the previous file already replaced."""
    net = xpnet.Network([xpnet.Dense(3, 4), xpnet.BatchNorm(4), xpnet.Dense(4, 1)], backend="numpy", seed=0)
    path = tmp_path / "m.safetensors"
    net.save(path)
    before = path.read_bytes()
    net.layers[0].weights[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"cannot save .*m.safetensors: tensor layers.0.weight holds infinite values"):
        net.save(path)
    net.layers[0].weights[1, 2] = 0.0
    net._buffers()[1][0] = -1.0  # running_var, in place
    with pytest.raises(ValueError, match=r"cannot save .*: tensor layers.1.running_var holds negative values"):
        net.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    xpnet.load(path)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links on this platform")
def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    """A save replaced the link itself with a new file, in silence: the file it
    led to kept the old model and the link was gone (``current`` pointing
    at a run's model, say). Every check before the write already followed
    the link (exists, writable, a regular file, its permissions)."""
    (tmp_path / "runs").mkdir()
    target, link = tmp_path / "runs" / "model.safetensors", tmp_path / "current.safetensors"
    make_net("numpy").save(target)
    target.chmod(0o640)
    os.symlink(os.path.join("runs", "model.safetensors"), link)
    net = make_net("numpy", "float64")
    net.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("runs", "model.safetensors")
    back = xpnet.load(target, backend="numpy")
    assert back.dtype == "float64" and target.stat().st_mode & 0o777 == 0o640
    for a, b in zip(back._params(), net._params()):
        np.testing.assert_array_equal(host(a), host(b))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["current.safetensors", "model.safetensors", "runs"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links on this platform")
def test_saving_through_a_link_into_a_missing_folder_is_refused(tmp_path):
    """A dangling link to ``gone/../model.safetensors`` was read as
    ``model.safetensors`` (``realpath`` drops ``gone/..`` without looking):
    the save wrote a file there and reported success, while the link,
    which the system resolves through the missing ``gone``, loaded nothing."""
    link = tmp_path / "current.safetensors"
    os.symlink(os.path.join("gone", "..", "model.safetensors"), link)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        make_net("numpy").save(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.safetensors"]


def _flip_first_data_byte(path):
    """Flip the lowest bit of the first tensor byte: the least significant
    mantissa bit of a little-endian float, so the value stays finite."""
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8 + n] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_weight_corrupted_on_disk_is_refused_not_loaded(saved, tmp_path, dtype):
    """A bit flipped in the tensor data (a bad disk, a copy cut and mended)
    loaded as another model, in silence: every check reads the header, and
    a flipped mantissa bit leaves a finite number."""
    path = tmp_path / f"m{dtype}.safetensors"
    make_net("numpy", dtype).save(path)
    _flip_first_data_byte(path)
    with pytest.raises(ValueError, match="checksum") as e:
        xpnet.load(path, backend="numpy")
    assert str(path) in str(e.value) and "corrupted" in str(e.value)


def test_a_model_file_without_a_checksum_still_loads(saved):
    """Files of earlier xpnet versions hold no checksum: they load as before."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(saved), "np") as f:
        meta = dict(f.metadata())
    assert "tensors_sha256" in meta
    del meta["tensors_sha256"]
    tensors = load_file(str(saved))
    save_file(tensors, str(saved), metadata=meta)
    back = xpnet.load(saved, backend="numpy")
    for name, a in zip(back._parameter_names(), back._params()):
        np.testing.assert_array_equal(host(a), tensors[name])


@pytest.mark.parametrize("layer", [
    {"type": "Conv1D", "n_in": 3, "n_out": 4},  # a layer kind this xpnet does not have
    {"type": "Dense", "n_in": 3, "n_out": 4, "activation": "relu", "bias": True, "dropout": 0.1},  # a newer setting
], ids=["new-layer", "new-setting"])
def test_a_model_of_a_newer_xpnet_says_so_when_its_architecture_is_unknown(saved, layer):
    """A file that a newer xpnet wrote with a layer or setting this one lacks
    was refused as an unregistered plugin ('subclass xpnet.Layer, decorate
    it with @xpnet.register'), never saying that the file is newer than the
    library (its xpnet_version) and that upgrading reads it."""
    arch = json.dumps([layer, {"type": "Dense", "n_in": 4, "n_out": 2, "activation": "softmax", "bias": True}])
    _rewrite(saved, meta_update={"architecture": arch, "xpnet_version": "99.2.0"})
    with pytest.raises(ValueError, match="invalid architecture") as e:
        xpnet.load(saved, backend="numpy")
    message = str(e.value)
    assert "written by xpnet 99.2.0" in message and xpnet.__version__ in message and "upgrad" in message, message
    _rewrite(saved, meta_update={"xpnet_version": xpnet.__version__})
    with pytest.raises(ValueError, match="invalid architecture") as e:
        xpnet.load(saved, backend="numpy")
    assert "written by xpnet" not in str(e.value)


def test_saving_under_a_file_names_it_as_a_file_not_a_missing_folder(tmp_path):
    """``notes.txt/m.safetensors`` was refused as 'no such folder', though
    the path exists: it is a file, where a folder was expected."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"notes.txt is a file, not a folder") as e:
        make_net("numpy").save(notes / "m.safetensors")
    assert "m.safetensors" in str(e.value) and notes.read_text() == "mine"
