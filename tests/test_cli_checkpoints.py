"""`xpnet train --checkpoint/--resume`, and SIGTERM/Ctrl-C during training:
the run stops after its current step, checkpoints, says how to resume, and
the resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli import clean_env, ok, one_line_error, xpnet_cli

import xpnet

# Float64 on NumPy: resumed runs must be bit-identical to uninterrupted ones.
TRAIN = ["train", "--backend", "numpy", "--dtype", "float64", "--quiet", "--batch-size", "8", "--hidden", "64"]


def params(path):
    return [p.tobytes() for p in xpnet.load(path, backend="numpy")._params()]


def test_checkpoint_then_resume_matches_uninterrupted(tmp_path):
    ref = tmp_path / "ref.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "4", "--save", ref))
    ck, out = tmp_path / "ck.safetensors", tmp_path / "out.safetensors"
    first = ok(xpnet_cli(*TRAIN, "--epochs", "2", "--checkpoint", ck, "--resume"))
    assert "no checkpoint at" in first.stdout and "starting fresh" in first.stdout
    second = ok(xpnet_cli(*TRAIN, "--epochs", "4", "--checkpoint", ck, "--resume", "--save", out))
    assert f"continuing from {ck}" in second.stdout
    assert params(out) == params(ref)
    # a checkpoint is a usable model: predict reads it
    data = tmp_path / "rows.npz"
    np.savez(data, X=xpnet.datasets.load_digits()[0][:5] * 16)
    ok(xpnet_cli("predict", ck, data))


def test_resume_needs_checkpoint():
    assert "--resume needs --checkpoint" in one_line_error(xpnet_cli(*TRAIN, "--epochs", "1", "--resume"))


@pytest.mark.parametrize("changed", [["--seed", "3"], ["--test-size", "0.3"], ["--lr", "0.01"], ["--dtype", "float32"]])
def test_resume_with_other_split_or_stepping_options_is_refused(tmp_path, changed):
    """Another --seed or --test-size holds out other rows (the first epochs
    trained on some of the new test rows: a leaked score); another --lr is
    another run. The error names the options, then and now (another --dtype
    was blamed on 'other training rows': their fingerprint hashes the dtype)."""
    ck = tmp_path / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "1", "--checkpoint", ck))
    line = one_line_error(xpnet_cli(*TRAIN, *changed, "--epochs", "2", "--checkpoint", ck, "--resume"))
    assert f"was written by a run with {changed[0]} " in line and f"this one has {changed[0]} {changed[1]}" in line


def test_resume_from_another_architecture_is_refused(tmp_path):
    ck = tmp_path / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "1", "--checkpoint", ck))
    line = one_line_error(xpnet_cli(*TRAIN[:-1], "32", "--epochs", "2", "--checkpoint", ck, "--resume"))
    assert "was written by a run with --hidden 64; this one has --hidden 32" in line  # named by its flag


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_checkpoints_and_resume_is_identical(tmp_path, sig):
    ref = tmp_path / "ref.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "40", "--save", ref))
    ck, out = tmp_path / "ck.safetensors", tmp_path / "out.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *TRAIN, "--epochs", "40", "--checkpoint", str(ck)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    deadline = time.monotonic() + 60
    while not ck.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)  # wait until training runs (the first epoch's checkpoint exists)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    assert "checkpoint written to" in stderr and "--resume" in stderr
    resume_line = stderr.strip().splitlines()[-1]
    assert resume_line.startswith("xpnet: resume with: xpnet train")
    epochs_done = int(stderr.split("stopped after ")[1].split(" complete")[0])
    assert epochs_done < 40
    ok(xpnet_cli(*TRAIN, "--epochs", "40", "--checkpoint", ck, "--resume", "--save", out))
    assert params(out) == params(ref)


@pytest.mark.slow
def test_signal_without_checkpoint_option_writes_default(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *TRAIN, "--epochs", "400"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    deadline = time.monotonic() + 60
    while "model:" not in (proc.stdout.readline() or "") and time.monotonic() < deadline:
        pass
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    default = tmp_path / "xpnet-interrupted.checkpoint.safetensors"
    assert default.exists() and f"--checkpoint {default.name} --resume" in stderr
    xpnet.load(default, backend="numpy")


def test_the_resume_command_is_quoted_for_the_shell(monkeypatch, capsys, tmp_path):
    """Paths with spaces: the printed command must paste back as it was run."""
    import shlex
    import types

    from xpnet import _commands

    ck = tmp_path / "my ck.safetensors"
    argv = ["train", "--epochs", "4", "--checkpoint", str(ck), "--save", str(tmp_path / "out dir.st")]
    monkeypatch.setattr(sys, "argv", ["xpnet", *argv])
    exc = types.SimpleNamespace(checkpoint=ck, write_checkpoint=None, history=types.SimpleNamespace(epochs=2))
    args = types.SimpleNamespace(checkpoint=str(ck), distributed=False)
    assert _commands._interrupted(exc, args, signal.SIGINT) == 128 + signal.SIGINT
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("xpnet: resume with: ")
    assert shlex.split(line.removeprefix("xpnet: resume with: ")) == ["xpnet", *argv, "--resume"]


def test_resume_takes_the_same_test_file_however_its_path_is_written(tmp_path, monkeypatch):
    import shutil

    from xpnet.datasets import load_digits

    X, y = load_digits()
    for name, rows in (("train.csv", slice(0, 300)), ("test.csv", slice(300, 400))):
        lines = [",".join([*(f"f{i}" for i in range(8)), "label"])]
        lines += [",".join([*(f"{v:g}" for v in x[:8]), str(t)]) for x, t in zip(X[rows], y[rows])]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--data", "train.csv", "--test-data", "test.csv", "--epochs", "1", "--checkpoint", ck))
    ok(xpnet_cli(*TRAIN, "--data", "train.csv", "--test-data", str(tmp_path / "test.csv"), "--epochs", "2",
                 "--checkpoint", ck, "--resume"))  # fmt: skip
    shutil.copy(tmp_path / "test.csv", tmp_path / "other.csv")
    line = one_line_error(xpnet_cli(*TRAIN, "--data", "train.csv", "--test-data", "other.csv", "--epochs", "3",
                                    "--checkpoint", ck, "--resume"))  # fmt: skip
    assert "--test-data" in line and "other.csv" in line


def test_resume_with_other_data_or_training_options_is_refused(tmp_path):
    """--resume took another --data file, the same file with other rows in
    it, another --weight-decay or --patience, and went on as if nothing had
    changed (the model's notes then named the new file)."""
    rng = np.random.default_rng(0)
    rows = [f"{a:.4f},{b:.4f},{int(a + b > 0)}\n" for a, b in rng.normal(size=(60, 2))]
    data, other = tmp_path / "d.csv", tmp_path / "other.csv"
    data.write_text("a,b,y\n" + "".join(rows))
    other.write_text("a,b,y\n" + "".join(rows[1:] + rows[:1]))
    ck = tmp_path / "ck.safetensors"
    run = ["train", "--quiet", "--checkpoint", ck]
    ok(xpnet_cli(*run, "--data", data, "--epochs", "1"))
    line = one_line_error(xpnet_cli(*run, "--data", other, "--epochs", "2", "--resume"))
    assert "was written by a run with --data " in line and "other.csv" in line
    for option in (["--weight-decay", "0.1"], ["--patience", "3"]):
        line = one_line_error(xpnet_cli(*run, "--data", data, *option, "--epochs", "2", "--resume"))
        assert f"this one has {option[0]} {option[1]}" in line
    data.write_text("a,b,y\n" + "".join(rows[:-1] + ["0.5,0.5,1\n"]))  # the same file, one row changed
    line = one_line_error(xpnet_cli(*run, "--data", data, "--epochs", "2", "--resume"))
    assert "was written by a run on other training rows than" in line
    data.write_text("a,b,y\n" + "".join(rows))
    assert "continuing from" in ok(xpnet_cli(*run, "--data", data, "--epochs", "2", "--resume")).stdout


@pytest.mark.parametrize(("sig", "hint"), [(signal.SIGINT, "(Ctrl-C again to stop at once)"),
                                           (signal.SIGTERM, "(send SIGINT to stop at once)")])
def test_the_first_signal_says_how_to_stop_at_once(capsys, sig, hint):
    """A SIGTERM (a scheduler's, or kill's) said 'Ctrl-C again', though no
    Ctrl-C had been pressed; a SIGINT after either still stops at once."""
    from xpnet import _commands

    flag = _commands._StopFlag()
    flag(sig, None)
    assert flag.is_set() and capsys.readouterr().err.strip().endswith(hint)
    with pytest.raises(KeyboardInterrupt):
        flag(signal.SIGINT, None)


def test_the_signal_line_comes_from_rank_0_only(capsys, monkeypatch):
    """mpiexec passes a SIGTERM to every process, and each printed the
    'finishing this step' line, though only rank 0 prints."""
    from xpnet import _commands

    monkeypatch.setattr(_commands, "_muted", True)  # as train sets it on the other ranks
    flag = _commands._StopFlag()
    flag(signal.SIGTERM, None)
    assert flag.is_set() and capsys.readouterr().err == ""


def test_a_second_ctrl_c_names_the_checkpoint_that_resumes(tmp_path, monkeypatch, capsys):
    """A second Ctrl-C (stop at once) said 'nothing was saved' while the
    last epoch's checkpoint was there to resume from."""
    import shlex

    from xpnet import _commands, cli

    ck = tmp_path / "my ck.safetensors"
    epochs_written = []

    def interrupted(args):
        if epochs_written:  # the run wrote its last epoch's checkpoint before the Ctrl-C
            ck.write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(_commands, "train", interrupted)
    argv = ["train", "--epochs", "4", "--checkpoint", str(ck)]
    monkeypatch.setattr(sys, "argv", ["xpnet", *argv])
    assert cli.main(argv) == 130
    assert "interrupted (nothing was saved)" in capsys.readouterr().err  # no checkpoint yet
    epochs_written.append(1)  # (written during the run: one there before it is refused without --resume)
    assert cli.main(argv) == 130
    line = capsys.readouterr().err.strip()
    assert f"the checkpoint {ck} holds the last epoch written; resume with: " in line
    command = line.split("resume with: ", 1)[1].removesuffix(")")
    assert shlex.split(command) == ["xpnet", *argv, "--resume"]


def test_the_space_check_covers_a_checkpoint_with_its_optimizer_state_and_best_weights(tmp_path, monkeypatch):
    """The check before training counted 3 sets of weights for a checkpoint;
    one with Adam's moments and EarlyStopping's best weights holds 4, and a
    replace keeps the old file beside the new one: a run on a small disk
    died mid-training with 'No space left on device'."""
    import os
    import types

    from xpnet import _commands

    sizes = [400, 300, 2]
    X = np.random.default_rng(0).normal(size=(100, sizes[0]))
    y = (X[:, 0] > 0).astype(int)
    ck = tmp_path / "ck.safetensors"
    net = xpnet.MLP(sizes, "tanh", "softmax", backend="numpy", dtype="float32", seed=0)
    net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, validation_split=0.2, checkpoint=ck,
            callbacks=[xpnet.EarlyStopping(patience=5)])  # fmt: skip
    written = 2 * ck.stat().st_size  # the old file and its replacement
    args = types.SimpleNamespace(dtype="float32", save=None, checkpoint=str(ck))

    def free(n):
        monkeypatch.setattr(os, "statvfs", lambda path: types.SimpleNamespace(f_bavail=n, f_frsize=1))

    free(written)
    with pytest.raises(OSError, match="MiB free, the model needs"):
        _commands._check_space(args, sizes)
    free(4 * written)
    _commands._check_space(args, sizes)  # room enough: no refusal


