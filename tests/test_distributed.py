"""Data-parallel training: ``mpiexec -n 2`` runs against one process (float64,
rtol 1e-9), failures that must end the whole job, and the pieces (shares,
the packed allreduce, status, the missing extra) in this process.

The MPI tests need the ``mpi`` extra (``pip install ".[mpi]"``: mpi4py and
MPICH, whose ``mpiexec`` lands next to the Python executable); without it
they are skipped, saying so, or fail if ``XPNET_TEST_REQUIRE_MPI=1`` (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mpi_scenarios
import numpy as np
import pytest
from helpers import assert_on, child_env, host, try_import

import xpnet
from xpnet import distributed
from xpnet.distributed import DataParallel, share

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-9
TIMEOUT = 180


def _find_mpiexec() -> str | None:
    """The mpiexec beside this Python (the ``mpich`` wheel's), else on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def _mpi_usable() -> tuple[bool, str]:
    if try_import("mpi4py") is None:
        return False, "mpi4py is not installed (pip install '.[mpi]')"
    usable, reason, _ = distributed.mpi_status()
    return usable, reason


MPIEXEC = _find_mpiexec()
MPI_OK, MPI_REASON = _mpi_usable()
#: CI sets XPNET_TEST_REQUIRE_MPI=1: then missing MPI fails these tests instead of skipping them.
REQUIRED = os.environ.get("XPNET_TEST_REQUIRE_MPI", "") not in ("", "0")


def _require(with_mpiexec: bool) -> None:
    if not MPI_OK:
        (pytest.fail if REQUIRED else pytest.skip)(f"MPI not usable: {MPI_REASON}")
    if with_mpiexec and MPIEXEC is None:
        (pytest.fail if REQUIRED else pytest.skip)("no mpiexec found (pip install '.[mpi]')")


@pytest.fixture
def mpi() -> None:
    _require(with_mpiexec=False)


@pytest.fixture
def mpiexec() -> str:
    _require(with_mpiexec=True)
    return MPIEXEC


needs_mpi = pytest.mark.usefixtures("mpi")
needs_mpiexec = pytest.mark.usefixtures("mpiexec")


def run_mpiexec(mode: str, out: Path, n: int = 2, timeout: float = TIMEOUT) -> tuple[int, str, str, float]:
    """Run ``mpi_scenarios.py MODE OUT`` on ``n`` processes; kill the whole
    process group if it outlives ``timeout`` (a hang is a failure)."""
    script = str(Path(__file__).with_name("mpi_scenarios.py"))
    return run_under_mpiexec([script, mode, str(out)], out, n, timeout)


def run_under_mpiexec(args: list[str], out: Path, n: int = 2, timeout: float = TIMEOUT) -> tuple[int, str, str, float]:
    """``mpiexec -n N python ARGS`` in folder ``out``, with a hang as a failure."""
    env = child_env(REPO)
    env.pop("XPNET_BACKEND", None)
    env.update(
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        # Open MPI refuses root and more processes than cores unless told;
        # MPICH ignores these.
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
        PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe",
    )
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(out), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"mpiexec {' '.join(args)} hung for {timeout} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return proc.returncode, stdout, stderr, time.monotonic() - t0


# --------------------------------------------------------------------------
# Two processes against one
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mpi_runs(tmp_path_factory) -> Path:
    _require(with_mpiexec=True)
    out = tmp_path_factory.mktemp("mpi")
    rc, stdout, stderr, _ = run_mpiexec("train", out)
    assert rc == 0, f"mpiexec -n 2 failed (rc {rc})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    return out


def load_ranks(out: Path, name: str) -> list[dict]:
    runs = [dict(np.load(out / f"{name}.rank{r}.npz")) for r in (0, 1)]
    return runs


def assert_same_as(run: dict, net, history, rtol=RTOL) -> None:
    np.testing.assert_allclose(run["loss"], history.loss, rtol=rtol, atol=0)
    np.testing.assert_allclose(run["val_loss"], history.val_loss, rtol=rtol, atol=0)
    for i, w in enumerate(mpi_scenarios.weights(net)):
        np.testing.assert_allclose(run[f"p{i}"], w, rtol=rtol, atol=1e-14)


def assert_ranks_identical(runs: list[dict]) -> None:
    """Every process applied the same updates: bit-identical results."""
    for key in runs[0]:
        np.testing.assert_array_equal(runs[1][key], runs[0][key], err_msg=key)


@needs_mpiexec
@pytest.mark.slow
@pytest.mark.parametrize("name", list(mpi_scenarios.scenarios()))
def test_two_processes_train_like_one(mpi_runs, name):
    spec = mpi_scenarios.scenarios()[name]
    if mpi_scenarios.backend_name(spec) not in xpnet.available_backends():
        pytest.skip(f"backend {mpi_scenarios.backend_name(spec)} is not usable here")
    runs = load_ranks(mpi_runs, name)
    assert_ranks_identical(runs)
    net = mpi_scenarios.build(spec)
    history = net.fit(spec["X"], spec["y"], **spec["fit"])
    assert len(history.loss) == len(runs[0]["loss"])
    assert bool(runs[0]["stopped_early"]) == history.stopped_early
    assert_same_as(runs[0], net, history)


@needs_mpiexec
@pytest.mark.slow
def test_three_processes_with_an_empty_share_and_batchnorm(tmp_path):
    """A process without rows in a minibatch joins BatchNorm's sums on zero
    rows (else the others would wait for it forever); the run equals one process's."""
    rc, stdout, stderr, _ = run_mpiexec("train3", tmp_path, n=3)
    assert rc == 0, f"mpiexec -n 3 failed (rc {rc})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    for name, spec in mpi_scenarios.three_process_scenarios().items():
        runs = [dict(np.load(tmp_path / f"{name}.rank{r}.npz")) for r in (0, 1, 2)]
        assert_ranks_identical(runs[:2])
        assert_ranks_identical([runs[0], runs[2]])
        net = mpi_scenarios.build(spec)
        history = net.fit(spec["X"], spec["y"], **spec["fit"])
        assert_same_as(runs[0], net, history)


@needs_mpiexec
@pytest.mark.slow
def test_tol_stops_every_process_at_the_same_epoch(mpi_runs):
    runs = load_ranks(mpi_runs, "adam_sse_batch7_tol")
    assert bool(runs[0]["stopped_early"]) and bool(runs[1]["stopped_early"])
    assert len(runs[0]["loss"]) < mpi_scenarios.scenarios()["adam_sse_batch7_tol"]["fit"]["epochs"]


@needs_mpiexec
@pytest.mark.slow
def test_seed_none_uses_rank_0s_weights_and_shuffling(mpi_runs):
    """And rank 0's random key: the validation split is the same on every rank."""
    runs = load_ranks(mpi_runs, "seed_none")
    assert_ranks_identical(runs)
    assert len(runs[0]["val_loss"]) == 4


@needs_mpiexec
@pytest.mark.slow
def test_checkpoint_by_rank_0_and_resume(mpi_runs):
    """2 epochs with a checkpoint, resumed to 4 under mpiexec, equal 4 epochs
    in one process; only rank 0 wrote (the others' writes raise)."""
    runs = load_ranks(mpi_runs, "resumed")
    assert_ranks_identical(runs)
    spec = mpi_scenarios.scenarios()["adam_bce_validation"]
    net = mpi_scenarios.build(spec)
    history = net.fit(spec["X"], spec["y"], **{**spec["fit"], "epochs": 4})
    assert_same_as(runs[0], net, history)
    saved = xpnet.load(mpi_runs / "run.ckpt")
    for a, b in zip(saved._params(), net._params()):
        np.testing.assert_allclose(host(a), host(b), rtol=RTOL, atol=1e-14)


@needs_mpiexec
@pytest.mark.slow
def test_interrupt_on_one_rank_stops_all_after_the_same_step(mpi_runs):
    runs = load_ranks(mpi_runs, "interrupted")
    assert_ranks_identical(runs)
    assert "epoch 1, step 1" in str(runs[0]["message"])
    spec = mpi_scenarios.scenarios()["sgd_ce_batch9"]
    net = mpi_scenarios.build(spec)
    with pytest.raises(xpnet.training.TrainingInterrupted) as info:
        net.fit(spec["X"], spec["y"], **spec["fit"], interrupt=mpi_scenarios.SetOn(True))
    assert_same_as(runs[0], net, info.value.history)


# --------------------------------------------------------------------------
# A failing process ends the job
# --------------------------------------------------------------------------


@needs_mpiexec
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, message",
    [
        ("bad-input", "NaN"),
        ("raise-mid", "rank 1 fails on purpose at its third step"),
        ("mismatch", "X.shape is (37, 5) on rank 0 but (36, 5) on rank 1"),
        # both scrambled the allreduce (gradients shifted, or MPI's "Message truncated")
        ("vector-loss", "its _value must return one number"),
        ("interrupt-one", "interrupt is True on rank 0 but False on rank 1"),
        # the ranks that went on waited forever in the next allreduce
        ("stop-one", "after epoch 3 the processes decided differently whether to stop (rank 0: stop, rank 1: go on)"),
        ("network-differs", "network is"),  # trained as a blend, or MPI's "Message truncated" for other shapes
        ("class-weight-differs", "class_weight is {1: 1.0} on rank 0 but {1: 2.0} on rank 1"),
        ("loss-differs", "loss is {'name': 'huber', 'config': {'delta': 1.0}} on rank 0 but {'name': 'huber', "
                         "'config': {'delta': 2.0}} on rank 1"),
        # every rank's rate was NaN: refused as "different learning rates (rank 0: nan, rank 1: nan)"
        ("schedule-nan", "_NanAfterEpoch1() gave the learning rate nan for epoch 3; a schedule's rate must be"),
    ],
)
def test_a_failing_process_aborts_the_job(tmp_path, mode, message):
    rc, stdout, stderr, seconds = run_mpiexec(mode, tmp_path, timeout=120)
    assert rc != 0, f"the job succeeded\nstdout:\n{stdout}\nstderr:\n{stderr}"
    everyone = ("mismatch", "vector-loss", "interrupt-one", "stop-one", "network-differs", "class-weight-differs",
                "schedule-nan", "loss-differs")
    who = "[xpnet rank " if mode in everyone else "[xpnet rank 1/2]"
    assert who in stderr and message in stderr, stderr
    assert "finished training" not in stdout
    if mode == "raise-mid":  # not a plain error: its traceback is printed too
        assert "Traceback" in stderr


