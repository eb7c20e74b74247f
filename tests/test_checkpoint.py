"""Checkpoints: resuming after SIGKILL or Ctrl-C is bit-identical to never stopping."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import deepff
import deepff.cli as cli
import deepff.cli.train as cli_train
from deepff import Callback, ModelFileError, Network, Trainer
from deepff.io import load_checkpoint, save_checkpoint

SUBPROCESS_TIMEOUT = 180
POLL_TIMEOUT = 120

# ------------------------------------------------------------- helpers

def _same_state(a, b, path="state"):
    """Deep equality of two trainer states, arrays compared bit for bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (path, sorted(a), sorted(b))
        for k in a:
            _same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), path
    else:
        assert a == b and type(a) is type(b), (path, a, b)


def _without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


# ------------------------------------------------- CLI: SIGKILL and resume
CLI_OPTIMIZERS = {
    "sgd-momentum": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "adam": {"name": "adam", "lr": 0.002},
}
CLI_EPOCHS = 12


def _write_config(folder, optimizer):
    config = {
        "layers": [
            {"layer_type": "input", "n_features": 64},
            {"layer_type": "fullyconn", "n_neurons": 64, "activation": "relu", "dropout": 0.2},
            {"layer_type": "output", "n_neurons": 10, "activation": "softmax", "loss_type": "neg_log_likelihood"},
        ],
        "training": {"optimizer": optimizer, "batch_size": 32},
    }
    path = folder / "cfg.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    return path


def _train_cmd(cfg, *extra):
    return [sys.executable, "-m", "deepff.cli", "train", "--config", str(cfg), "--dataset", "digits",
            "--epochs", str(CLI_EPOCHS), "--seed", "0", "--quiet", "--batch-size", "8", *extra]


def _checkpoint_epoch(path):
    try:
        return load_checkpoint(path)[1]["epoch"]
    except ModelFileError:  # not written yet
        return -1


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=SUBPROCESS_TIMEOUT)


def _kill_after_second_checkpoint(cfg, ck, output, attempts=3):
    """Train with ``--checkpoint ck``, SIGKILL the run once ``ck`` reaches epoch 2; return ck's epoch.

    A run that a busy machine lets finish before the kill lands is started again.
    """
    cmd, cwd = _train_cmd(cfg, "--checkpoint", str(ck), "--output", str(output)), ck.parent
    for _ in range(attempts):
        for path in (ck, output):
            if path.exists():
                path.unlink()
        victim = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + POLL_TIMEOUT
            while _checkpoint_epoch(ck) < 2 and victim.poll() is None:
                assert time.monotonic() < deadline, "no second checkpoint in time"
                time.sleep(0.002)
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
            _, err = victim.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            _stop(victim)
        assert victim.returncode in (0, -signal.SIGKILL), err
        killed_at = _checkpoint_epoch(ck)
        if victim.returncode == -signal.SIGKILL and 2 <= killed_at < CLI_EPOCHS:
            assert not output.exists()
            return killed_at
    pytest.fail(f"the run always ended before the kill landed ({attempts} attempts)")


