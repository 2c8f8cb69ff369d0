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
from xpnet.checkpoints import CHECKPOINT_VERSION

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
    "version newer": (setter("version", value=CHECKPOINT_VERSION + 1), "version"),
    "version a string": (setter("version", value="1"), "version"),
    "extra field": (setter("extra", value=1), "checkpoint metadata"),
    "missing field": (lambda ck: ck.pop("rng_state"), "checkpoint metadata"),
    # the run record, the schedule, the callbacks (version 2)
    "run missing": (lambda ck: ck.pop("run"), "checkpoint metadata"),
    "run a list": (setter("run", value=[1]), "checkpoint run"),
    "run key negative": (setter("run", "key", value=-3), "key"),
    "run key a string": (setter("run", "key", value="7"), "key"),
    "run key huge": (setter("run", "key", value=2**70), "key"),
    "run validation_split 1.5": (setter("run", "validation_split", value=1.5), "validation_split"),
    "run validation_split another": (setter("run", "validation_split", value=0.5), "validation_split"),
    "run shuffle a string": (setter("run", "shuffle", value="yes"), "shuffle must be true, false or null"),
    "schedule where none was": (setter("schedule", value={"spec": "StepLR", "state": {}}), "lr_schedule"),
    "schedule a list": (setter("schedule", value=[1]), "schedule"),
    "callbacks where none were": (setter("callbacks", value=[{"type": "EarlyStopping", "state": {}, "arrays": 0}]), "callback"),
    "callbacks a dict": (setter("callbacks", value={}), "callback"),
    "history lr too long": (setter("history", "lr", value=[0.1, 0.1]), "lr"),
    "history lr NaN": (setter("history", "lr", value=[float("nan")]), "lr"),
    "history lr negative": (setter("history", "lr", value=[-1.0]), "lr must hold the rates used, none negative"),
    "history lr a string": (setter("history", "lr", value=["0.1"]), "lr"),
    "history best_epoch beyond": (setter("history", "best_epoch", value=1), "best_epoch"),
    "history best_epoch negative": (setter("history", "best_epoch", value=-1), "best_epoch"),
    "history best_epoch a float": (setter("history", "best_epoch", value=0.0), "best_epoch"),
    "history without lr": (lambda ck: ck["history"].pop("lr"), "history"),
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


SCHEDULED = dict(KW, lr_schedule=xpnet.schedules.ReduceLROnPlateau(patience=0, monitor="loss"))


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    """A checkpoint with a schedule's state and an EarlyStopping's state and
    best weights."""
    path = tmp_path_factory.mktemp("ck") / "c.safetensors"
    make().fit(X, Y, epochs=2, checkpoint=path, validation_split=0.25,
               callbacks=[xpnet.EarlyStopping(patience=5)], **SCHEDULED)
    return path.read_bytes()


def resume_controlled(path, **kw):
    args = dict(SCHEDULED, validation_split=0.25, callbacks=[xpnet.EarlyStopping(patience=5)])
    args.update(kw)
    net = make()
    return net, net.fit(X, Y, epochs=3, resume=path, **args)


