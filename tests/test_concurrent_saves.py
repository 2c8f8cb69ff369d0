"""Several writers of one path: each finishes, the file always loads, and a
write removes only temporaries whose writer is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
from helpers import subprocess_env

import xpnet
from xpnet.serialization import STALE_AFTER, _host_tag


def make(seed=0):
    return xpnet.MLP([3, 5, 2], backend="numpy", seed=seed)


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_another_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / "m.safetensors"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".m.safetensors.{_host_tag()}-{sleeper.pid}-1-abcdefgh.tmp"
        live.write_bytes(b"being written")
        gate, done = threading.Event(), threading.Event()
        t = threading.Thread(target=lambda: (gate.set(), done.wait(30)))
        t.start()
        gate.wait(5)
        other_thread = tmp_path / f".m.safetensors.{_host_tag()}-{os.getpid()}-{t.ident}-x.tmp"
        other_thread.write_bytes(b"being written by a live thread of this process")
        make().save(path)
        done.set()
        t.join()
        assert live.exists() and other_thread.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    make().save(path)  # now its writer is dead (and the thread has ended)
    assert temporaries(tmp_path) == []


def test_leftovers_of_dead_writers_and_old_ones_are_removed(tmp_path):
    path = tmp_path / "m.safetensors"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".m.safetensors.{_host_tag()}-{gone.pid}-7-abc.tmp"
    old_foreign = tmp_path / f".m.safetensors.0000beef-{os.getpid()}-7-abc.tmp"  # another machine's
    fresh_foreign = tmp_path / f".m.safetensors.0000beef-{os.getpid()}-8-abc.tmp"
    for f in (dead, old_foreign, fresh_foreign):
        f.write_bytes(b"half")
    old = time.time() - STALE_AFTER - 60
    os.utime(old_foreign, (old, old))
    make().save(path)
    assert temporaries(tmp_path) == [fresh_foreign.name]


def test_name_with_glob_characters(tmp_path):
    path = tmp_path / "m[1]*.safetensors"
    make().save(path)
    make(1).save(path)
    assert xpnet.load(path, backend="numpy").n_in == 3 and temporaries(tmp_path) == []


def test_threads_saving_one_path_all_finish(tmp_path):
    path = tmp_path / "m.safetensors"
    make().save(path)
    errors = []

    def writer(seed):
        net = make(seed)
        try:
            for _ in range(25):
                net.save(path)
        except BaseException as exc:  # pragma: no cover - the failure this test is for
            errors.append(exc)

    def reader():
        try:
            for _ in range(25):
                xpnet.load(path, backend="numpy")
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loaded = xpnet.load(path, backend="numpy")
    assert any(np.array_equal(xpnet.to_numpy(loaded.layers[0].weights), xpnet.to_numpy(make(s).layers[0].weights))
               for s in range(3))
    assert temporaries(tmp_path) == []


_TRAIN = r"""
import sys
import numpy as np
import xpnet
X = np.random.default_rng(0).normal(size=(64, 3))
y = (X[:, 0] > 0).astype(int)
net = xpnet.MLP([3, 16, 2], output_activation="softmax", backend="numpy", seed=int(sys.argv[2]))
h = net.fit(X, y, loss="cross_entropy", epochs=60, batch_size=8, checkpoint=sys.argv[1])
print(len(h.loss))
"""


def test_two_processes_checkpointing_to_one_path_both_finish(tmp_path):
    ck = tmp_path / "ck.safetensors"
    procs = [subprocess.Popen([sys.executable, "-c", _TRAIN, str(ck), str(s)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env()) for s in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.split() == ["60"]
    net = xpnet.load(ck, backend="numpy")
    assert net.n_in == 3
    assert temporaries(tmp_path) == []