@pytest.mark.parametrize("optimizer", sorted(CLI_OPTIMIZERS))
def test_sigkill_then_resume_is_bit_identical(tmp_path, optimizer):
    cfg = _write_config(tmp_path, CLI_OPTIMIZERS[optimizer])
    ck, full_ck = tmp_path / "ck.npz", tmp_path / "full-ck.npz"
    full = subprocess.Popen(_train_cmd(cfg, "--checkpoint", str(full_ck), "--output", str(tmp_path / "out.npz")),
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _kill_after_second_checkpoint(cfg, ck, tmp_path / "killed.npz")
        _, err = full.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert full.returncode == 0, err
    finally:
        _stop(full)

    resumed = subprocess.run(
        _train_cmd(cfg, "--resume", str(ck), "--checkpoint", str(ck), "--output", str(tmp_path / "resumed.npz")),
        cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr

    expected = deepff.load(tmp_path / "out.npz").params.theta
    got = deepff.load(tmp_path / "resumed.npz").params.theta
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    # the whole trainer state agrees too: optimizer moments, generators, history
    _, state_full, extra = load_checkpoint(full_ck)
    _, state_resumed, _ = load_checkpoint(ck)
    assert state_resumed["epoch"] == CLI_EPOCHS
    state_full.pop("history")
    history = state_resumed.pop("history")
    assert len(history) == CLI_EPOCHS
    _same_state(state_resumed, state_full)
    assert extra["dataset"] == "digits"
    assert extra["training"]["optimizer"]["name"] == CLI_OPTIMIZERS[optimizer]["name"]


# ---------------------------------------------------- CLI: Ctrl-C (in process)
def _run_cli(args, capsys):
    rc = cli.main(args)
    out = capsys.readouterr()
    return rc, out


def _interrupt_at(monkeypatch, step):
    """Send a real SIGINT to this process right after optimizer step ``step``."""
    original = cli_train._Reporter.on_batch_end

    def on_batch_end(self, trainer, current, batch_size, loss):
        original(self, trainer, current, batch_size, loss)
        handler = signal.getsignal(signal.SIGINT)
        if current == step and type(getattr(handler, "__self__", None)).__name__ == "_InterruptFlag":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli_train._Reporter, "on_batch_end", on_batch_end)
    monkeypatch.setattr(cli_train._Reporter, "between_steps", True)   # called after its step, not after a run


def test_an_interrupted_run_keeps_the_model_already_at_its_output(tmp_path, capsys, monkeypatch):
    base = ["train", "--hidden", "8", "--epochs", "3", "--seed", "0", "--quiet"]
    good = tmp_path / "good.npz"
    assert _run_cli(base + ["--output", str(good)], capsys)[0] == 0
    before = good.read_bytes()
    _interrupt_at(monkeypatch, 10)
    rc, out = _run_cli(base + ["--checkpoint", str(tmp_path / "ck.npz"), "--output", str(good)], capsys)
    monkeypatch.undo()
    assert rc == 130 and good.read_bytes() == before
    assert "replacing existing model file" not in out.err     # it was not replaced, so nothing says so
    partial = tmp_path / "good.interrupted.npz"
    assert f"{good} is kept; the interrupted run's model goes to {partial}" in out.err
    assert deepff.load(partial).metadata["results"]
    ck = str(tmp_path / "ck.npz")
    # the command to resume writes the model where this run meant to (not to the default name)
    assert f"resume with --resume {ck} --checkpoint {ck} --output {good}\n" in out.err
    # a file of the user's at NAME.interrupted.npz: the next free name takes the model
    partial.write_bytes(b"the user's own file")
    _interrupt_at(monkeypatch, 10)
    rc, out = _run_cli(base + ["--output", str(good)], capsys)
    monkeypatch.undo()
    second = tmp_path / "good.interrupted-2.npz"
    assert rc == 130 and good.read_bytes() == before and partial.read_bytes() == b"the user's own file"
    assert f"the interrupted run's model goes to {second}" in out.err and deepff.load(second).n_features == 64
    # and an uninterrupted run says, when it does, that it replaces the model
    rc, out = _run_cli(base + ["--output", str(good)], capsys)
    assert rc == 0 and f"replacing existing model file {good}" in out.err   # (the same run: the same bytes)


# digits: 1437 training samples, batch 32 -> 45 steps per epoch
@pytest.mark.parametrize(("step", "saved_epoch"), [(20, 0), (90, 2), (100, 2)],
                         ids=["first-epoch", "at-epoch-end", "mid-epoch"])
def test_ctrl_c_then_resume_is_bit_identical(tmp_path, capsys, monkeypatch, step, saved_epoch):
    cfg = _write_config(tmp_path, CLI_OPTIMIZERS["adam"])
    base = ["train", "--config", str(cfg), "--dataset", "digits", "--epochs", "4", "--seed", "0", "--quiet"]
    ck = str(tmp_path / "ck.npz")
    rc, _ = _run_cli(base + ["--output", str(tmp_path / "full.npz")], capsys)
    assert rc == 0
    _interrupt_at(monkeypatch, step)
    rc, out = _run_cli(base + ["--checkpoint", ck, "--output", str(tmp_path / "stopped.npz")], capsys)
    monkeypatch.undo()
    assert rc == 130
    assert (tmp_path / "stopped.npz").exists()  # the model is still saved
    state = load_checkpoint(ck)[1]
    assert state["epoch"] == saved_epoch  # complete epochs
    assert state["step"] == step  # the checkpoint is the exact stop point
    assert "interrupted" in out.err and "--resume" in out.err
    rc, out = _run_cli(base + ["--resume", ck, "--checkpoint", ck, "--output", str(tmp_path / "resumed.npz")],
                       capsys)
    assert rc == 0, out.err
    assert np.array_equal(deepff.load(tmp_path / "resumed.npz").params.theta,
                          deepff.load(tmp_path / "full.npz").params.theta)


def test_resume_with_another_optimizer_is_a_one_line_error(tmp_path, capsys):
    cfg = _write_config(tmp_path, CLI_OPTIMIZERS["sgd-momentum"])
    ck = str(tmp_path / "ck.npz")
    base = ["train", "--config", str(cfg), "--dataset", "digits", "--seed", "0", "--quiet"]
    rc, _ = _run_cli(base + ["--epochs", "1", "--checkpoint", ck, "--output", str(tmp_path / "a.npz")], capsys)
    assert rc == 0
    rc, out = _run_cli(base + ["--epochs", "2", "--optimizer", "adam", "--resume", ck,
                               "--output", str(tmp_path / "b.npz")], capsys)
    assert rc == 2
    assert len(out.err.strip().splitlines()) == 1
    assert "'sgd'" in out.err and "'adam'" in out.err


# ------------------------------------------- CLI: a resume continues its own run
def _one_error(rc, out):
    lines = out.err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in out.err, out.err
    assert out.out == ""  # refused before any training (and before any output)
    return lines[0]


@pytest.fixture(scope="module")
def seed5(tmp_path_factory):
    """A 2-epoch checkpoint of an 8-unit digits run with seed 5, and a 3-epoch run it should continue to."""
    folder = tmp_path_factory.mktemp("seed5")
    base = ["train", "--hidden", "8", "--seed", "5", "--quiet"]
    assert cli.main(base + ["--epochs", "2", "--checkpoint", str(folder / "ck.npz"),
                            "--output", str(folder / "part.npz")]) == 0
    assert cli.main(base + ["--epochs", "3", "--output", str(folder / "full.npz")]) == 0
    return folder


def test_resume_keeps_the_checkpoints_seed_and_split(seed5, tmp_path, capsys):
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "3", "--quiet",
                        "--output", str(tmp_path / "resumed.npz")], capsys)
    assert rc == 0, out.err
    assert np.array_equal(deepff.load(tmp_path / "resumed.npz").params.theta,
                          deepff.load(seed5 / "full.npz").params.theta)
    assert deepff.load(tmp_path / "resumed.npz").metadata["seed"] == 5


