"""Data-parallel training on MPI (deepff.distributed) proven equal to one process.

As PyTorch's DDP tests do: real ``mpiexec -n K`` runs (K = 2 and 3) train small
float64 problems; afterwards every rank holds exactly the same weights (bit for
bit), and they equal those of one process with the same global batch to 1e-6
relative. The cases (tests/_mpi_cases.py) cover SGD with momentum, Adam, AdamW,
L-BFGS, dropout, batch normalisation (also with an empty share and with a
one-row last batch), sample weights, a regression with penalty, clipping and
validation data, and N not divisible by K or by the batch size. The command
line is run under mpiexec too: same results as one process, one model file,
resume on another number of ranks after SIGKILL, a failing rank ending the job,
and the refusals.

The MPI processes run with DEEPFF_NUMBA=0 (the numpy engine; the compiled
kernels only cost start-up time here). About 60-90 s in all on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _needs import require, require_module

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

import _mpi_cases  # noqa: E402

MPI = require_module("mpi4py.MPI", area="MPI")
require(shutil.which("mpiexec") is not None, area="MPI", reason="no mpiexec on PATH (pip install mpich)")

from deepff import distributed  # noqa: E402
from deepff.io import load, load_checkpoint  # noqa: E402


def _env(**extra):
    env = dict(os.environ, DEEPFF_NUMBA="0", PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_PROCID"):
        env.pop(name, None)      # the test itself may run under a launcher
    env.update(extra)
    return env


def mpiexec(k, *argv, cwd, timeout=120, env=None):
    return subprocess.run(["mpiexec", "-n", str(k), *map(str, argv)], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case trained under mpiexec -n 2 and -n 3: {K: {case: [npz of rank 0, 1, ...]}}."""
    out = {}
    for k in (2, 3):
        d = tmp_path_factory.mktemp(f"k{k}")
        proc = mpiexec(k, sys.executable, TESTS / "_mpi_cases.py", d, cwd=d)
        assert proc.returncode == 0, proc.stderr
        out[k] = {name: [np.load(d / f"{name}.rank{r}.npz") for r in range(k)] for name in _mpi_cases.CASES}
    return out


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("name", [c for c in _mpi_cases.CASES if c != "float32_adam"])
def test_k_ranks_train_as_one_process(runs, name, k):
    ranks = runs[k][name]
    for r in ranks[1:]:                       # the same bits everywhere, without broadcasting weights
        assert np.array_equal(r["theta"], ranks[0]["theta"])
    # one process with the same global batch; dropout masks are keyed by (seed, epoch, global row),
    # which a one-rank communicator uses too (the plain single-process stream is another one)
    comm = MPI.COMM_SELF if name == "dropout" else None
    theta, records = _mpi_cases.train(name, comm)
    assert theta.dtype == np.float64
    assert rel(ranks[0]["theta"], theta) < 1e-6
    np.testing.assert_allclose(ranks[0]["loss"], [r["loss"] for r in records], rtol=1e-9)
    if name == "regression":
        np.testing.assert_allclose(ranks[0]["val_loss"], [r["val_loss"] for r in records], rtol=1e-9)
    # and training moved the weights (the comparison is not one of two untouched initialisations)
    net, X, _, _ = _mpi_cases.case(name)
    start = net.build(X.shape[1]).get_weights()
    assert rel(theta, start) > 1e-3


def test_float32_ranks_agree_with_one_process_to_rounding(runs):
    """float32: bit-identical across ranks; equal to one process up to float32 rounding of the sums."""
    for k in (2, 3):
        ranks = runs[k]["float32_adam"]
        assert all(np.array_equal(r["theta"], ranks[0]["theta"]) for r in ranks)
        theta, _ = _mpi_cases.train("float32_adam")
        assert ranks[0]["theta"].dtype == np.float32
        assert rel(ranks[0]["theta"], theta) < 1e-4