CONTROLLED_CASES = {
    "schedule state lr negative": (setter("schedule", "state", "lr", value=-1.0), {}, "lr"),
    "schedule state epoch a string": (setter("schedule", "state", "epoch", value="1"), {}, "epoch"),
    "schedule state extra": (setter("schedule", "state", "extra", value=1), {}, "schedule state"),
    "schedule best inf": (setter("schedule", "state", "best", value=1e400), {}, "best"),
    "schedule num_bad negative": (setter("schedule", "state", "num_bad_epochs", value=-1), {}, "num_bad_epochs"),
    "schedule other settings": (None, {"lr_schedule": xpnet.schedules.ReduceLROnPlateau(patience=3, monitor="loss")},
                                "lr_schedule"),
    "schedule gone": (None, {"lr_schedule": None}, "lr_schedule"),
    "callback state wait negative": (lambda ck: ck["callbacks"][0]["state"].update(wait=-2), {}, "wait"),
    "callback best_epoch not run": (lambda ck: ck["callbacks"][0]["state"].update(best_epoch=99), {},
                                    "best_epoch 99 is not one of the 2 epochs run"),
    "callback wait longer than the run": (lambda ck: ck["callbacks"][0]["state"].update(wait=10**6), {},
                                          "wait 1000000 is longer than the 2 epochs run"),
    "callback state best NaN": (lambda ck: ck["callbacks"][0]["state"].update(best=float("nan")), {}, "best"),
    "callback best_epoch without best": (lambda ck: ck["callbacks"][0]["state"].update(best=None), {}, "best"),
    "callback type": (lambda ck: ck["callbacks"][0].update(type="Other"), {}, "EarlyStopping"),
    "callback arrays count": (lambda ck: ck["callbacks"][0].update(arrays=2), {}, "arrays"),
    "callback arrays missing": (lambda ck: ck["callbacks"][0].update(arrays=5), {}, "callbacks.0.4"),
    "callbacks gone": (None, {"callbacks": []}, "callback"),
    "validation_split other": (None, {"validation_split": 0.5}, "validation_split"),
}


@pytest.mark.parametrize("case", list(CONTROLLED_CASES))
def test_tampered_schedule_and_callbacks_are_refused(tmp_path, controlled, case):
    edit, kw, word = CONTROLLED_CASES[case]
    path = tampered(tmp_path, controlled, edit)
    with pytest.raises(ValueError) as e:
        resume_controlled(path, **kw)
    assert str(path) in str(e.value) and word in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "edit, word",
    [
        (_set("callbacks.0.0", np.zeros((4, 7), np.float32)), "shape"),
        (_set("callbacks.0.1", np.full((6,), np.nan, np.float32)), "callbacks.0.1"),
        (_set("callbacks.0.2", np.zeros((6, 3), np.float64)), "callbacks.0.2"),
        (_set("callbacks.0.9", np.zeros((6,), np.float32)), "unexpected"),
    ],
)
def test_tampered_callback_arrays_are_refused(tmp_path, controlled, edit, word):
    path = tampered(tmp_path, controlled, edit_tensors=edit)
    with pytest.raises(ValueError) as e:
        resume_controlled(path)
    assert str(path) in str(e.value) and word in str(e.value), str(e.value)


def test_an_honest_controlled_checkpoint_resumes(tmp_path, controlled):
    net, h = resume_controlled(tampered(tmp_path, controlled))
    assert len(h.loss) == len(h.lr) == len(h.val_loss) == 3


def test_a_version_1_checkpoint_still_resumes(tmp_path, checkpoint):
    """Files of the version before schedules and callbacks: they ran at the
    optimizer's rate, and resume to the same run."""

    def downgrade(ck):
        ck["version"] = 1
        for key in ("run", "schedule", "callbacks"):
            ck.pop(key)
        ck["history"].pop("lr")
        ck["history"].pop("best_epoch")

    net, h = resume(tampered(tmp_path, checkpoint, downgrade))
    ref = make()
    h_ref = ref.fit(X, Y, epochs=3, **KW)
    assert h.loss == h_ref.loss and h.lr == h_ref.lr == [1e-3] * 3  # Adam named without lr: its own rate
    for p, q in zip(net._params(), ref._params()):
        np.testing.assert_array_equal(p, q)



def test_a_warm_up_state_without_its_next_schedules_state_is_refused(tmp_path):
    """LinearWarmup(1, then=StepLR(2)) after 2 epochs runs StepLR: its state
    there must hold StepLR's. A ``then`` of null passed the check, trained
    an epoch, then failed with "'NoneType' object is not subscriptable"."""
    sched = {"lr_schedule": xpnet.schedules.LinearWarmup(1, then=xpnet.schedules.StepLR(2))}
    path = tmp_path / "c.safetensors"
    make().fit(X, Y, epochs=2, checkpoint=path, **KW, **sched)
    refused(tampered(tmp_path, path.read_bytes(), setter("schedule", "state", "then", value=None)),
            "LinearWarmup state", "then", **sched)