@pytest.mark.parametrize(("flags", "expected"), [
    (["--seed", "0"], "has seed 5, this run 0"),
    (["--test-fraction", "0.3"], "has test_fraction 0.2, this run 0.3"),
    (["--hidden", "16"], "--hidden [16] contradicts"),
    (["--dtype", "float64"], "--dtype float64 contradicts"),
    (["--loss", "mse"], "--loss mse contradicts"),
    (["--activation", "tanh"], "--activation tanh contradicts"),
    (["--epochs", "1"], "--epochs 1: the checkpoint"),
], ids=["seed", "test-fraction", "hidden", "dtype", "loss", "activation", "epochs-fewer"])
def test_resume_refuses_what_contradicts_the_checkpoint(seed5, tmp_path, capsys, flags, expected):
    argv = ["train", "--resume", str(seed5 / "ck.npz"), "--quiet", "--output", str(tmp_path / "r.npz")]
    rc, out = _run_cli(argv + (flags if "--epochs" in flags else flags + ["--epochs", "3"]), capsys)
    assert expected in _one_error(rc, out)
    assert not (tmp_path / "r.npz").exists()


def test_resume_refuses_other_data(seed5, tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(size=(100, 64)).round(3), rng.integers(0, 3, 100)]
    np.savetxt(tmp_path / "w64.csv", rows, delimiter=",", fmt="%g",
               header=",".join([f"f{i}" for i in range(64)] + ["label"]), comments="")
    argv = ["train", "--epochs", "3", "--quiet", "--output", str(tmp_path / "r.npz")]
    rc, out = _run_cli(argv + ["--resume", str(seed5 / "ck.npz"), "--dataset", str(tmp_path / "w64.csv")],
                       capsys)
    assert f"was trained on digits, not {tmp_path / 'w64.csv'}" in _one_error(rc, out)

    # a checkpoint of a CSV run resumes on that CSV, and refuses it once its rows have changed
    ck = str(tmp_path / "ck.npz")
    rc, out = _run_cli(["train", "--dataset", str(tmp_path / "w64.csv"), "--hidden", "4", "--epochs", "1",
                        "--quiet", "--checkpoint", ck, "--output", str(tmp_path / "a.npz")], capsys)
    assert rc == 0, out.err
    rc, out = _run_cli(argv + ["--resume", ck], capsys)  # no --dataset: the checkpoint's file
    assert rc == 0, out.err
    np.savetxt(tmp_path / "w64.csv", rows[::-1], delimiter=",", fmt="%g",
               header=",".join([f"f{i}" for i in range(64)] + ["label"]), comments="")
    rc, out = _run_cli(argv + ["--resume", ck], capsys)
    assert "holds other data" in _one_error(rc, out)