@needs_mpiexec
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, message",
    [
        ("option-one", "[xpnet rank 1/2] TypeError: shuffle must be True or False"),  # it hung
        ("compile-one", "[xpnet rank 1/2] ValueError: compile must be 'auto', True or False, got 'yes'"),  # it hung
        ("plateau-differs", "after epoch 2 the schedule set different learning rates"),  # two models, silently
        ("edit-one", "a callback set the network's weights on some processes only (rank 0: kept, rank 1: set)"),
        ("rate-one", "after epoch 1 a callback changed the optimizer on some processes only: SGD(lr=0.05, "),
        ("best-differs", "after epoch 50 the processes' best epochs differ (rank 0: 19, rank 1: 1)"),
        ("checkpoint-folder", "[xpnet rank 0/2] FileNotFoundError: checkpoint no/such/folder/run.ck: the folder"),
        # raised by a callback on one rank (not the interrupt agreed in a step): it waited at the end's barrier
        ("interrupted-one", "[xpnet rank 1/2] TrainingInterrupted: a callback stops on rank 1; aborting the MPI job"),
    ],
)
def test_what_one_process_alone_gets_wrong_ends_the_job_with_its_reason(tmp_path, mode, message):
    rc, stdout, stderr, seconds = run_mpiexec(mode, tmp_path, timeout=120)
    assert rc != 0, f"the job succeeded\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert message in stderr, stderr
    assert "finished training" not in stdout