def test_an_existing_checkpoint_without_resume_is_refused_not_overwritten(tmp_path):
    """The same command run again without --resume wrote its first epoch
    over the checkpoint, in silence: the stopped run's epochs were lost.
    Exit 2 before any data is read, naming --resume and how to start over;
    the file is untouched, and --resume still continues from it."""
    ck = tmp_path / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "1", "--checkpoint", ck))
    before = ck.read_bytes()
    result = xpnet_cli(*TRAIN, "--epochs", "2", "--checkpoint", ck)
    line = one_line_error(result)
    assert result.returncode == 2
    assert f"--checkpoint {ck} exists" in line and "--resume" in line and "delete it" in line
    assert ck.read_bytes() == before
    assert "continuing from" in ok(xpnet_cli(*TRAIN, "--epochs", "2", "--checkpoint", ck, "--resume")).stdout


def test_a_link_to_a_checkpoint_not_written_yet_starts_a_run(tmp_path):
    """A symbolic link to a file no run has written yet (``current`` set up
    before the run) was refused as an existing checkpoint, naming "the run
    that wrote it"; writing through it loses nothing."""
    link = tmp_path / "current.safetensors"
    link.symlink_to(tmp_path / "run1.safetensors")
    ok(xpnet_cli(*TRAIN, "--epochs", "1", "--checkpoint", link))
    assert link.is_symlink() and (tmp_path / "run1.safetensors").is_file()


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A checkpoint of 2 epochs of TRAIN (the resumes below are refused before fit: it stays as written)."""
    ck = tmp_path_factory.mktemp("two_epochs") / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "2", "--checkpoint", ck))
    return ck


PYTHON_TERMS = ("epochs=", "lr_schedule", "validation_split", "architecture", "this run uses", "fit(", "callback")


@pytest.mark.parametrize("changed", [["--hidden", "32"], ["--activation", "relu"], ["--dropout", "0.1"],
                                     ["--optimizer", "sgd"], ["--optimizer", "momentum"],
                                     ["--lr-schedule", "exp:0.5"], ["--validation-split", "0.2"]])
def test_resume_with_another_model_or_training_option_names_the_flags(two_epochs, changed):
    """Refused by fit, they were told in its Python terms: 'another
    architecture: 3-64-10 ...', 'lr_schedule None, this one {'name': ...}',
    'validation_split=0.1'. The command line names its own options, then and now."""
    line = one_line_error(xpnet_cli(*TRAIN, *changed, "--epochs", "4", "--checkpoint", two_epochs, "--resume"))
    assert f"was written by a run with {changed[0]} " in line and f"this one has {changed[0]} {changed[1]}" in line
    assert not any(term in line for term in PYTHON_TERMS), line


def test_resume_with_fewer_epochs_than_the_checkpoint_holds_names_epochs(two_epochs):
    """'holds 2 completed epoch(s), beyond epochs=1; pass at least epochs=2': fit's keyword."""
    line = one_line_error(xpnet_cli(*TRAIN, "--epochs", "1", "--checkpoint", two_epochs, "--resume"))
    assert "holds 2 completed epochs" in line and "--epochs 1" in line and "--epochs 2 or more" in line
    assert not any(term in line for term in PYTHON_TERMS), line