def test_dropout_masks_do_not_depend_on_the_ranks_and_do_drop():
    """A one-rank communicator gives the K-rank result (above); dropout changes it, at rate p."""
    with_dropout, _ = _mpi_cases.train("dropout", MPI.COMM_SELF)
    net, X, y, fit = _mpi_cases.case("dropout")
    for layer in net.layers:
        layer.dropout = 0.0
    net.fit(X, y, **fit)
    assert rel(with_dropout, net.get_weights()) > 1e-3
    u = distributed.keyed_uniform(7, np.arange(1000), 300, np.dtype(np.float64))
    assert 0 <= u.min() and u.max() < 1 and abs((u < 0.3).mean() - 0.3) < 0.01
    # a row's numbers depend on its global index only, not on which rows share its batch
    v = distributed.keyed_uniform(7, np.array([999, 3]), 300, np.dtype(np.float64))
    assert np.array_equal(v[0], u[999]) and np.array_equal(v[1], u[3])
    assert not np.array_equal(u[0], u[1])


def test_shares_cover_the_batch_and_differ_by_one_row_at_most():
    for m in (1, 2, 7, 8, 33):
        for k in (1, 2, 3, 5):
            bounds = [distributed.shard_bounds(m, k, r) for r in range(k)]
            assert bounds[0][0] == 0 and bounds[-1][1] == m
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_the_launcher_environment_gives_the_world_size():
    assert distributed.world_size_from_env({}) == 1
    assert distributed.world_size_from_env({"PMI_SIZE": "4"}) == 4
    assert distributed.world_size_from_env({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert distributed.world_size_from_env({"SLURM_NTASKS": "8"}) == 1        # an allocation, not a task
    assert distributed.world_size_from_env({"SLURM_NTASKS": "8", "SLURM_PROCID": "2"}) == 8


# ---------------------------------------------------------------- refusals and failures
def test_a_rank_that_raises_ends_the_job_quickly(tmp_path):
    started = time.monotonic()
    proc = mpiexec(2, sys.executable, TESTS / "_mpi_cases.py", tmp_path, "fail", cwd=tmp_path, timeout=30)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    lines = [line for line in proc.stderr.splitlines() if line.startswith("deepff:")]
    assert lines == ["deepff: rank 1 of 2 failed: a failure on rank 1 only; ending all 2 ranks"]


def test_ranks_with_different_data_are_refused(tmp_path):
    proc = mpiexec(2, sys.executable, TESTS / "_mpi_cases.py", tmp_path, "disagree", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("refused")]
    assert "rank 1 of 2 disagrees with rank 0 on the data (shape and first rows)" in line


def test_more_ranks_than_rows_per_batch_are_refused(tmp_path):
    proc = mpiexec(3, sys.executable, TESTS / "_mpi_cases.py", tmp_path, "small_batch", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "batch_size 2 gives 2 rows per step, fewer than the 3 ranks" in proc.stderr


def test_a_divergence_stops_every_rank_together_without_an_abort(tmp_path):
    proc = mpiexec(2, sys.executable, TESTS / "_mpi_cases.py", tmp_path, "diverge", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith(("refused", "deepff"))]
    assert line.startswith("refused: training diverged")


def test_a_mistake_every_rank_makes_is_said_once(tmp_path):
    proc = mpiexec(2, sys.executable, "-m", "deepff.cli", "train", "--dataset", "missing.csv", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert [x for x in proc.stderr.splitlines() if x.startswith("deepff")] == \
        ["deepff: error: data file not found: missing.csv"]


def test_without_mpi4py_the_command_names_the_extra(tmp_path):
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "mpi4py.py").write_text("raise ImportError('No module named mpi4py')\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(hidden), str(ROOT / "src")]))
    proc = mpiexec(2, sys.executable, "-m", "deepff.cli", "train", "--dataset", "digits", cwd=tmp_path, env=env,
                   timeout=60)
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if x.startswith("deepff")]
    assert len(lines) == 1 and "pip install 'deepff[mpi]'" in lines[0] and "2 started by an MPI launcher" in lines[0]
    assert not list(tmp_path.glob("*.npz"))


# ------------------------------------------------------------------------ the command
def _train(k, *argv, cwd, timeout=120):
    base = [sys.executable, "-m", "deepff.cli", "train", "--dataset", "digits", "--dtype", "float64",
            "--hidden", "32", "--seed", "1"]
    if k == 1:
        return subprocess.run([*base, *map(str, argv)], cwd=cwd, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
    return mpiexec(k, *base, *argv, cwd=cwd, timeout=timeout)


def _without_timings(text):
    return [line.split("  ")[:-1] if line.startswith("epoch ") else line for line in text.splitlines()
            if not line.startswith("training time")]


def test_the_command_on_two_ranks_prints_and_writes_as_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    argv = ["--epochs", "3", "--batch-size", "50", "--output", "m.npz", "--checkpoint", "c.npz", "--history", "h.csv"]
    p1, p2 = _train(1, *argv, cwd=one), _train(2, *argv, cwd=two)
    assert p1.returncode == 0 and p2.returncode == 0, p2.stderr
    assert _without_timings(p2.stdout) == _without_timings(p1.stdout)   # rank 0 alone prints
    assert "test accuracy:" in p2.stdout and p2.stdout.count("model saved to") == 1
    assert sorted(p.name for p in two.iterdir()) == ["c.npz", "h.csv", "m.npz"]
    assert rel(load(two / "m.npz").get_weights(), load(one / "m.npz").get_weights()) < 1e-9


def _children(pid):
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _rank_pids(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in _children(p):
            try:
                cmd = Path(f"/proc/{c}/cmdline").read_bytes()
            except OSError:
                continue
            (found if b"deepff.cli" in cmd else todo).append(c)
    return found


def test_a_run_killed_on_two_ranks_resumes_on_one_or_two_to_the_same_weights(tmp_path):
    argv = ["--epochs", "6", "--batch-size", "8"]
    whole = _train(1, *argv, "--output", "whole.npz", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    job = subprocess.Popen(["mpiexec", "-n", "2", sys.executable, "-m", "deepff.cli", "train", "--dataset", "digits",
                            "--dtype", "float64", "--hidden", "32", "--seed", "1", *argv,
                            "--checkpoint", "c.npz", "--output", "killed.npz"],
                           cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and job.poll() is None:
        if (tmp_path / "c.npz").exists() and load_checkpoint(tmp_path / "c.npz")[1]["epoch"] >= 2:
            break
        time.sleep(0.02)
    assert job.poll() is None, "the run ended before its second checkpoint could be interrupted"
    os.kill(_rank_pids(job.pid)[-1], signal.SIGKILL)          # one rank dies: the job must end, not hang
    job.communicate(timeout=30)
    assert job.returncode != 0 and not (tmp_path / "killed.npz").exists()
    done = load_checkpoint(tmp_path / "c.npz")[1]["epoch"]     # intact, readable
    assert 2 <= done < 6
    for k in (1, 2):
        p = _train(k, "--resume", "c.npz", "--output", f"resumed{k}.npz", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert rel(load(tmp_path / f"resumed{k}.npz").get_weights(), load(tmp_path / "whole.npz").get_weights()) \
            < 1e-9


def test_the_distributed_benchmark_runs_in_quick_mode(tmp_path):
    out = tmp_path / "dist.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_distributed.py"), "--quick", "--json",
                           str(out)], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    report = json.loads(out.read_text())
    assert [(m["workload"], m["ranks"]) for m in report["measured"]] == [("small", 1), ("small", 2)]
    one, two = report["measured"]
    assert one["allreduce_s"] == 0 and two["allreduce_s"] > 0 and one["compute_s"] > 0 and two["epoch_s"] > 0
    assert {r["K"] for r in report["model"]} == {2, 4, 8, 16, 32, 64}
    assert "| workload | network | K |" in proc.stdout