def _one_process_sum(mode: str) -> float:
    """What ``mpi_scenarios.run_failure(mode)`` trains, in this process."""
    import mpi_scenarios as ms

    spec = ms.scenarios()["sgd_ce_batch9"]
    net = ms.pretrained_locally(0) if mode == "warm-local" else ms.build(spec)
    fit = {**spec["fit"], "epochs": 50, **ms._further_failure_modes(mode, 0, spec)}
    try:
        net.fit(spec["X"], spec["y"], **fit)
    except FloatingPointError:
        pass
    return float(np.concatenate([w.ravel() for w in ms.weights(net)]).sum())


@needs_mpiexec
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", ["seed-differs", "edit-all", "diverge", "diverge-progress", "schedule-callable", "warm-local"]
)
def test_runs_that_hung_or_trained_another_model_train_as_one_process(tmp_path, mode):
    """seed=None on one rank hung; a callback's weights were dropped; the
    NaN guard aborted the job, so the command line could not save the kept
    weights; with a progress bar on rank 0, which reports on the bar's pace,
    rank 0's guard raised epochs before the others' and the job hung; a
    callable object as lr_schedule was refused as differing between the
    processes (its repr, compared at the start, held its address); a
    warm_start after each process's own fit continued each one's optimizer
    state and running statistics, so the processes trained different models."""
    rc, stdout, stderr, seconds = run_mpiexec(mode, tmp_path, timeout=120)
    assert rc == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    sums = re.findall(r"finished training ([-+0-9.e]+?)(?=rank|\s|$)", stdout)  # the ranks' lines may run together
    assert len(sums) == 2 and sums[0] == sums[1], stdout
    assert float(sums[0]) == pytest.approx(_one_process_sum(mode), rel=1e-9, abs=1e-12)
    if mode.startswith("diverge"):
        assert stdout.count("kept the weights of epoch") == 2, stdout