def test_resume_of_a_finished_run_says_nothing_is_left_to_train(two_epochs):
    """It printed 'continuing from' and a score, as if it had trained."""
    out = ok(xpnet_cli(*TRAIN, "--epochs", "2", "--checkpoint", two_epochs, "--resume")).stdout
    assert "holds all 2 epochs: nothing left to train" in out and "--epochs" in out


def test_resume_reading_other_columns_names_the_option(tmp_path):
    """Another --ignore reads other training rows from the same file: the
    error said only 'other training rows (the file, or a reading option,
    changed since)'; it names the option. One that reads the same rows
    (--sep comma, detected before) resumes."""
    rng = np.random.default_rng(0)
    data = tmp_path / "d.csv"
    data.write_text("a,b,c,y\n" + "".join(f"{a:.4f},{b:.4f},{c:.4f},{int(a > 0)}\n"
                                          for a, b, c in rng.normal(size=(60, 3))))
    ck = tmp_path / "ck.safetensors"
    run = ["train", "--quiet", "--data", data, "--epochs", "2", "--checkpoint", ck]
    ok(xpnet_cli(*run, "--epochs", "1"))
    line = one_line_error(xpnet_cli(*run, "--ignore", "b", "--resume"))
    assert "was written by a run with --ignore (not given); this one has --ignore b" in line
    assert "continuing from" in ok(xpnet_cli(*run, "--sep", "comma", "--resume")).stdout


