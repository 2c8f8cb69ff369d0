"""A tampered checkpoint is refused, field by field, before a step runs.

Each case edits one field of a real checkpoint (of the issue's reproducer:
a 4-6-3 softmax network after one Adam epoch) and resumes it: the outcome
must be a ``ValueError`` naming the file and the field, never a resumed run
with complex or float64 weights, a History of the wrong length, or an
``AttributeError``/``ZeroDivisionError``/``OverflowError`` from deep inside.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnet

X = np.random.default_rng(0).normal(size=(20, 4))
Y = np.arange(20) % 3
KW = dict(loss="cross_entropy", optimizer="adam", batch_size=8, seed=0)


def make(dtype="float32"):
    return xpnet.MLP([4, 6, 3], output_activation="softmax", backend="numpy", dtype=dtype, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "c.safetensors"
    make().fit(X, Y, epochs=1, checkpoint=path, **KW)
    return path.read_bytes()


def read(path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), "np") as f:
        meta = dict(f.metadata())
    return meta, dict(load_file(str(path)))


def write(path, meta, tensors):
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=meta)


def tampered(tmp_path, checkpoint, edit_ck=None, edit_tensors=None, raw=None):
    path = tmp_path / "c.safetensors"
    path.write_bytes(checkpoint)
    meta, tensors = read(path)
    ck = json.loads(meta["checkpoint"])
    if edit_ck is not None:
        edit_ck(ck)
    if edit_tensors is not None:
        edit_tensors(tensors)
    meta["checkpoint"] = raw if raw is not None else json.dumps(ck)
    write(path, meta, tensors)
    return path


def resume(path, epochs=3, **kw):
    net = make()
    return net, net.fit(X, Y, epochs=epochs, resume=path, **{**KW, **kw})


def refused(path, *words, **kw):
    with pytest.raises(ValueError) as e:
        resume(path, **kw)
    message = str(e.value)
    assert str(path) in message, message
    for w in words:
        assert w in message, message


def setter(*keys, value):
    def edit(ck):
        d = ck
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


CASES = {
    # the reproducers
    "adam t=-100": (setter("optimizer", "scalars", "t", value=-100), "optimizer state t"),
    "adam t=-1": (setter("optimizer", "scalars", "t", value=-1), "optimizer state t"),
    "epoch=-1": (setter("epoch", value=-1), "epoch"),
    "history=[]": (setter("history", value=[]), "history"),
    "optimizer='x'": (setter("optimizer", value="x"), "optimizer"),
    "rng_state inf": (setter("rng_state", "state", "state", value=float("inf")), "rng_state"),
    # more of each field
    "adam t float": (setter("optimizer", "scalars", "t", value=2.5), "optimizer state t"),
    "adam t bool": (setter("optimizer", "scalars", "t", value=True), "optimizer state t"),
    "adam t huge": (setter("optimizer", "scalars", "t", value=10**40), "optimizer state t"),
    "adam t string": (setter("optimizer", "scalars", "t", value="3"), "optimizer state t"),
    "adam t missing": (lambda ck: ck["optimizer"]["scalars"].pop("t"), "optimizer state"),
    "scalars a list": (setter("optimizer", "scalars", value=[1]), "scalars"),
    "lists a list": (setter("optimizer", "lists", value=[1]), "lists"),
    "lists count negative": (setter("optimizer", "lists", "m", value=-1), "lists['m']"),
    "lists count huge": (setter("optimizer", "lists", "m", value=10**9), "lists['m']"),
    "lists count short": (setter("optimizer", "lists", "m", value=2), "optimizer state m"),
    "lists count a string": (setter("optimizer", "lists", "m", value="4"), "lists['m']"),
    "optimizer type SGD": (setter("optimizer", "type", value="SGD"), "optimizer SGD"),
    "optimizer type a list": (setter("optimizer", "type", value=["Adam"]), "optimizer"),
    "optimizer no config": (lambda ck: ck["optimizer"].pop("config"), "optimizer"),
    "epoch a string": (setter("epoch", value="1"), "epoch"),
    "epoch a float": (setter("epoch", value=1.0), "epoch"),
    "epoch beyond epochs": (setter("epoch", value=5), "epoch"),
    "epoch != history": (setter("epoch", value=2), "loss"),
    "epoch huge": (setter("epoch", value=10**60), "epoch"),
    "step negative": (setter("step", value=-1), "step"),
    "step beyond the epoch": (setter("step", value=3), "step 3"),
    "step without partial loss": (setter("step", value=1), "partial loss"),
    "history a dict without keys": (setter("history", value={}), "history"),
    "history loss NaN": (setter("history", "loss", value=[float("nan")]), "loss"),
    "history loss a string": (setter("history", "loss", value=["0.5"]), "loss"),
    "history loss too long": (setter("history", "loss", value=[1.0, 0.5]), "loss"),
    "history val_loss too long": (setter("history", "val_loss", value=[1.0, 0.5]), "val_loss"),
    "history metrics a list": (setter("history", "metrics", value=[]), "metrics"),
    "history metrics unknown": (setter("history", "metrics", value={"val_accuracy": [0.5]}), "metrics"),
    "history stopped_early a string": (setter("history", "stopped_early", value="no"), "stopped_early"),
    "rng_state None": (setter("rng_state", value=None), "rng_state"),
    "rng_state a list": (setter("rng_state", value=[1, 2]), "rng_state"),
    "rng_state negative": (setter("rng_state", "state", "state", value=-5), "rng_state"),
    "rng_state huge": (setter("rng_state", "state", "inc", value=2**130 + 1), "rng_state"),
    "rng_state even inc": (setter("rng_state", "state", "inc", value=2), "rng_state"),
    "rng_state other generator": (setter("rng_state", "bit_generator", value="MT19937"), "rng_state"),
    "rng_state extra key": (setter("rng_state", "extra", value=1), "rng_state"),
    "rng_state has_uint32 a string": (setter("rng_state", "has_uint32", value="0"), "rng_state"),
    "version newer": (setter("version", value=2), "version"),
    "version a string": (setter("version", value="1"), "version"),
    "extra field": (setter("extra", value=1), "checkpoint metadata"),
    "missing field": (lambda ck: ck.pop("rng_state"), "checkpoint metadata"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_field_is_refused(tmp_path, checkpoint, case):
    edit, word = CASES[case]
    refused(tampered(tmp_path, checkpoint, edit), word)


@pytest.mark.parametrize(
    "text, word",
    [("not json", "not valid JSON"), ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
     ('{"epoch": ' + "9" * 5000 + "}", "digits"), ("[1, 2]", "checkpoint metadata"), ("NaN", "checkpoint metadata")],
)
def test_hostile_checkpoint_json(tmp_path, checkpoint, text, word):
    refused(tampered(tmp_path, checkpoint, raw=text), "checkpoint metadata", word)


def _set(name, array):
    def edit(tensors):
        tensors[name] = array

    return edit


@pytest.mark.parametrize(
    "edit, word",
    [
        (_set("optimizer.m.0", np.zeros((4, 6), np.float64)), "optimizer state m.0"),  # the float64 case
        (_set("optimizer.v.1", np.zeros((5,), np.float32)), "optimizer state v.1"),
        (_set("optimizer.v.2", np.full((6, 3), -1.0, np.float32)), "negative"),
        (_set("optimizer.m.0", np.full((4, 6), np.nan, np.float32)), "optimizer.m.0"),
        (_set("optimizer.m.0", np.zeros((4, 6), np.int32)), "optimizer state m.0"),
        (_set("optimizer.m.9", np.zeros((2,), np.float32)), "unexpected"),
        (_set("train.partial_loss", np.ones((1,), np.float32)), "partial loss"),
        (lambda t: t.pop("optimizer.v.3"), "optimizer.v.3"),
    ],
)
def test_tampered_tensor_is_refused(tmp_path, checkpoint, edit, word):
    refused(tampered(tmp_path, checkpoint, edit_tensors=edit), word)


def test_partial_loss_of_the_wrong_dtype_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"

    class StopAfter:
        n = 1

        def is_set(self):
            self.n -= 1
            return self.n < 0

    with pytest.raises(xpnet.TrainingInterrupted):
        make().fit(X, Y, epochs=2, checkpoint=path, interrupt=StopAfter(), **KW)
    meta, tensors = read(path)
    assert json.loads(meta["checkpoint"])["step"] == 2
    tensors["train.partial_loss"] = tensors["train.partial_loss"].astype(np.float64)
    write(path, meta, tensors)
    refused(path, "train.partial_loss")


def test_run_must_match_the_checkpoints_history(tmp_path):
    path = tmp_path / "c.safetensors"
    make().fit(X, Y, epochs=1, checkpoint=path, validation_data=(X, Y), metrics=("accuracy",), **KW)
    refused(path, "metrics", validation_data=(X, Y))  # no metrics now: the History's keys differ
    refused(path, "validation_data", metrics=())  # validation data gone
    net, h = resume(path, validation_data=(X, Y), metrics=("accuracy",))
    assert len(h.loss) == len(h.val_loss) == len(h.metrics["val_accuracy"]) == 3


def test_an_honest_checkpoint_still_resumes(tmp_path, checkpoint):
    path = tampered(tmp_path, checkpoint)
    net, h = resume(path)
    assert len(h.loss) == 3 and net.dtype == "float32"
    assert all(p.dtype == np.float32 and np.all(np.isfinite(p)) for p in net._params())