@needs_mpiexec
def test_a_callable_shuffle_takes_rank_0s_orders(tmp_path):
    """A lambda failed to pickle in the start check (a traceback); a picklable
    callable ran on every rank, each drawing its own order, so some rows were
    trained twice an epoch and others not at all, silently."""
    rc, stdout, stderr, _ = run_mpiexec("shuffle-callable", tmp_path, timeout=120)
    assert rc == 0, stderr
    sums = re.findall(r"finished training (-?\d[\d.]*(?:e[+-]?\d+)?)", stdout)  # the ranks' lines may run together
    assert len(sums) == 2 and sums[0] == sums[1], stdout


# --------------------------------------------------------------------------
# In this process
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rows", range(0, 12))
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shares_are_contiguous_and_near_equal(rows, size):
    start = 7
    parts = [share(start, start + rows, r, size) for r in range(size)]
    assert parts[0][0] == start and parts[-1][1] == start + rows
    assert all(parts[r][1] == parts[r + 1][0] for r in range(size - 1))
    lengths = [hi - lo for lo, hi in parts]
    assert min(lengths) >= 0 and max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    X, y = mpi_scenarios.data()
    net = xpnet.MLP([5, 3], backend="numpy")
    with pytest.raises(ImportError, match=r"xpnet\[mpi\]"):
        net.fit(X, y, loss="cross_entropy", distributed=True)
    usable, reason, size = distributed.mpi_status()
    assert not usable and size is None and "xpnet[mpi]" in reason