def test_an_interrupted_run_without_checkpoint_keeps_an_earlier_interrupted_runs_file(tmp_path, monkeypatch, capsys):
    """Without --checkpoint, an interrupted run writes its checkpoint to
    xpnet-interrupted.checkpoint.safetensors in the current folder: a
    second interrupted run wrote over the first's, whose epochs were lost.
    It takes the next free name, and its resume command names that one."""
    import types

    from xpnet import _commands

    monkeypatch.chdir(tmp_path)
    first = tmp_path / _commands.INTERRUPT_CHECKPOINT
    first.write_bytes(b"the first run's epochs")
    monkeypatch.setattr(sys, "argv", ["xpnet", "train", "--epochs", "4"])
    written = []
    exc = types.SimpleNamespace(checkpoint=None, write_checkpoint=written.append,
                                history=types.SimpleNamespace(epochs=2))
    args = types.SimpleNamespace(checkpoint=None, distributed=False)
    assert _commands._interrupted(exc, args, signal.SIGTERM) == 128 + signal.SIGTERM
    assert first.read_bytes() == b"the first run's epochs"
    assert written == ["xpnet-interrupted-2.checkpoint.safetensors"]
    assert "--checkpoint xpnet-interrupted-2.checkpoint.safetensors --resume" in capsys.readouterr().err


def test_resume_of_a_cosine_schedule_with_other_epochs_says_its_length_follows_epochs(tmp_path):
    """``--lr-schedule cosine`` decays over --epochs: resumed with another
    --epochs, the error named 'cosine:1' and 'cosine:2', values the user
    never typed; it says where they came from, and what keeps the length."""
    ck = tmp_path / "ck.safetensors"
    ok(xpnet_cli(*TRAIN, "--epochs", "1", "--lr-schedule", "cosine", "--checkpoint", ck))
    result = xpnet_cli(*TRAIN, "--epochs", "2", "--lr-schedule", "cosine", "--checkpoint", ck, "--resume")
    line = one_line_error(result)
    assert "--lr-schedule cosine:1; this one has --lr-schedule cosine:2" in line
    assert "cosine without T_MAX decays over --epochs (1 then, 2 now)" in line
    assert "--lr-schedule cosine:1 keeps its length" in line
    ok(xpnet_cli(*TRAIN, "--epochs", "2", "--lr-schedule", "cosine:1", "--checkpoint", ck, "--resume"))
    # a T_MAX given, and changed, is the user's own number: nothing to explain
    line = one_line_error(xpnet_cli(*TRAIN, "--epochs", "2", "--lr-schedule", "cosine:3", "--checkpoint", ck,
                                    "--resume"))
    assert "this one has --lr-schedule cosine:3" in line and "decays over --epochs" not in line
