"""`xpnet train`'s training controls (issue 13, items 9 and 10): early
stopping on a validation share, --dropout, --weight-decay, --lr-schedule,
--patience. Small data, few epochs: each run takes about a second."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli import ok, one_line_error, read_csv, write_csv, xpnet_cli  # noqa: E402


@pytest.fixture
def blobs(tmp_path):
    """Two well-separated classes, 100 rows: the validation loss bottoms out soon."""
    rng = np.random.default_rng(0)
    y = np.arange(100) % 2
    X = rng.normal(size=(100, 3)) + 3.0 * y[:, None]
    return write_csv(tmp_path / "blobs.csv", ["a", "b", "c", "label"], [*X.T.round(4).tolist(), y.tolist()])


def run(data, *args):
    return ok(xpnet_cli("train", "--data", data, "--quiet", *args)).stdout


def test_early_stopping_is_on_by_default_and_says_where_it_stopped(blobs):
    out = run(blobs, "--epochs", "400", "--patience", "3", "--lr", "0.05")
    assert "early stopping: on the validation loss of 10% of the training rows (8 rows), patience 3" in out
    assert "at most 400 epochs" in out
    m = re.search(r"stopped early after epoch (\d+) of at most 400; restored the weights of epoch (\d+) ", out)
    assert m, out
    stopped, best = int(m.group(1)), int(m.group(2))
    assert stopped < 400 and best == stopped - 3  # patience epochs without a better validation loss


def test_epochs_is_the_maximum_when_training_does_not_stop(blobs):
    out = run(blobs, "--epochs", "4", "--patience", "50")
    assert re.search(r"trained all 4 epochs without stopping early; restored the weights of epoch [1-4] ", out), out


@pytest.mark.parametrize(("args", "reason"), [
    (["--patience", "0"], "--patience 0"),
    (["--patience", "none"], "--patience none"),  # as typed: it said '--patience 0', which was not typed
    (["--patience", "Off"], "--patience Off"),
    (["--validation-split", "0"], "--validation-split 0"),
])  # fmt: skip
def test_early_stopping_can_be_turned_off(blobs, args, reason):
    out = run(blobs, "--epochs", "3", *args)
    assert f"early stopping: off ({reason}); training all epochs on all training rows" in out
    assert "stopped early" not in out and "restored" not in out
    assert ", 3 epochs" in out


def test_the_validation_share_is_echoed_as_given(blobs):
    """It was rounded to a whole percent: 0.999 said 100% (2 rows still trained), 0.125 said 12%."""
    assert "validation loss of 99.9% of the training rows (78 rows)" in run(blobs, "--epochs", "1",
                                                                           "--validation-split", "0.999")
    assert "validation loss of 12.5% of the training rows" in run(blobs, "--epochs", "1", "--validation-split", "0.125")


def test_auto_epochs_is_a_generous_maximum_only_with_early_stopping(blobs):
    assert "at most 500 epochs (auto)" in run(blobs, "--patience", "2", "--lr", "0.05")
    assert ", 100 epochs (auto)" in run(blobs, "--patience", "0", "--hidden", "4")


def test_too_few_rows_for_a_validation_share_train_all_epochs(tmp_path):
    data = write_csv(tmp_path / "tiny.csv", ["a", "label"], [[0, 1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 1, 1, 1, 1]])
    out = run(data, "--epochs", "2", "--test-size", "0")
    assert "early stopping: off (8 training rows are too few" in out


def test_dropout_model_is_saved_by_name_and_predicts(blobs, tmp_path):
    model = tmp_path / "m.safetensors"
    out = run(blobs, "--epochs", "30", "--dropout", "0.3", "--hidden", "16,8", "--save", model)
    assert "(tanh, softmax, dropout 0.3)" in out
    import xpnet

    net = xpnet.load(model, backend="numpy")
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert all(layer.rate == 0.3 for layer in net.layers if type(layer).__name__ == "Dropout")
    pred = ok(xpnet_cli("predict", model, blobs)).stdout
    header, rows = read_csv(pred)
    assert header == ["label"] and len(rows) == 100
    truth = [str(i % 2) for i in range(100)]
    assert sum(r[0] == t for r, t in zip(rows, truth)) >= 90  # dropout is off when predicting


def test_weight_decay_goes_to_the_optimizer(blobs):
    assert "adam lr 0.001 weight decay 0.05," in run(blobs, "--epochs", "2", "--weight-decay", "0.05")
    assert "adamw lr 0.001 weight decay 0.01," in run(blobs, "--epochs", "2", "--optimizer", "adamw")
    assert "sgd lr 0.001, " in run(blobs, "--epochs", "2", "--optimizer", "sgd")


@pytest.mark.parametrize(("spec", "name", "config"), [
    ("step:5,0.5", "StepLR", {"step_size": 5, "gamma": 0.5}),
    ("step:5", "StepLR", {"step_size": 5, "gamma": 0.1}),
    ("exp:0.9", "ExponentialLR", {"gamma": 0.9}),
    ("cosine", "CosineAnnealingLR", {"T_max": 40}),
    ("cosine:10", "CosineAnnealingLR", {"T_max": 10}),
    ("plateau:0.5,2", "ReduceLROnPlateau", {"factor": 0.5, "patience": 2}),
    ("warmup:3", "LinearWarmup", {"epochs": 3}),
])  # fmt: skip
def test_lr_schedule_grammar(spec, name, config):
    from xpnet.cli import _lr_schedule

    schedule = _lr_schedule(spec)(40, "val_loss")
    assert type(schedule).__name__ == name
    got = schedule.config()
    assert {k: got[k] for k in config} == config


def test_lr_schedule_changes_the_rate_in_training(blobs, tmp_path):
    """The schedule reaches fit: the checkpoint's History records each epoch's rate."""
    import json

    from safetensors import safe_open

    ck = tmp_path / "ck.safetensors"
    run(blobs, "--epochs", "4", "--patience", "0", "--lr-schedule", "step:2,0.5", "--checkpoint", ck)
    with safe_open(str(ck), "np") as f:
        meta = f.metadata()
    text = json.dumps(meta)
    rates = re.search(r'\\"lr\\": \[([^\]]*)\]', text)
    assert rates, text[:500]
    assert [float(v) for v in rates.group(1).split(",")] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])


def test_plateau_schedule_runs_with_and_without_early_stopping(blobs):
    assert "lr schedule plateau:0.5,1, " in run(blobs, "--epochs", "5", "--lr-schedule", "plateau:0.5,1")
    out = run(blobs, "--epochs", "5", "--lr-schedule", "plateau", "--patience", "0")
    assert "lr schedule plateau:0.1,10 on the training loss, " in out  # no validation rows to watch


@pytest.mark.parametrize(("spec", "echo"), [("step:2", "step:2,0.1"), ("cosine", "cosine:6"), ("exp:0.9", "exp:0.9"),
                                            ("warmup:3", "warmup:3")])
def test_the_run_summary_names_the_lr_schedule(blobs, spec, echo):
    """The model line echoed optimizer, batch and dropout, but never --lr-schedule: a run could not show its own."""
    assert f"adam lr 0.001, lr schedule {echo}, batch 32, at most 6 epochs" in run(blobs, "--epochs", "6",
                                                                                   "--lr-schedule", spec)
    assert "lr schedule" not in run(blobs, "--epochs", "1", "--lr-schedule", "none")


@pytest.mark.parametrize(("args", "option"), [
    (["--dropout", "1"], "--dropout"),
    (["--dropout", "lots"], "--dropout"),
    (["--dropout", "0.5", "--hidden", "none"], "--dropout"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--weight-decay", "inf"], "--weight-decay"),
    (["--lr-schedule", "linear"], "--lr-schedule"),
    (["--lr-schedule", "step"], "--lr-schedule"),
    (["--lr-schedule", "step:0"], "--lr-schedule"),
    (["--lr-schedule", "exp:fast"], "--lr-schedule"),
    (["--lr-schedule", "exp:0.9,2,3"], "--lr-schedule"),
    (["--lr-schedule", "plateau:2"], "--lr-schedule"),
    (["--lr-schedule", "cosine:0"], "--lr-schedule"),
    (["--patience", "-1"], "--patience"),
    (["--patience", "soon"], "--patience"),
    (["--validation-split", "1"], "--validation-split"),
])  # fmt: skip
def test_bad_values_exit_2_before_reading_data(tmp_path, args, option):
    data = tmp_path / "never-read.csv"
    data.write_text("a,label\n1,0\n")
    data.chmod(0)  # a reader would fail differently: the options are checked first
    result = xpnet_cli("train", "--data", data, *args)
    line = one_line_error(result)
    assert result.returncode == 2, line
    assert option in line, line