def test_without_mpi4py_the_command_line_says_what_to_install_not_that_xpnet_has_a_bug(monkeypatch, capsys):
    from xpnet import cli

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    status = cli.main(["train", "--distributed", "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "xpnet[mpi]" in err and "install what the message names" in err, err
    assert "bug in xpnet" not in err


@needs_mpi
def test_mpi_status_outside_mpiexec():
    usable, reason, size = distributed.mpi_status()
    assert usable and size == 1 and "process" in reason, reason
    assert distributed.is_root() and distributed.rank() == 0 and distributed.world_size() == 1


@needs_mpi
def test_one_process_without_mpiexec_trains_as_usual(monkeypatch):
    for var in distributed._LAUNCHER_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    spec = mpi_scenarios.scenarios()["sgd_ce_batch9"]
    plain, dist = mpi_scenarios.build(spec), mpi_scenarios.build(spec)
    want = plain.fit(spec["X"], spec["y"], **spec["fit"])
    with pytest.warns(UserWarning, match="not started by mpiexec"):
        got = dist.fit(spec["X"], spec["y"], **spec["fit"], distributed=True)
    assert got.loss == want.loss
    for a, b in zip(mpi_scenarios.weights(dist), mpi_scenarios.weights(plain)):
        np.testing.assert_array_equal(a, b)


@needs_mpi
def test_compile_true_says_a_distributed_step_runs_eagerly(monkeypatch):
    """A distributed step exchanges the gradients between its loss and its
    update, so it runs eagerly: compile=True said so for an optimizer it
    cannot replay, not for this, and trained eagerly without a word."""
    for var in distributed._LAUNCHER_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    spec = mpi_scenarios.scenarios()["sgd_ce_batch9"]
    with pytest.warns(RuntimeWarning, match=r"compile=True cannot compile this step \(a distributed") as got:
        with pytest.warns(UserWarning, match="not started by mpiexec"):
            mpi_scenarios.build(spec).fit(spec["X"], spec["y"], **spec["fit"], distributed=True, compile=True)
    assert [w.filename for w in got if w.category is RuntimeWarning] == [__file__]


@pytest.mark.parametrize(("local_ranks", "n_gpus", "want"), [
    ([0, 1], 1, [0, 0]),            # a one-GPU workstation: both processes share GPU 0
    ([0, 1, 2, 3], 2, [0, 1, 0, 1]),  # round robin
    ([0, 1], 4, [0, 1]),            # fewer processes than GPUs: one each
    ([0, 1, 2], 3, [0, 1, 2]),
])
def test_gpu_of_a_process_is_its_local_rank_modulo_the_gpus(local_ranks, n_gpus, want):
    got = [distributed.gpu_index(r, n_gpus) for r in local_ranks]
    assert got == want and all(0 <= g < n_gpus for g in got)


@pytest.mark.parametrize(("local_rank", "n_gpus", "message"), [(0, 0, "n_gpus"), (-1, 2, "local_rank")])
def test_gpu_index_refuses_impossible_input(local_rank, n_gpus, message):
    with pytest.raises(ValueError, match=message):
        distributed.gpu_index(local_rank, n_gpus)


def test_gpu_note_says_which_ranks_share_which_gpu():
    note = distributed.gpu_note([("a", 0, 1), ("a", 0, 1), ("a", 0, 1)])
    assert note == "3 processes on 1 GPU (shared, GPU = local rank % GPUs per machine): cuda:0 <- ranks 0, 1, 2"
    note = distributed.gpu_note([("a", 0, 2), ("a", 1, 2)])
    assert note == "2 processes on 2 GPUs (one GPU each): cuda:0 <- rank 0; cuda:1 <- rank 1"
    note = distributed.gpu_note([("a", 0, 1), ("b", 0, 2), ("a", 0, 1), ("b", 1, 2), ("c", None, 0)])
    assert note.startswith("5 processes on 3 GPUs (shared")
    assert "a cuda:0 <- ranks 0, 2; b cuda:0 <- rank 1; b cuda:1 <- rank 3; no GPU seen by rank 4" in note
    assert distributed.gpu_note([("a", None, 0)] * 2) is None  # CPU backends: nothing to say


@needs_mpi
def test_cli_prints_the_gpu_mapping_of_distributed_training(monkeypatch, capsys):
    """`xpnet train --distributed` takes each process's device from
    assign_gpus and rank 0 prints its note (a pretend mapping here)."""
    from xpnet import cli

    for var in distributed._LAUNCHER_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    asked = []
    monkeypatch.setattr(distributed, "assign_gpus", lambda name: asked.append(name) or (None, "2 processes on 1 GPU"))
    with pytest.warns(UserWarning, match="not started by mpiexec"):
        assert cli.main(["train", "--distributed", "--backend", "numpy", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert asked == ["numpy"] and out[1] == "note: 2 processes on 1 GPU", out
    asked.clear()
    with pytest.warns(UserWarning, match="not started by mpiexec"):
        cli.main(["train", "--distributed", "--backend", "numpy", "--device", "cpu", "--epochs", "1", "--quiet"])
    assert asked == [] and "note:" not in capsys.readouterr().out  # --device is the user's choice
    monkeypatch.setenv("XPNET_BACKEND", "numpy:cpu")  # so is a device in the variable auto reads
    with pytest.warns(UserWarning, match="not started by mpiexec"):
        assert cli.main(["train", "--distributed", "--epochs", "1", "--quiet"]) == 0
    assert asked == [] and "note:" not in capsys.readouterr().out
    monkeypatch.setenv("XPNET_BACKEND", "numpy:cuda")  # a bad one is a bad option value, as without --distributed
    for distributed_too in ([], ["--distributed"]):
        assert cli.main(["train", *distributed_too, "--epochs", "1", "--quiet"]) == 2
        assert "XPNET_BACKEND='numpy:cuda'" in capsys.readouterr().err


ASSIGN_SCRIPT = """
import json
from xpnet import distributed
distributed.gpu_count = lambda backend: 2  # a pretend machine with 2 GPUs
device, note = distributed.assign_gpus("cupy")
with open(f"rank{distributed.rank()}.json", "w") as f:  # the launcher may interleave stdout lines
    json.dump([distributed.rank(), device, note], f)
"""


@needs_mpiexec
def test_three_processes_share_two_gpus(tmp_path):
    rc, stdout, stderr, _ = run_under_mpiexec(["-c", ASSIGN_SCRIPT], tmp_path, n=3)
    assert rc == 0, stderr
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    assert [device for _, device, _ in rows] == ["cuda:0", "cuda:1", "cuda:0"]
    assert rows[0][2] == ("3 processes on 2 GPUs (shared, GPU = local rank % GPUs per machine): "
                          "cuda:0 <- ranks 0, 2; cuda:1 <- rank 1")
    assert rows[1][2] is None and rows[2][2] is None  # only rank 0 says it


class TwinComm:
    """A fake communicator of ``size`` processes in which every other process
    contributes exactly what this one does: Allreduce multiplies by ``size``."""

    def __init__(self, rank: int = 0, size: int = 2) -> None:
        self.rank, self.size, self.calls = rank, size, 0

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Allreduce(self, sendbuf, recvbuf):
        assert isinstance(recvbuf, np.ndarray) and recvbuf.flags.c_contiguous and recvbuf.flags.writeable
        self.calls += 1
        recvbuf *= self.size

    def Bcast(self, buf, root=0):
        self.calls += 1

    def bcast(self, obj, root=0):
        return obj

    def Barrier(self):
        pass


@needs_mpi
@pytest.mark.parametrize("loss", ["mse", "sse", "cross_entropy"])
def test_one_packed_allreduce_through_the_host(backend, loss, monkeypatch):
    """The host path (NumPy, torch on the CPU, and CuPy without CUDA-aware
    MPI, here array_api_strict's device1 stands in for a GPU): one buffer per
    step, scaled for mean losses, unpacked onto the model's device."""
    monkeypatch.setenv("XPNET_MPI_CUDA_AWARE", "0")  # the host path even where the MPI is CUDA-aware
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(10, 4)), rng.integers(0, 3, 10)
    y = labels if loss == "cross_entropy" else rng.normal(size=(10, 3))
    net = xpnet.MLP([4, 6, 3], "tanh", "softmax" if loss == "cross_entropy" else "identity",
                    backend=backend, dtype="float64", seed=0)  # fmt: skip
    loss_obj = xpnet.get_loss(loss)
    Xd, Td = net._inputs(X, y, loss_obj)
    comm = TwinComm(rank=1, size=2)
    dp = DataParallel(comm)
    lo, hi = dp.share(0, 10)
    assert (lo, hi) == (5, 10)
    params = net._params()
    value, grads, _ = dp.loss_and_grads(net, params, Xd[lo:hi, ...], Td[lo:hi, ...], xpnet.get_loss(loss), 10)
    assert comm.calls == 1
    # The twin doubles this share: for a mean loss, the mean over these 5 rows.
    factor = 2.0 if loss == "sse" else 1.0
    want_value = net.evaluate(X[lo:hi], y[lo:hi], loss) * factor
    want = [g for pair in net.gradients(X[lo:hi], y[lo:hi], loss) for g in pair]
    assert_on(value, backend, "float64", ())
    np.testing.assert_allclose(host(value), want_value, rtol=1e-12)
    for g, w in zip(grads, want):
        assert_on(g, backend, "float64", w.shape)
        np.testing.assert_allclose(host(g), factor * host(w), rtol=1e-12, atol=1e-15)


class _WideValueMSE(type(xpnet.get_loss("mse"))):
    """A loss that computes its value in float64 whatever the outputs' dtype,
    as a custom loss may for accuracy: one process trains with it."""

    def _value(self, xp, t, y):
        return xp.astype(super()._value(xp, t, y), xp.float64)


@needs_mpi
@pytest.mark.parametrize("rows", [(0, 5), (5, 5)])
def test_a_loss_value_of_another_dtype_keeps_the_models_dtype_in_the_buffer(backend, monkeypatch, rows):
    """A float64 loss value packed with float32 gradients promoted the whole
    buffer: the update then got float64 gradients and the job aborted with
    "SGD.step returned ... float64", where one process trains; and an empty
    share's buffer (the model's dtype) was half the others' bytes."""
    monkeypatch.setenv("XPNET_MPI_CUDA_AWARE", "0")  # TwinComm sums host buffers only
    net = xpnet.MLP([4, 3, 2], backend=backend, dtype="float32", seed=0)
    X, y = np.ones((5, 4), dtype=np.float32), np.ones((5, 2), dtype=np.float32)
    Xd, Td = net._inputs(X, y, xpnet.get_loss("mse"))
    dp = DataParallel(TwinComm(rank=0, size=2))
    lo, hi = rows
    value, grads, _ = dp.loss_and_grads(net, net._params(), Xd[lo:hi, ...], Td[lo:hi, ...], _WideValueMSE(), 5)
    assert_on(value, backend, "float32", ())
    for g, p in zip(grads, net._params()):
        assert_on(g, backend, "float32", p.shape)


@needs_mpi
def test_an_empty_share_contributes_zeros(backend, monkeypatch):
    monkeypatch.setenv("XPNET_MPI_CUDA_AWARE", "0")  # TwinComm sums host buffers only
    net = xpnet.MLP([4, 3, 2], backend=backend, dtype="float64", seed=0)
    X, y = np.ones((1, 4)), np.ones((1, 2))
    Xd, Td = net._inputs(X, y, xpnet.get_loss("mse"))
    dp = DataParallel(TwinComm(rank=1, size=2))
    lo, hi = dp.share(0, 1)
    assert lo == hi
    value, grads, _ = dp.loss_and_grads(net, net._params(), Xd[lo:hi, ...], Td[lo:hi, ...], xpnet.get_loss("mse"), 1)
    assert_on(value, backend, "float64", ())
    assert float(host(value)) == 0.0
    for g, p in zip(grads, net._params()):
        assert_on(g, backend, "float64", p.shape)
        assert not np.any(host(g))


@needs_mpi
def test_start_broadcast_keeps_weights_exact(backend):
    """Parameters, buffers and the optimizer state (its lists of arrays, of
    any dtype, and its plain numbers) come back from rank 0 unchanged."""
    net = xpnet.Network([xpnet.Dense(4, 3), xpnet.BatchNorm(3), xpnet.Dense(3, 2)], backend=backend, seed=0)
    xp = net.backend.xp
    state = {"m": [p + 1 for p in net._params()], "t": 3, "counts": [xp.ones((2,), dtype=xp.int64)]}
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    comm = TwinComm(rank=0, size=2)
    dp = DataParallel(comm)
    params, buffers, got_state = dp.broadcast_start(net.backend, net._params(), net._buffers(), state, rng)
    assert rng.bit_generator.state == before
    assert comm.calls == 2  # one Bcast per dtype
    assert list(got_state) == ["m", "t", "counts"] and got_state["t"] == 3
    for got, want in zip([*params, *buffers, *got_state["m"]], [*net._params(), *net._buffers(), *state["m"]]):
        assert_on(got, backend, "float32", want.shape)
        np.testing.assert_array_equal(host(got), host(want))
    np.testing.assert_array_equal(host(got_state["counts"][0]), [1, 1])
    assert "int64" in str(got_state["counts"][0].dtype)


@needs_mpiexec
def test_cli_failure_on_one_rank_before_fit_ends_the_job(tmp_path):
    """A process that fails outside ``fit`` (here a plugin that fails on rank
    1 only, as a data file missing on one node would) ends the whole job with
    its message: rank 0 would otherwise wait in its first collective forever."""
    (tmp_path / "rank_one_fails.py").write_text(
        "import os\nif os.environ.get('PMI_RANK', os.environ.get('OMPI_COMM_WORLD_RANK')) == '1':\n"
        "    raise RuntimeError('this plugin fails on rank 1')\n"
    )  # fmt: skip
    args = ["-m", "xpnet", "train", "--backend", "numpy", "--epochs", "3", "--quiet", "--distributed",
            "--plugin", "rank_one_fails"]  # fmt: skip
    rc, stdout, stderr, seconds = run_under_mpiexec(args, tmp_path, timeout=60)
    assert rc != 0 and "this plugin fails on rank 1" in stderr, f"rc {rc}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert seconds < 45, seconds


@needs_mpiexec
def test_cli_train_distributed_equals_one_process(tmp_path):
    """`mpiexec -n 2 xpnet train --distributed`: one report (rank 0's), one
    saved model, equal to a one-process run to rounding."""
    common = ["train", "--backend", "numpy", "--dtype", "float64", "--epochs", "3", "--quiet", "--batch-size", "33"]
    ref = tmp_path / "ref.safetensors"
    single = subprocess.run([sys.executable, "-m", "xpnet", *common, "--save", str(ref)], capture_output=True,
                            text=True, timeout=TIMEOUT, env=child_env(REPO))
    assert single.returncode == 0, single.stderr
    rc, stdout, stderr, _ = run_under_mpiexec(["-m", "xpnet", *common, "--distributed", "--save", "dist.safetensors"],
                                              tmp_path)
    assert rc == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert stdout.count("test accuracy") == 1 and stdout.count("backend:") == 1
    import xpnet

    a, b = xpnet.load(ref, backend="numpy"), xpnet.load(tmp_path / "dist.safetensors", backend="numpy")
    for p, q in zip(a._params(), b._params()):
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-12)


_SLOW_SAVE = """
import sys, time
import xpnet.network
from xpnet.cli import main

real_save = xpnet.network.Network.save

def slow_save(self, path):  # a large model or a slow disk
    time.sleep(2.0)
    real_save(self, path)

xpnet.network.Network.save = slow_save
sys.exit(main(sys.argv[1:]))
"""


@needs_mpiexec
@pytest.mark.slow
def test_cli_distributed_divergence_saves_the_kept_weights_however_long_the_save(tmp_path):
    """Rank 1 left at once and aborted the job 0.5 s later, killing rank 0
    while it wrote the kept weights: the message promised a file that was
    never written."""
    script = tmp_path / "slow_save.py"
    script.write_text(_SLOW_SAVE)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 100
    rows = "".join(f"{a},{b},{c},{(a + b + c) * 1e3}\n" for a, b, c in X)
    (tmp_path / "reg.csv").write_text("a,b,c,y\n" + rows)
    args = [str(script), "train", "--data", "reg.csv", "--epochs", "50", "--optimizer", "sgd", "--lr", "1",
            "--distributed", "--save", "kept.safetensors"]  # fmt: skip
    rc, stdout, stderr, _ = run_under_mpiexec(args, tmp_path, timeout=120)
    assert rc != 0 and "saved them to kept.safetensors" in stderr, stderr
    import xpnet

    assert xpnet.load(tmp_path / "kept.safetensors", backend="numpy").info["epochs"] >= 1


def test_share_refuses_what_is_not_a_rank_of_a_split():
    from xpnet.distributed import share

    assert share(0, 10, 2, 3) == (7, 10) and share(0, 2, 2, 3) == (2, 2)  # an empty share at the end
    for args in [(0, 10, 3, 3), (10, 0, 0, 2), (0, 10, 0, 0), (0, 10, -1, 2)]:
        with pytest.raises(ValueError, match="expected 0 <= start <= stop"):
            share(*args)
    with pytest.raises(TypeError, match="rank must be an int"):
        share(0, 10, 1.0, 2)