def test_resuming_a_complete_checkpoint_writes_the_runs_model(seed5, tmp_path, capsys):
    """Killed after its last checkpoint but before its model was written: the resume trains nothing
    and writes the model (and history) the run would have written, bit for bit."""
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--quiet",
                        "--output", str(tmp_path / "r.npz"), "--history", str(tmp_path / "h.csv")], capsys)
    assert rc == 0, out.err
    assert out.err == (f"deepff: the checkpoint {seed5 / 'ck.npz'} is complete (it has trained all 2 epochs of "
                       "its run); nothing to train, writing the run's outputs\n")
    np.testing.assert_array_equal(deepff.load(tmp_path / "r.npz").params.theta,
                                  deepff.load(seed5 / "part.npz").params.theta)
    assert len((tmp_path / "h.csv").read_text().splitlines()) == 3            # header and 2 epochs
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "2", "--quiet",
                        "--output", str(tmp_path / "r2.npz")], capsys)           # the same total: the same
    assert rc == 0, out.err


def test_resuming_an_early_stopped_checkpoint_writes_the_runs_model(tmp_path, capsys):
    cfg = tmp_path / "es.yaml"
    cfg.write_text("layers:\n - {layer_type: input, n_features: 64}\n"
                   " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
                   " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
                   "training: {epochs: 40, early_stopping: {monitor: loss, patience: 1, min_delta: 5}}\n")
    ck, full = str(tmp_path / "ck.npz"), tmp_path / "full.npz"
    rc, out = _run_cli(["train", "--config", str(cfg), "--checkpoint", ck, "--output", str(full), "--quiet"],
                       capsys)
    assert rc == 0, out.err
    assert deepff.load_checkpoint(ck)[1]["stopped_early"]
    rc, out = _run_cli(["train", "--resume", ck, "--output", str(tmp_path / "r.npz"), "--quiet"], capsys)
    assert rc == 0 and "early stopping ended its run after epoch 2" in out.err, out.err
    np.testing.assert_array_equal(deepff.load(tmp_path / "r.npz").params.theta, deepff.load(full).params.theta)
    rc, out = _run_cli(["train", "--resume", ck, "--epochs", "50", "--output", str(tmp_path / "r2.npz")], capsys)
    assert "resume it without --epochs to write its model" in _one_error(rc, out)


def test_resume_refuses_a_new_learning_rate(seed5, tmp_path, capsys):
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "3", "--lr", "0.5",
                        "--quiet", "--output", str(tmp_path / "r.npz")], capsys)
    assert "--lr does not apply to a resumed run" in _one_error(rc, out)


def test_resume_keeps_task_batch_size_and_validation_split(tmp_path, capsys):
    """Nothing but --resume and --epochs: the run continues as it was configured."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).round(3)
    counts = rng.poisson(2.0, 120)
    np.savetxt(tmp_path / "counts.csv", np.c_[X, counts], delimiter=",", fmt="%g",
               header="a,b,c,d,n", comments="")
    base = ["train", "--dataset", str(tmp_path / "counts.csv"), "--task", "regression", "--hidden", "4",
            "--batch-size", "16", "--validation-split", "0.25", "--quiet"]
    ck = str(tmp_path / "ck.npz")
    assert _run_cli(base + ["--epochs", "1", "--checkpoint", ck, "--output", str(tmp_path / "a.npz")],
                    capsys)[0] == 0
    assert _run_cli(base + ["--epochs", "2", "--output", str(tmp_path / "full.npz")], capsys)[0] == 0
    rc, out = _run_cli(["train", "--resume", ck, "--epochs", "2", "--quiet",
                        "--output", str(tmp_path / "r.npz")], capsys)
    assert rc == 0, out.err
    resumed = deepff.load(tmp_path / "r.npz")
    assert resumed.task == "regression" and resumed.training_config["batch_size"] == 16
    assert resumed.training_config["validation_split"] == 0.25
    assert np.array_equal(resumed.params.theta, deepff.load(tmp_path / "full.npz").params.theta)


def test_checkpoint_without_the_new_records_still_resumes(seed5, tmp_path, capsys):
    def drop(header):
        header["extra"] = {k: header["extra"][k] for k in ("dataset", "task", "classes", "preprocessing",
                                                           "training")}
    old = tmp_path / "old.npz"
    _rewrite(seed5 / "ck.npz", old, drop)
    rc, out = _run_cli(["train", "--resume", str(old), "--seed", "5", "--epochs", "3", "--quiet",
                        "--output", str(tmp_path / "r.npz")], capsys)
    assert rc == 0, out.err
    assert np.array_equal(deepff.load(tmp_path / "r.npz").params.theta,
                          deepff.load(seed5 / "full.npz").params.theta)


# --------------------------------------------------------- the Python API
SPEC = [
    {"layer_type": "input", "n_features": 6},
    {"layer_type": "fullyconn", "n_neurons": 16, "activation": "relu", "dropout": 0.3, "batch_norm": True},
    {"layer_type": "fullyconn", "n_neurons": 8, "activation": "tanh", "dropout": 0.1},
    {"layer_type": "output", "n_neurons": 3, "activation": "softmax", "loss_type": "neg_log_likelihood"},
]
API_CASES = {
    "sgd-momentum-step-float64": ("float64", {"name": "sgd", "lr": 0.05, "momentum": 0.9},
                                  {"name": "step", "step_size": 2, "gamma": 0.5}),
    "adam-cosine-float32": ("float32", {"name": "adam", "lr": 0.01}, {"name": "cosine", "total_steps": 200}),
    "rmsprop-plateau-float64": ("float64", {"name": "rmsprop", "lr": 0.005},
                                {"name": "plateau", "n_iter_no_change": 1, "tol": 0.05, "factor": 2.0}),
}
EARLY_STOPPING = {"patience": 2, "min_delta": 0.02, "monitor": "val_loss"}


def _api_data(net):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    train = (net.prepare_inputs(X[:200]), net.prepare_targets(y[:200], 200))
    val = (net.prepare_inputs(X[200:]), net.prepare_targets(y[200:], 40))
    return train, val


def _api_trainer(net, case, callbacks=(), restore_best=True):
    _, optimizer, schedule = API_CASES[case]
    return Trainer(net, optimizer=dict(optimizer), schedule=dict(schedule),
                   early_stopping=dict(EARLY_STOPPING, restore_best=restore_best),
                   epochs=40, batch_size=16, callbacks=list(callbacks))


class _EveryEpoch(Callback):
    """Checkpoint after every epoch to folder/ck-<epoch>.npz."""

    def __init__(self, folder):
        self.folder = folder
        self.states = {}

    def on_epoch_end(self, trainer, record):
        save_checkpoint(trainer, self.folder / f"ck-{trainer.epoch}.npz", extra={"epoch": trainer.epoch})
        self.states[trainer.epoch] = trainer.state_dict()


def _uninterrupted(folder, case, restore_best=True):
    dtype = API_CASES[case][0]
    net = Network.from_spec(SPEC, dtype=dtype, seed=11)
    (X, Y), val = _api_data(net)
    saver = _EveryEpoch(folder)
    trainer = _api_trainer(net, case, [saver], restore_best)
    history = trainer.fit(X, Y, None, val)
    return net, trainer, history, saver


def _resume(path, case, restore_best=True):
    net, state, extra = load_checkpoint(path)
    (X, Y), val = _api_data(net)
    trainer = _api_trainer(net, case, restore_best=restore_best)
    trainer.load_state_dict(state)
    history = trainer.fit(X, Y, None, val)
    return net, trainer, history, extra


def test_a_checkpoint_keeps_the_runs_kernels_choice_and_refuses_a_strange_one(tmp_path):
    """A run's choice of code (compiled kernels or numpy) travels in its checkpoint; anything but a bool is refused."""
    net = Network.from_spec(SPEC, dtype="float64", seed=11)
    (X, Y), val = _api_data(net)
    trainer = Trainer(net, optimizer="adam", epochs=1, batch_size=16)
    trainer.fit(X, Y)
    assert isinstance(trainer.compiled_kernels, bool)
    save_checkpoint(trainer, tmp_path / "ck.npz")
    state = load_checkpoint(tmp_path / "ck.npz")[1]
    assert state["compiled_kernels"] is trainer.compiled_kernels
    fresh = Trainer(net, optimizer="adam", epochs=2, batch_size=16)
    assert fresh.compiled_kernels is None                  # a new run decides at its first fit
    fresh.load_state_dict(state)
    assert fresh.compiled_kernels is trainer.compiled_kernels
    for strange in ("yes", 1, [True]):
        with pytest.raises(deepff.InputError, match=r"the state's compiled_kernels must be true, false or null, "
                                                    rf"got {re.escape(repr(strange))}"):
            fresh.load_state_dict({**state, "compiled_kernels": strange})
    older = {k: v for k, v in state.items() if k != "compiled_kernels"}   # a checkpoint from before the record
    fresh.load_state_dict(older)
    assert fresh.compiled_kernels is None


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_resume_from_every_checkpoint_is_bit_identical(tmp_path, case):
    net, trainer, history, _ = _uninterrupted(tmp_path, case)
    assert history.stopped_early and 3 <= trainer.epoch < 40, "early stopping should end this run"
    for epoch in range(1, trainer.epoch):
        net2, trainer2, history2, extra = _resume(tmp_path / f"ck-{epoch}.npz", case)
        assert extra == {"epoch": epoch}
        assert trainer2.epoch == trainer.epoch, epoch
        assert history2.stopped_early
        assert np.array_equal(net2.params.theta, net.params.theta), epoch
        for name, buf in net.buffers().items():
            assert np.array_equal(net2.buffers()[name], buf), (epoch, name)
        assert _without_seconds(history2.records) == _without_seconds(history.records)
        assert trainer2.optimizer.lr == trainer.optimizer.lr


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_checkpoint_holds_the_exact_trainer_state(tmp_path, case):
    _, _, _, saver = _uninterrupted(tmp_path, case)
    for epoch, state in saver.states.items():
        _, loaded, _ = load_checkpoint(tmp_path / f"ck-{epoch}.npz")
        _same_state(loaded, state)


@pytest.mark.parametrize("restore_best", [False, True])
def test_api_resume_from_the_early_stopping_epoch_trains_no_more(tmp_path, restore_best):
    """The checkpoint of the epoch where early stopping ended the run: resuming it is a no-op."""
    case = "sgd-momentum-step-float64"
    net, trainer, history, _ = _uninterrupted(tmp_path, case, restore_best=restore_best)
    assert history.stopped_early
    net2, trainer2, history2, _ = _resume(tmp_path / f"ck-{trainer.epoch}.npz", case, restore_best=restore_best)
    assert trainer2.epoch == trainer.epoch
    assert history2.stopped_early
    assert np.array_equal(net2.params.theta, net.params.theta)


class _StopAt(Callback):
    """Ask the trainer to stop (as Ctrl-C does) right after optimizer step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, step, batch_size, loss):
        if step == self.step:
            trainer.request_stop()


# 200 samples, batch 16 -> 13 steps per epoch
@pytest.mark.parametrize(("stop_step", "restore_best"), [(5, True), (33, False), (33, True)],
                         ids=["first-epoch", "mid-run", "mid-run-restore-best"])
def test_api_stop_checkpoint_resume_is_bit_identical(tmp_path, stop_step, restore_best):
    case = "adam-cosine-float32"
    net, trainer, history, _ = _uninterrupted(tmp_path, case, restore_best)
    stopped = Network.from_spec(SPEC, dtype=API_CASES[case][0], seed=11)
    (X, Y), val = _api_data(stopped)
    stopper = _api_trainer(stopped, case, [_StopAt(stop_step)], restore_best)
    assert stopper.fit(X, Y, None, val).interrupted
    assert stopper.step == stop_step
    save_checkpoint(stopper, tmp_path / "stopped.npz")
    net2, trainer2, history2, _ = _resume(tmp_path / "stopped.npz", case, restore_best)
    assert trainer2.epoch == trainer.epoch
    assert _without_seconds(history2.records) == _without_seconds(history.records)
    assert np.array_equal(net2.params.theta, net.params.theta)


# ------------------------------------------------- malformed checkpoints
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _rewrite(src, dst, edit_header=None, arrays=None):
    members = _members(src)
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes().decode("utf-8"))
    if edit_header is not None:
        edit_header(header)
    for name, arr in (arrays or {}).items():
        header["arrays"][name] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
        members[name + ".npy"] = _npy(arr)
    members["header.npy"] = _npy(np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8))
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ck")
    net = Network.from_spec(SPEC, dtype="float32", seed=1)
    (X, Y), val = _api_data(net)
    trainer = _api_trainer(net, "adam-cosine-float32")
    trainer.epochs = 2
    trainer.fit(X, Y, None, val)
    path = folder / "ck.npz"
    save_checkpoint(trainer, path)
    load_checkpoint(path)
    return path


def _state(key, value):
    def edit(header):
        header["state"][key] = value
    return edit


def _drop_state(key):
    def edit(header):
        del header["state"][key]
    return edit


def _optimizer_name(header):
    header["state"]["optimizer"]["name"] = "nadam-2000"


def _schedule_name(header):
    header["state"]["schedule"]["name"] = "step"


def _es_wait(header):
    header["state"]["early_stopping"]["wait"] = -1


def _rng_garbage(header):
    header["state"]["shuffle_rng"]["state"] = {"state": "x", "inc": 3}


def _header_state_not_dict(header):
    header["state"] = [1, 2, 3]


BAD_STATES = {
    "state-not-a-dict": (_header_state_not_dict, None),
    "epoch-missing": (_drop_state("epoch"), None),
    "epoch-negative": (_state("epoch", -1), None),
    "step-float": (_state("step", 2.5), None),
    "base-lr-nan": (_state("base_lr", float("nan")), None),
    "history-not-list": (_state("history", {"a": 1}), None),
    "history-row-without-seconds": (_state("history", [{"epoch": 1, "loss": 0.5}]), None),
    "history-loss-text": (_state("history", [{"epoch": 1, "loss": "low", "seconds": 0.1}]), None),
    "rng-garbage": (_rng_garbage, None),
    "rng-missing": (_drop_state("dropout_rng"), None),
    "optimizer-unknown": (_optimizer_name, None),
    "optimizer-missing": (_drop_state("optimizer"), None),
    "schedule-other": (_schedule_name, None),
    "early-stopping-wait": (_es_wait, None),
    "optimizer-array-shape": (None, {"state.optimizer.exp_avg": np.zeros(3, dtype=np.float32)}),
    "best-theta-shape": (None, {"state.early_stopping.best_theta": np.zeros(5, dtype=np.float32)}),
    "epoch-order-not-permutation": (_state("epoch_order", {"__array__": "epoch_order"}),
                                    {"state.epoch_order": np.array([0, 0, 1], dtype=np.int64)}),
    "epoch-order-float": (_state("epoch_order", {"__array__": "epoch_order"}),
                          {"state.epoch_order": np.array([0.0, 1.0])}),
    "epoch-order-missing": (_state("epoch_order", {"__array__": "epoch_order"}), None),
    "epoch-position": (_state("epoch_position", -3), None),
    "stopped-early-not-bool": (_state("stopped_early", "yes"), None),
    "compiled-kernels-not-bool": (_state("compiled_kernels", "yes"), None),
    "compiled-kernels-a-number": (_state("compiled_kernels", 1), None),
    "epoch-partial": (_state("epoch_partial", [1.0, "x", 2]), None),
}


@pytest.mark.parametrize("case", sorted(BAD_STATES))
def test_malformed_checkpoint_state_is_rejected(tmp_path, checkpoint, case):
    edit, arrays = BAD_STATES[case]
    bad = tmp_path / "bad.npz"
    _rewrite(checkpoint, bad, edit, arrays)
    with pytest.raises(ModelFileError, match="malformed checkpoint state") as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value)


def test_rewritten_but_unchanged_checkpoint_still_loads(tmp_path, checkpoint):
    _rewrite(checkpoint, tmp_path / "same.npz")
    _, a, _ = load_checkpoint(checkpoint)
    _, b, _ = load_checkpoint(tmp_path / "same.npz")
    _same_state(a, b)


@pytest.mark.parametrize(("config", "expected"), [
    ("layers:\n - {layer_type: input, n_features: 64}\n - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
     " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
     "training: {optimizer: {name: adam, lr: 0.5}}\n", "the config's optimizer 'adam'"),
    ("layers:\n - {layer_type: input, n_features: 64}\n - {layer_type: fullyconn, n_neurons: 16, activation: relu}\n"
     " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n", "--config"),
], ids=["optimizer-lr", "layers"])
def test_resume_refuses_a_config_that_contradicts_the_checkpoint(seed5, tmp_path, capsys, config, expected):
    (tmp_path / "other.yaml").write_text(config)
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "3", "--seed", "5",
                        "--config", str(tmp_path / "other.yaml"), "--output", str(tmp_path / "r.npz")], capsys)
    line = _one_error(rc, out)
    assert expected in line and "contradicts the checkpoint" in line


def test_resume_refuses_another_optimizer_before_reading_data(seed5, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_train, "_load", lambda *a, **k: pytest.fail("data read before the refusal"))
    rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "3", "--optimizer", "sgd",
                        "--output", str(tmp_path / "r.npz")], capsys)
    assert "--optimizer 'sgd'" in _one_error(rc, out)


def test_resume_refuses_another_builtin_or_file_before_reading_data(seed5, tmp_path, capsys, monkeypatch):
    """A digits checkpoint resumed with --dataset mnist is refused before MNIST is loaded (or downloaded)."""
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "w.csv", np.c_[rng.normal(size=(20, 64)).round(3), rng.integers(0, 2, 20)],
               delimiter=",", fmt="%g")
    monkeypatch.setattr(cli_train, "_load", lambda *a, **k: pytest.fail("data read before the refusal"))
    for dataset in ("mnist", str(tmp_path / "w.csv")):
        rc, out = _run_cli(["train", "--resume", str(seed5 / "ck.npz"), "--epochs", "3", "--dataset", dataset,
                            "--output", str(tmp_path / "r.npz")], capsys)
        assert f"was trained on digits, not {dataset}; resume on the same data" in _one_error(rc, out)


def test_resume_finds_the_data_of_a_moved_project_folder(tmp_path, capsys):
    """Checkpoints record the training file relative to their own folder: a moved project just resumes."""
    project = tmp_path / "p"
    project.mkdir()
    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(size=(80, 3)).round(3), rng.integers(0, 2, 80)]
    np.savetxt(project / "d.csv", rows, delimiter=",", fmt="%g", header="a,b,c,y", comments="")
    base = ["train", "--hidden", "4", "--quiet"]
    assert _run_cli(base + ["--dataset", str(project / "d.csv"), "--epochs", "1", "--checkpoint",
                            str(project / "ck.npz"), "--output", str(project / "m.npz")], capsys)[0] == 0
    moved = tmp_path / "p2"
    project.rename(moved)
    rc, out = _run_cli(["train", "--resume", str(moved / "ck.npz"), "--epochs", "2", "--quiet",
                        "--output", str(moved / "m2.npz")], capsys)
    assert rc == 0 and out.err == "", out.err
    extra = deepff.load_checkpoint(moved / "ck.npz")[2]
    assert extra["dataset_source"] == "d.csv" and str(tmp_path) not in json.dumps(extra)


def test_a_negative_and_a_positive_index_of_one_npy_column_agree(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    np.save(tmp_path / "tab.npy", np.column_stack([X, X[:, 0] > 0]))
    ck = str(tmp_path / "ck.npz")
    base = ["train", "--dataset", str(tmp_path / "tab.npy"), "--hidden", "4", "--quiet"]
    assert _run_cli(base + ["--target", "-1", "--epochs", "1", "--checkpoint", ck,
                            "--output", str(tmp_path / "a.npz")], capsys)[0] == 0
    assert deepff.load(tmp_path / "a.npz").metadata["target_name"] == "column 4"
    rc, out = _run_cli(base + ["--target", "4", "--epochs", "2", "--resume", ck,
                               "--output", str(tmp_path / "b.npz")], capsys)
    assert rc == 0, out.err


def test_ctrl_c_in_the_first_epoch_with_plot_and_history_ends_with_status_130(tmp_path, capsys, monkeypatch):
    """No epoch is complete: the learning curves are skipped (nothing to draw), the confusion matrix and an
    empty history (its header) are written, and a second run may replace that history."""
    base = ["train", "--epochs", "2", "--hidden", "8", "--quiet", "--plot", str(tmp_path / "p.png"),
            "--history", str(tmp_path / "h.csv")]
    _interrupt_at(monkeypatch, 3)
    rc, out = _run_cli(base + ["--output", str(tmp_path / "m.npz")], capsys)
    monkeypatch.undo()
    assert rc == 130, out.err
    assert re.search(r"^final training loss +- \(no complete epoch\)$", out.out, flags=re.M), out.out
    assert "nan" not in out.out
    assert (tmp_path / "p-confusion.png").exists() and not (tmp_path / "p.png").exists()
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,loss"]
    rc, out = _run_cli(base + ["--output", str(tmp_path / "m2.npz")], capsys)
    assert rc == 0, out.err
    assert "replacing existing history file" in out.err
